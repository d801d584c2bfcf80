"""Training one cell, evaluated on a fixed schedule.

Three implementations:

* :class:`FusedEmbedConcatMLP` (the hot path): forward and backward of the embed-concat
  MLP written out by hand. The first layer is a sum of two gathered (p, width) tables
  (``embed_a @ W1[:, :d].T`` and ``embed_b @ W1[:, d:].T``) instead of a per-example
  matmul; forward and backward run tile by tile over the training rows so each tile stays
  in cache; every parameter lives in one flat buffer so one AdamW call updates them all;
  the gradient pass at epoch t doubles as the train-set evaluation of epoch t.
  Used whenever a cell's settings are S0's kind (:func:`uses_fused_path`).
* :func:`train_generic`: nn.Module + autograd + torch.optim for every other setting (other
  models, optimizers, losses, minibatches, dropout, embedding noise).
* :func:`train_reference`: the textbook full-batch loop S0 describes, used by the tests to
  check the fast path.

Budgets: with full-batch training an epoch is one optimizer step; with minibatches an epoch
is ceil(n_train / batch_size) steps, each taking its batch from the cell's own generator
(``batch_sampling``: uniformly with replacement, or epoch by epoch from a fresh permutation). Evaluations happen every ``eval_every_epochs`` epochs and at the last step;
training stops at ``max_epochs`` or ``max_steps``, whichever comes first, or early by ``early_stop_rule`` (:class:`grokmap.curves.EarlyStop`): train and
test accuracy both >= ``early_stop_accuracy`` at ``early_stop_evals`` consecutive evaluations,
or each of them >= it at some evaluation. Every evaluation also records the parameter L2 norm, the fraction of active
hidden neurons and the Fourier IPR of the first layer (:mod:`grokmap.models`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .curves import EarlyStop
from .data import batch_sampler, make_split
from .grid import resolve_settings
from .models import EmbedConcatMLP, Perturb, build_model, first_layer_maps, ipr, subnetwork_fraction
from .optim import AdamW
from .schedule import epoch_of, eval_schedule, lr_factor, step_schedule

__all__ = ["Curves", "eval_schedule", "step_schedule", "uses_fused_path", "train_cell",
           "train_generic", "train_reference", "FusedEmbedConcatMLP"]


@dataclass
class Curves:
    epoch: list = field(default_factory=list)
    step: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    param_norm: list = field(default_factory=list)
    subnetwork_fraction: list = field(default_factory=list)
    ipr: list = field(default_factory=list)

    def add(self, epoch, step: int, train_loss, train_acc, test_loss, test_acc,
            measures: Optional[dict] = None) -> None:
        for name, value in zip(("epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc"),
                               (epoch, step, train_loss, train_acc, test_loss, test_acc)):
            getattr(self, name).append(value)
        for name in ("param_norm", "subnetwork_fraction", "ipr"):
            getattr(self, name).append((measures or {}).get(name))

    def as_dict(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items()}


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

    def logits(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (n, p) and hidden activations of the current parameters, in scratch buffers
        (for evaluation)."""
        ta, tb = self._tables()
        return self._hidden_logits(ta, tb, a, b)

    def measures(self, a: torch.Tensor, b: torch.Tensor) -> dict:
        """Parameter norm, S1's sparsity on the training inputs (a, b), S4's IPR."""
        ea, eb, w1, _, w2, b2 = self.p_views
        _, h = self.logits(a, b)
        return {"param_norm": float(self.flat.norm()),
                "subnetwork_fraction": subnetwork_fraction(h, w2, b2),
                "ipr": ipr(first_layer_maps([ea, eb], w1))}

    def gradient(self, a, b, y, neg_onehot_over_n,
                 metrics: bool = False) -> Optional[tuple[float, float]]:
        """Gradient of the mean cross-entropy over (a, b, y) into ``self.grad``; with
        ``metrics``, also the loss and the accuracy of the same forward pass."""
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


ProgressFn = Callable[[int, dict], None]


def uses_fused_path(settings: dict) -> bool:
    """True for S0's kind of cell, which the hand-written fused step trains."""
    md, tr = settings["model"], settings["training"]
    return (md["name"] == "embed_concat_mlp" and md["depth"] == 1 and md["activation"] == "relu"
            and md["dropout"] == 0 and settings["task"]["operands"] == 2 and tr["optimizer"] == "adamw"
            and tr["loss"] == "cross_entropy" and tr["batch_size"] == "full"
            and tr["embedding_noise"] == 0)


def train_cell(params: dict, cell, progress: Optional[ProgressFn] = None) -> dict:
    """Train one cell (its extra sweep axes resolved into ``params``); return curves and run
    facts (no classification)."""
    settings = resolve_settings(params, cell)
    if settings["model"]["name"] == "s3_mlp":  # S3's experiments: grokmap.toy
        from .toy import config_from_settings, train_single

        return train_single(config_from_settings(params, cell),
                            progress and (lambda epoch, c: progress(epoch, {k: c[k][-1] for k in c})))
    run = _train_fused if uses_fused_path(settings) else train_generic
    return run(settings, cell, progress)


