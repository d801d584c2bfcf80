"""The fused engine: S0's embed-concat MLP (one ReLU layer, full batch, AdamW, cross-entropy).

:class:`FusedEmbedConcatMLP` writes the forward and backward out by hand. The first layer is a
sum of two gathered (p, width) tables (``embed_a @ W1[:, :d].T`` and ``embed_b @ W1[:, d:].T``)
instead of a per-example matmul; forward and backward run tile by tile over the training rows
so each tile stays in cache (in float32 a tile's softmax, minus the one-hot and over n, is one
hand-written C pass, :mod:`.ctail`); every parameter lives in one flat buffer so one AdamW call
(:class:`grokmap.training.optimizers.FlatAdamW`) updates them all. The gradient pass at step t
doubles as the train-set evaluation of step t: :meth:`FusedEngine.evaluate` computes it, and
the next :meth:`FusedEngine.step` uses it instead of computing it again.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ..data import split
from ..models import EmbedConcatMLP, build_model, first_layer_maps, ipr, subnetwork_fraction
from ..losses import collapse_count, logit_gradient, loss
from ..optimizers import FlatAdamW
from ..precision import full, precision_dtypes
from .ctail import library, softmax_minus_onehot

__all__ = ["FusedEmbedConcatMLP", "FusedEngine", "chunk_rows", "torch_softmax_minus_onehot"]


def chunk_rows(p: int, width: int) -> int:
    """Rows per tile of the fused step: one tile's logits and hidden activations
    ((p + width) floats per row) fit in about 640 KB, i.e. stay in a core's L2 cache
    between the forward and backward passes. A multiple of 64, at least 256."""
    return max(256, (160_000 // (p + width)) // 64 * 64)


def torch_softmax_minus_onehot(logits: torch.Tensor, neg_onehot_over_n: torch.Tensor, inv_n: float) -> None:
    """The tail by torch's kernels, in place over ``logits``: softmax, then plus minus the one-hot
    over n (what :func:`.ctail.softmax_minus_onehot` does in one pass)."""
    torch.ops.aten._softmax.out(logits, 1, False, out=logits)
    torch.add(neg_onehot_over_n, logits, alpha=inv_n, out=logits)


class FusedEmbedConcatMLP:
    """Hand-written forward/backward for :class:`EmbedConcatMLP` on one flat buffer.

    The training step runs over row tiles (:func:`chunk_rows`): for each tile the hidden
    layer, logits, softmax and the tile's share of every gradient are computed while the
    tile is still in cache; only the (p, width) tables and the gradients live across tiles.
    """

    def __init__(self, model: EmbedConcatMLP, low: Optional[torch.dtype] = None, compiled: bool = False,
                 loss: str = "cross_entropy", loss_dtype: Optional[str] = None):
        """``low``: the dtype of every matrix product (bfloat16), or None for the parameters' own;
        ``compiled``: the gradient pass through :mod:`.compiled` instead of the row tiles;
        ``loss`` and ``loss_dtype``: ``training.loss`` and ``training.softmax_precision`` (other
        than cross-entropy in the working precision, the tail is :func:`.losses.logit_gradient`)."""
        self.low, self.compiled = low, compiled
        self.loss, self.loss_dtype = loss, loss_dtype
        plain = loss == "cross_entropy" and loss_dtype is None
        # the softmax tail: one hand-written C pass in float32 (:mod:`.ctail`) where it builds,
        # torch's kernels otherwise; decided here, once, so the record can name it
        c_tail = plain and low is None and model.output.weight.dtype == torch.float32 and not compiled
        self.tail = "c" if c_tail and library() is not None else "torch" if plain else "loss"
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

    def _mm(self, a: torch.Tensor, b: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """a @ b (into ``out``), the product computed in ``self.low`` when it is set."""
        if self.low is None:
            return torch.mm(a, b, out=out)
        r = torch.mm(a.to(self.low), b.to(self.low))
        return r.to(self.flat.dtype) if out is None else out.copy_(r)

    def _addmm(self, c: torch.Tensor, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """c + a @ b into ``out``, the product computed in ``self.low`` when it is set."""
        if self.low is None:
            return torch.addmm(c, a, b, out=out)
        return torch.add(c, torch.mm(a.to(self.low), b.to(self.low)), out=out)

    def _tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every value of a (with the hidden bias) and of b through the hidden layer: (p, width) each."""
        ea, eb, w1, b1, _, _ = self.p_views
        d = self.d
        ta = self._addmm(b1, ea, w1[:, :d].t(), out=self._buf("ta", self.p, self.width))
        tb = self._mm(eb, w1[:, d:].t(), out=self._buf("tb", self.p, self.width))
        return ta, tb

    def _hidden_logits(self, ta, tb, a, b) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, _, _, w2, b2 = self.p_views
        m = a.numel()
        h = torch.index_select(ta, 0, a, out=self._buf("h", m, self.width))
        h += torch.index_select(tb, 0, b, out=self._buf("hb", m, self.width))
        torch.relu_(h)
        return self._addmm(b2, h, w2.t(), out=self._buf("logits", m, self.p)), h

    def logits(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (n, p) and hidden activations of the current parameters, in scratch buffers
        (for evaluation)."""
        ta, tb = self._tables()
        return self._hidden_logits(ta, tb, a, b)

    def measures(self, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> dict:
        """Parameter norm, S1's sparsity on the training inputs (a, b), S4's IPR, and softmax
        collapse on the training set (in the step's loss precision: ``training.softmax_precision``,
        else float64 for float64 cells and float32 otherwise)."""
        ea, eb, w1, _, w2, b2 = self.p_views
        logits, h = self.logits(a, b)
        return {"param_norm": float(self.flat.norm()),
                "subnetwork_fraction": subnetwork_fraction(h, w2, b2),
                "ipr": ipr(first_layer_maps([ea, eb], w1)),
                "softmax_collapse": collapse_count(full(logits), y, self.loss, self.loss_dtype) / y.numel()}

    def gradient(self, a, b, y, neg_onehot_over_n,
                 metrics: bool = False) -> Optional[tuple[float, int]]:
        """Gradient of the mean cross-entropy over (a, b, y) into ``self.grad``; with
        ``metrics``, also the loss and the correct count of the same forward pass."""
        if self.compiled:
            from .compiled import compiled_gradient

            return compiled_gradient(self, a, b, y, metrics)
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
            y_t = y[r0:r0 + self.rows]
            if metrics:
                loss_sum += loss(logits, y_t, self.loss, "sum", self.loss_dtype).item()
                correct += (logits.argmax(dim=1) == y_t).sum().item()
            # (softmax - onehot) / n over the logits buffer: one C pass, or softmax then one add
            g = logits
            if self.tail == "loss":  # StableMax, or the loss in its own precision
                logit_gradient(g, y_t, self.loss, self.loss_dtype, 1.0 / n)
            elif not (self.tail == "c" and softmax_minus_onehot(g, y_t, 1.0 / n)):
                torch_softmax_minus_onehot(g, neg_onehot_over_n[r0:r0 + self.rows], 1.0 / n)
            self._addmm(g_w2, g.t(), h, out=g_w2)
            g_b2 += g.sum(0)
            dh = self._mm(g, w2, out=self._buf("dh", g.shape[0], width))
            dh = torch.ops.aten.threshold_backward.grad_input(dh, h, 0.0, grad_input=dh)  # ReLU'
            dta.index_add_(0, a_t, dh)
            dtb.index_add_(0, b_t, dh)
        torch.sum(dta, 0, out=g_b1)  # each row reaches exactly one row of dta
        g_w1[:, :d] = self._mm(dta.t(), ea)
        g_w1[:, d:] = self._mm(dtb.t(), eb)
        self._mm(dta, w1[:, :d], out=g_ea)
        self._mm(dtb, w1[:, d:], out=g_eb)
        return (loss_sum / n, correct) if metrics else None


def _copy_into(into: torch.Tensor, saved, name: str) -> None:
    if not isinstance(saved, torch.Tensor) or saved.shape != into.shape or saved.dtype != into.dtype:
        got = f"{tuple(saved.shape)} {saved.dtype}" if isinstance(saved, torch.Tensor) else type(saved).__name__
        raise ValueError(f"saved state {name!r} is {got}, this cell needs {tuple(into.shape)} {into.dtype}")
    into.copy_(saved)


class FusedEngine:
    """One cell of S0's kind (:func:`grokmap.training.engines.engine_for`)."""

    def __init__(self, specs: Sequence, device=None):  # the CPU always (training.devices)
        (spec,) = specs
        tk, tr = spec.task, spec.training
        (x, self.y), (tx, self.ty) = split(tk.name, tk.modulus, spec.cell.train_fraction, spec.data_seed, tk.operands)
        self.a, self.b, self.ta, self.tb = x[:, 0], x[:, 1], tx[:, 0], tx[:, 1]
        self.y = self.y.contiguous()  # the C tail reads each tile's labels in place
        self.n_train, self.n_test = int(self.y.numel()), int(self.ty.numel())
        low = precision_dtypes(tr.precision)[1]
        # bfloat16 products pay only with their casts fused into the elementwise work around them
        self.net = FusedEmbedConcatMLP(build_model(spec), low, compiled=low is not None, loss=tr.loss,
                                       loss_dtype=tr.softmax_precision)
        self.n_parameters = int(self.net.flat.numel())
        self.kernel = "fused/compiled" if self.net.compiled else f"fused/{self.net.tail}_tail"
        self.lr, self.decay = tr.learning_rate, tr.lr_decay
        self.opt = FlatAdamW(self.net.flat, self.net.grad, tr.learning_rate, tr.betas, tr.eps, spec.weight_decay)
        # one_hot also refuses a label outside [0, p): the C tail indexes rows by label unchecked
        self.neg_onehot = -F.one_hot(self.y, tk.modulus).to(self.net.flat.dtype) / self.y.numel()  # (n, p)
        self.fresh = False  # self.net.grad already holds the gradient at the current parameters

    @torch.no_grad()
    def step(self, step: int, lr_factor: float, pre_accuracy: bool) -> None:
        if not self.fresh:
            self.net.gradient(self.a, self.b, self.y, self.neg_onehot)
        if self.decay is not None:
            self.opt.lr = self.lr * lr_factor
        self.opt.step()
        self.fresh = False

    @torch.no_grad()
    def evaluate(self, rows: list[int]) -> list[tuple]:
        train = self.net.gradient(self.a, self.b, self.y, self.neg_onehot, metrics=True)
        self.fresh = True
        logits = self.net.logits(self.ta, self.tb)[0]
        test = (loss(logits, self.ty, self.net.loss, dtype=self.net.loss_dtype).item(),
                int((logits.argmax(dim=1) == self.ty).sum().item()))
        return [(train, test, self.net.measures(self.a, self.b, self.y))]

    def state(self) -> dict:
        """Everything the next step reads: parameters, the gradient (with ``fresh`` it is the one
        the next step uses), AdamW's moments and step count."""
        o = self.opt
        return {"flat": self.net.flat.clone(), "grad": self.net.grad.clone(), "exp_avg": o.exp_avg.clone(),
                "exp_avg_sq": o.exp_avg_sq.clone(), "step_count": int(o.step_count), "fresh": bool(self.fresh)}

    def load_state(self, state: dict) -> None:
        """Continue from :meth:`state` (a cell's saved final state): the steps that follow are those
        of one uninterrupted run."""
        o = self.opt
        for name, into in (("flat", self.net.flat), ("grad", self.net.grad), ("exp_avg", o.exp_avg),
                           ("exp_avg_sq", o.exp_avg_sq)):
            _copy_into(into, state[name], name)
        o.step_count, self.fresh = int(state["step_count"]), bool(state["fresh"])

    def accuracy(self):
        raise NotImplementedError("the fused engine keeps no accuracy log (settings allow it for s3_mlp only)")

    def keep(self, rows: list[int]) -> None:
        raise NotImplementedError("the fused engine trains one cell")
