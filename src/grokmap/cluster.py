"""What a cell job asks a batch system for (the ``train_cell`` rule's ``resources``).

Not part of the training fingerprint: changing an estimate changes no result.
"""
from __future__ import annotations

import math

from .tasks import task_size

__all__ = ["CELL_MEM_MB", "cell_runtime_minutes"]

# One cell: data, parameters and the row-tile buffers are a few MB; a job process with
# torch loaded peaks at ~260 MB (benchmarks/run.py reports it). 1 GB leaves room.
CELL_MEM_MB = 1000

# Deliberately slow: a busy or old cluster core, the full budget (no early stop), and x2.
_SAFE_GFLOPS = 5.0


def cell_runtime_minutes(settings: dict, width: int) -> int:
    """Wall-time limit for one cell: the training FLOPs of the full epoch budget at a slow
    5 GFLOP/s, doubled, plus 2 minutes for start-up and writing; at least 5 minutes."""
    p = settings["task"]["modulus"]
    n = task_size(p, settings["task"]["name"])
    flops = 6 * n * width * p * settings["training"]["max_epochs"]
    seconds = 2 * flops / (_SAFE_GFLOPS * 1e9) + 120
    return max(5, math.ceil(seconds / 60))
