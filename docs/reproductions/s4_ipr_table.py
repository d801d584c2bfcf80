# S4's IPR regimes per cell, from a finished results directory's records (docs/reproductions/README.md, S4):
#   .venv/bin/python docs/reproductions/s4_ipr_table.py results/repro/s4_adamw_seeds12 docs/reproductions/s4_adamw_ipr_seeds12.csv
# One row per cell: the first step with test accuracy >= 0.99 (grokking) and == 1, the IPR at the
# first evaluation, at those two steps, at steps 2,000 and 5,000 (or the last), and the first step
# from which the IPR stays within 1 % of its last value.
import csv
import json
import sys
from pathlib import Path

rows = []
for path in sorted(Path(sys.argv[1], "cells").rglob("metrics.json")):
    rec = json.loads(path.read_text())
    c, cell = rec["curves"], rec["cell"]
    steps = c.get("step") or c["epoch"]
    ipr, test = c["ipr"], c["test_acc"]

    def first(pred):
        return next((i for i, v in enumerate(test) if pred(v)), None)

    def at_step(s):
        i = max((k for k, t in enumerate(steps) if t <= s), default=None)
        return None if i is None else round(ipr[i], 3)

    grok, full = first(lambda v: v >= 0.99), first(lambda v: v >= 1.0)
    last = ipr[-1]
    settle = next(steps[i] for i in range(len(ipr)) if all(abs(v - last) <= 0.01 * last for v in ipr[i:]))
    rows.append({"weight_decay": cell["weight_decay"], "train_fraction": cell["train_fraction"], "seed": cell["seed"],
                 "grokking_step": None if grok is None else steps[grok],
                 "full_test_step": None if full is None else steps[full],
                 "ipr_start": round(ipr[0], 3), "ipr_at_grokking": None if grok is None else round(ipr[grok], 3),
                 "ipr_at_full_test": None if full is None else round(ipr[full], 3),
                 "ipr_step_2000": at_step(2000), "ipr_last": round(last, 3), "last_step": steps[-1],
                 "within_1pct_of_last_from": settle})
with open(sys.argv[2], "w", newline="") as fh:
    w = csv.DictWriter(fh, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
for r in rows:
    print(r)
