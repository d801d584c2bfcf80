"""Modular-arithmetic data: every ordered pair of operands of a task (:mod:`grokmap.tasks`),
and S0's seeded train/test split. Pairs are listed a-major (a = 0, then b ascending), as in
S0, so S0's split indices are unchanged."""
from __future__ import annotations

import numpy as np
import torch

from .tasks import task

__all__ = ["modular_pairs", "split_indices", "make_split"]


def modular_pairs(p: int, name: str = "modular_addition") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All pairs of the task in a-major order, with their labels."""
    t = task(name)
    bs = torch.arange(1 if t.nonzero_b else 0, p)
    a = torch.arange(p).repeat_interleave(bs.numel())
    b = bs.repeat(p)
    return a, b, t.label(a, b, p)


def split_indices(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """S0's split: RandomState(seed).permutation(n); the first int(n * frac) are train."""
    perm = np.random.RandomState(seed).permutation(n)
    n_train = int(n * train_fraction)
    if n_train < 1 or n_train >= n:
        raise ValueError(f"train_fraction {train_fraction} leaves {n_train} of {n} examples for training")
    return perm[:n_train], perm[n_train:]


def make_split(p: int, train_fraction: float, seed: int, name: str = "modular_addition"):
    """Train and test tensors ``(a, b, y)`` for one cell."""
    a, b, y = modular_pairs(p, name)
    tr, te = (torch.from_numpy(ix) for ix in split_indices(a.numel(), train_fraction, seed))
    return (a[tr], b[tr], y[tr]), (a[te], b[te], y[te])
