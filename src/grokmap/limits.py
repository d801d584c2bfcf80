"""Up-front limits: what a sweep and each of its cells would need, estimated before any job
runs, so a setting that cannot fit is refused with the estimate and the limit instead of
failing later (a MemoryError at the dry run, an allocation failure in a job, minutes of
silence while a huge grid is planned). No torch here; estimates are good to a factor ~2.
"""
from __future__ import annotations

import math
import os

from .jobs.cluster import multiply_adds_per_example
from .training.tasks import task_size

__all__ = ["MAX_EVALUATIONS", "MAX_STEPS", "machine_memory_mb", "sweep_cells", "cell_memory_mb",
           "cell_budget"]

MAX_EVALUATIONS = 1_000_000  # curve points per cell (each a row of ~10 numbers in metrics.json)
MAX_STEPS = 10 ** 9  # optimizer steps per cell: years of training on this machine
_TORCH_MB = 300  # a job process with torch loaded (benchmarks/run.py reports ~260 MB)


def machine_memory_mb() -> int:
    """This machine's memory (MemTotal), or 0 when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def sweep_cells(sweep: dict) -> int:
    """Number of cells of a sweep, without listing them."""
    return math.prod(len(v) for v in sweep.values())


def cell_budget(training: dict, n_train: int) -> tuple[int, int]:
    """(optimizer steps, evaluations) of one cell, computed without listing the schedule."""
    batch = training["batch_size"]
    per_epoch = 1 if batch == "full" else math.ceil(n_train / batch)
    steps = training["max_epochs"] * per_epoch
    if training["max_steps"] is not None:
        steps = min(steps, training["max_steps"])
    evaluations = min(training["max_epochs"] // training["eval_every_epochs"] + 1,
                      steps // per_epoch // training["eval_every_epochs"] + 2)
    return steps, evaluations


def cell_memory_mb(resolved: dict, width: int, train_fraction: float) -> float:
    """Peak memory of one cell's job: torch itself, parameters with gradients and two AdamW
    moments, the activations of a full-batch (or minibatch) forward and backward pass, the
    data, and the curves and accuracy log it keeps."""
    tk, md, tr = resolved["task"], resolved["model"], resolved["training"]
    n = task_size(tk["modulus"], tk["name"], tk.get("operands", 2))
    n_train = int(n * train_fraction)
    rows = n_train if tr["batch_size"] == "full" else min(tr["batch_size"], n_train)
    macs = multiply_adds_per_example(md, tk, width)
    parameters = macs + tk["modulus"] * md.get("embedding_dim", 1) * tk.get("operands", 2)
    depth = md.get("depth", 1)
    activations = max(rows, n - n_train) * (4 * width * depth * tk.get("operands", 2) + 3 * tk["modulus"])
    steps, evaluations = cell_budget(tr, n_train)
    logs = 16 * (steps // tr["accuracy_every_steps"]) if tr.get("accuracy_every_steps") else 0
    total_bytes = 4 * (4 * parameters + 3 * activations) + 16 * n + 200 * evaluations + logs
    return _TORCH_MB + total_bytes / 2 ** 20
