"""Training one cell: full-batch AdamW on S0's model, evaluated on a fixed schedule.

Two implementations of the same per-epoch mathematics:

* :class:`FusedEmbedConcatMLP` (the hot path): forward and backward of the embed-concat
  MLP written out by hand. The first layer is a sum of two gathered (p, width) tables
  (``embed_a @ W1[:, :d].T`` and ``embed_b @ W1[:, d:].T``) instead of a per-example
  matmul; every parameter lives in one flat buffer so one AdamW call updates them all;
  the train-set forward pass of epoch t+1 doubles as the train evaluation of epoch t.
* :func:`train_reference`: the textbook nn.Module + autograd + separate no-grad
  evaluation loop (what S0 describes), used by the tests to check the fast path.

Epoch t means "after t optimizer steps". Evaluations happen at every multiple of
``eval_every_epochs`` and at the last epoch; training stops early once train and test
accuracy are both >= ``early_stop_accuracy`` at ``early_stop_evals`` consecutive evaluations.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .data import make_split
from .models import EmbedConcatMLP, build_model
from .optim import AdamW

__all__ = ["Curves", "eval_schedule", "train_cell", "train_reference", "FusedEmbedConcatMLP"]


def eval_schedule(max_epochs: int, every: int) -> list[int]:
    """Evaluation epochs: every ``every`` epochs, plus the last epoch."""
    epochs = list(range(every, max_epochs + 1, every))
    if not epochs or epochs[-1] != max_epochs:
        epochs.append(max_epochs)
    return epochs


@dataclass
class Curves:
    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)

    def add(self, epoch: int, train_loss, train_acc, test_loss, test_acc) -> None:
        for name, value in zip(("epoch", "train_loss", "train_acc", "test_loss", "test_acc"),
                               (epoch, train_loss, train_acc, test_loss, test_acc)):
            getattr(self, name).append(value)

    def as_dict(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items()}


class _EarlyStop:
    """Counts consecutive evaluations with both accuracies at or above the target."""

    def __init__(self, accuracy: float, evals: int):
        self.accuracy, self.evals, self.run = accuracy, evals, 0

    def update(self, train_acc: float, test_acc: float) -> bool:
        ok = train_acc >= self.accuracy and test_acc >= self.accuracy
        self.run = self.run + 1 if ok else 0
        return self.run >= self.evals


def _metrics(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(dim=1) == y).sum().item() / y.numel()
    return loss, acc


class FusedEmbedConcatMLP:
    """Hand-written forward/backward for :class:`EmbedConcatMLP` on one flat buffer."""

    def __init__(self, model: EmbedConcatMLP):
        tensors = [model.embed_a.weight, model.embed_b.weight, model.hidden.weight,
                   model.hidden.bias, model.output.weight, model.output.bias]
        self.flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        self.grad = torch.zeros_like(self.flat)
        self.p_views = self._views(self.flat, tensors)
        self.g_views = self._views(self.grad, tensors)
        self.d = model.embed_a.weight.shape[1]
        self._scratch: dict = {}

    @staticmethod
    def _views(buf: torch.Tensor, like: list) -> list[torch.Tensor]:
        out, at = [], 0
        for t in like:
            out.append(buf[at:at + t.numel()].view(t.shape))
            at += t.numel()
        return out

    def _buf(self, name: str, *shape: int) -> torch.Tensor:
        """A reused scratch tensor: fresh multi-MB allocations cost page faults every step."""
        key = (name, shape)
        if key not in self._scratch:
            self._scratch[key] = torch.empty(shape, dtype=self.flat.dtype)
        return self._scratch[key]

    def logits(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (n, p) and hidden activations (n, width); both live in scratch buffers."""
        ea, eb, w1, b1, w2, b2 = self.p_views
        d, n, width = self.d, a.numel(), w1.shape[0]
        ta = torch.mm(ea, w1[:, :d].t())  # (p, width): every value of a through W1's a-half
        tb = torch.mm(eb, w1[:, d:].t())  # (p, width)
        h = torch.index_select(ta, 0, a, out=self._buf("h", n, width))
        h += torch.index_select(tb, 0, b, out=self._buf("hb", n, width))
        h += b1
        torch.relu_(h)
        out = torch.addmm(b2, h, w2.t(), out=self._buf("logits", n, w2.shape[0]))
        return out, h

    def backward(self, a, b, logits, h, neg_onehot_over_n) -> None:
        """Gradient of the mean cross-entropy into ``self.grad`` (logits are consumed)."""
        ea, eb, w1, _, w2, _ = self.p_views
        g_ea, g_eb, g_w1, g_b1, g_w2, g_b2 = self.g_views
        d, n, width, p = self.d, logits.shape[0], h.shape[1], ea.shape[0]
        # softmax written over the logits buffer, then (softmax - onehot) / n in one pass
        g = torch.ops.aten._softmax.out(logits, 1, False, out=logits)
        g = torch.add(neg_onehot_over_n, g, alpha=1.0 / n, out=g)  # (n, p)
        torch.mm(g.t(), h, out=g_w2)
        torch.sum(g, 0, out=g_b2)
        dh = torch.mm(g, w2, out=self._buf("dh", n, width))  # (n, width)
        dh = torch.ops.aten.threshold_backward.grad_input(dh, h, 0.0, grad_input=dh)  # ReLU'
        torch.sum(dh, 0, out=g_b1)
        dta = self._buf("dta", p, width).zero_().index_add_(0, a, dh)  # (p, width)
        dtb = self._buf("dtb", p, width).zero_().index_add_(0, b, dh)
        g_w1[:, :d] = torch.mm(dta.t(), ea)
        g_w1[:, d:] = torch.mm(dtb.t(), eb)
        torch.mm(dta, w1[:, :d], out=g_ea)
        torch.mm(dtb, w1[:, d:], out=g_eb)


