"""The training losses (``training.loss``), as each engine computes them, and the measure of
softmax collapse.

``stablemax_cross_entropy`` is Prieto et al.'s ("Grokking at the edge of numerical
stability", ICLR 2025): the cross-entropy of StableMax, the softmax with exp(x) replaced by
s(x) = x + 1 for x >= 0 and 1 / (1 - x) for x < 0 (their public code adds 1e-30 to 1 - x; it
changes nothing in float32 or float64 there, and is left out).

Two conventions of ``mse`` exist on purpose, each its seed's: S4 (generic engine) sums the
squared distance to the one-hot target over the outputs and averages over examples; S3
(stacked engine) averages over examples *and* outputs (nn.MSELoss), to its class targets.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "SOFTMAX_LOSSES", "loss", "per_example_loss", "log_stablemax", "collapse_count",
           "logit_gradient", "stacked_loss", "stacked_correct"]

LOSSES = ("cross_entropy", "stablemax_cross_entropy", "mse")
SOFTMAX_LOSSES = ("cross_entropy", "stablemax_cross_entropy")  # the losses softmax collapse applies to

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def _stablemax_s(x: torch.Tensor) -> torch.Tensor:
    """StableMax's s(x): x + 1 for x >= 0, 1 / (1 - x) below."""
    return torch.where(x >= 0, x + 1, 1 / (1 - x.clamp(max=0)))


def log_stablemax(logits: torch.Tensor) -> torch.Tensor:
    """log StableMax over the last dim: log s(x_i) - log sum_j s(x_j)."""
    s = _stablemax_s(logits)
    return torch.log(s) - torch.log(s.sum(-1, keepdim=True))


def per_example_loss(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """(n,) losses of (n, classes) logits against labels y, in the logits' dtype."""
    if kind == "cross_entropy":
        return F.cross_entropy(logits, y, reduction="none")
    if kind == "stablemax_cross_entropy":
        return -log_stablemax(logits).gather(1, y.unsqueeze(1)).squeeze(1)
    if kind == "mse":  # squared distance to the one-hot target, summed over outputs
        return (logits - F.one_hot(y, logits.shape[1]).to(logits.dtype)).pow(2).sum(1)
    raise ValueError(f"unknown loss {kind!r}; allowed: {', '.join(LOSSES)}")


def loss(logits: torch.Tensor, y: torch.Tensor, kind: str, reduction: str = "mean",
         dtype: str | None = None) -> torch.Tensor:
    """Generic engine: (n, classes) logits against labels y, mean or sum over examples, computed
    in ``dtype`` (``training.softmax_precision``; None: the logits' own); the result is cast back
    to the logits' dtype, so the gradient flows back through the cast."""
    work = logits if dtype is None else logits.to(_DTYPES[dtype])
    if kind == "cross_entropy":  # torch's kernel: the same numbers S0's code computes
        out = F.cross_entropy(work, y, reduction=reduction)
    else:
        each = per_example_loss(work, y, kind)
        out = each.mean() if reduction == "mean" else each.sum()
    return out.to(logits.dtype)


@torch.no_grad()
def logit_gradient(logits: torch.Tensor, y: torch.Tensor, kind: str, dtype: str | None, inv_n: float) -> None:
    """In place over ``logits`` (a tile of n examples' logits): the gradient of the mean loss
    over n with respect to them, computed in ``dtype`` (None: the logits' own), by hand.
    cross_entropy: softmax - one-hot. stablemax_cross_entropy: with s(x) as in
    :func:`log_stablemax`, S = sum_j s(x_j) and s'(x) = 1 for x >= 0, s(x)**2 below,
    d/dx_j = s'(x_j) / S - [j = y] s'(x_y) / s(x_y)."""
    x = logits if dtype is None else logits.to(_DTYPES[dtype])
    rows = torch.arange(y.numel())
    if kind == "cross_entropy":
        g = torch.softmax(x, 1)
        g[rows, y] -= 1
    elif kind == "stablemax_cross_entropy":
        s = _stablemax_s(x)
        ds = torch.where(x < 0, s * s, torch.ones_like(s))
        g = ds / s.sum(1, keepdim=True)
        g[rows, y] -= ds[rows, y] / s[rows, y]
    else:
        raise ValueError(f"no hand-written gradient for loss {kind!r}")
    logits.copy_(g.mul_(inv_n))


@torch.no_grad()
def collapse_count(logits: torch.Tensor, y: torch.Tensor, kind: str, dtype: str | None = None) -> int | None:
    """Softmax collapse (Prieto et al.): how many examples' loss is exactly 0 in the loss's
    precision - the correct class's probability rounds to 1, so its logit's gradient is exactly
    0 (the other classes' gradients are then below that precision's resolution of 1). None for
    a loss without a softmax (mse)."""
    if kind not in SOFTMAX_LOSSES:
        return None
    work = logits if dtype is None else logits.to(_DTYPES[dtype])
    return int((per_example_loss(work, y, kind) == 0).sum())


def _rows(targets: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if targets.dim() == 2:
        return targets[y]
    return torch.gather(targets, 1, y.unsqueeze(-1).expand(-1, -1, targets.shape[-1]))


def stacked_loss(out: torch.Tensor, y: torch.Tensor, kind: str, targets: Optional[torch.Tensor]) -> torch.Tensor:
    """Stacked engine: one loss per cell over the last-but-one dim of ``out`` (C, n, out):
    cross-entropy, or MSE to the class targets (C, classes, out) averaged over examples and outputs."""
    if kind in SOFTMAX_LOSSES:  # flattened: no transposed copy of the stacked outputs
        return per_example_loss(out.reshape(-1, out.shape[-1]), y.reshape(-1), kind).view(y.shape).mean(-1)
    return (out - _rows(targets, y)).pow(2).mean((-1, -2))


def stacked_correct(out: torch.Tensor, y: torch.Tensor, kind: str, targets: Optional[torch.Tensor]) -> torch.Tensor:
    """Correct predictions per cell: arg-max, or (MSE) the nearest class target."""
    pred = out.argmax(-1) if kind in SOFTMAX_LOSSES else torch.cdist(out, targets).argmin(-1)
    return (pred == y).sum(-1)
