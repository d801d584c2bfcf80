"""Curves of a finished sweep's cells side by side, one line per cell coloured by a swept axis.
By default S1 sections 5.1-5.2: test accuracy, parameter norm and sparsity (sub-network share)
of every cell that reached the grokking accuracy, aligned at its grokking step. With --absolute,
every cell against the step itself (S4 figure 5: accuracies and IPR through all regimes).

    .venv/bin/python scripts/measures_figure.py results/s1_noise docs/reproductions/s1_noise_measures.png \
        --hue training.embedding_noise
    .venv/bin/python scripts/measures_figure.py results/s4_adamw docs/reproductions/s4_adamw_ipr.png \
        --hue train_fraction --curves train_acc,test_acc,ipr --absolute --only weight_decay=0
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from grokmap.aggregate import cell_path  # noqa: E402
from grokmap.grid import cells, short_label, spell  # noqa: E402
from grokmap.plots import plot_measure_traces  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results_dir", type=Path, help="a results directory the workflow finished (phases.json)")
    p.add_argument("out", type=Path, help="the PNG to write")
    p.add_argument("--hue", default="train_fraction", help="the swept axis that colours the lines")
    p.add_argument("--curves", default="test_acc,param_norm,subnetwork_fraction",
                   help="comma-separated curves, one panel each")
    p.add_argument("--only", metavar="AXIS=VALUE", action="append", default=[],
                   help="keep the cells whose AXIS is spelled VALUE (repeatable)")
    p.add_argument("--absolute", action="store_true",
                   help="every cell against the step itself, not aligned at its grokking step")
    args = p.parse_args()
    phases_path = args.results_dir / "phases.json"
    if not phases_path.is_file():
        sys.stderr.write(f"{phases_path}: missing; run the workflow for {args.results_dir} first\n")
        return 1
    phases = json.loads(phases_path.read_text())
    sweep = phases["settings"]["sweep"]
    if args.hue not in sweep:
        sys.stderr.write(f"--hue {args.hue!r} is not a swept axis; allowed: {', '.join(sweep)}\n")
        return 2
    only = [tuple(o.split("=", 1)) for o in args.only]
    unknown = [axis for axis, _ in only if axis not in sweep]
    if unknown:
        sys.stderr.write(f"--only {unknown[0]!r} is not a swept axis; allowed: {', '.join(sweep)}\n")
        return 2
    runs = []
    for cell, row in zip(cells(sweep), phases["cells"], strict=True):
        if any(row[k] != v for k, v in cell.as_dict().items()):
            sys.stderr.write(f"{phases_path}: rows are not in grid order at {cell.relpath}\n")
            return 1
        if row["grokking_step"] is None and not args.absolute:
            continue
        if not all(spell(row[axis]) == value for axis, value in only):
            continue
        record = json.loads(cell_path(args.results_dir, cell).read_text())
        runs.append((row[args.hue], record["curves"], row["grokking_step"]))
    if not runs:
        sys.stderr.write("no cell reached the grokking accuracy; nothing to align (see --absolute)\n")
        return 1
    threshold = phases["settings"]["phases"]["grokking_step_accuracy"]
    label = short_label(args.hue) if "." in args.hue else args.hue
    try:
        plot_measure_traces(runs, args.out, label, args.curves.split(","), threshold, aligned=not args.absolute)
    except ValueError as err:
        sys.stderr.write(f"--curves: {err}\n")
        return 2
    print(f"wrote {args.out} ({len(runs)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
