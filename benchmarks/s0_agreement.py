#!/usr/bin/env python
"""Cell by cell: the phases S0's own code gave (its ``sweep_results.json``, run outside the
project by benchmarks/side_by_side.sh) against a finished results directory of this workflow
(its ``phases.csv``), matched on weight decay, train fraction, width and seed.

    .venv/bin/python benchmarks/s0_agreement.py S0_OUT/sweep_results.json results/side_float32 [--out t.csv]

Prints "N of M cells in the same phase" and the cells that differ; exits 1 if a cell of one
run is missing from the other.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def _key(wd, frac, width, seed) -> tuple:
    return round(float(wd), 12), round(float(frac), 12), int(width), int(seed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("s0_json", type=Path)
    ap.add_argument("results_dir", type=Path)
    ap.add_argument("--out", type=Path, help="write the per-cell table here (CSV)")
    args = ap.parse_args(argv)
    s0 = {_key(r["config"]["weight_decay"], r["config"]["train_fraction"], r["config"]["hidden_dim"],
               r["config"]["seed"]): r for r in json.loads(args.s0_json.read_text())}
    with open(args.results_dir / "phases.csv", newline="") as f:
        here = {_key(r["weight_decay"], r["train_fraction"], r["width"], r["seed"]): r for r in csv.DictReader(f)}
    if set(s0) != set(here):
        print(f"the two runs hold different cells: only S0's {sorted(set(s0) - set(here))}, "
              f"only here {sorted(set(here) - set(s0))}", file=sys.stderr)
        return 1
    rows = []
    for k in sorted(here):
        m = s0[k]["metrics"]
        rows.append({"weight_decay": k[0], "train_fraction": k[1], "width": k[2], "seed": k[3],
                     "phase_here": here[k]["phase"], "phase_s0_code": s0[k]["phase"],
                     "final_train_acc_here": f"{float(here[k]['final_train_acc']):.4f}",
                     "final_test_acc_here": f"{float(here[k]['final_test_acc']):.4f}",
                     "final_train_acc_s0_code": f"{m['final_train_acc']:.4f}",
                     "final_test_acc_s0_code": f"{m['final_test_acc']:.4f}"})
    same = [r for r in rows if r["phase_here"] == r["phase_s0_code"]]
    print(f"{len(same)} of {len(rows)} cells in the same phase")
    for r in rows:
        if r not in same:
            print(f"  wd {r['weight_decay']}, fraction {r['train_fraction']}, width {r['width']}: "
                  f"{r['phase_here']} here, {r['phase_s0_code']} in S0's code")
    counts = {who: {p: sum(r[f"phase_{who}"] == p for r in rows)
                    for p in ("confusion", "memorization", "grokking", "comprehension")} for who in ("here", "s0_code")}
    print("counts (confusion / memorization / grokking / comprehension): here "
          + " / ".join(map(str, counts["here"].values())) + ", S0's code " + " / ".join(map(str, counts["s0_code"].values())))
    if args.out:
        with open(args.out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
