"""One cell's result record (``metrics.json``): what a cell reads, and how it is built.

The record holds the training fingerprint (first key), the resolved cell settings, the
curves, first epochs at the early-stop accuracy, final values, epochs run, timings and
package versions. Phase thresholds are not applied here: classification happens at
aggregation, from the curves.
"""
from __future__ import annotations

import copy
import resource
import time
from typing import Any

from .curves import first_epoch_at
from .grid import SWEPT, Cell, extra_axes, resolve_settings
from .io import package_versions

__all__ = ["FORMAT", "CELL_SETTINGS_KEYS", "cell_settings", "run_cell"]

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
    record["wall_seconds"] = time.perf_counter() - started
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return record
