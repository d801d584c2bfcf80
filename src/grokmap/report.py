"""The markdown report, the sweep metadata, and the choice of representative cells."""
from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from .aggregate import axis_effects
from .grid import AXES, Cell, spell
from .io import package_versions
from .phases import PHASES

__all__ = ["representatives", "build_metadata", "render_report"]


def representatives(phases: dict) -> dict[str, Cell]:
    """One cell per phase that occurred: the largest gap for grokking, else the first in grid order."""
    picks: dict[str, dict] = {}
    for row in phases["cells"]:
        best = picks.get(row["phase"])
        if best is None or (row["phase"] == "grokking" and row["gap_epochs"] > best["gap_epochs"]):
            picks[row["phase"]] = row
    return {ph: Cell(*(r[name] for name, _, _ in AXES)) for ph, r in picks.items()}


def _git_revision(cwd: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def build_metadata(params: dict, phases: dict, cell_seconds: list[float]) -> dict:
    return {
        "params": params,
        "n_cells": phases["n_cells"],
        "counts": phases["counts"],
        "versions": package_versions(),
        "git_revision": _git_revision(),
        "training_seconds_total": sum(cell_seconds),
        "training_seconds_max_cell": max(cell_seconds, default=0.0),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
    }


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def render_report(phases: dict, metadata: dict, figures: dict[str, str]) -> str:
    """Markdown text of results/report.md; ``figures`` maps a title to a path relative to it."""
    n = phases["n_cells"]
    s = metadata["params"]
    thr = s["phases"]
    out = ["# Grokking phase diagram", "",
           f"{n} cells: task {s['task']['name']} with p = {s['task']['modulus']}, model "
           f"{s['model']['name']}, {s['training']['optimizer']} lr {spell(s['training']['learning_rate'])}, "
           f"up to {s['training']['max_epochs']} epochs, evaluated every "
           f"{s['training']['eval_every_epochs']}. A split has reached when its accuracy is "
           f">= {spell(thr['accuracy_threshold'])}; grokking means test reached more than "
           f"{spell(thr['grokking_gap_epochs'])} epochs after train.", "",
           "## Phase distribution", "",
           _table(["phase", "cells", "share"],
                  [[ph, phases["counts"][ph], f"{phases['counts'][ph] / n:.0%}" if n else "-"]
                   for ph in PHASES])]
    if phases["non_finite_cells"]:
        bad = [r for r in phases["cells"] if r["non_finite_loss"]]
        out += ["", f"**{len(bad)} cell(s) stopped on a non-finite loss** (NaN/inf): "
                + ", ".join(f"wd={spell(r['weight_decay'])} frac={spell(r['train_fraction'])} "
                            f"width={r['width']} seed={r['seed']}" for r in bad)]
    out += ["", "## Effect of each axis", ""]
    for axis, per in axis_effects(phases).items():
        out += [f"### {axis}", "", _table([axis, *PHASES],
                                         [[spell(v), *(c[ph] for ph in PHASES)] for v, c in per.items()]), ""]
    if any(g["n_seeds"] > 1 for g in phases["groups"]):
        agree = [g["agreement"] for g in phases["groups"]]
        out += ["## Agreement across seeds", "",
                f"Mean agreement with the majority phase: {sum(agree) / len(agree):.0%}; "
                f"{sum(a == 1 for a in agree)} of {len(agree)} points agree fully.", ""]
    out += ["## Figures", ""]
    out += [f"![{title}]({path})\n" for title, path in figures.items()]
    out += ["## Per-cell results", "",
            _table(["weight decay", "train fraction", "width", "seed", "phase", "gap (epochs)",
                    "first train", "first test", "final train acc", "final test acc", "epochs run"],
                   [[spell(r["weight_decay"]), spell(r["train_fraction"]), r["width"], r["seed"],
                     r["phase"], _fmt(r["gap_epochs"]), _fmt(r["first_train_epoch"]),
                     _fmt(r["first_test_epoch"]), _fmt(r["final_train_acc"]),
                     _fmt(r["final_test_acc"]), r["epochs_run"]] for r in phases["cells"]]),
            "", "## Metadata", "",
            f"- versions: " + ", ".join(f"{k} {v}" for k, v in metadata["versions"].items()),
            f"- git revision: {metadata['git_revision'] or 'unknown'}",
            f"- training time summed over cells: {metadata['training_seconds_total']:.1f} s "
            f"(slowest cell {metadata['training_seconds_max_cell']:.1f} s)",
            f"- created: {metadata['created_utc']}", ""]
    return "\n".join(out)
