"""Retrain a few finished cells of a results directory with the code in this checkout and
check that their records come out bit for bit the same (every curve both records have, the
accuracy log, steps). For reproduction records trained by an earlier commit: it shows whether
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
    same = 0
    for (steps, cell, old), new in zip(chosen, fresh):
        shared = sorted(set(old["curves"]) & set(new["curves"]))
        ok = all(old["curves"][k] == new["curves"][k] for k in shared) and all(
            old.get(k) == new.get(k) for k in ("accuracy_log", "steps_run", "stopped_early"))
        same += ok
        only = sorted(set(old["curves"]) ^ set(new["curves"]))
        note = f" (compared {len(shared)} curves; in one record only: {', '.join(only)})" if only else ""
        print(f"{cell.relpath}: {steps} steps, {'identical' if ok else 'DIFFERENT'}{note}")
    print(f"{same} of {len(chosen)} cells identical")
    return 0 if same == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