class _Loop:
    """What the fused and generic paths share: data, schedule, early stop, curves, result."""

    def __init__(self, settings: dict, cell, progress: Optional[ProgressFn]):
        tk, tr = settings["task"], settings["training"]
        self.p = tk["modulus"]
        split_seed = cell.seed if tk["data_seed"] is None else tk["data_seed"]
        (self.x, self.y), (self.tx, self.ty) = make_split(self.p, cell.train_fraction, split_seed,
                                                          tk["name"], tk["operands"])
        self.per_epoch, self.total, steps = step_schedule(tr, self.y.numel())
        self.evals = set(steps)
        self.stopper = EarlyStop(tr["early_stop_accuracy"], tr["early_stop_evals"], tr["early_stop_rule"])
        self.curves, self.non_finite, self.stopped_early = Curves(), False, False
        self.progress = progress
        self.start = time.perf_counter()

    def record(self, step: int, train: tuple, test: tuple, measures: dict) -> bool:
        """Add one evaluation; True when training must stop."""
        epoch = epoch_of(step, self.per_epoch)
        self.curves.add(epoch, step, *train, *test, measures)
        if self.progress:
            self.progress(epoch, {"train_acc": train[1], "test_acc": test[1]})
        if not (math.isfinite(train[0]) and math.isfinite(test[0])):
            self.non_finite = True
            return True
        if self.stopper.update(train[1], test[1]):
            self.stopped_early = step < self.total
            return True
        return step >= self.total

    def result(self, n_parameters: int) -> dict:
        return {
            "curves": self.curves.as_dict(),
            "epochs_run": self.curves.epoch[-1],
            "steps_run": self.curves.step[-1],
            "steps_per_epoch": self.per_epoch,
            "stopped_early": self.stopped_early,
            "non_finite_loss": self.non_finite,
            "train_seconds": time.perf_counter() - self.start,
            "n_train": int(self.y.numel()),
            "n_test": int(self.ty.numel()),
            "n_parameters": n_parameters,
        }


def _train_fused(settings: dict, cell, progress: Optional[ProgressFn] = None) -> dict:
    """S0's cell on the fused step (full batch, AdamW, cross-entropy, one ReLU layer)."""
    tr = settings["training"]
    loop = _Loop(settings, cell, progress)
    a, b, y, p = loop.x[:, 0], loop.x[:, 1], loop.y, loop.p
    ta, tb = loop.tx[:, 0], loop.tx[:, 1]
    model = build_model(settings["model"], p, cell.width, cell.seed)
    net = FusedEmbedConcatMLP(model)
    opt = AdamW(net.flat, net.grad, tr["learning_rate"], tr["betas"], tr["eps"], cell.weight_decay)
    neg_onehot = -F.one_hot(y, p).to(net.flat.dtype) / y.numel()  # (n, p)
    step = 0
    with torch.no_grad():
        while True:
            # the gradient pass at step t doubles as the train-set evaluation of step t
            train = net.gradient(a, b, y, neg_onehot, metrics=step in loop.evals)
            if train is not None:
                test = _metrics(net.logits(ta, tb)[0], loop.ty)
                measures = net.measures(a, b)
                if loop.record(step, train, test, measures):
                    break
            if tr["lr_decay"] is not None:
                opt.lr = tr["learning_rate"] * lr_factor(step + 1, 1, tr["lr_decay"])
            opt.step()
            step += 1
    return loop.result(int(net.flat.numel()))


def decay_lr(opt, base_lrs: list, step: int, per_epoch: int, decay) -> None:
    """Set every parameter group's rate for optimizer step ``step`` (``training.lr_decay``)."""
    if decay is not None:
        factor = lr_factor(step, per_epoch, decay)
        for group, base in zip(opt.param_groups, base_lrs):
            group["lr"] = base * factor


def _optimizer(tr: dict, params, weight_decay: float):
    lr, wd = tr["learning_rate"], weight_decay
    name = tr["optimizer"]
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(tr["betas"]), eps=tr["eps"], weight_decay=wd,
                                 foreach=False)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(tr["betas"]), eps=tr["eps"], weight_decay=wd,
                                foreach=False)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=tr["betas"][1], eps=tr["eps"], weight_decay=wd,
                                   momentum=tr["momentum"], foreach=False)
    if name in ("sgd", "gd"):
        return torch.optim.SGD(params, lr=lr, momentum=tr["momentum"] if name == "sgd" else 0.0,
                               weight_decay=wd, foreach=False)
    raise ValueError(f"unknown optimizer {name!r}; allowed: 'adamw', 'adam', 'rmsprop', 'sgd', 'gd'")


