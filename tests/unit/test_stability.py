"""Prieto et al.'s numerical-stability tools (issue 32): StableMax cross-entropy, the loss's own
precision, ⊥Grad on AdamW, and the softmax-collapse measure - against hand-computed values and
on real cells."""
from __future__ import annotations

import math

import pytest
import torch

from grokmap.training.grid import Cell
from grokmap.training.loop import train_cell
from grokmap.training.losses import collapse_count, log_stablemax, loss, per_example_loss
from grokmap.training.optimizers import PerpAdamW

from ..conftest import tiny_params


def test_stablemax_by_hand():
    # s(0) = 1, s(1) = 2, s(-1) = 1/2: probabilities 1/3.5, 2/3.5, 0.5/3.5
    logits = torch.tensor([[0.0, 1.0, -1.0]], dtype=torch.float64)
    assert torch.allclose(log_stablemax(logits).exp(), torch.tensor([[1 / 3.5, 2 / 3.5, 0.5 / 3.5]], dtype=torch.float64))
    got = per_example_loss(logits, torch.tensor([1]), "stablemax_cross_entropy")
    assert math.isclose(got.item(), math.log(1.75), rel_tol=1e-15)
    # s(3) = 4, s(-3) = 1/4: linear above 0, slow decay below (far from exp's)
    got = per_example_loss(torch.tensor([[3.0, -3.0]], dtype=torch.float64), torch.tensor([0]), "stablemax_cross_entropy")
    assert math.isclose(got.item(), -math.log(4 / 4.25), rel_tol=1e-15)
    # the gradient is finite where s switches branch (x = 0)
    x = torch.tensor([[0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    loss(x, torch.tensor([0]), "stablemax_cross_entropy").backward()
    assert torch.isfinite(x.grad).all() and x.grad[0, 0] < 0 < x.grad[0, 1]


def test_softmax_collapse_is_a_loss_of_exactly_zero_in_the_loss_precision():
    # margin 20: exp(-20) = 2.1e-9 is below float32's half-ulp of 1 (6e-8) but not float64's (1.1e-16)
    logits = torch.tensor([[20.0, 0.0, 0.0], [20.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    y = torch.tensor([0, 1, 0])  # the second is misclassified: a large loss, never collapsed
    assert collapse_count(logits, y, "cross_entropy") == 1
    assert collapse_count(logits, y, "cross_entropy", "float64") == 0
    assert collapse_count(logits.double(), y, "cross_entropy") == 0
    assert collapse_count(logits, y, "cross_entropy", "bfloat16") == 1  # bfloat16: margin 6 already
    assert collapse_count(torch.tensor([[6.0, 0.0]]), torch.tensor([0]), "cross_entropy", "bfloat16") == 1
    assert collapse_count(torch.tensor([[6.0, 0.0]]), torch.tensor([0]), "cross_entropy") == 0
    # StableMax at the same margin keeps 1/21 for the others: no collapse until margins ~1e7
    assert collapse_count(logits, y, "stablemax_cross_entropy") == 0
    assert collapse_count(torch.tensor([[1e8, 0.0]]), torch.tensor([0]), "stablemax_cross_entropy") == 1
    assert collapse_count(logits, y, "mse") is None


def test_the_loss_in_its_own_precision_flows_back_to_float32():
    torch.manual_seed(0)
    logits = (torch.randn(5, 7) * 30).requires_grad_()
    y = torch.tensor([0, 1, 2, 3, 4])
    out = loss(logits, y, "cross_entropy", dtype="float64")
    assert out.dtype == torch.float32
    out.backward()
    ref = logits.detach().double().requires_grad_()
    torch.nn.functional.cross_entropy(ref, y).backward()
    assert logits.grad.dtype == torch.float32 and torch.equal(logits.grad, ref.grad.float())
    assert out.item() == torch.nn.functional.cross_entropy(ref.detach(), y).float().item()


def test_perp_adamw_projects_then_steps_as_adamw():
    # w = (1, 0), g = (1, 1): g_perp = g - (w.g / w.w) w = (0, 1), rescaled to |g| = sqrt 2
    w = torch.tensor([1.0, 0.0], requires_grad=True)
    w.grad = torch.tensor([1.0, 1.0])
    ref = torch.tensor([1.0, 0.0], requires_grad=True)
    ref.grad = torch.tensor([0.0, math.sqrt(2.0)])
    kw = dict(lr=0.1, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.5, foreach=False)
    PerpAdamW([w], **kw).step()
    torch.optim.AdamW([ref], **kw).step()
    assert torch.equal(w.grad, ref.grad) and torch.equal(w.detach(), ref.detach())
    # a gradient along the weights leaves (almost) nothing to step on
    v = torch.tensor([3.0, 4.0], requires_grad=True)
    v.grad = torch.tensor([6.0, 8.0])
    PerpAdamW([v], lr=0.1).step()
    assert v.grad.abs().max() < 1e-5


def test_the_engine_that_runs_each_setting(default_params):
    from grokmap.training.engines import engine_for
    from grokmap.training.spec import CellSpec

    def engine(**training):
        return engine_for(CellSpec.of(tiny_params(default_params, **training), Cell(0.0, 0.5, 8, 0))).name

    assert engine() == "fused"
    assert engine(loss="stablemax_cross_entropy") == "fused"  # the fused step's loss tail
    assert engine(softmax_precision="float64") == "fused"
    assert engine(loss="stablemax_cross_entropy", precision="bfloat16") == "generic"  # not in the compiled graph
    assert engine(softmax_precision="float64", precision="bfloat16") == "generic"
    assert engine(optimizer="perp_adamw") == "generic"
    assert engine(loss="mse") == "generic"


def test_collapse_rises_in_float32_and_stays_zero_where_it_must(default_params):
    """p = 23, wd 0, 3,000 epochs: float32 cross-entropy collapses (Prieto: without weight
    decay the margins grow until the loss rounds to 0); the same cell with a float64 softmax
    collapses far later and less (1 example of 423 at the end), as with StableMax;
    MSE has no softmax (None)."""
    def run(**training):
        q = tiny_params(default_params, **{"max_epochs": 3000, "eval_every_epochs": 100, "early_stop_rule": "none",
                                           **training})
        out = train_cell(q, Cell(0.0, 0.8, 32, 0))
        return out["curves"]["softmax_collapse"], out["curves"]["train_acc"]

    f32, acc = run()
    assert f32[0] == 0 and max(f32) > 0.2 and all(c <= a for c, a in zip(f32, acc))
    f64_softmax, _ = run(softmax_precision="float64")  # delays it (float64 needs margins ~37, float32 ~17)
    first = next(i for i, c in enumerate(f32) if c > 0.2)
    assert f64_softmax[:first + 1] == [0.0] * (first + 1) and max(f64_softmax) < max(f32) / 10
    stablemax, _ = run(loss="stablemax_cross_entropy")  # its 1/(1-x) tail keeps the others' share far longer
    assert stablemax[:first + 1] == [0.0] * (first + 1) and max(stablemax) < max(f32) / 10
    mse, _ = run(loss="mse", max_epochs=200)
    assert set(mse) == {None}


def test_the_fused_loss_tail_is_the_generic_engines_mathematics(default_params, float64):
    """In float64 the hand-written StableMax gradient of the fused step's loss tail must follow
    autograd's through the generic engine, over a whole training run."""
    from grokmap.training.loop import train
    from grokmap.training.spec import CellSpec

    spec = CellSpec.of(tiny_params(default_params, max_epochs=300, eval_every_epochs=20,
                                   loss="stablemax_cross_entropy"), Cell(1.0, 0.8, 32, 0))
    (fast,), (ref,) = train([spec]), train([spec], engine="generic")
    assert fast["kernel"] == "fused/loss_tail" and ref["kernel"] == "generic/torch"
    for key in ("train_loss", "test_loss", "train_acc", "test_acc", "softmax_collapse"):
        assert fast["curves"][key] == pytest.approx(ref["curves"][key], rel=1e-9, abs=1e-12), key
    assert fast["curves"]["train_loss"][-1] < fast["curves"]["train_loss"][0] / 2


@pytest.mark.parametrize("kind", ["cross_entropy", "stablemax_cross_entropy"])
@pytest.mark.parametrize("dtype", [None, "float32", "float64", "bfloat16"])
def test_the_hand_written_logit_gradient_is_autograds(kind, dtype):
    """losses.logit_gradient (the fused tail) against autograd through losses.loss, one step,
    the loss in each precision (to that precision's resolution)."""
    from grokmap.training.losses import logit_gradient

    torch.manual_seed(1)
    logits = torch.randn(40, 11) * 8
    y = torch.randint(0, 11, (40,))
    x = logits.clone().requires_grad_()
    loss(x, y, kind, dtype=dtype).backward()
    g = logits.clone()
    logit_gradient(g, y, kind, dtype, 1 / 40)
    tol = {"bfloat16": 2e-2}.get(dtype, 1e-6)
    assert torch.allclose(g, x.grad, rtol=tol, atol=tol / 40), (g - x.grad).abs().max()
