"""Phase rules: a boundary table."""
from __future__ import annotations

import pytest

from grokmap.analysis.phases import classify, classify_curves, classify_record, first_epoch_at

T, GAP = 0.95, 200

CASES = [
    # first_train, first_test, final_train, final_test -> phase, gap
    (None, None, 0.5, 0.01, "confusion", None),
    (100, None, 0.94, 0.01, "confusion", None),       # reached once, final below
    (100, 300, 0.9499, 0.99, "confusion", None),
    (100, None, 1.0, 0.2, "memorization", None),
    (100, 200, 1.0, 0.94, "memorization", None),     # test reached, final below
    (100, 300, 1.0, 0.99, "comprehension", 200),     # gap == 200 is not > 200
    (100, 301, 1.0, 0.99, "grokking", 201),
    (100, 100, 0.95, 0.95, "comprehension", 0),       # exactly at the threshold counts
    (300, 100, 1.0, 1.0, "comprehension", -200),     # test first
    (100, 2500, 1.0, 0.96, "grokking", 2400),
]


@pytest.mark.parametrize("ft,fte,trf,tef,phase,gap", CASES)
def test_boundary_table(ft, fte, trf, tef, phase, gap):
    assert classify(ft, fte, trf, tef, T, GAP) == (phase, gap)


def test_without_the_final_accuracy_rule_first_steps_alone_decide():
    """S3's Table 1: a split that reached the threshold counts even if it fell back later."""
    assert classify(100, None, 0.94, 0.01, T, GAP, require_final=False) == ("memorization", None)
    assert classify(100, 200, 1.0, 0.94, T, GAP, require_final=False) == ("comprehension", 100)
    assert classify(None, None, 0.94, 0.01, T, GAP, require_final=False) == ("confusion", None)


def test_first_epoch_and_curves():
    curves = {"epoch": [100, 200, 300, 400], "train_acc": [0.5, 0.96, 1.0, 1.0],
              "test_acc": [0.01, 0.2, 0.5, 0.97], "train_loss": [1] * 4, "test_loss": [1] * 4}
    assert first_epoch_at(curves["epoch"], curves["train_acc"], T) == 200
    assert first_epoch_at(curves["epoch"], curves["test_acc"], 0.99) is None
    c = classify_curves(curves, T, GAP)
    assert (c["phase"], c["gap_epochs"], c["first_train_epoch"], c["first_test_epoch"]) == (
        "comprehension", 200, 200, 400)
    assert classify_curves(curves, T, 199)["phase"] == "grokking"
    assert classify_curves(curves, 0.98, GAP)["phase"] == "memorization"


def test_s3_records_classify_from_the_per_step_accuracy_log():
    """S3: first step at 90 % from the run-length encoded log (exact: 9 of 10 counts), the
    1e3-step rule as gap 999 at one step per epoch, and minibatch steps turned into epochs."""
    log = {"every": 1, "n_train": 45, "n_test": 10, "train": [[30, 99], [41, 5000]], "test": [[5, 1098], [9, 4001]]}
    record = {"accuracy_log": log, "steps_per_epoch": 1,
              "curves": {"epoch": [5099], "train_acc": [41 / 45], "test_acc": [0.9]}}
    c = classify_record(record, 0.9, 999)
    assert (c["first_train_epoch"], c["first_test_epoch"], c["phase"], c["gap_epochs"]) == (100, 1099, "comprehension", 999)
    log["test"] = [[5, 1099], [9, 4000]]
    assert classify_record(record, 0.9, 999)["phase"] == "grokking"  # 1,000 steps later
    log["test"] = [[8, 5099]]
    assert classify_record(record, 0.9, 999)["phase"] == "memorization"
    log["every"], record["steps_per_epoch"] = 10, 5  # digits: logged every 10 steps, 5 steps per epoch
    log["test"] = [[5, 100], [9, 409]]
    c = classify_record(record, 0.9, 199.8)
    assert (c["first_train_epoch"], c["first_test_epoch"]) == (200, 202)


def test_a_tied_vote_is_a_tie_not_the_non_generalising_phase():
    """Two seeds, one groks and one memorises: the group is a tie, counted apart from both."""
    from grokmap.analysis.aggregate import TIE, _majority

    assert _majority(["memorization", "grokking"]) == (TIE, 0.5, ["memorization", "grokking"])
    assert _majority(["grokking", "memorization", "grokking"])[:2] == ("grokking", 2 / 3)
    assert _majority(["confusion", "comprehension", "grokking", "memorization"])[0] == TIE
    assert _majority(["comprehension"]) == ("comprehension", 1.0, ["comprehension"])


def _budget_record(train, test, stopped_early=False, non_finite=False):
    epochs = [500 * (i + 1) for i in range(len(train))]  # S0: 2,500 epochs, evaluated every 500 here
    return {"curves": {"epoch": epochs, "train_acc": train, "test_acc": test},
            "stopped_early": stopped_early, "non_finite_loss": non_finite}


@pytest.mark.parametrize("train, test, phase, gain", [
    # confusion waits on train: +0.12 over the last 20 % (epochs 2000 -> 2500): still rising
    ([0.1, 0.3, 0.5, 0.7, 0.82], [0.0] * 5, "confusion", 0.12),
    ([0.1, 0.3, 0.5, 0.7, 0.72], [0.0] * 5, "confusion", 0.02),      # flat at the end: decided
    # memorization waits on test, whatever train does
    ([1.0] * 5, [0.1, 0.2, 0.3, 0.5, 0.9], "memorization", 0.4),
    ([1.0] * 5, [0.1, 0.2, 0.3, 0.5, 0.5], "memorization", 0.0),
    ([1.0] * 5, [0.1, 0.2, 0.3, 0.96, 0.99], "grokking", None),       # generalised: the budget decided nothing
])
def test_the_gain_over_the_budgets_last_share_of_the_split_a_phase_waits_on(train, test, phase, gain):
    from grokmap.analysis.phases import budget_gain

    got = budget_gain(_budget_record(train, test), phase, 0.2)
    assert got == (None if gain is None else pytest.approx(gain))


