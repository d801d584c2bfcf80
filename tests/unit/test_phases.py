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
