"""The training loop: fused path vs the textbook loop, AdamW, schedule, early stop, NaN."""
from __future__ import annotations

import copy

import pytest
import torch

from grokmap.training.grid import Cell
from grokmap.training.loop import train_cell
from grokmap.training.optimizers import FlatAdamW as AdamW
from grokmap.training.schedule import eval_schedule

from ..conftest import tiny_params
from ..reference import train_reference


def test_eval_schedule():
    assert eval_schedule(2500, 100)[:3] == [100, 200, 300] and eval_schedule(2500, 100)[-1] == 2500
    assert eval_schedule(250, 100) == [100, 200, 250]
    assert eval_schedule(5, 5) == [5]


def test_adamw_matches_torch_bit_for_bit():
    torch.manual_seed(0)
    p0 = torch.randn(50)
    mine, ref = p0.clone(), torch.nn.Parameter(p0.clone())
    grad = torch.zeros(50)
    opt = AdamW(mine, grad, 1e-2, (0.9, 0.98), 1e-8, 0.1)
    topt = torch.optim.AdamW([ref], lr=1e-2, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.1, foreach=False)
    for _ in range(20):
        g = torch.randn(50)
        grad.copy_(g)
        ref.grad = g.clone()
        opt.step()
        topt.step()
    assert torch.equal(mine, ref.detach())


@pytest.mark.slow
@pytest.mark.parametrize("cell", [Cell(0.0, 0.5, 16, 3), Cell(1.0, 0.8, 32, 7)])
def test_fused_path_is_the_same_mathematics_as_the_reference_loop(default_params, cell, float64):
    # In float64 rounding noise stays far below the tolerance, so any difference in the
    # mathematics (a wrong gradient, schedule or optimizer step) would show.
    q = tiny_params(default_params, max_epochs=300, eval_every_epochs=20)
    fast, ref = train_cell(q, cell), train_reference(q, cell)
    assert fast["curves"]["epoch"] == ref["curves"]["epoch"]
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert fast["curves"][key] == pytest.approx(ref["curves"][key], rel=1e-7, abs=1e-9), key


@pytest.mark.parametrize("task", ["modular_addition", "modular_subtraction", "modular_multiplication",
                                  "modular_division"])
@pytest.mark.slow
def test_every_task_trains_and_small_tiles_keep_the_mathematics(default_params, task, float64, monkeypatch):
    # 64-row tiles: the tiny data set spans several tiles, so the per-tile accumulation of
    # every gradient is checked against the reference loop too.
    import grokmap.training.engines.fused as train_module

    monkeypatch.setattr(train_module, "chunk_rows", lambda p, width: 64)
    q = tiny_params(default_params, max_epochs=200, eval_every_epochs=20)
    q["task"]["name"] = task
    cell = Cell(1.0, 0.8, 32, 5)
    fast, ref = train_cell(q, cell), train_reference(q, cell)
    n = 23 * 22 if task == "modular_division" else 23 * 23
    assert fast["n_train"] + fast["n_test"] == n and fast["n_train"] > 3 * 64
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert fast["curves"][key] == pytest.approx(ref["curves"][key], rel=1e-7, abs=1e-9), key
    assert fast["curves"]["train_acc"][-1] > fast["curves"]["train_acc"][0]


def test_fused_path_in_float32_matches_within_float_tolerance(default_params):
    q = tiny_params(default_params, max_epochs=60, eval_every_epochs=20)
    cell = Cell(0.1, 0.5, 32, 1)
    fast, ref = train_cell(q, cell), train_reference(q, cell)
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert fast["curves"][key] == pytest.approx(ref["curves"][key], rel=1e-3, abs=1e-3), key


@pytest.mark.slow
def test_tiny_modulus_learns_and_stops_early(default_params):
    # it stops at 700-1,080 epochs as float rounding goes (torch's softmax, the C tail, float64)
    q = tiny_params(default_params, max_epochs=1500)
    out = train_cell(q, Cell(1.0, 0.8, 32, 0))
    c = out["curves"]
    assert c["train_acc"][-1] >= 0.99 and c["test_acc"][-1] >= 0.99
    assert out["stopped_early"] and out["epochs_run"] < 1500
    # stopped at the second consecutive evaluation with both accuracies >= 0.99
    both = [tr >= 0.99 and te >= 0.99 for tr, te in zip(c["train_acc"], c["test_acc"])]
    assert both[-2:] == [True, True] and not (len(both) > 2 and all(both[-3:]))
    assert c["train_loss"][-1] < c["train_loss"][0]


@pytest.mark.slow
def test_early_stop_rule_none_trains_the_whole_budget(default_params):
    # the cell above stops early; with the rule "none" it runs to max_epochs (S4's later regimes)
    q = tiny_params(default_params, max_epochs=1500)
    q["training"]["early_stop_rule"] = "none"
    out = train_cell(q, Cell(1.0, 0.8, 32, 0))
    assert not out["stopped_early"] and out["epochs_run"] == 1500
    assert out["curves"]["test_acc"][-1] >= 0.99


def test_same_seed_same_numbers(default_params):
    q = tiny_params(default_params, max_epochs=60)
    a, b = train_cell(q, Cell(0.01, 0.5, 16, 1)), train_cell(q, Cell(0.01, 0.5, 16, 1))
    assert a["curves"] == b["curves"]
    c = train_cell(q, Cell(0.01, 0.5, 16, 2))
    assert c["curves"] != a["curves"]


def test_non_finite_loss_is_recorded_not_raised(default_params):
    q = tiny_params(default_params, max_epochs=200, learning_rate=1e30)
    out = train_cell(q, Cell(0.0, 0.5, 16, 0))
    assert out["non_finite_loss"] and out["epochs_run"] < 200
