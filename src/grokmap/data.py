"""Modular-arithmetic data: every ordered pair, and S0's seeded train/test split."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["modular_pairs", "split_indices", "make_split"]


def modular_pairs(p: int, task: str = "modular_addition") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All p*p pairs in a-major order: a = i // p, b = i % p; labels (a + b) mod p."""
    if task != "modular_addition":
        raise ValueError(f"unknown task {task!r}; allowed: 'modular_addition'")
    idx = torch.arange(p * p)
    a, b = idx // p, idx % p
    return a, b, (a + b) % p


def split_indices(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """S0's split: RandomState(seed).permutation(n); the first int(n * frac) are train."""
    perm = np.random.RandomState(seed).permutation(n)
    n_train = int(n * train_fraction)
    if n_train < 1 or n_train >= n:
        raise ValueError(f"train_fraction {train_fraction} leaves {n_train} of {n} examples for training")
    return perm[:n_train], perm[n_train:]


def make_split(p: int, train_fraction: float, seed: int, task: str = "modular_addition"):
    """Train and test tensors ``(a, b, y)`` for one cell."""
    a, b, y = modular_pairs(p, task)
    tr, te = (torch.from_numpy(ix) for ix in split_indices(p * p, train_fraction, seed))
    return (a[tr], b[tr], y[tr]), (a[te], b[te], y[te])
