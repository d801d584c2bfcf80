"""Copy a finished sweep into a reproduction record under docs/reproductions/ (README there):
<name>.csv (per-cell phase table), <name>_phase_diagram.png and <name>_smooth_diagram.png.

    .venv/bin/python scripts/reproduction_record.py results/repro/<run> docs/reproductions/<name>
    .venv/bin/python scripts/reproduction_record.py results/repro/<run> docs/reproductions/<name> \
        --only task.data_seed=41      # the cells of one value of an axis (table only)
        --columns grokking_step,final_test_acc    # more phases.csv columns in the table
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from grokmap.aggregate import reproduction_csv  # noqa: E402
from grokmap.grid import spell  # noqa: E402
from grokmap.io import atomic_write_text  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results_dir", type=Path, help="a results directory the workflow finished (phases.json)")
    p.add_argument("out", type=Path, help="output path without extension, e.g. docs/reproductions/name")
    p.add_argument("--only", metavar="AXIS=VALUE", help="keep the cells whose AXIS is spelled VALUE; "
                   "the diagrams are then not copied (they show every cell)")
    p.add_argument("--columns", default="", help="comma-separated phases.csv columns to add to the table")
    args = p.parse_args()
    phases_path = args.results_dir / "phases.json"
    if not phases_path.is_file():
        sys.stderr.write(f"{phases_path}: missing; run the workflow for {args.results_dir} first\n")
        return 1
    phases = json.loads(phases_path.read_text())
    if args.only:
        axis, value = args.only.split("=", 1)
        phases["cells"] = [r for r in phases["cells"] if spell(r[axis]) == value]
        if not phases["cells"]:
            sys.stderr.write(f"no cell has {axis} = {value}\n")
            return 1
        phases["settings"]["sweep"][axis] = [phases["cells"][0][axis]]
    try:
        table = reproduction_csv(phases, [c for c in args.columns.split(",") if c])
    except ValueError as err:
        sys.stderr.write(f"--columns: {err}\n")
        return 2
    atomic_write_text(args.out.with_suffix(".csv"), table)
    if args.only:
        print(f"wrote {args.out}.csv ({len(phases['cells'])} cells)")
        return 0
    for fig in ("phase_diagram", "smooth_diagram"):
        shutil.copyfile(args.results_dir / "figures" / f"{fig}.png", f"{args.out}_{fig}.png")
    print(f"wrote {args.out}.csv and its two diagrams")
    return 0


if __name__ == "__main__":
    sys.exit(main())