def _check_optimizer(tr: dict) -> None:
    if tr["optimizer"] != "adamw":
        raise ValueError(f"unknown optimizer {tr['optimizer']!r}; allowed: 'adamw'")


ProgressFn = Callable[[int, dict], None]


def train_cell(params: dict, cell, progress: Optional[ProgressFn] = None) -> dict:
    """Train one cell with the fused path; return curves and run facts (no classification)."""
    p = params["task"]["modulus"]
    tr = params["training"]
    (a, b, y), (ta, tb, ty) = make_split(p, cell.train_fraction, cell.seed, params["task"]["name"])
    model = build_model(params["model"], p, cell.width, cell.seed)
    net = FusedEmbedConcatMLP(model)
    _check_optimizer(tr)
    opt = AdamW(net.flat, net.grad, tr["learning_rate"], tr["betas"], tr["eps"], cell.weight_decay)
    neg_onehot = -F.one_hot(y, p).to(net.flat.dtype) / y.numel()  # (n, p)
    evals = set(eval_schedule(tr["max_epochs"], tr["eval_every_epochs"]))
    stopper = _EarlyStop(tr["early_stop_accuracy"], tr["early_stop_evals"])
    curves, non_finite, stopped_early = Curves(), False, False
    start = time.perf_counter()
    epoch = 0
    with torch.no_grad():
        while True:
            logits, h = net.logits(a, b)
            if epoch in evals:
                train_loss, train_acc = _metrics(logits, y)
                test_loss, test_acc = _metrics(net.logits(ta, tb)[0], ty)
                curves.add(epoch, train_loss, train_acc, test_loss, test_acc)
                if progress:
                    progress(epoch, {"train_acc": train_acc, "test_acc": test_acc})
                if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
                    non_finite = True
                    break
                if stopper.update(train_acc, test_acc):
                    stopped_early = epoch < tr["max_epochs"]
                    break
                if epoch >= tr["max_epochs"]:
                    break
            net.backward(a, b, logits, h, neg_onehot)
            opt.step()
            epoch += 1
    return {
        "curves": curves.as_dict(),
        "epochs_run": epoch,
        "stopped_early": stopped_early,
        "non_finite_loss": non_finite,
        "train_seconds": time.perf_counter() - start,
        "n_train": int(y.numel()),
        "n_test": int(ty.numel()),
        "n_parameters": int(net.flat.numel()),
    }


def train_reference(params: dict, cell) -> dict:
    """The textbook loop (nn.Module, autograd, separate no-grad evaluation); same schedule."""
    p = params["task"]["modulus"]
    tr = params["training"]
    (a, b, y), (ta, tb, ty) = make_split(p, cell.train_fraction, cell.seed, params["task"]["name"])
    model = build_model(params["model"], p, cell.width, cell.seed)
    _check_optimizer(tr)
    opt = torch.optim.AdamW(model.parameters(), lr=tr["learning_rate"], betas=tuple(tr["betas"]),
                            eps=tr["eps"], weight_decay=cell.weight_decay, foreach=False)
    evals = set(eval_schedule(tr["max_epochs"], tr["eval_every_epochs"]))
    stopper = _EarlyStop(tr["early_stop_accuracy"], tr["early_stop_evals"])
    curves = Curves()
    for epoch in range(1, tr["max_epochs"] + 1):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(a, b), y).backward()
        opt.step()
        if epoch in evals:
            with torch.no_grad():
                curves.add(epoch, *_metrics(model(a, b), y), *_metrics(model(ta, tb), ty))
            if stopper.update(curves.train_acc[-1], curves.test_acc[-1]):
                break
    return {"curves": curves.as_dict(), "epochs_run": epoch}
