"""Which cells a run trains, and in which jobs (no torch): the cells whose files are not both
written under the current fingerprint, and stacks of cells for an engine that trains several
at once (:data:`grokmap.training.engines.ENGINES`)."""
from __future__ import annotations

import os
from pathlib import Path

from ..training.engines import engine_for
from ..training.grid import Cell
from ..training.spec import CellSpec
from .fingerprint import cell_files_complete

__all__ = ["stackable", "stack_groups", "plan_stacks", "cells_to_train"]


def stackable(spec: CellSpec) -> bool:
    """Whether cells like this one train stacked, several per job."""
    return engine_for(spec).stacks


def stack_groups(specs: list[CellSpec]) -> list[list[CellSpec]]:
    """Cells that can train as one stack, grouped (grid order kept): they may differ only in
    what their engine declares per cell."""
    groups: dict[tuple, list[CellSpec]] = {}
    for s in specs:
        info = engine_for(s)
        groups.setdefault((info.name, s.key_without(info.per_cell)), []).append(s)
    return list(groups.values())


def plan_stacks(specs: list[CellSpec], max_cells_per_job: int, cores: int) -> list[list[CellSpec]]:
    """The stacked jobs for the cells still to train: each of :func:`stack_groups` split into
    ceil(len / max_cells_per_job) jobs rounded up to a multiple of ``cores`` (as far as it has
    cells), dealt round-robin so that the jobs get similar work (neighbouring cells cost alike)
    and every core gets the same number of them: S3's 441 cells in 7 jobs of 63 left the seventh
    to run alone on one core, in 8 jobs of 55-56 both cores stay busy to the end."""
    if max_cells_per_job < 1 or cores < 1:
        raise ValueError(f"max_cells_per_job ({max_cells_per_job}) and cores ({cores}) must be >= 1")
    stacks = []
    for group in stack_groups(specs):
        n = -(-len(group) // max_cells_per_job)
        n = min(-(-n // cores) * cores, len(group))
        stacks.extend(group[i::n] for i in range(n))
    return stacks


def cells_to_train(results_dir: str | Path, grid: list[Cell], fp_file: str) -> list[Cell]:
    """The cells of ``grid`` whose two files are not both written under fingerprint file
    ``fp_file`` (missing, killed half-way, or trained under other settings or code). A cell
    without its fingerprint file is not read at all (a fresh sweep of 100,000 cells is planned
    without opening a file)."""
    root = os.path.join(os.fspath(results_dir), "cells")
    if not os.path.isdir(root):
        return list(grid)
    todo = []
    for c in grid:
        path = os.path.join(root, c.relpath, fp_file)
        if not os.path.exists(path) or not cell_files_complete(path):
            todo.append(c)
    return todo
