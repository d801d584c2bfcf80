"""Retrain a few finished cells of a results directory with the code in this checkout and
check that their records come out bit for bit the same (every curve both records have, the
accuracy log, steps) when the record was made on this CPU kind; a record of another CPU kind
(or one that names none) is compared by phase and first steps, as bit-identity holds only
within one CPU kind (docs/reproducibility.md). For reproduction records trained by an earlier commit: it shows whether
later code changes moved any number. A curve only one record has (a measure added or renamed
since) is named, not compared. The cells that stopped earliest are taken, so the check is
quick.

    .venv/bin/python scripts/retrain_check.py RESULTS_DIR --params studies/s3_toy_classification.yaml \\
        --sweep '{"seed": [102], "task": {"data_seed": [42]}}' --cells 3
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results_dir", type=Path)
    p.add_argument("--params", required=True, help="the params file the results were made with")
    p.add_argument("--sweep", default="{}", help="JSON of the --config sweep override the run used")
    p.add_argument("--cells", type=int, default=3)
    args = p.parse_args()

    import torch

    from grokmap.jobs.planning import stack_groups
    from grokmap.settings import load_settings
    from grokmap.training.grid import cells
    from grokmap.training.loop import train
    from grokmap.training.record import cell_settings
    from grokmap.training.spec import CellSpec

    torch.set_num_threads(1)
    params = load_settings(args.params, ROOT / "config.yaml", ROOT / "workflow" / "schemas",
                           overrides={"sweep": json.loads(args.sweep)}).params
    done = []
    for cell in cells(params["sweep"]):
        path = args.results_dir / "cells" / cell.relpath / "metrics.json"
        if path.exists():
            record = json.loads(path.read_text())
            done.append((record["steps_run"], cell, record))
    done.sort(key=lambda t: t[0])
    chosen = done[:args.cells]
    settings = cell_settings(params)
    results = {}  # cells are trained as the workflow trains them (stacks where the engine stacks)
    for group in stack_groups([CellSpec.of(settings, c) for _, c, _ in chosen]):
        results.update({s.cell: r for s, r in zip(group, train(group))})
    fresh = [results[c] for _, c, _ in chosen]
    from grokmap.analysis.phases import classify_record
    from grokmap.machine import cpu_kind, same_cpu_kind

    ph = params["phases"]
    here, same, agree, other = cpu_kind(), 0, 0, 0
    for (steps, cell, old), new in zip(chosen, fresh):
        shared = sorted(set(old["curves"]) & set(new["curves"]))
        ok = all(old["curves"][k] == new["curves"][k] for k in shared) and all(
            old.get(k) == new.get(k) for k in ("accuracy_log", "steps_run", "stopped_early"))
        only = sorted(set(old["curves"]) ^ set(new["curves"]))
        note = f" (compared {len(shared)} curves; in one record only: {', '.join(only)})" if only else ""
        if same_cpu_kind(cpu_kind(old), here):
            same += ok
            print(f"{cell.relpath}: {steps} steps, same CPU kind: {'identical' if ok else 'DIFFERENT'}{note}")
            continue
        # another CPU kind (or a record that names none): the kernels round differently, so only
        # the phase and its first steps are compared (docs/reproducibility.md)
        a, b = (classify_record(r, ph["accuracy_threshold"], ph["grokking_gap_epochs"], ph["require_final_accuracy"])
                for r in (old, new))
        other, agree = other + 1, agree + (a["phase"] == b["phase"])
        print(f"{cell.relpath}: {steps} steps, other CPU kind ({cpu_kind(old) or 'not recorded'}): phase "
              f"{a['phase']} -> {b['phase']}, first steps {a['first_train_step']}/{a['first_test_step']} -> "
              f"{b['first_train_step']}/{b['first_test_step']}{'; also identical to the bit' if ok else ''}")
    if other:
        print(f"other CPU kind: phase agreement {agree} of {other}")
    if len(chosen) - other:
        print(f"same CPU kind: bit for bit, {same} of {len(chosen) - other} cells identical")
    return 0 if same == len(chosen) - other else 1


if __name__ == "__main__":
    sys.exit(main())
