"""Command-line entry points behind the aggregation ``scripts/*.py`` (one per rule):
classify phases, plot, write the report, validate. Training jobs: :mod:`grokmap.jobs.cell`;
reproduction records: :mod:`grokmap.jobs.tools`.

Every input arrives as an argument from the rule (cell values from wildcards, settings as
JSON from the rule's ``params:``), so the workflow tracks everything a job reads. Heavy
imports (torch, matplotlib) happen inside the command that needs them.
"""
from __future__ import annotations

import argparse
import hashlib
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


def _grid_and_records(args, params: dict | None = None):
    """params.yaml (from the rule), every cell of the sweep -> the refinement round that added
    it (0: the grid), and every cell's checked record (a continued cell's longest: its extension
    arguments are :func:`_extension`'s)."""
    params, grid, records, _ = _sweep(args, params)
    return params, grid, records


def _sweep(args, params: dict | None = None):
    """:func:`_grid_and_records` and classify_sweep's extension arguments (empty without
    extension rounds): each continued cell's budget multiple and its record at the budget."""
    from ..analysis.aggregate import load_records, sweep_cells
    from ..analysis.extend import extend_rounds, extended_cells
    from ..training.record import cell_settings
    from .fingerprint import fingerprint, training_code_files

    params = params or json.loads(args.params)
    grid = sweep_cells(params, args.results_dir)
    settings = cell_settings(params)
    fp, _ = fingerprint(settings, training_code_files())
    if not extend_rounds(params):
        return params, grid, load_records(args.results_dir, grid, settings, fp), {}
    multiples = extended_cells(params, args.results_dir, grid)
    records = load_records(args.results_dir, grid, settings, fp, multiples)
    at_budget = load_records(args.results_dir, {c: grid[c] for c in multiples}, settings, fp)
    return params, grid, records, {"extend": params["extend"], "multiples": multiples, "at_budget": at_budget}


def _refinement(params: dict, grid: dict) -> dict:
    """classify_sweep's refinement arguments: none for the plain grid (rounds 0)."""
    return {"refine": params["refine"], "rounds": grid} if params["refine"]["rounds"] else {}


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
    p.add_argument("--refine-summary", help="where to write the refinement's cells per round and resolution")
    p.add_argument("--extend-summary", help="where to write the extension's cells per round and what changed")
    p.add_argument("--settings-stamp", help="file named by the hash of the phases and sweep settings; "
                                            "written last, holding them")
    args = p.parse_args(argv)

    def main(args):
        from ..analysis.aggregate import classify_sweep, phases_csv, summary_metrics
        from ..io import atomic_write_json, atomic_write_text

        # new phases make the published verdict stale at once: a kill between this step and the
        # validator must not leave a passing validation.json (or a report) beside new phases
        for stale in args.on_failure_remove:
            Path(stale).unlink(missing_ok=True)
        params, grid, records, extension = _sweep(args)
        phases = classify_sweep(records, params["phases"], params["sweep"], **_refinement(params, grid), **extension)
        atomic_write_json(args.phases_json, phases)
        if args.refine_summary:
            summary = {k: v for k, v in phases.get("refine", {}).items() if k != "coverage"}
            atomic_write_json(args.refine_summary, summary or {"rounds": 0, "cells_per_round": [len(grid)]})
        if args.extend_summary:
            atomic_write_json(args.extend_summary, phases.get("extend") or {"rounds": 0})
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
    p.add_argument("--grokking-steps-csv", help="the cells that grokked and their grokking step (dvc plots)")
    p.add_argument("--seed-diagrams", help="each voter's own diagram (only when points have several voters)")
    _figure_arguments(p)
    args = p.parse_args(argv)

    def main(args):
        from ..analysis.aggregate import grokking_steps_csv
        from ..io import atomic_write_text, read_json
        from ..analysis.plots import plot_grokking_step, plot_phase_diagram, plot_seed_diagrams, plot_smooth_diagram

        phases = read_json(args.phases_json)
        figure = _figure_writer(args)
        figure(args.phase_diagram, lambda tmp: plot_phase_diagram(phases, tmp))
        figure(args.smooth_diagram, lambda tmp: plot_smooth_diagram(phases, tmp, args.max_epochs))
        figure(args.grokking_step, lambda tmp: plot_grokking_step(phases, tmp))
        if args.seed_diagrams:
            figure(args.seed_diagrams, lambda tmp: plot_seed_diagrams(phases, tmp))
        if args.grokking_steps_csv:
            atomic_write_text(args.grokking_steps_csv, grokking_steps_csv(phases))

    return _run(main, args)


