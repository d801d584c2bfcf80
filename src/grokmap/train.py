"""Training one cell: full-batch AdamW on S0's model, evaluated on a fixed schedule.

Two implementations of the same per-epoch mathematics:

* :class:`FusedEmbedConcatMLP` (the hot path): forward and backward of the embed-concat
  MLP written out by hand. The first layer is a sum of two gathered (p, width) tables
  (``embed_a @ W1[:, :d].T`` and ``embed_b @ W1[:, d:].T``) instead of a per-example
  matmul; forward and backward run tile by tile over the training rows so each tile stays
  in cache; every parameter lives in one flat buffer so one AdamW call updates them all;
  the gradient pass at epoch t doubles as the train-set evaluation of epoch t.
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


def chunk_rows(p: int, width: int) -> int:
    """Rows per tile of the fused step: one tile's logits and hidden activations
    ((p + width) floats per row) fit in about 640 KB, i.e. stay in a core's L2 cache
    between the forward and backward passes. A multiple of 64, at least 256."""
    return max(256, (160_000 // (p + width)) // 64 * 64)


class FusedEmbedConcatMLP:
    """Hand-written forward/backward for :class:`EmbedConcatMLP` on one flat buffer.

    The training step runs over row tiles (:func:`chunk_rows`): for each tile the hidden
    layer, logits, softmax and the tile's share of every gradient are computed while the
    tile is still in cache; only the (p, width) tables and the gradients live across tiles.
    """

    def __init__(self, model: EmbedConcatMLP):
        tensors = [model.embed_a.weight, model.embed_b.weight, model.hidden.weight,
                   model.hidden.bias, model.output.weight, model.output.bias]
        self.flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        self.grad = torch.zeros_like(self.flat)
        self.p_views = self._views(self.flat, tensors)
        self.g_views = self._views(self.grad, tensors)
        self.d = model.embed_a.weight.shape[1]
        self.p, self.width = model.output.weight.shape
        self.rows = chunk_rows(self.p, self.width)
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

    def _tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every value of a (with the hidden bias) and of b through the hidden layer: (p, width) each."""
        ea, eb, w1, b1, _, _ = self.p_views
        d = self.d
        ta = torch.addmm(b1, ea, w1[:, :d].t(), out=self._buf("ta", self.p, self.width))
        tb = torch.mm(eb, w1[:, d:].t(), out=self._buf("tb", self.p, self.width))
        return ta, tb

    def _hidden_logits(self, ta, tb, a, b) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, _, _, w2, b2 = self.p_views
        m = a.numel()
        h = torch.index_select(ta, 0, a, out=self._buf("h", m, self.width))
        h += torch.index_select(tb, 0, b, out=self._buf("hb", m, self.width))
        torch.relu_(h)
        return torch.addmm(b2, h, w2.t(), out=self._buf("logits", m, self.p)), h

    def logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits (n, p) of the current parameters, in a scratch buffer (for evaluation)."""
        ta, tb = self._tables()
        return self._hidden_logits(ta, tb, a, b)[0]

    def gradient(self, a, b, y, neg_onehot_over_n, metrics: bool = False) -> Optional[tuple[float, float]]:
        """Gradient of the mean cross-entropy over (a, b, y) into ``self.grad``; with
        ``metrics``, also the loss and accuracy of the same forward pass."""
        ea, eb, w1, _, w2, _ = self.p_views
        g_ea, g_eb, g_w1, g_b1, g_w2, g_b2 = self.g_views
        d, n, p, width = self.d, a.numel(), self.p, self.width
        ta, tb = self._tables()
        dta = self._buf("dta", p, width).zero_()
        dtb = self._buf("dtb", p, width).zero_()
        g_w2.zero_()
        g_b2.zero_()
        loss_sum, correct = 0.0, 0
        for r0 in range(0, n, self.rows):
            a_t, b_t = a[r0:r0 + self.rows], b[r0:r0 + self.rows]
            logits, h = self._hidden_logits(ta, tb, a_t, b_t)
            if metrics:
                y_t = y[r0:r0 + self.rows]
                loss_sum += F.cross_entropy(logits, y_t, reduction="sum").item()
                correct += (logits.argmax(dim=1) == y_t).sum().item()
            # softmax over the logits buffer, then (softmax - onehot) / n in one pass
            g = torch.ops.aten._softmax.out(logits, 1, False, out=logits)
            g = torch.add(neg_onehot_over_n[r0:r0 + self.rows], g, alpha=1.0 / n, out=g)
            torch.addmm(g_w2, g.t(), h, out=g_w2)
            g_b2 += g.sum(0)
            dh = torch.mm(g, w2, out=self._buf("dh", g.shape[0], width))
            dh = torch.ops.aten.threshold_backward.grad_input(dh, h, 0.0, grad_input=dh)  # ReLU'
            dta.index_add_(0, a_t, dh)
            dtb.index_add_(0, b_t, dh)
        torch.sum(dta, 0, out=g_b1)  # each row reaches exactly one row of dta
        g_w1[:, :d] = torch.mm(dta.t(), ea)
        g_w1[:, d:] = torch.mm(dtb.t(), eb)
        torch.mm(dta, w1[:, :d], out=g_ea)
        torch.mm(dtb, w1[:, d:], out=g_eb)
        return (loss_sum / n, correct / n) if metrics else None


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
            # the gradient pass at epoch t doubles as the train-set evaluation of epoch t
            train = net.gradient(a, b, y, neg_onehot, metrics=epoch in evals)
            if train is not None:
                train_loss, train_acc = train
                test_loss, test_acc = _metrics(net.logits(ta, tb), ty)
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
