"""S1 sections 5.1-5.2 as a figure: every cell of a finished sweep that reached the grokking
accuracy, its test accuracy, parameter norm and sparsity (sub-network share) aligned at its
grokking step, coloured by one swept axis.

    .venv/bin/python scripts/measures_figure.py results/s1_noise docs/reproductions/s1_noise_measures.png \
        --hue training.embedding_noise
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from grokmap.aggregate import cell_path  # noqa: E402
from grokmap.grid import cells, short_label  # noqa: E402
from grokmap.plots import plot_measures_around_grokking  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results_dir", type=Path, help="a results directory the workflow finished (phases.json)")
    p.add_argument("out", type=Path, help="the PNG to write")
    p.add_argument("--hue", default="train_fraction", help="the swept axis that colours the lines")
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
    runs = []
    for cell, row in zip(cells(sweep), phases["cells"], strict=True):
        if any(row[k] != v for k, v in cell.as_dict().items()):
            sys.stderr.write(f"{phases_path}: rows are not in grid order at {cell.relpath}\n")
            return 1
        if row["grokking_step"] is None:
            continue
        record = json.loads(cell_path(args.results_dir, cell).read_text())
        runs.append((row[args.hue], record["curves"], row["grokking_step"]))
    if not runs:
        sys.stderr.write("no cell reached the grokking accuracy; nothing to draw\n")
        return 1
    threshold = phases["settings"]["phases"]["grokking_step_accuracy"]
    label = short_label(args.hue) if "." in args.hue else args.hue
    plot_measures_around_grokking(runs, args.out, label, threshold)
    print(f"wrote {args.out} ({len(runs)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