def _figure_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--formats", default="png", help="comma-separated: png, pdf, svg (config.yaml plots.formats)")
    p.add_argument("--dpi", type=int, default=150, help="PNG resolution (config.yaml plots.dpi)")


def _figure_writer(args):
    """draw(path) for each format: the .png path given, and its .pdf/.svg siblings."""
    import matplotlib

    matplotlib.rcParams["savefig.dpi"] = args.dpi
    formats = [f for f in args.formats.split(",") if f]

    def write(path: str, draw) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            _atomic_figure(str(Path(path).with_suffix(f".{fmt}")), draw)

    return write


def _atomic_figure(path: str, draw) -> None:
    import os

    tmp = str(Path(path).with_name(f".{Path(path).stem}.tmp{Path(path).suffix}"))
    draw(tmp)
    os.replace(tmp, path)


def plot_curves_main(argv=None) -> int:
    p = _aggregate_parser("Plot training curves of one representative cell per phase.")
    p.add_argument("--phases-json", required=True)
    p.add_argument("--out", required=True)
    _figure_arguments(p)
    args = p.parse_args(argv)

    def main(args):
        from ..analysis.aggregate import cell_path, sweep_cells
        from ..analysis.axes import cell_from_row
        from ..io import read_json
        from ..analysis.plots import plot_curves
        from ..analysis.report import representatives

        params = json.loads(args.params)
        phases = read_json(args.phases_json)
        rounds = sweep_cells(params, args.results_dir)
        import textwrap

        multiple = {cell_from_row(row, params["sweep"]): row.get("budget_multiple", 1) for row in phases["cells"]}
        examples = {ph: (textwrap.fill(cell.relpath.replace("/", " "), 44),
                         read_json(cell_path(args.results_dir, cell, rounds[cell], multiple[cell]))["curves"])
                    for ph, cell in representatives(phases).items()}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        loss = {"cross_entropy": "cross-entropy", "stablemax_cross_entropy": "StableMax cross-entropy",
                "mse": "MSE"}.get(params["training"]["loss"], "loss")
        if "training.loss" in params["sweep"]:
            loss = "loss"
        _figure_writer(args)(args.out, lambda tmp: plot_curves(
            examples, tmp, params["phases"]["accuracy_threshold"], loss))

    return _run(main, args)


def _round_arguments(description: str, argv) -> argparse.Namespace:
    p = _aggregate_parser(description)
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def _check_round_name(out: str, expected: Path, what: str) -> None:
    """A round's list is named by the settings it is derived from: refuse to write it elsewhere."""
    if Path(out).name != expected.name:
        raise ValueError(f"{out}: not the name of {what} under these settings ({expected.name})")


