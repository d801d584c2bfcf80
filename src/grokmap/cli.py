"""Command-line entry points behind the aggregation ``scripts/*.py`` (one per rule).

(``train_cell`` has its own module, :mod:`grokmap.cell_cli`, as it is part of the
training fingerprint.)

Every input arrives as an argument from the rule (cell values from wildcards, settings as
JSON from the rule's ``params:``), so the workflow tracks everything a job reads. Heavy
imports (torch, matplotlib) happen inside the command that needs them.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("grokmap")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--log-level", default="INFO")
    return p


def _run(main, args) -> int:
    _setup_logging(args.log_level)
    try:
        main(args)
    except Exception as exc:  # the message is for the user; the rule's log keeps it
        log.error("%s: %s", type(exc).__name__, exc)
        for stale in getattr(args, "on_failure_remove", None) or []:
            # downstream results of a failed aggregation or validation must not survive it
            if Path(stale).exists():
                Path(stale).unlink()
                log.error("removed %s: it would no longer match validated results", stale)
        if args.log_level.upper() == "DEBUG":
            raise
        return 1
    return 0


def _grid_and_records(args):
    from .aggregate import load_records
    from .cells import cell_settings
    from .fingerprint import fingerprint, training_code_files
    from .grid import cells

    params = json.loads(args.params)
    grid = cells(params["sweep"])
    settings = cell_settings(params)
    fp, _ = fingerprint(settings, training_code_files())
    return params, grid, load_records(args.results_dir, grid, settings, fp)


def _aggregate_parser(description: str) -> argparse.ArgumentParser:
    p = _parser(description)
    p.add_argument("--params", required=True, help="JSON of the validated params.yaml")
    p.add_argument("--results-dir", required=True)
    p.add_argument("--on-failure-remove", action="append", default=[],
                   help="a published output to delete if this step fails (repeatable)")
    return p


def classify_phases_main(argv=None) -> int:
    p = _aggregate_parser("Classify every cell; write phases.json, phases.csv and metrics.json.")
    p.add_argument("--phases-json", required=True)
    p.add_argument("--phases-csv", required=True)
    p.add_argument("--metrics-json", required=True)
    p.add_argument("--settings-stamp", help="file named by the hash of the phases and sweep settings; "
                                            "written last, holding them")
    args = p.parse_args(argv)

    def main(args):
        from .aggregate import classify_sweep, phases_csv, summary_metrics
        from .io import atomic_write_json, atomic_write_text

        params, grid, records = _grid_and_records(args)
        phases = classify_sweep(records, params["phases"], params["sweep"])
        atomic_write_json(args.phases_json, phases)
        atomic_write_text(args.phases_csv, phases_csv(phases))
        atomic_write_json(args.metrics_json, summary_metrics(phases))
        if args.settings_stamp:
            atomic_write_json(args.settings_stamp, phases["settings"])
        log.info("classified %d cells: %s", phases["n_cells"], phases["counts"])

    return _run(main, args)


def plot_main(argv=None) -> int:
    p = _parser("Draw the discrete and smooth phase diagrams and the grokking-step plot.")
    p.add_argument("--phases-json", required=True)
    p.add_argument("--max-epochs", type=int, required=True)
    p.add_argument("--phase-diagram", required=True)
    p.add_argument("--smooth-diagram", required=True)
    p.add_argument("--grokking-step", required=True)
    p.add_argument("--seed-diagrams", required=True)
    args = p.parse_args(argv)

    def main(args):
        from .io import read_json
        from .plots import plot_grokking_step, plot_phase_diagram, plot_seed_diagrams, plot_smooth_diagram

        phases = read_json(args.phases_json)
        for path in (args.phase_diagram, args.smooth_diagram, args.grokking_step, args.seed_diagrams):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        _atomic_figure(args.phase_diagram, lambda tmp: plot_phase_diagram(phases, tmp))
        _atomic_figure(args.smooth_diagram, lambda tmp: plot_smooth_diagram(phases, tmp, args.max_epochs))
        _atomic_figure(args.grokking_step, lambda tmp: plot_grokking_step(phases, tmp))
        _atomic_figure(args.seed_diagrams, lambda tmp: plot_seed_diagrams(phases, tmp))

    return _run(main, args)


def _atomic_figure(path: str, draw) -> None:
    import os

    tmp = str(Path(path).with_name(f".{Path(path).stem}.tmp{Path(path).suffix}"))
    draw(tmp)
    os.replace(tmp, path)


def plot_curves_main(argv=None) -> int:
    p = _aggregate_parser("Plot training curves of one representative cell per phase.")
    p.add_argument("--phases-json", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    def main(args):
        from .aggregate import cell_path
        from .io import read_json
        from .plots import plot_curves
        from .report import representatives

        params = json.loads(args.params)
        phases = read_json(args.phases_json)
        import textwrap

        examples = {ph: (textwrap.fill(cell.relpath.replace("/", " "), 44),
                         read_json(cell_path(args.results_dir, cell))["curves"])
                    for ph, cell in representatives(phases).items()}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        loss = {"cross_entropy": "cross-entropy", "mse": "MSE"}.get(params["training"]["loss"], "loss")
        if "training.loss" in params["sweep"]:
            loss = "loss"
        _atomic_figure(args.out, lambda tmp: plot_curves(
            examples, tmp, params["phases"]["accuracy_threshold"], loss))

    return _run(main, args)


def write_report_main(argv=None) -> int:
    p = _aggregate_parser("Write metadata.json and report.md.")
    p.add_argument("--phases-json", required=True)
    p.add_argument("--metadata", required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--figure", action="append", default=[], help="TITLE=PATH (repeatable)")
    args = p.parse_args(argv)

    def main(args):
        from .io import atomic_write_json, atomic_write_text, read_json
        from .report import build_metadata, render_report

        params, grid, records = _grid_and_records(args)
        phases = read_json(args.phases_json)
        metadata = build_metadata(params, phases, [r["train_seconds"] for r in records.values()])
        atomic_write_json(args.metadata, metadata)
        report_dir = Path(args.report).parent.resolve()
        figures = {}
        for item in args.figure:
            title, _, path = item.partition("=")
            figures[title] = str(Path(path).resolve().relative_to(report_dir))
        atomic_write_text(args.report, render_report(phases, metadata, figures))

    return _run(main, args)


def validate_results_main(argv=None) -> int:
    p = _aggregate_parser("Check that the aggregated outputs agree with the cell records.")
    p.add_argument("--phases-json", required=True)
    p.add_argument("--metrics-json", required=True)
    p.add_argument("--metadata", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    def main(args):
        from .io import atomic_write_json, read_json
        from .validate import validate_outputs

        params, grid, records = _grid_and_records(args)
        checks = validate_outputs(grid, records, read_json(args.phases_json),
                                  read_json(args.metrics_json), read_json(args.metadata), params)
        for c in checks:
            log.info("%s %s %s", "ok  " if c["ok"] else "FAIL", c["check"], c["detail"])
        failed = [c for c in checks if not c["ok"]]
        if failed:
            raise RuntimeError("validation failed: " + "; ".join(
                f"{c['check']} ({c['detail']})" for c in failed))
        atomic_write_json(args.out, {"passed": True, "checks": checks,
                                     "validated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        log.info("Validation passed: %d checks", len(checks))

    return _run(main, args)


# Records for docs/reproductions/ (scripts/reproduction_record.py, scripts/measures_figure.py):
# from a finished results directory, nothing typed in by hand.

def _finished_phases(results_dir: Path) -> dict | None:
    from .aggregate import read_phases

    try:
        return read_phases(results_dir)
    except FileNotFoundError as err:
        sys.stderr.write(f"{err}\n")
        return None


def _keep(row: dict, only: list[tuple[str, str]]) -> bool:
    from .grid import spell

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

    from .aggregate import reproduction_csv
    from .io import atomic_write_text

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
    from .aggregate import cell_path
    from .grid import cells, short_label
    from .plots import TRACES, plot_measure_traces

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
