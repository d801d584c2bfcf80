"""The algorithmic tasks (``params.yaml`` ``task.name``), all mod p; no torch import here, so
settings validation stays light.

* ``modular_addition``: a + b, all p*p pairs (S0); with ``task.operands`` K > 2, the K-ary
  sum x1 + ... + xK over all p**K tuples (S1: K=3 with p=31, K=4 with p=51);
* ``modular_subtraction``: a - b, all p*p pairs;
* ``modular_multiplication``: a * b, all p*p pairs;
* ``modular_division``: a / b = a * b^(p-2), b != 0, p*(p-1) pairs (p must be prime).

Labels are computed on an (n, K) tensor of operands.

S3's tasks, trained by the stacked engine (model ``s3_mlp``), are listed in ``S3_TASKS``:
``toy_addition`` (the pairs a <= b of 0..p-1, label a + b) and ``digits`` (scikit-learn's
bundled 8x8 digits).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

__all__ = ["Task", "TASKS", "S3_TASKS", "DIGITS_EXAMPLES", "task", "task_size", "n_classes", "is_prime"]

S3_TASKS = ("toy_addition", "digits")
DIGITS_EXAMPLES = 1797  # scikit-learn's load_digits


class Task(NamedTuple):
    label: Callable  # (x: (n, K) operands, p) -> labels, on tensors
    nonzero_b: bool  # the last operand is never 0
    prime_modulus: bool  # p must be prime (every nonzero b needs an inverse)
    k_ary: bool  # more than two operands allowed


def is_prime(p: int) -> bool:
    return p >= 2 and all(p % k for k in range(2, int(p ** 0.5) + 1))


def _divide(x, p: int):
    inverse = x.new_tensor([0] + [pow(k, p - 2, p) for k in range(1, p)])  # Fermat: p prime
    return (x[:, 0] * inverse[x[:, 1]]) % p


TASKS = {
    "modular_addition": Task(lambda x, p: x.sum(1) % p, False, False, True),
    "modular_subtraction": Task(lambda x, p: (x[:, 0] - x[:, 1]) % p, False, False, False),
    "modular_multiplication": Task(lambda x, p: (x[:, 0] * x[:, 1]) % p, False, False, False),
    "modular_division": Task(_divide, True, True, False),
}


def task(name: str) -> Task:
    """The named task; a clear error for an unknown name."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(map(repr, TASKS))}")
    return TASKS[name]


def n_classes(name: str, p: int) -> int:
    """Number of labels of the task: 2p - 1 sums for toy_addition, 10 digits, else p residues."""
    return 2 * p - 1 if name == "toy_addition" else 10 if name == "digits" else p


def task_size(p: int, name: str = "modular_addition", operands: int = 2) -> int:
    """Number of examples of the task."""
    if name == "toy_addition":
        return p * (p + 1) // 2
    if name == "digits":
        return DIGITS_EXAMPLES
    return p ** (operands - 1) * (p - 1 if task(name).nonzero_b else p)