def _loss(logits: torch.Tensor, y: torch.Tensor, kind: str, reduction: str = "mean") -> torch.Tensor:
    if kind == "cross_entropy":
        return F.cross_entropy(logits, y, reduction=reduction)
    if kind == "mse":  # squared distance to the one-hot target, summed over outputs
        sq = (logits - F.one_hot(y, logits.shape[1]).to(logits.dtype)).pow(2).sum(1)
        return sq.mean() if reduction == "mean" else sq.sum()
    raise ValueError(f"unknown loss {kind!r}; allowed: 'cross_entropy', 'mse'")


_EVAL_ROWS = 16_384


@torch.no_grad()
def _evaluate(model, x: torch.Tensor, y: torch.Tensor, loss: str) -> tuple[float, float, torch.Tensor]:
    """(loss, accuracy, last hidden layer (n, m)) of the model on (x, y), in row chunks."""
    loss_sum, correct, hidden = 0.0, 0, []
    for r0 in range(0, y.numel(), _EVAL_ROWS):
        logits, h = model.features(x[r0:r0 + _EVAL_ROWS])
        yt = y[r0:r0 + _EVAL_ROWS]
        loss_sum += _loss(logits, yt, loss, "sum").item()
        correct += (logits.argmax(dim=1) == yt).sum().item()
        hidden.append(h)
    return loss_sum / y.numel(), correct / y.numel(), torch.cat(hidden)


def train_generic(settings: dict, cell, progress: Optional[ProgressFn] = None) -> dict:
    """Any model, optimizer, loss and batching: nn.Module + autograd + torch.optim."""
    tr, md = settings["training"], settings["model"]
    loop = _Loop(settings, cell, progress)
    model = build_model(md, loop.p, cell.width, cell.seed, settings["task"]["operands"])
    opt = _optimizer(tr, model.parameters(), cell.weight_decay)
    bases = [g["lr"] for g in opt.param_groups]
    generator = torch.Generator().manual_seed(cell.seed)  # batches, dropout, noise: this cell's own
    perturb = Perturb(md["dropout"], tr["embedding_noise"], generator)
    batch = tr["batch_size"]
    sample = None if batch == "full" else batch_sampler(loop.y.numel(), batch, tr["batch_sampling"], generator)
    for step in range(1, loop.total + 1):
        if batch == "full":
            xb, yb = loop.x, loop.y
        else:
            idx = sample()
            xb, yb = loop.x[idx], loop.y[idx]
        opt.zero_grad(set_to_none=True)
        _loss(model.features(xb, perturb)[0], yb, tr["loss"]).backward()
        decay_lr(opt, bases, step, loop.per_epoch, tr["lr_decay"])
        opt.step()
        if step in loop.evals:
            train_loss, train_acc, h_train = _evaluate(model, loop.x, loop.y, tr["loss"])
            test_loss, test_acc, _ = _evaluate(model, loop.tx, loop.ty, tr["loss"])
            readout = model.readout()
            with torch.no_grad():
                measures = {
                    "param_norm": float(torch.sqrt(sum((q.detach() ** 2).sum() for q in model.parameters()))),
                    "subnetwork_fraction": None if readout is None else subnetwork_fraction(h_train, *readout),
                    "ipr": ipr(model.operand_maps()),
                }
            if loop.record(step, (train_loss, train_acc), (test_loss, test_acc), measures):
                break
    return loop.result(sum(q.numel() for q in model.parameters()))


def train_reference(params: dict, cell) -> dict:
    """The textbook full-batch AdamW loop of S0 (nn.Module, autograd, separate no-grad
    evaluation); same schedule. For the tests."""
    p = params["task"]["modulus"]
    tr = params["training"]
    (x, y), (tx, ty) = make_split(p, cell.train_fraction, cell.seed, params["task"]["name"])
    model = build_model(params["model"], p, cell.width, cell.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=tr["learning_rate"], betas=tuple(tr["betas"]),
                            eps=tr["eps"], weight_decay=cell.weight_decay, foreach=False)
    evals = set(eval_schedule(tr["max_epochs"], tr["eval_every_epochs"]))
    stopper = EarlyStop(tr["early_stop_accuracy"], tr["early_stop_evals"], tr["early_stop_rule"])
    curves = Curves()
    for epoch in range(1, tr["max_epochs"] + 1):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        decay_lr(opt, [tr["learning_rate"]], epoch, 1, tr["lr_decay"])
        opt.step()
        if epoch in evals:
            with torch.no_grad():
                curves.add(epoch, epoch, *_metrics(model(x), y), *_metrics(model(tx), ty))
            if stopper.update(curves.train_acc[-1], curves.test_acc[-1]):
                break
    return {"curves": curves.as_dict(), "epochs_run": epoch}
