"""Modular-arithmetic data: every operand tuple of a task (:mod:`grokmap.tasks`), and S0's
seeded train/test split. Tuples are listed first-operand-major (a = 0, then b ascending), as
in S0, so S0's split indices are unchanged."""
from __future__ import annotations

import numpy as np
import torch

from .tasks import task

__all__ = ["task_inputs", "split_indices", "make_split", "batch_sampler"]


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


def batch_sampler(n: int, batch_size: int, sampling: str, generator: torch.Generator):
    """A function giving the next minibatch's indices into the n training examples
    (``training.batch_sampling``): ``with_replacement`` draws batch_size uniformly each step;
    ``epoch_shuffle`` (S3's DataLoader(shuffle=True)) takes a fresh permutation each epoch and
    cuts it into consecutive batches, the last one shorter when batch_size does not divide n."""
    if sampling == "with_replacement":
        return lambda: torch.randint(n, (batch_size,), generator=generator)
    if sampling != "epoch_shuffle":
        raise ValueError(f"unknown batch sampling {sampling!r}")
    pending: list[torch.Tensor] = []

    def next_batch() -> torch.Tensor:
        if not pending:
            pending.extend(torch.randperm(n, generator=generator).split(batch_size))
        return pending.pop(0)

    return next_batch


def make_split(p: int, train_fraction: float, seed: int, name: str = "modular_addition",
               operands: int = 2):
    """Train and test ``(x, y)`` for one cell."""
    x, y = task_inputs(p, name, operands)
    tr, te = (torch.from_numpy(ix) for ix in split_indices(y.numel(), train_fraction, seed))
    return (x[tr], y[tr]), (x[te], y[te])
