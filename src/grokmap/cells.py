"""One cell's result record (``metrics.json``): what a cell reads, and how it is built.

The record holds the training fingerprint (first key), the resolved cell settings, the
curves, first epochs at the early-stop accuracy, final values, epochs run, timings and
package versions. Phase thresholds are not applied here: classification happens at
aggregation, from the curves.
"""
from __future__ import annotations

import copy
import json
import resource
import time
from pathlib import Path
from typing import Any

from .curves import first_epoch_at
from .fingerprint import cell_files_complete
from .grid import SWEPT, Cell, extra_axes, resolve_settings
from .io import package_versions

__all__ = ["FORMAT", "CELL_SETTINGS_KEYS", "cell_settings", "run_cell", "run_stack", "stack_groups", "stackable",
           "plan_stacks", "cells_to_train"]

FORMAT = "grokmap.cell/1"
# The params.yaml sections a cell reads (besides its own sweep values).
CELL_SETTINGS_KEYS = ("task", "model", "training")


def cell_settings(params: dict) -> dict:
    """The part of params.yaml that every cell reads. A setting swept as an extra axis is
    replaced by a marker: each cell reads its own value from its path, so editing the
    unused entry retrains nothing."""
    out = {k: copy.deepcopy(params[k]) for k in CELL_SETTINGS_KEYS}
    for key in extra_axes(params["sweep"]):
        section, name = key.split(".", 1)
        out[section][name] = SWEPT
    return out


def run_cell(settings: dict, cell: Cell, fingerprint: str, progress=None) -> dict:
    """Train the cell and build its record."""
    from .train import train_cell  # torch: imported only by the jobs that train

    started = time.perf_counter()
    result = train_cell(settings, cell, progress)
    return _record(settings, cell, fingerprint, result, time.perf_counter() - started)


# Settings in which cells of one stack may differ (besides weight decay and seed); grokmap.toy
# checks the same when it stacks them (no torch import here: the workflow groups cells).
_PER_CELL = (("training", "learning_rate"), ("training", "encoder_learning_rate"),
             ("training", "encoder_weight_decay"), ("task", "data_seed"))


def stackable(settings: dict) -> bool:
    """Whether cells of these settings train stacked (S3's model, grokmap.toy)."""
    return settings["model"]["name"] == "s3_mlp"


def stack_groups(settings: dict, cells: list[Cell]) -> list[list[Cell]]:
    """Cells that can train as one stack, grouped (grid order kept): they may differ only in
    learning rates, weight decays and seeds."""
    groups: dict[tuple, list[Cell]] = {}
    for c in cells:
        own = resolve_settings(settings, c)
        for section, name in _PER_CELL:
            own[section][name] = None
        groups.setdefault((json.dumps(own, sort_keys=True), c.width, c.train_fraction), []).append(c)
    return list(groups.values())


def plan_stacks(settings: dict, todo: list[Cell], max_cells_per_job: int, cores: int) -> list[list[Cell]]:
    """The stacked jobs for the cells still to train: each of :func:`stack_groups` split into
    ceil(len / max_cells_per_job) jobs, and into at least ``cores`` jobs when it has that many
    cells, dealt round-robin so that the jobs get similar work (neighbouring cells cost alike)."""
    if max_cells_per_job < 1 or cores < 1:
        raise ValueError(f"max_cells_per_job ({max_cells_per_job}) and cores ({cores}) must be >= 1")
    stacks = []
    for group in stack_groups(settings, todo):
        n = max(-(-len(group) // max_cells_per_job), min(cores, len(group)))
        stacks.extend(group[i::n] for i in range(n))
    return stacks


def cells_to_train(results_dir: str | Path, grid: list[Cell], fp_file: str) -> list[Cell]:
    """The cells of ``grid`` whose two files are not both written under fingerprint file
    ``fp_file`` (missing, killed half-way, or trained under other settings or code)."""
    return [c for c in grid if not cell_files_complete(Path(results_dir) / "cells" / c.relpath / fp_file)]


def run_stack(settings: dict, cells: list[Cell], fingerprint: str, progress=None, on_record=None) -> list[dict]:
    """Train ``cells`` (one of :func:`stack_groups`) as one stacked computation; one record
    each. ``on_record(cell, record)`` gets each record as soon as its cell finishes."""
    from .toy import config_from_settings, train_stacked

    records: list = [None] * len(cells)

    def done(i: int, result: dict) -> None:
        records[i] = _record(settings, cells[i], fingerprint, result, result["train_seconds"])
        if on_record:
            on_record(cells[i], records[i])

    train_stacked([config_from_settings(settings, c) for c in cells], progress, done)
    return records


def _record(settings: dict, cell: Cell, fingerprint: str, result: dict, seconds: float) -> dict:
    result = dict(result)
    curves = result.pop("curves")
    threshold = resolve_settings(settings, cell)["training"]["early_stop_accuracy"]
    record: dict[str, Any] = {
        "fingerprint": fingerprint,
        "format": FORMAT,
        "cell": cell.as_dict(),
        "settings": settings,
        "curves": curves,
        "first_epoch_at_early_stop_accuracy": {
            "train": first_epoch_at(curves["epoch"], curves["train_acc"], threshold),
            "test": first_epoch_at(curves["epoch"], curves["test_acc"], threshold),
        },
        "final": {k: curves[k][-1] for k in ("train_acc", "test_acc", "train_loss", "test_loss")},
        **result,
        "versions": package_versions(),
    }
    record["wall_seconds"] = seconds
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return record