def test_a_cell_that_stopped_early_or_diverged_is_never_undecided_at_budget():
    from grokmap.analysis.phases import budget_gain

    rising = ([0.1, 0.3, 0.5, 0.7, 0.9], [0.0] * 5)
    assert budget_gain(_budget_record(*rising, stopped_early=True), "confusion", 0.2) is None
    assert budget_gain(_budget_record(*rising, non_finite=True), "confusion", 0.2) is None
    # a window wider than the run: from the first evaluation
    assert budget_gain(_budget_record(*rising), "confusion", 1.0) == pytest.approx(0.8)


def _row(wd, phase, train, test, gap=None, undecided=False, seed=0):
    return {"weight_decay": wd, "train_fraction": 0.5, "width": 8, "seed": seed, "phase": phase,
            "final_train_acc": train, "final_test_acc": test, "gap_epochs": gap, "undecided": undecided}


def test_the_example_curves_show_each_phase_clearly():
    """report.representatives: a decided cell whose voters agree, then the plainest case —
    not the grokking cell with the largest gap that barely crossed the threshold."""
    from grokmap.analysis.report import representatives

    cells = [_row(0.0, "grokking", 1.0, 0.951, gap=1000), _row(0.1, "grokking", 1.0, 0.998, gap=400),
             _row(0.2, "grokking", 1.0, 1.0, gap=900, undecided=True),
             _row(0.3, "memorization", 1.0, 0.30), _row(0.4, "memorization", 1.0, 0.01),
             _row(0.5, "memorization", 1.0, 0.0, undecided=True),
             _row(0.6, "confusion", 0.5, 0.0), _row(0.7, "confusion", 0.2, 0.0),
             _row(0.8, "comprehension", 1.0, 0.97), _row(0.9, "comprehension", 1.0, 0.999)]
    groups = [{k: r[k] for k in ("weight_decay", "train_fraction", "width")} | {"agreement": 1.0} for r in cells]
    groups[1]["agreement"] = 0.5  # wd 0.1's voters split: its grokking cell is no longer the clearest
    phases = {"cells": cells, "groups": groups,
              "settings": {"sweep": {"weight_decay": [], "train_fraction": [], "width": [], "seed": [0]},
                           "phases": {"majority_over": ["seed"]}}}
    wd = {ph: c.weight_decay for ph, c in representatives(phases).items()}
    assert wd == {"grokking": 0.0, "memorization": 0.4, "confusion": 0.7, "comprehension": 0.9}
    groups[1]["agreement"] = 1.0
    assert representatives(phases)["grokking"].weight_decay == 0.1


def test_the_curves_figure_has_no_empty_panels(tmp_path):
    """A measurement row is drawn only when an example logged it."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from grokmap.analysis import plots

    base = {"step": [1, 2, 3], "train_acc": [0.1, 0.5, 1.0], "test_acc": [0.0, 0.1, 1.0],
            "train_loss": [3.0, 1.0, 0.1], "test_loss": [3.0, 2.0, 0.2]}
    shapes = []
    real_subplots = plt.subplots

    def spy(rows, cols, **kw):
        shapes.append((rows, cols))
        return real_subplots(rows, cols, **kw)

    plots.plt.subplots = spy
    try:
        plots.plot_curves({"grokking": ("a", base)}, tmp_path / "a.png", 0.9)
        plots.plot_curves({"grokking": ("a", {**base, "param_norm": [1, 2, 3]})}, tmp_path / "b.png", 0.9)
        plots.plot_curves({"grokking": ("a", {**base, "param_norm": [1, 2, 3], "ipr": [0.1, 0.2, 0.3]}),
                           "memorization": ("b", base)}, tmp_path / "c.png", 0.9)
    finally:
        plots.plt.subplots = real_subplots
    assert shapes == [(2, 1), (3, 1), (4, 2)]


def test_panels_of_a_product_are_laid_out_one_value_of_the_last_axis_per_column():
    """DiagramLayout.columns: 6 panels of loss x precision -> 3 columns (one row per loss);
    few panels, or panels that are no clean product, keep up to 4 per row."""
    from grokmap.analysis.axes import DiagramLayout

    def layout(losses, precisions, drop=0):
        groups = [{"weight_decay": 0.0, "train_fraction": 0.5, "width": 8, "training.loss": lo,
                   "training.precision": pr} for lo in losses for pr in precisions][drop:]
        sweep = {"weight_decay": [0.0], "train_fraction": [0.5], "width": [8], "seed": [0],
                 "training.loss": losses, "training.precision": precisions}
        return DiagramLayout({"settings": {"sweep": sweep, "phases": {"diagram_columns": "train_fraction",
                                                                      "majority_over": ["seed"]}},
                              "groups": groups})

    assert layout(["ce", "sm"], ["f64", "f32", "bf16"]).columns == 3
    assert layout(["ce", "sm"], ["f64", "f32"]).columns == 4  # 4 panels: one row
    assert layout(["ce", "sm", "x"], ["f64", "f32"]).columns == 2
    assert layout(["ce", "sm"], ["f64", "f32", "bf16"], drop=1).columns == 4  # 5 panels, no product
