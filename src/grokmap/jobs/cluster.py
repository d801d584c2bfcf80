"""What a cell job asks a batch system for (the ``train_cell`` rule's ``resources``).

Not part of the training fingerprint: changing an estimate changes no result.
"""
from __future__ import annotations

import math

from ..training.grid import Cell, resolve_settings
from ..training.schedule import step_schedule
from ..training.tasks import task_size

__all__ = ["CELL_MEM_MB", "cell_runtime_minutes", "stack_runtime_minutes", "multiply_adds_per_example"]

# One cell: data, parameters and the row-tile buffers are a few MB; a job process with
# torch loaded peaks at ~260 MB (benchmarks/run.py reports it). 1 GB leaves room.
CELL_MEM_MB = 1000

# Deliberately slow: a busy or old cluster core, the full budget (no early stop), and x2.
_SAFE_GFLOPS = 5.0


def multiply_adds_per_example(model: dict, task: dict, width: int) -> int:
    """Multiply-adds of one forward pass for one example (weights only; good to a factor ~2)."""
    p, operands = task["modulus"], task["operands"]
    name, depth, k = model["name"], model["depth"], operands
    if name == "embed_concat_mlp":
        return k * model["embedding_dim"] * width + (depth - 1) * width * width + width * p
    if name == "transformer":  # per token: qkv, projection, 4x feed-forward; read-out once
        return k * depth * 12 * width * width + width * p
    if name == "lstm":
        d = model["embedding_dim"]
        return k * 4 * width * ((d + width) + (depth - 1) * 2 * width) + width * p
    if name == "quadratic_mlp":
        return k * width + width * p  # the first layer is a gather of K columns
    if name == "s3_mlp":  # toy_addition: 1-d input, 2p-1 classes; digits: 64 pixels, 10 classes
        digits = task["name"] == "digits"
        return (64 if digits else 1) * width + width * width + width * (10 if digits else 2 * p - 1)
    raise ValueError(f"unknown model {name!r}")


def _cell_seconds(params: dict, cell: Cell) -> float:
    s = resolve_settings(params, cell)
    tk, tr = s["task"], s["training"]
    p = tk["modulus"]
    n = task_size(p, tk["name"], tk["operands"])
    n_train = int(n * cell.train_fraction)
    _, total, evals = step_schedule(tr, n_train)
    rows = n_train if tr["batch_size"] == "full" else tr["batch_size"]
    macs = multiply_adds_per_example(s["model"], tk, cell.width)
    accuracy_logs = total // tr["accuracy_every_steps"] if tr["accuracy_every_steps"] else 0
    flops = 2 * macs * (3 * rows * total + n * (len(evals) + accuracy_logs))
    return 2 * flops / (_SAFE_GFLOPS * 1e9)


def cell_runtime_minutes(params: dict, cell: Cell) -> int:
    """Wall-time limit for one cell: the training FLOPs of the full budget (forward and
    backward on every step's rows, plus the evaluations) at a slow 5 GFLOP/s, doubled, plus
    2 minutes for start-up and writing; at least 5 minutes."""
    return max(5, math.ceil((_cell_seconds(params, cell) + 120) / 60))


def stack_runtime_minutes(params: dict, cells: list) -> int:
    """Wall-time limit for a stack of cells trained together: the sum of theirs."""
    return max(5, math.ceil((sum(_cell_seconds(params, c) for c in cells) + 120) / 60))
