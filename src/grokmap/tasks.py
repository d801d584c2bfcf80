"""The algorithmic tasks (``params.yaml`` ``task.name``), all mod p; no torch import here, so
settings validation stays light.

* ``modular_addition``: a + b, all p*p pairs (S0);
* ``modular_subtraction``: a - b, all p*p pairs;
* ``modular_multiplication``: a * b, all p*p pairs;
* ``modular_division``: a / b = a * b^(p-2), b != 0, p*(p-1) pairs (p must be prime).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

__all__ = ["Task", "TASKS", "task", "task_size", "is_prime"]


class Task(NamedTuple):
    label: Callable  # (a, b, p) -> labels, on tensors
    nonzero_b: bool  # b = 0 is left out
    prime_modulus: bool  # p must be prime (every nonzero b needs an inverse)


def is_prime(p: int) -> bool:
    return p >= 2 and all(p % k for k in range(2, int(p ** 0.5) + 1))


def _divide(a, b, p: int):
    inverse = a.new_tensor([0] + [pow(k, p - 2, p) for k in range(1, p)])  # Fermat: p prime
    return (a * inverse[b]) % p


TASKS = {
    "modular_addition": Task(lambda a, b, p: (a + b) % p, False, False),
    "modular_subtraction": Task(lambda a, b, p: (a - b) % p, False, False),
    "modular_multiplication": Task(lambda a, b, p: (a * b) % p, False, False),
    "modular_division": Task(_divide, True, True),
}


def task(name: str) -> Task:
    """The named task; a clear error for an unknown name."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(map(repr, TASKS))}")
    return TASKS[name]


def task_size(p: int, name: str = "modular_addition") -> int:
    """Number of (a, b) examples of the task."""
    return p * (p - 1) if task(name).nonzero_b else p * p
