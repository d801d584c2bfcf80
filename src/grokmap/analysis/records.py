"""Checking a cell record read back from disk (aggregation side; no torch)."""
from __future__ import annotations

import math
from typing import Any

from ..training.record import CELL_SETTINGS_KEYS, FORMAT
from ..training.grid import Cell

__all__ = ["CellRecordError", "check_record"]


class CellRecordError(ValueError):
    """A file at a cell's path that is not that cell's finished, consistent record."""


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and (
            a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_record(record: Any, cell: Cell, settings: dict, fingerprint: str | None = None,
                 where: str = "") -> None:
    """Raise CellRecordError unless ``record`` is a complete record of ``cell`` under ``settings``."""
    where = where or cell.relpath
    hint = "; delete it and rerun the workflow to retrain this cell"
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CellRecordError(f"{where}: not a grokmap cell record (format must be {FORMAT!r}){hint}")
    if not _same(record.get("cell"), cell.as_dict()):
        raise CellRecordError(f"{where}: holds cell {record.get('cell')}, expected {cell.as_dict()}{hint}")
    if not _same(record.get("settings"), settings):
        raise CellRecordError(f"{where}: was trained with other settings than params.yaml's "
                              f"{', '.join(CELL_SETTINGS_KEYS)}{hint}")
    if fingerprint is not None and record.get("fingerprint") != fingerprint:
        raise CellRecordError(f"{where}: training fingerprint differs from the current "
                              f"settings and code{hint}")
    curves = record.get("curves")
    keys = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")
    if not isinstance(curves, dict) or any(not isinstance(curves.get(k), list) for k in keys):
        raise CellRecordError(f"{where}: curves missing or malformed{hint}")
    lengths = {len(curves[k]) for k in keys}
    if len(lengths) != 1 or 0 in lengths:
        raise CellRecordError(f"{where}: curves are empty or of unequal length{hint}")
    if curves["epoch"] != sorted(set(curves["epoch"])) or curves["epoch"][-1] != record.get("epochs_run"):
        raise CellRecordError(f"{where}: curve epochs are not increasing or do not end at epochs_run{hint}")
    for k in ("train_acc", "test_acc"):
        if any(not (0.0 <= v <= 1.0) for v in curves[k]):
            raise CellRecordError(f"{where}: {k} outside [0, 1]{hint}")
    final = record.get("final")
    if not isinstance(final, dict) or any(not _same(final.get(k), curves[k][-1])
                                          for k in ("train_acc", "test_acc")):
        raise CellRecordError(f"{where}: final values disagree with the curves{hint}")
