"""One cell's result record (``metrics.json``): what a cell reads, and how it is built.

The record holds the training fingerprint (first key), the settings every cell shares, the
cell, the curves, first epochs at the early-stop accuracy, final values, epochs run, timings
and package versions. Phase thresholds are not applied here: classification happens at
aggregation, from the curves.
"""
from __future__ import annotations

import copy
import resource
import time
from typing import Any, Callable, Optional, Sequence

from ..io import package_versions
from ..machine import cpu_facts
from .curves import first_epoch_at
from .grid import SWEPT, extra_axes
from .spec import CellSpec

__all__ = ["FORMAT", "CELL_SETTINGS_KEYS", "cell_settings", "build_record", "train_records"]

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


def build_record(spec: CellSpec, fingerprint: str, result: dict, seconds: float) -> dict:
    """The record of a trained cell from the loop's result (:func:`grokmap.training.loop.train`)."""
    result = dict(result)
    curves = result.pop("curves")
    threshold = spec.training.early_stop_accuracy
    record: dict[str, Any] = {
        "fingerprint": fingerprint,
        "format": FORMAT,
        "cell": spec.cell.as_dict(),
        "settings": spec.shared,
        "curves": curves,
        "first_epoch_at_early_stop_accuracy": {
            "train": first_epoch_at(curves["epoch"], curves["train_acc"], threshold),
            "test": first_epoch_at(curves["epoch"], curves["test_acc"], threshold),
        },
        "final": {k: curves[k][-1] for k in ("train_acc", "test_acc", "train_loss", "test_loss")},
        **result,
        "versions": package_versions(),
        "machine": cpu_facts(),  # the CPU kind: bit-identity holds only within one (grokmap.machine)
    }
    record["wall_seconds"] = seconds
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return record


def train_records(specs: Sequence[CellSpec], fingerprint: str, progress=None,
                  on_record: Optional[Callable[[CellSpec, dict, Optional[dict]], None]] = None,
                  resume: Optional[dict] = None, device: str = "cpu") -> list[dict]:
    """Train ``specs`` together (one engine, :func:`grokmap.training.loop.train`); one record
    each. ``on_record(spec, record, state)`` gets each record as soon as its cell finishes, with
    the cell's final state (None where the engine stacks cells). ``resume``: continue the one
    cell of ``specs`` from an earlier run's state and curves (:func:`grokmap.training.loop.train`)."""
    from .loop import train  # torch: imported only by the jobs that train

    started = time.perf_counter()
    records: list = [None] * len(specs)
    single = len(specs) == 1

    def done(i: int, result: dict) -> None:
        # one cell: the whole job's time; a stack: the cell's share of the stack's time
        seconds = time.perf_counter() - started if single else result["train_seconds"]
        state = result.pop("state", None)
        records[i] = build_record(specs[i], fingerprint, result, seconds)
        if on_record:
            on_record(specs[i], records[i], state)

    train(specs, progress, done, resume=resume, with_state=on_record is not None, device=device)
    return records
