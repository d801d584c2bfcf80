"""Records for docs/reproductions/ (``scripts/reproduction_record.py``,
``scripts/measures_figure.py``): from a finished results directory, nothing typed in by hand."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path




def _finished_phases(results_dir: Path) -> dict | None:
    from ..analysis.aggregate import read_phases

    try:
        return read_phases(results_dir)
    except FileNotFoundError as err:
        sys.stderr.write(f"{err}\n")
        return None


def _keep(row: dict, only: list[tuple[str, str]]) -> bool:
    from ..training.grid import spell

    return all(spell(row[axis]) == value for axis, value in only)


def _only(phases: dict, given: list[str]) -> list[tuple[str, str]] | None:
    """``AXIS=VALUE`` filters, each axis a swept one (else a message and None)."""
    only = [tuple(o.split("=", 1)) for o in given]
    sweep = phases["settings"]["sweep"]
    for axis, *value in only:
        if axis not in sweep or not value:
            sys.stderr.write(f"--only {axis!r}: not AXIS=VALUE of a swept axis; allowed axes: {', '.join(sweep)}\n")
            return None
    return only


def reproduction_record_main(argv=None) -> int:
    """A finished sweep as a reproduction record: <out>.csv (per-cell phase table) and, for
    the whole sweep, <out>_phase_diagram.png and <out>_smooth_diagram.png."""
    import shutil

    from ..analysis.aggregate import reproduction_csv
    from ..io import atomic_write_text

    p = argparse.ArgumentParser(description=reproduction_record_main.__doc__.splitlines()[0])
    p.add_argument("results_dir", type=Path, help="a results directory the workflow finished (phases.json)")
    p.add_argument("out", type=Path, help="output path without extension, e.g. docs/reproductions/name")
    p.add_argument("--only", metavar="AXIS=VALUE", action="append", default=[],
                   help="keep the cells whose AXIS is spelled VALUE (repeatable); the diagrams, which "
                        "show every cell, are then not copied")
    p.add_argument("--columns", default="", help="comma-separated phases.csv columns to add to the table")
    args = p.parse_args(argv)
    phases = _finished_phases(args.results_dir)
    only = phases and _only(phases, args.only)
    if phases is None or only is None:
        return 1
    if only:
        phases["cells"] = [r for r in phases["cells"] if _keep(r, only)]
        if not phases["cells"]:
            sys.stderr.write(f"no cell has {', '.join(args.only)}\n")
            return 1
        for axis, _ in only:
            phases["settings"]["sweep"][axis] = [phases["cells"][0][axis]]
    try:
        table = reproduction_csv(phases, [c for c in args.columns.split(",") if c])
    except ValueError as err:
        sys.stderr.write(f"--columns: {err}\n")
        return 2
    atomic_write_text(args.out.with_suffix(".csv"), table)
    if only:
        print(f"wrote {args.out}.csv ({len(phases['cells'])} cells)")
        return 0
    for fig in ("phase_diagram", "smooth_diagram"):
        shutil.copyfile(args.results_dir / "figures" / f"{fig}.png", f"{args.out}_{fig}.png")
    print(f"wrote {args.out}.csv and its two diagrams")
    return 0


def measures_figure_main(argv=None) -> int:
    """Curves of a finished sweep's cells side by side, one line per cell coloured by a swept
    axis: by default test accuracy, parameter norm and sparsity of the cells that reached the
    grokking accuracy, aligned at their grokking step (S1 sections 5.1-5.2); with --absolute
    every cell against the step itself (S4 figure 5)."""
    from ..analysis.aggregate import cell_path
    from ..training.grid import cells
    from ..analysis.axes import short_label
    from ..analysis.plots import TRACES, plot_measure_traces

    p = argparse.ArgumentParser(description=measures_figure_main.__doc__.splitlines()[0])
    p.add_argument("results_dir", type=Path, help="a results directory the workflow finished (phases.json)")
    p.add_argument("out", type=Path, help="the PNG to write")
    p.add_argument("--hue", default="train_fraction", help="the swept axis that colours the lines")
    p.add_argument("--curves", default="test_acc,param_norm,subnetwork_fraction",
                   help="comma-separated curves, one panel each")
    p.add_argument("--only", metavar="AXIS=VALUE", action="append", default=[],
                   help="keep the cells whose AXIS is spelled VALUE (repeatable)")
    p.add_argument("--absolute", action="store_true",
                   help="every cell against the step itself, not aligned at its grokking step")
    args = p.parse_args(argv)
    phases = _finished_phases(args.results_dir)
    only = phases and _only(phases, args.only)
    if phases is None or only is None:
        return 1
    keys = args.curves.split(",")
    unknown = [k for k in keys if k not in TRACES]
    if unknown:
        sys.stderr.write(f"--curves: unknown curve(s) {', '.join(unknown)}; allowed: {', '.join(TRACES)}\n")
        return 2
    sweep = phases["settings"]["sweep"]
    if args.hue not in sweep:
        sys.stderr.write(f"--hue {args.hue!r} is not a swept axis; allowed: {', '.join(sweep)}\n")
        return 2
    runs = []
    for cell, row in zip(cells(sweep), phases["cells"], strict=True):
        if any(row[k] != v for k, v in cell.as_dict().items()):
            sys.stderr.write(f"{args.results_dir}/phases.json: rows are not in grid order at {cell.relpath}\n")
            return 1
        if (row["grokking_step"] is None and not args.absolute) or not _keep(row, only):
            continue
        record = json.loads(cell_path(args.results_dir, cell).read_text())
        runs.append((row[args.hue], record["curves"], row["grokking_step"]))
    if not runs:
        sys.stderr.write("no cell reached the grokking accuracy; nothing to align (see --absolute)\n")
        return 1
    threshold = phases["settings"]["phases"]["grokking_step_accuracy"]
    label = short_label(args.hue) if "." in args.hue else args.hue
    plot_measure_traces(runs, args.out, label, keys, threshold, aligned=not args.absolute)
    print(f"wrote {args.out} ({len(runs)} cells)")
    return 0
