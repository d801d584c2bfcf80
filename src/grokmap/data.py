"""Modular-arithmetic data: every operand tuple of a task (:mod:`grokmap.tasks`), and S0's
seeded train/test split. Tuples are listed first-operand-major (a = 0, then b ascending), as
in S0, so S0's split indices are unchanged."""
from __future__ import annotations

import numpy as np
import torch

from .tasks import task

__all__ = ["task_inputs", "split_indices", "make_split"]


def task_inputs(p: int, name: str = "modular_addition", operands: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """All operand tuples ``x`` (n, K) of the task in first-operand-major order, and labels ``y``."""
    t = task(name)
    ranges = [torch.arange(p)] * (operands - 1) + [torch.arange(1 if t.nonzero_b else 0, p)]
    x = torch.cartesian_prod(*ranges).reshape(-1, operands)
    return x, t.label(x, p)


def split_indices(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """S0's split: RandomState(seed).permutation(n); the first int(n * frac) are train."""
    perm = np.random.RandomState(seed).permutation(n)
    n_train = int(n * train_fraction)
    if n_train < 1 or n_train >= n:
        raise ValueError(f"train_fraction {train_fraction} leaves {n_train} of {n} examples for training")
    return perm[:n_train], perm[n_train:]


def make_split(p: int, train_fraction: float, seed: int, name: str = "modular_addition",
               operands: int = 2):
    """Train and test ``(x, y)`` for one cell."""
    x, y = task_inputs(p, name, operands)
    tr, te = (torch.from_numpy(ix) for ix in split_indices(y.numel(), train_fraction, seed))
    return (x[tr], y[tr]), (x[te], y[te])
