"""Every task's examples, the seeded train/test split, MSE targets and minibatch sampling.

* Modular tasks (:mod:`grokmap.training.tasks`): every operand tuple, first-operand-major
  (a = 0, then b ascending), as S0 lists them, so S0's split indices are unchanged.
* ``toy_addition`` (S3): the pairs a <= b of 0..p-1, b-major as S3's code lists them (a
  meshgrid masked by a <= b: (0,0), (0,1), (1,1), (0,2), ...), label a + b (2p - 1 classes).
* ``digits`` (S3's MNIST stand-in): scikit-learn's bundled 8x8 digits (1,797 images, read from
  the package's data file, nothing downloaded), pixels scaled to [0, 1].

The split (:func:`split_indices`) takes int(n * train_fraction) training examples with the
data seed: a ``RandomState(seed).permutation(n)`` prefix (S0's split; for digits this is the
same draw as S3's ``np.random.choice(n, n_train, replace=False)``), except for toy_addition,
which S3 splits with scikit-learn's ``train_test_split(train_size=n_train, random_state=seed)``.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path
import numpy as np
import torch

from .tasks import n_classes, task

__all__ = ["task_inputs", "toy_pairs", "load_digits", "examples", "split_indices", "split", "n_classes",
           "class_targets", "batch_sampler"]


def task_inputs(p: int, name: str = "modular_addition", operands: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """All operand tuples ``x`` (n, K) of a modular task in first-operand-major order, and labels ``y``."""
    t = task(name)
    ranges = [torch.arange(p)] * (operands - 1) + [torch.arange(1 if t.nonzero_b else 0, p)]
    x = torch.cartesian_prod(*ranges).reshape(-1, operands)
    return x, t.label(x, p)


def toy_pairs(p: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """The p(p+1)/2 pairs (a, b), a <= b, b-major (S3's order), and their sums."""
    x = torch.tensor([(a, b) for b in range(p) for a in range(b + 1)])
    return x, x.sum(1)


@functools.lru_cache(maxsize=1)
def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits as (1797, 64) pixels in [0, 1] and labels, read
    straight from the package's data file (no sklearn import, no download)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("task 'digits' needs scikit-learn (pinned in requirements.lock); "
                           "run: bash scripts/setup_env.sh")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    return torch.from_numpy(data[:, :-1] / 16.0), torch.from_numpy(data[:, -1].astype(np.int64))


def examples(name: str, p: int, operands: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Every example ``(x, y)`` of the task, in the order the split indexes."""
    if name == "toy_addition":
        return toy_pairs(p)
    if name == "digits":
        return load_digits()
    return task_inputs(p, name, operands)


def split_indices(n: int, train_fraction: float, seed: int,
                  name: str = "modular_addition") -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices into the task's n examples (module docstring)."""
    n_train = int(n * train_fraction)
    if n_train < 1 or n_train >= n:
        raise ValueError(f"train_fraction {train_fraction} leaves {n_train} of {n} examples for training")
    if name == "toy_addition":
        from sklearn.model_selection import train_test_split

        return train_test_split(np.arange(n), train_size=n_train, random_state=seed)
    perm = np.random.RandomState(seed).permutation(n)
    return perm[:n_train], perm[n_train:]


def split(name: str, p: int, train_fraction: float, seed: int, operands: int = 2):
    """Train and test ``(x, y)`` of one cell (floating inputs in torch's default dtype)."""
    x, y = examples(name, p, operands)
    tr, te = (torch.from_numpy(ix) for ix in split_indices(y.numel(), train_fraction, seed, name))
    if x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    return (x[tr], y[tr]), (x[te], y[te])


def class_targets(name: str, p: int, target_dim: int, data_seed: int) -> torch.Tensor:
    """MSE targets per class (classes, out) for S3's tasks: toy_addition's N(0, 1) vectors,
    ``torch.randn(2p - 1, target_dim)`` as the first draw of a generator seeded with the data
    seed (S3); digits' one-hot rows."""
    if name == "digits":
        return torch.eye(10)
    g = torch.Generator().manual_seed(data_seed)
    return torch.randn(n_classes(name, p), target_dim, generator=g)


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

