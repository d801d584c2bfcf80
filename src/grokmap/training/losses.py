"""The training losses (``training.loss``), as each engine computes them.

Two conventions of ``mse`` exist on purpose, each its seed's: S4 (generic engine) sums the
squared distance to the one-hot target over the outputs and averages over examples; S3
(stacked engine) averages over examples *and* outputs (nn.MSELoss), to its class targets.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["loss", "stacked_loss", "stacked_correct"]


def loss(logits: torch.Tensor, y: torch.Tensor, kind: str, reduction: str = "mean") -> torch.Tensor:
    """Generic engine: (n, classes) logits against labels y, mean or sum over examples."""
    if kind == "cross_entropy":
        return F.cross_entropy(logits, y, reduction=reduction)
    if kind == "mse":  # squared distance to the one-hot target, summed over outputs
        sq = (logits - F.one_hot(y, logits.shape[1]).to(logits.dtype)).pow(2).sum(1)
        return sq.mean() if reduction == "mean" else sq.sum()
    raise ValueError(f"unknown loss {kind!r}; allowed: 'cross_entropy', 'mse'")


def _rows(targets: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if targets.dim() == 2:
        return targets[y]
    return torch.gather(targets, 1, y.unsqueeze(-1).expand(-1, -1, targets.shape[-1]))


def stacked_loss(out: torch.Tensor, y: torch.Tensor, kind: str, targets: Optional[torch.Tensor]) -> torch.Tensor:
    """Stacked engine: one loss per cell over the last-but-one dim of ``out`` (C, n, out):
    cross-entropy, or MSE to the class targets (C, classes, out) averaged over examples and outputs."""
    if kind == "cross_entropy":  # flattened: no transposed copy of the stacked outputs
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none").view(y.shape).mean(-1)
    return (out - _rows(targets, y)).pow(2).mean((-1, -2))


def stacked_correct(out: torch.Tensor, y: torch.Tensor, kind: str, targets: Optional[torch.Tensor]) -> torch.Tensor:
    """Correct predictions per cell: arg-max, or (MSE) the nearest class target."""
    pred = out.argmax(-1) if kind == "cross_entropy" else torch.cdist(out, targets).argmin(-1)
    return (pred == y).sum(-1)
