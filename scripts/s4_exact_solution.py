#!/usr/bin/env python
"""S4's analytic solution against width (S4 Figure 4b's analytic curve), beside trained networks.

    .venv/bin/python scripts/s4_exact_solution.py OUT_PREFIX [--p 97] [--widths 10,25,...] [--seeds 5]
        [--trained LABEL=RESULTS_DIR[,RESULTS_DIR...] ...]

Writes OUT_PREFIX.csv (width, seed, accuracy over all p^2 pairs, mean IPR_2 of the first layer),
OUT_PREFIX_trained.csv (each trained cell: label, width, learning rate, phase, final train and
test accuracy, steps run, whether the loss went non-finite; from the results directories'
phases.json and metadata.json) and OUT_PREFIX.png: the analytic accuracy (mean and range over
seeds) against width, and each label's final test accuracy against width.
Logic: grokmap.analysis.fourier.
"""
import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from grokmap.analysis.fourier import width_table  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--p", type=int, default=97)
    ap.add_argument("--widths", default="10,25,50,75,100,150,200,300,500,1000")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trained", nargs="*", default=[], help="LABEL=RESULTS_DIR of a finished sweep over width")
    args = ap.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    rows = width_table(args.p, widths, range(args.seeds))
    out = Path(args.out)
    with open(out.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    acc = {wd: [r["accuracy"] for r in rows if r["width"] == wd] for wd in widths}
    ax.plot(widths, [sum(v) / len(v) for v in acc.values()], "k-o", ms=3, label=f"analytic solution ({args.seeds} seeds)")
    ax.fill_between(widths, [min(v) for v in acc.values()], [max(v) for v in acc.values()], color="0.85")
    trained = []
    for item in args.trained:
        label, folders = item.split("=", 1)
        for folder in folders.split(","):
            lr = json.loads((Path(folder) / "metadata.json").read_text())["params"]["training"]["learning_rate"]
            for c in json.loads((Path(folder) / "phases.json").read_text())["cells"]:
                trained.append({"label": label, "width": c["width"], "learning_rate": lr, "phase": c["phase"],
                                "final_train_acc": c["final_train_acc"], "final_test_acc": c["final_test_acc"],
                                "steps_run": c["steps_run"], "non_finite_loss": c["non_finite_loss"],
                                "results_dir": Path(folder).name})
    if trained:
        with open(out.parent / f"{out.name}_trained.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(trained[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(trained)
    for label in dict.fromkeys(t["label"] for t in trained):
        mine = sorted((t["width"], t["final_test_acc"]) for t in trained if t["label"] == label and not t["non_finite_loss"])
        ax.plot([m[0] for m in mine], [m[1] for m in mine], "o--", ms=3, label=f"{label}: final test accuracy")
    ax.set_xscale("log")
    ax.set_xlabel("width N")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"modular addition mod {args.p}: accuracy against width", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=150)
    for wd in widths:
        v = acc[wd]
        ipr = [r["ipr"] for r in rows if r["width"] == wd]
        print(f"width {wd}: accuracy {min(v):.4f}-{max(v):.4f} (mean {sum(v) / len(v):.4f}); IPR {min(ipr):.6f}-{max(ipr):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