def _records_digest(results_dir: str, grid: dict, multiples: dict | None = None) -> str:
    """SHA-256 over every cell's path and record bytes: what a round's list is derived from."""
    from ..analysis.aggregate import cell_path

    digest = hashlib.sha256()
    for cell in sorted(grid, key=lambda c: c.relpath):
        path = cell_path(results_dir, cell, grid[cell], (multiples or {}).get(cell, 1))
        digest.update(cell.relpath.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def refine_round_main(argv=None) -> int:
    args = _round_arguments("Derive the cells one refinement round adds (params.yaml refine:).", argv)

    def main(args):
        from ..analysis.aggregate import classify_sweep
        from ..analysis.axes import cell_from_row
        from ..analysis.refine import next_round
        from ..io import atomic_write_json

        from ..analysis.aggregate import round_file

        params = json.loads(args.params)
        r = args.round
        _check_round_name(args.out, round_file("", r, params), f"round {r}")
        # refinement reads the cells at their own budget: extension rounds come after it
        earlier = {**params, "refine": {**params["refine"], "rounds": r - 1}, "extend": {**params["extend"], "rounds": 0}}
        _, grid, records = _grid_and_records(args, earlier)
        phases = classify_sweep(records, params["phases"], params["sweep"])
        rows, n_points = next_round(params, phases["groups"], r)
        new = [cell_from_row(row, params["sweep"]) for row in rows]
        clash = [c.relpath for c in new if c in grid]
        if clash:
            raise RuntimeError(f"refinement round {r} would add cells it already has: {clash[:3]}")
        from ..analysis.aggregate import round_key

        atomic_write_json(args.out, {"format": "grokmap.refine-round/2", "round": r,
                                     "settings": {k: params[k] for k in ("phases", "sweep", "refine")},
                                     "derived_from": {"settings_key": round_key(params, r),
                                                      "records_sha256": _records_digest(args.results_dir, grid),
                                                      "cells": len(grid)},
                                     "points": n_points, "cells": [c.relpath for c in new]})
        log.info("refinement round %d: %d new points, %d cells (rounds 0..%d have %d cells)",
                 r, n_points, len(new), r - 1, len(grid))

    return _run(main, args)


def extend_round_main(argv=None) -> int:
    args = _round_arguments("Derive the cells one extension round continues (params.yaml extend:).", argv)

    def main(args):
        from ..analysis.aggregate import classify_sweep
        from ..analysis.extend import extension_file, extension_key, multiple, undecided_cells
        from ..io import atomic_write_json

        params = json.loads(args.params)
        r = args.round
        _check_round_name(args.out, extension_file("", r, params), f"extension round {r}")
        earlier = {**params, "extend": {**params["extend"], "rounds": r - 1}}
        _, grid, records, extension = _sweep(args, earlier)
        phases = classify_sweep(records, params["phases"], params["sweep"], **extension)
        cells = undecided_cells(phases)
        digest = _records_digest(args.results_dir, grid, extension.get("multiples"))
        atomic_write_json(args.out, {"format": "grokmap.extend-round/1", "round": r, "multiple": multiple(params, r),
                                     "settings": {k: params[k] for k in ("phases", "sweep", "refine", "extend")},
                                     "derived_from": {"settings_key": extension_key(params, r),
                                                      "records_sha256": digest, "cells": len(grid)},
                                     "cells": cells})
        log.info("extension round %d: %d of %d cells undecided at %d times their budget; continuing them to %d times",
                 r, len(cells), len(grid), multiple(params, r - 1), multiple(params, r))

    return _run(main, args)


def explorer_main(argv=None) -> int:
    p = _aggregate_parser("Write the offline sweep explorer (one self-contained HTML page).")
    p.add_argument("--phases-json", required=True)
    p.add_argument("--renderer", required=True, help="the renderer bundle written by scripts/setup_env.sh")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    def main(args):
        import os

        from ..analysis.aggregate import cell_path
        from ..analysis.axes import cell_from_row
        from ..analysis.explorer import explorer_document, explorer_html
        from ..io import atomic_write_text, read_json

        params, grid, records = _grid_and_records(args)
        phases = read_json(args.phases_json)
        sweep, page_dir = phases["settings"]["sweep"], Path(args.out).resolve().parent

        def path(row) -> Path:
            return cell_path(args.results_dir, cell_from_row(row, sweep), row.get("round", 0),
                             row.get("budget_multiple", 1))

        doc = explorer_document(
            phases, lambda row: records[cell_from_row(row, sweep)]["curves"],
            lambda row: os.path.relpath(path(row).resolve(), page_dir),
            params["phases"]["accuracy_threshold"], text_of=lambda row: path(row).read_bytes())
        title = f"grokmap sweep explorer: {params['task']['name']}, {params['model']['name']}"
        html = explorer_html(doc, Path(args.renderer).read_text(encoding="utf8"), title)
        atomic_write_text(args.out, html)
        log.info("explorer: %d cells, %d points per curve, %.1f MB", doc["info"]["n_cells"],
                 doc["info"]["points_per_curve"], len(html.encode()) / 1e6)

    return _run(main, args)


def build_renderer_main(argv=None) -> int:
    p = _parser("Bundle the installed renderer for the explorer and write the offline DVC plots template.")
    p.add_argument("--node-modules", required=True)
    p.add_argument("--bundle", required=True, help="where to write the renderer bundle (JavaScript)")
    p.add_argument("--dvc-template", required=True, help="where to write the DVC plots HTML template")
    args = p.parse_args(argv)

    def main(args):
        from ..analysis.explorer import dvc_plots_template, renderer_bundle
        from ..io import atomic_write_text

        bundle = renderer_bundle(args.node_modules)
        atomic_write_text(args.bundle, bundle)
        atomic_write_text(args.dvc_template, dvc_plots_template(bundle))

    return _run(main, args)


def write_report_main(argv=None) -> int:
    p = _aggregate_parser("Write metadata.json and report.md.")
    p.add_argument("--phases-json", required=True)
    p.add_argument("--metadata", required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--figure", action="append", default=[], help="TITLE=PATH (repeatable)")
    p.add_argument("--explorer", help="the interactive explorer page, linked from the report")
    args = p.parse_args(argv)

    def main(args):
        from ..io import atomic_write_json, atomic_write_text, read_json
        from ..analysis.report import build_metadata, render_report

        params, grid, records = _grid_and_records(args)
        phases = read_json(args.phases_json)
        metadata = build_metadata(params, phases, [r["train_seconds"] for r in records.values()],
                                  [r.get("machine") for r in records.values()], [r.get("kernel") for r in records.values()],
                                  efficiency=_efficiency(params, records))
        atomic_write_json(args.metadata, metadata)
        report_dir = Path(args.report).parent.resolve()
        figures = {}
        for item in args.figure:
            title, _, path = item.partition("=")
            figures[title] = str(Path(path).resolve().relative_to(report_dir))
        explorer = (str(Path(args.explorer).resolve().relative_to(report_dir)) if args.explorer else None)
        atomic_write_text(args.report, render_report(phases, metadata, figures, explorer))

    return _run(main, args)


def _efficiency(params: dict, records: dict) -> dict:
    """How fast the sweep's cells trained: cell-steps per second of training time, and the
    estimated GFLOP/s of their matrix products (jobs.cluster.cell_flops, for the steps and
    evaluations each ran) against this machine's single-thread sgemm rate, timed now."""
    from ..machine import sgemm_gflops
    from ..training.record import cell_settings
    from ..training.spec import CellSpec
    from .cluster import cell_flops

    def ran(r) -> int:
        return int(r.get("steps_run") or (r["curves"].get("step") or r["curves"]["epoch"])[-1])

    settings = cell_settings(params)
    steps = sum(ran(r) for r in records.values())
    seconds = sum(float(r["train_seconds"]) for r in records.values())
    flop = sum(cell_flops(CellSpec.of(settings, cell), ran(r), len(r["curves"]["epoch"])) for cell, r in records.items())
    peak = sgemm_gflops()
    achieved = flop / seconds / 1e9 if seconds > 0 else None
    return {"cell_steps": steps, "train_seconds": seconds,
            "cell_steps_per_second": steps / seconds if seconds > 0 else None,
            "estimated_gflop": flop / 1e9, "achieved_gflops": achieved, "sgemm_peak_gflops": peak,
            "matmul_peak_share": None if achieved is None else achieved / peak}


def _extension_files(results_dir: str, params: dict, grid: dict) -> dict:
    """Each extension round's list as written and the records it names, read as they are (the
    validator checks them against records it re-derives)."""
    from ..analysis.aggregate import cell_path
    from ..analysis.extend import extension_file, multiple
    from ..io import read_json

    by_path = {c.relpath: c for c in grid}
    out = {}
    for r in range(1, params["extend"]["rounds"] + 1):
        path = extension_file(results_dir, r, params)
        doc = read_json(path) if path.exists() else {}
        recs = {}
        for rel in doc.get("cells", []) if isinstance(doc.get("cells"), list) else []:
            record = cell_path(results_dir, by_path[rel], grid[by_path[rel]], multiple(params, r)) \
                if rel in by_path else None
            recs[rel] = read_json(record) if record is not None and record.exists() else None
        out[r] = {"path": str(path), "doc": doc, "records": recs}
    return out


def validate_results_main(argv=None) -> int:
    p = _aggregate_parser("Check that the aggregated outputs agree with the cell records.")
    p.add_argument("--phases-json", required=True)
    p.add_argument("--metrics-json", required=True)
    p.add_argument("--metadata", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    def main(args):
        from ..io import atomic_write_json, read_json
        from ..analysis.validate import validate_outputs

        from ..analysis.aggregate import REFINED, round_file

        params = json.loads(args.params)
        # the records at the cells' own budget: the validator re-derives the extension rounds from them
        _, grid, records = _grid_and_records(args, {**params, "extend": {**params["extend"], "rounds": 0}})
        files = {"phases.csv": Path(args.phases_json).with_name("phases.csv").read_text()}
        steps_csv = Path(args.results_dir) / "figures" / "grokking_steps.csv"
        if steps_csv.exists():
            files["figures/grokking_steps.csv"] = steps_csv.read_text()
        if params["extend"]["rounds"]:
            files["extension"] = _extension_files(args.results_dir, params, grid)
        summary = Path(args.results_dir) / REFINED / "summary.json"
        if summary.exists():
            files["refined/summary.json"] = read_json(summary)
        extended = Path(args.results_dir) / "extended" / "summary.json"
        if extended.exists():
            files["extended/summary.json"] = read_json(extended)
        files["round files"] = {r: str(round_file(args.results_dir, r, params))
                                for r in range(1, params["refine"]["rounds"] + 1)}
        checks = validate_outputs(grid, records, read_json(args.phases_json),
                                  read_json(args.metrics_json), read_json(args.metadata), params, files)
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
