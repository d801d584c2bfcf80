"""Up-front limits: what a sweep and each of its cells would need, estimated before any job
runs, so a setting that cannot fit is refused with the estimate and the limit instead of
failing later (a MemoryError at the dry run, an allocation failure in a job, minutes of
silence while a huge grid is planned). No torch here; estimates are good to a factor ~2.
A model kind's cost per example is its record's (:mod:`grokmap.training.kinds`).
"""
from __future__ import annotations

import math

from ..training.kinds import multiply_adds
from ..training.schedule import budget_size
from ..training.tasks import task_size
from .documents import SettingsError

__all__ = ["MAX_EVALUATIONS", "MAX_STEPS", "machine_memory_mb", "sweep_cells", "cell_memory_mb",
           "check_limits"]

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


def cell_memory_mb(resolved: dict, width: int, train_fraction: float) -> float:
    """Peak memory of one cell's job: torch itself, parameters with gradients and two AdamW
    moments, the activations of a full-batch (or minibatch) forward and backward pass, the
    data, and the curves and accuracy log it keeps."""
    tk, md, tr = resolved["task"], resolved["model"], resolved["training"]
    n = task_size(tk["modulus"], tk["name"], tk.get("operands", 2))
    n_train = int(n * train_fraction)
    rows = n_train if tr["batch_size"] == "full" else min(tr["batch_size"], n_train)
    macs = multiply_adds(md, tk, width)
    parameters = macs + tk["modulus"] * md.get("embedding_dim", 1) * tk.get("operands", 2)
    depth = md.get("depth", 1)
    activations = max(rows, n - n_train) * (4 * width * depth * tk.get("operands", 2) + 3 * tk["modulus"])
    steps, evaluations = budget_size(tr, n_train)
    logs = 16 * (steps // tr["accuracy_every_steps"]) if tr.get("accuracy_every_steps") else 0
    total_bytes = 4 * (4 * parameters + 3 * activations) + 16 * n + 200 * evaluations + logs
    return _TORCH_MB + total_bytes / 2 ** 20


def check_limits(resolved: dict, sweep: dict, run: dict, label: str, r_label: str) -> None:
    """What one combination of the extra axes needs per cell, against the limits above."""
    tr, tk = resolved["training"], resolved["task"]
    n = task_size(tk["modulus"], tk["name"], tk["operands"])
    n_train = max(1, int(n * max(sweep["train_fraction"])))
    steps, evaluations = budget_size(tr, n_train)
    if steps > MAX_STEPS:
        raise SettingsError(f"{label}: 'training.max_epochs' = {tr['max_epochs']} gives {steps:,} optimizer steps "
                            f"per cell; allowed: at most {MAX_STEPS:,} (set training.max_steps to cap them)")
    if evaluations > MAX_EVALUATIONS:
        raise SettingsError(f"{label}: 'training.eval_every_epochs' = {tr['eval_every_epochs']} with max_epochs "
                            f"{tr['max_epochs']} gives {evaluations:,} evaluations per cell; allowed: at most "
                            f"{MAX_EVALUATIONS:,} (evaluate less often)")
    limit = run["memory_limit_mb"]
    if limit == "auto":
        limit = machine_memory_mb()
        limit_text = f"this machine's {limit:,} MB (config.yaml memory_limit_mb: auto; set a number for a cluster)"
    else:
        limit_text = f"memory_limit_mb = {limit:,} MB (config.yaml)"
    width = max(sweep["width"])
    need = cell_memory_mb(resolved, width, max(sweep["train_fraction"]))
    if limit and need > limit:
        raise SettingsError(f"{label}: 'sweep.width' = {width} needs about {need:,.0f} MB per cell (model "
                            f"{resolved['model']['name']}, task {tk['name']} with p={tk['modulus']}); allowed: "
                            f"at most {limit_text}")
