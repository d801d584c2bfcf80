"""S3's experiments (issue 8): data, the single-cell loop, and many cells trained stacked."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from grokmap.cells import cell_settings, stack_groups
from grokmap.grid import cells
from grokmap.settings import load_settings
from grokmap.toy import (S3Config, class_targets, config_from_settings, first_logged_step, load_digits, split,
                         stack_key, toy_pairs, train_single, train_stacked)

from ..conftest import ROOT, SCHEMAS



def _study_cell(name: str) -> S3Config:
    """The first cell of studies/reduced/<name>.yaml, as the workflow would train it."""
    params = load_settings(ROOT / "studies" / "reduced" / f"{name}.yaml", ROOT / "config.yaml", SCHEMAS).params
    return config_from_settings(cell_settings(params), cells(params["sweep"])[0])


# S3's toy (tanh, cross-entropy, 45/10 pairs, hidden 200, accuracy every step) and digits (ReLU, MSE,
# x9 init, batch 200, 5 steps per epoch), short budgets; early_stop_accuracy 2 never stops
TOY = replace(_study_cell("s3_toy_classification"), decoder_lr=1e-3, weight_decay=0.0, data_seed=0, model_seed=0,
              steps=150, eval_steps=(50, 100, 150), early_stop_accuracy=2.0)
DIGITS = replace(_study_cell("s3_digits"), decoder_lr=1e-3, weight_decay=0.0, encoder_wd=0.0, data_seed=0,
                 model_seed=0, acc_every=5, steps=30, eval_steps=(15, 30), early_stop_accuracy=2.0)
# four cells that differ in everything a stack allows: lr, weight decay, data seed, model seed
CELLS = [(1e-3, 0.0, 0, 0), (3e-3, 5.0, 0, 1), (1e-2, 1.0, 1, 0), (1e-4, 10.0, 2, 2)]


def _grid(base: S3Config) -> list[S3Config]:
    return [replace(base, decoder_lr=lr, weight_decay=wd, encoder_wd=0.0 if base.task == "toy_addition" else wd,
                    data_seed=ds, model_seed=ms) for lr, wd, ds, ms in CELLS]


def _assert_same(got: dict, ref: dict, rel: float) -> None:
    assert got["curves"]["step"] == ref["curves"]["step"]
    assert got["steps_run"] == ref["steps_run"] and got["stopped_early"] == ref["stopped_early"]
    assert got.get("accuracy_log") == ref.get("accuracy_log")
    for key in ("train_acc", "test_acc"):
        assert got["curves"][key] == ref["curves"][key], key
    for key in ("train_loss", "test_loss", "param_norm"):
        assert got["curves"][key] == pytest.approx(ref["curves"][key], rel=rel, abs=1e-12), key


def test_toy_data_follows_s3():
    x, y = toy_pairs()
    assert len(y) == 55 and bool((x[:, 0] <= x[:, 1]).all()) and set(y.tolist()) == set(range(19))
    (a, ya), (b, yb) = split(TOY)
    assert len(ya) == 45 and len(yb) == 10  # int(55 * 0.82) = 45
    assert not {tuple(r) for r in a.tolist()} & {tuple(r) for r in b.tolist()}
    assert not torch.equal(split(replace(TOY, data_seed=1))[0][0], a)  # the data seed moves the split
    t = class_targets(replace(TOY, loss="mse"))
    assert t.shape == (19, 30) and not torch.equal(t, class_targets(replace(TOY, loss="mse", data_seed=1)))
    assert class_targets(TOY) is None


def test_digits_are_the_bundled_8x8_images_in_unit_range():
    x, y = load_digits()
    assert x.shape == (1797, 64) and float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert set(y.tolist()) == set(range(10))
    (a, ya), (b, yb) = split(DIGITS)
    assert len(ya) == 1000 and len(yb) == 797


def test_nine_of_ten_counts_as_ninety_percent():
    log = {"every": 1, "n_train": 10, "n_test": 10, "train": [[8, 4], [9, 2]], "test": [[3, 6]]}
    assert first_logged_step(log, "train", 0.9) == 5
    assert first_logged_step(log, "test", 0.9) is None
    assert first_logged_step({**log, "every": 10}, "train", 0.9) == 50


@pytest.mark.parametrize("loss,activation", [("cross_entropy", "tanh"), ("mse", "tanh"),
                                             ("cross_entropy", "relu"), ("mse", "leaky_relu")])
def test_stacked_toy_cells_equal_cells_trained_one_by_one(loss, activation, float64):
    configs = [replace(c, loss=loss, activation=activation) for c in _grid(TOY)]
    for cfg, got in zip(configs, train_stacked(configs)):
        _assert_same(got, train_single(cfg), 1e-9)


def test_stacked_digits_cells_with_minibatches_equal_cells_trained_one_by_one(float64):
    configs = _grid(DIGITS)
    for cfg, got in zip(configs, train_stacked(configs)):
        _assert_same(got, train_single(cfg), 1e-8)


def test_cells_that_stop_early_leave_the_stack_and_keep_their_own_record(float64):
    """Early stop at the first logged step with both accuracies >= 0.9: the cells that stop drop
    out of the stack, the others go on; every record still equals its single-cell run."""
    base = replace(TOY, steps=600, eval_steps=(200, 400, 600), early_stop_accuracy=0.9)
    configs = [replace(base, weight_decay=wd, data_seed=ds, model_seed=ms)
               for wd, ds, ms in ((0.0, 0, 1), (1.0, 2, 0), (0.0, 0, 0), (1.0, 0, 0))]
    finished = []  # (index, steps run) in the order the cells were handed out
    stacked = train_stacked(configs, on_done=lambda i, r: finished.append((i, r["steps_run"])))
    assert [r["stopped_early"] for r in stacked] == [True, True, False, False]
    assert [i for i, _ in finished] == [0, 1, 2, 3] and finished[1][1] < finished[2][1] == 600
    # the cells that went on are bit-identical to a stack that never held the stopped ones
    for got, alone in zip(stacked[2:], train_stacked(configs[2:])):
        assert got == {**alone, "train_seconds": got["train_seconds"], "stacked_cells": 4}
    for cfg, got in zip(configs, stacked):
        # over hundreds of steps float64 rounding (bmm vs mm) grows to ~1e-5 in the losses;
        # steps, stops and every logged accuracy still agree exactly
        _assert_same(got, train_single(cfg), 1e-4)
        if got["stopped_early"]:
            assert got["steps_run"] == max(first_logged_step(got["accuracy_log"], s, 0.9) for s in ("train", "test"))


def test_float32_stacks_agree_with_single_cells_to_float_tolerance():
    configs = _grid(TOY)
    for cfg, got in zip(configs, train_stacked(configs)):
        ref = train_single(cfg)
        assert got["curves"]["train_loss"] == pytest.approx(ref["curves"]["train_loss"], rel=1e-3, abs=1e-5)


def test_the_toy_model_learns_its_training_set():
    r = train_single(replace(TOY, decoder_lr=3e-3, steps=1500, eval_steps=(100, 1500)))["curves"]
    assert r["train_acc"][-1] >= 0.9 > r["train_acc"][0]


def test_cells_that_differ_in_shape_do_not_stack():
    with pytest.raises(ValueError, match="cannot train stacked"):
        train_stacked([TOY, replace(TOY, steps=20, eval_steps=(20,))])


def test_the_workflow_groups_exactly_the_cells_that_can_stack():
    """grokmap.cells.stack_groups (torch-free, used by the workflow) puts cells in one group only
    when grokmap.toy would stack them, and splits them when a shared setting differs."""
    params = load_settings(ROOT / "studies" / "reduced" / "s3_toy_activations.yaml", ROOT / "config.yaml",
                           SCHEMAS).params
    settings = cell_settings(params)
    groups = stack_groups(settings, cells(params["sweep"]))
    assert len(groups) == 3 and sum(map(len, groups)) == len(cells(params["sweep"]))  # one per activation
    for group in groups:
        keys = {stack_key(config_from_settings(settings, c)) for c in group}
        assert len(keys) == 1


def test_a_cells_numbers_do_not_depend_on_the_stack_it_trains_in():
    """float32, bit for bit: a cell alone, in a stack of four, and left last in a stack whose
    other cell stopped early (batched kernels round a single matrix differently, so a stack
    never runs with one row)."""
    configs = _grid(TOY)
    alone = train_stacked(configs[2:3])[0]
    assert train_stacked(configs)[2]["curves"] == alone["curves"]
    # data seed 42, model seed 101: lr 3.2e-4 reaches 90 % on both splits by ~1,100 steps, 1e-5 does not
    base = replace(TOY, steps=1300, eval_steps=(650, 1300), early_stop_accuracy=0.9, data_seed=42, model_seed=101)
    stopper, runner = replace(base, decoder_lr=3.16e-4), replace(base, decoder_lr=1e-5)
    pair = train_stacked([stopper, runner])
    assert pair[0]["stopped_early"] and not pair[1]["stopped_early"]
    lone = train_stacked([runner])[0]
    assert pair[1]["curves"] == lone["curves"] and pair[1]["accuracy_log"] == lone["accuracy_log"]


def test_a_stacks_cluster_time_limit_is_the_sum_of_its_cells():
    from grokmap.cluster import cell_runtime_minutes, stack_runtime_minutes

    params = load_settings(ROOT / "studies" / "s3_digits.yaml", ROOT / "config.yaml", SCHEMAS).params
    grid = cells(params["sweep"])
    one = cell_runtime_minutes(params, grid[0])
    assert one > 5  # 1e5 steps of batch 200 at the assumed slow 5 GFLOP/s
    # each cell's share (its limit rounds up by < 1 minute and adds 2 for start-up), one start-up
    assert stack_runtime_minutes(params, grid[:10]) >= 10 * (one - 3)
