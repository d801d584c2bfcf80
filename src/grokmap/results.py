"""A finished sweep as data: one row per cell, curves in long form, and two sweeps compared.

    import grokmap
    cells = grokmap.load_results("results")            # one row per cell (pandas.DataFrame)
    cells.groupby(["weight_decay", "phase"]).size()
    curves = grokmap.load_curves("results", phase="grokking")
    curves[curves.metric == "test_acc"].plot(x="step", y="value")

Everything is read from what the workflow wrote (``phases.json`` and the cells' records), never
recomputed: the rows are the published numbers, which the validator has re-derived.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["load_results", "load_curves", "phase_changes"]

# the cell's own columns first, in this order; every other phases.json field follows
_FIRST = ("weight_decay", "train_fraction", "width", "seed", "round", "phase", "undecided", "budget_gain",
          "gap_epochs", "first_train_step", "first_test_step", "grokking_step", "final_train_acc", "final_test_acc",
          "epochs_run", "steps_run")


def _phases(results_dir: str | Path) -> dict:
    path = Path(results_dir) / "phases.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run the workflow for {results_dir} first")
    return json.loads(path.read_text())


def _axes(phases: dict) -> list[str]:
    from .training.grid import extra_axes

    return extra_axes(phases["settings"]["sweep"])


def load_results(results_dir: str | Path):
    """One row per cell of a finished sweep (``pandas.DataFrame``): every swept setting (extra
    axes by their dotted names), the seed, the refinement round, the phase, whether the budget
    decided it, the first-threshold steps, the grokking step and the final values."""
    import pandas as pd

    phases = _phases(results_dir)
    extras = _axes(phases)
    rows = [{**{k: r.get(k) for k in extras}, **{k: r.get(k, 0 if k == "round" else None) for k in _FIRST},
             **{k: v for k, v in r.items() if k not in _FIRST and k not in extras}} for r in phases["cells"]]
    return pd.DataFrame(rows, columns=extras + list(_FIRST) + [k for k in (rows[0] if rows else {})
                                                              if k not in _FIRST and k not in extras])


def load_curves(results_dir: str | Path, **where: Any):
    """The evaluated curves of the cells (``where``: column = value filters on
    :func:`load_results`' columns, e.g. ``phase="grokking", width=32``), in long form: the
    cell's columns, then step, epoch, metric and value."""
    import pandas as pd

    from .analysis.aggregate import cell_path
    from .training.grid import cell_from_wildcards

    phases = _phases(results_dir)
    extras = _axes(phases)
    cells = load_results(results_dir)
    for key, value in where.items():
        if key not in cells.columns:
            raise KeyError(f"{key!r} is not a column of load_results: {', '.join(cells.columns)}")
        cells = cells[cells[key] == value]
    frames = []
    for _, row in cells.iterrows():
        from .training.grid import AXES, axis_name, spell

        wild = {**{axis_name(k): spell(row[k]) for k in extras},
                **{short: spell(row[name]) for name, short, _ in AXES}}
        multiple = int(row["budget_multiple"]) if "budget_multiple" in row and row["budget_multiple"] == row["budget_multiple"] else 1
        record = json.loads(cell_path(results_dir, cell_from_wildcards(wild), int(row["round"] or 0),
                                      multiple).read_text())  # a continued cell: its longest record
        c = record["curves"]
        steps = c.get("step") or c["epoch"]
        for metric, values in c.items():
            if metric in ("step", "epoch") or not isinstance(values, list):
                continue
            frames.append(pd.DataFrame({**{k: row[k] for k in extras + ["weight_decay", "train_fraction", "width",
                                                                        "seed", "phase"]},
                                        "step": steps, "epoch": c["epoch"], "metric": metric, "value": values}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def phase_changes(a: str | Path, b: str | Path) -> tuple[list[dict], dict]:
    """The cells whose phase differs between two sweeps (matched by every swept setting and the
    seed), and the transition counts {(phase in a, phase in b): cells} over the cells both hold."""
    ra, rb = load_results(a), load_results(b)
    keys = [k for k in ra.columns if k in rb.columns and k in (_axes(_phases(a)) + ["weight_decay", "train_fraction",
                                                                                     "width", "seed"])]
    merged = ra.merge(rb, on=keys, suffixes=("_a", "_b"))
    transitions: dict = {}
    for pa, pb in zip(merged["phase_a"], merged["phase_b"]):
        transitions[(pa, pb)] = transitions.get((pa, pb), 0) + 1
    changed = merged[merged["phase_a"] != merged["phase_b"]]
    return [{**{k: row[k] for k in keys}, "phase_a": row["phase_a"], "phase_b": row["phase_b"]}
            for _, row in changed.iterrows()], transitions
