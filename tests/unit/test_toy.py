"""S3's toy model (issue 8): data, the single-cell loop, and many cells trained stacked."""
from __future__ import annotations

import pytest
import torch

from grokmap.toy import ToyConfig, regression_targets, toy_pairs, toy_split, train_toy, train_toy_stacked


def test_toy_data_follows_s3():
    x, y = toy_pairs()
    assert len(y) == 55 and bool((x[:, 0] <= x[:, 1]).all()) and set(y.tolist()) == set(range(19))
    (a, ya), (b, yb) = toy_split(0)
    assert len(ya) == 45 and len(yb) == 10
    assert not {tuple(r) for r in a.tolist()} & {tuple(r) for r in b.tolist()}
    assert not torch.equal(toy_split(1)[0][0], a)  # the data seed moves the split
    t = regression_targets(0)
    assert t.shape == (19, 30) and torch.equal(t, regression_targets(0)) and not torch.equal(t, regression_targets(1))


def test_nine_of_ten_counts_as_ninety_percent():
    assert 9 / 10 >= 0.9


GRID = [ToyConfig(lr, wd, ds, ms, steps=150, eval_every=10)
        for lr, wd, ds, ms in [(1e-3, 0.0, 0, 0), (3e-3, 5.0, 0, 1), (1e-2, 1.0, 1, 0), (1e-4, 10.0, 2, 2)]]


@pytest.mark.parametrize("loss,activation", [("cross_entropy", "tanh"), ("mse", "tanh"),
                                             ("cross_entropy", "relu"), ("mse", "leaky_relu")])
def test_stacked_cells_equal_cells_trained_one_by_one(loss, activation, float64):
    configs = [ToyConfig(**{**c.__dict__, "loss": loss, "activation": activation}) for c in GRID]
    stacked = train_toy_stacked(configs)
    for cfg, got in zip(configs, stacked):
        ref = train_toy(cfg)["curves"]
        assert got["curves"]["step"] == ref["step"]
        for key in ("train_loss", "test_loss"):
            assert got["curves"][key] == pytest.approx(ref[key], rel=1e-9, abs=1e-12), (cfg, key)
        for key in ("train_acc", "test_acc"):
            assert got["curves"][key] == ref[key], (cfg, key)


def test_the_toy_model_learns_its_training_set():
    r = train_toy(ToyConfig(3e-3, 0.0, 0, 0, steps=1500, eval_every=100))["curves"]
    assert r["train_acc"][-1] >= 0.9 > r["train_acc"][0] or r["train_acc"][-1] == 1.0


def test_cells_that_differ_in_shape_do_not_stack():
    with pytest.raises(ValueError, match="cannot train stacked"):
        train_toy_stacked([ToyConfig(1e-3, 0, 0, 0, steps=10), ToyConfig(1e-3, 0, 0, 0, steps=20)])


def test_stacked_matches_in_float32_within_rounding():
    configs = GRID[:2]
    for cfg, got in zip(configs, train_toy_stacked(configs)):
        assert got["curves"]["train_loss"] == pytest.approx(train_toy(cfg)["curves"]["train_loss"], rel=1e-3)
