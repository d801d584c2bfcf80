#!/usr/bin/env python
"""A timed S3 Figure 1 run (benchmarks, issue 19) against the committed record of that grid:
the cell-steps it trained, and per cell whether its phase and first steps at 90 % equal the
record's (``docs/reproductions/s3_toy_classification_data42_model102.csv``): all of them on the
CPU kind the record was made on, the agreement reported on another (docs/reproducibility.md). Reads the cells'
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
from grokmap.jobs.tools import cpu_kinds_verdict  # noqa: E402
from grokmap.machine import cpu_kind  # noqa: E402

STUDY = Path(__file__).resolve().parents[1] / "studies" / "s3_toy_classification.yaml"


def main(argv=None) -> int:
    results, record = (Path(a) for a in (argv or sys.argv[1:]))
    with open(record, newline="") as f:
        old = {(float(r["learning_rate"]), float(r["weight_decay"])): r for r in csv.DictReader(f)}
    ph = yaml.safe_load(STUDY.read_text())["phases"]
    n = steps = same_phase = same_steps = 0
    kinds_then = {r.get("cpu_kind") or None for r in old.values()}  # tables before CPU kinds: None
    kinds_now = set()
    for f in sorted((results / "cells").rglob("metrics.json")):
        rec = json.loads(f.read_text())
        lr, wd = rec["cell"]["training.learning_rate"], rec["cell"]["weight_decay"]
        c = classify_record(rec, ph["accuracy_threshold"], ph["grokking_gap_epochs"], ph["require_final_accuracy"])
        o = old[(float(lr), float(wd))]
        want = tuple(int(o[k]) if o[k] else None for k in ("first_train_step", "first_test_step"))
        n, steps = n + 1, steps + rec["steps_run"]
        kinds_now.add(cpu_kind(rec))
        same_phase += c["phase"] == o["phase"]
        same_steps += (c["first_train_step"], c["first_test_step"]) == want
    same_kind, words = cpu_kinds_verdict(kinds_then, kinds_now)
    print(f"cells {n}; cell-steps {steps:,}; {words}")
    if same_kind:  # the same kernels: every phase and first step must be the record's
        print(f"same CPU kind: same phase as the record {same_phase}/{n}; "
              f"same first train and test steps {same_steps}/{n}")
        return 0 if n and same_phase == same_steps == n else 1
    # another CPU kind rounds differently: the agreement is the result, not a failure
    print(f"other CPU kind: phase agreement {same_phase} of {n}; same first train and test steps {same_steps} of {n}")
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
