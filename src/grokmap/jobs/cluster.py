"""What a cell job asks a batch system for (the ``train_cell`` rule's ``resources``).

Not part of the training fingerprint: changing an estimate changes no result.
"""
from __future__ import annotations

import math

import dataclasses

from ..training.grid import Cell
from ..training.kinds import multiply_adds
from ..training.spec import CellSpec

__all__ = ["CELL_MEM_MB", "cell_runtime_minutes", "spec_runtime_minutes", "stack_runtime_minutes",
           "cell_flops"]

# One cell: data, parameters and the row-tile buffers are a few MB; a job process with
# torch loaded peaks at ~260 MB (benchmarks/run.py reports it). 1 GB leaves room.
CELL_MEM_MB = 1000

# Deliberately slow: a busy or old cluster core, the full budget (no early stop), and x2.
_SAFE_GFLOPS = 5.0


def cell_flops(spec: CellSpec, steps: int | None = None, evaluations: int | None = None) -> float:
    """Floating-point operations of a cell's matrix products (weights only, good to a factor ~2):
    forward and backward on every step's rows, plus a forward pass over all examples at each
    evaluation (and accuracy log). ``steps``/``evaluations``: those it ran; default its full budget."""
    tr = spec.training
    n, n_train = spec.n_examples, spec.n_train
    total = spec.total_steps if steps is None else steps
    evals = len(spec.eval_steps) if evaluations is None else evaluations
    rows = n_train if tr.full_batch else tr.batch_size
    macs = multiply_adds(dataclasses.asdict(spec.model), dataclasses.asdict(spec.task), spec.cell.width)
    accuracy_logs = total // tr.accuracy_every_steps if tr.accuracy_every_steps else 0
    return 2 * macs * (3 * rows * total + n * (evals + accuracy_logs))


def _cell_seconds(spec: CellSpec) -> float:
    return 2 * cell_flops(spec) / (_SAFE_GFLOPS * 1e9)


def spec_runtime_minutes(spec: CellSpec) -> int:
    """Wall-time limit for one cell: the training FLOPs of the full budget (forward and
    backward on every step's rows, plus the evaluations) at a slow 5 GFLOP/s, doubled, plus
    2 minutes for start-up and writing; at least 5 minutes."""
    return max(5, math.ceil((_cell_seconds(spec) + 120) / 60))


def cell_runtime_minutes(params: dict, cell: Cell) -> int:
    """:func:`spec_runtime_minutes` of a cell under params.yaml's settings."""
    return spec_runtime_minutes(CellSpec.of(params, cell))


def stack_runtime_minutes(params_or_specs, cells: list | None = None) -> int:
    """Wall-time limit for a stack of cells trained together (specifications, or params.yaml's
    settings and cells): the sum of theirs."""
    specs = params_or_specs if cells is None else [CellSpec.of(params_or_specs, c) for c in cells]
    return max(5, math.ceil((sum(_cell_seconds(s) for s in specs) + 120) / 60))
