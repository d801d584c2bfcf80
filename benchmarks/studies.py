#!/usr/bin/env python
"""Time per optimizer step of every named study, and what its full budget would cost here
(a benchmark, not a test): prints a markdown table.

    .venv/bin/python benchmarks/studies.py                 # every studies/*.yaml (~2-4 minutes)
    .venv/bin/python benchmarks/studies.py s2_fraction_scan

For each study and each distinct (extra axes, width) it trains the cell with the largest
train fraction twice, for a few and for more steps with one evaluation at the end, and takes
the difference: seconds per step without evaluation. A full evaluation pass (train and
test sets) is timed the same way. The full-budget estimate assumes no early stop, one core
per cell, and ``snakemake --cores 2`` running two cells at once.
"""
from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from grokmap.training.grid import cells, resolve_settings  # noqa: E402
from grokmap.training.schedule import step_schedule  # noqa: E402
from grokmap.settings import load_settings  # noqa: E402
from grokmap.training.tasks import task_size  # noqa: E402
from grokmap.training.loop import train_cell  # noqa: E402


def _run_seconds(params: dict, cell, steps: int) -> float:
    """Wall time of ``steps`` optimizer steps and one evaluation (at the last step)."""
    q = copy.deepcopy(params)
    q["training"].update(max_steps=steps, early_stop_evals=10 ** 6)
    q["training"]["eval_every_epochs"] = q["training"]["max_epochs"]
    start = time.perf_counter()
    train_cell(q, cell)
    return time.perf_counter() - start


def study_rows(name: str) -> list[list[str]]:
    params = load_settings(ROOT / "studies" / f"{name}.yaml", ROOT / "config.yaml",
                           ROOT / "workflow" / "schemas").params
    grid = cells(params["sweep"])
    worst = {}
    for c in grid:
        key = (c.extra, c.width)
        if key not in worst or c.train_fraction > worst[key].train_fraction:
            worst[key] = c
    total_seconds, rows = 0.0, []
    per_step = {}
    for key, cell in worst.items():
        few, many = 5, 25
        _run_seconds(params, cell, few)  # warm-up (allocator, first-use imports)
        a, b = _run_seconds(params, cell, few), _run_seconds(params, cell, many)
        step_s = max(b - a, 1e-9) / (many - few)
        per_step[key] = (step_s, max(a - few * step_s, 0.0))
    for c in grid:
        s = resolve_settings(params, c)
        tk = s["task"]
        n_train = int(task_size(tk["modulus"], tk["name"], tk["operands"]) * c.train_fraction)
        _, total, evals = step_schedule(s["training"], n_train)
        step_s, eval_s = per_step[(c.extra, c.width)]
        total_seconds += total * step_s + len(evals) * eval_s
    for (extra, width), (step_s, eval_s) in per_step.items():
        label = " ".join(f"{k}={v}" for k, v in extra) or "-"
        rows.append([name, label, str(width), f"{step_s * 1e3:.2f}", f"{eval_s:.2f}"])
    rows[-1].append(f"{len(grid)} cells, {total_seconds / 3600 / 2:.1f} h on 2 cores")
    for r in rows[:-1]:
        r.append("")
    return rows


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    names = argv or sorted(p.stem for p in (ROOT / "studies").glob("*.yaml"))
    print("| study | extra axes | width | ms / step | s / evaluation | full budget (no early stop) |")
    print("|---|---|---|---|---|---|")
    for name in names:
        for row in study_rows(name):
            print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
