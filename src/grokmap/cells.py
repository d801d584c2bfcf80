"""One cell's result record (``metrics.json``): build it, check it.

The record holds the resolved cell settings, the curves, first epochs at the early-stop
accuracy, final values, epochs run, timings and package versions. Phase thresholds are
not applied here: classification happens at aggregation, from the curves.
"""
from __future__ import annotations

import math
import time
from typing import Any

from .grid import Cell
from .io import package_versions
from .phases import first_epoch_at
from .train import train_cell

__all__ = ["FORMAT", "CELL_SETTINGS_KEYS", "cell_settings", "run_cell", "check_record", "CellRecordError"]

FORMAT = "grokmap.cell/1"
# The params.yaml sections a cell reads (besides its own sweep values).
CELL_SETTINGS_KEYS = ("task", "model", "training")


class CellRecordError(ValueError):
    """A file at a cell's path that is not that cell's finished, consistent record."""


def cell_settings(params: dict) -> dict:
    """The part of params.yaml that every cell reads."""
    return {k: params[k] for k in CELL_SETTINGS_KEYS}


def run_cell(settings: dict, cell: Cell, progress=None) -> dict:
    """Train the cell and build its record."""
    started = time.perf_counter()
    result = train_cell(settings, cell, progress)
    curves = result.pop("curves")
    threshold = settings["training"]["early_stop_accuracy"]
    record: dict[str, Any] = {
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
    record["wall_seconds"] = time.perf_counter() - started
    return record


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and (
            a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_record(record: Any, cell: Cell, settings: dict, where: str = "") -> None:
    """Raise CellRecordError unless ``record`` is a complete record of ``cell`` under ``settings``."""
    where = where or cell.relpath
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CellRecordError(f"{where}: not a grokmap cell record (format must be {FORMAT!r})")
    if not _same(record.get("cell"), cell.as_dict()):
        raise CellRecordError(f"{where}: holds cell {record.get('cell')}, expected {cell.as_dict()}")
    if not _same(record.get("settings"), settings):
        raise CellRecordError(f"{where}: was trained with other settings than params.yaml's "
                              f"{', '.join(CELL_SETTINGS_KEYS)}; rerun the workflow")
    curves = record.get("curves")
    keys = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")
    if not isinstance(curves, dict) or any(not isinstance(curves.get(k), list) for k in keys):
        raise CellRecordError(f"{where}: curves missing or malformed")
    lengths = {len(curves[k]) for k in keys}
    if len(lengths) != 1 or 0 in lengths:
        raise CellRecordError(f"{where}: curves are empty or of unequal length")
    if curves["epoch"] != sorted(set(curves["epoch"])) or curves["epoch"][-1] != record.get("epochs_run"):
        raise CellRecordError(f"{where}: curve epochs are not increasing or do not end at epochs_run")
    for k in ("train_acc", "test_acc"):
        if any(not (0.0 <= v <= 1.0) for v in curves[k]):
            raise CellRecordError(f"{where}: {k} outside [0, 1]")
