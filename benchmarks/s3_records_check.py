#!/usr/bin/env python
"""A timed S3 Figure 1 run (benchmarks, issue 19) against the committed record of that grid:
the cell-steps it trained, and per cell whether its phase and first steps at 90 % equal the
record's (``docs/reproductions/s3_toy_classification_data42_model102.csv``). Reads the cells'
metrics.json directly, so it also serves a run whose aggregation refused its cells (e.g. the
training code changed while it ran, which changes the cells' fingerprints).

    .venv/bin/python benchmarks/s3_records_check.py results/repro/s3_fig1_timing \\
        docs/reproductions/s3_toy_classification_data42_model102.csv
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import yaml  # noqa: E402

from grokmap.analysis.phases import classify_record  # noqa: E402

STUDY = Path(__file__).resolve().parents[1] / "studies" / "s3_toy_classification.yaml"


def main(argv=None) -> int:
    results, record = (Path(a) for a in (argv or sys.argv[1:]))
    with open(record, newline="") as f:
        old = {(float(r["learning_rate"]), float(r["weight_decay"])): r for r in csv.DictReader(f)}
    ph = yaml.safe_load(STUDY.read_text())["phases"]
    n = steps = same_phase = same_steps = 0
    for f in sorted((results / "cells").rglob("metrics.json")):
        rec = json.loads(f.read_text())
        lr, wd = rec["cell"]["training.learning_rate"], rec["cell"]["weight_decay"]
        c = classify_record(rec, ph["accuracy_threshold"], ph["grokking_gap_epochs"], ph["require_final_accuracy"])
        o = old[(float(lr), float(wd))]
        want = tuple(int(o[k]) if o[k] else None for k in ("first_train_step", "first_test_step"))
        n, steps = n + 1, steps + rec["steps_run"]
        same_phase += c["phase"] == o["phase"]
        same_steps += (c["first_train_step"], c["first_test_step"]) == want
    print(f"cells {n}; cell-steps {steps:,}; same phase as the record {same_phase}/{n}; "
          f"same first train and test steps {same_steps}/{n}")
    return 0 if n and same_phase == n else 1


if __name__ == "__main__":
    sys.exit(main())
