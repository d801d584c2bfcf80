"""The aggregation steps, one function per rule of ``workflow/rules/{aggregate,plot,report}.smk``
and per checkpoint of refine/extend: classify phases, derive a round's cells, plot, write the
explorer and the report, validate. Each rule hands its inputs, outputs and params to one of
these through ``scripts/<rule>.py`` (Snakemake's ``script:`` directive): settings arrive as the
validated params mapping, never re-read from a file, so the workflow tracks everything a step
reads. Training jobs: :mod:`grokmap.jobs.cell`. Heavy imports (matplotlib) happen inside the
step that needs them.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

log = logging.getLogger("grokmap")

__all__ = ["classify_phases", "refine_round", "extend_round", "plot_phase_diagrams", "plot_curves",
           "write_explorer", "write_report", "validate_results"]


def run_step(log_path: str | None, log_level: str, work: Callable[[], None],
             remove_on_failure: Sequence[str] = ()) -> None:
    """Run one step with its log: everything it writes to stderr (log lines, warnings, a
    traceback) goes to ``log_path``. On failure the message is logged, each published output of
    ``remove_on_failure`` is deleted (it would no longer match validated results), and the
    process exits 1 (the whole traceback too with log level DEBUG)."""
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        sys.stderr.flush()
        os.dup2(fd, 2)
        os.close(fd)
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    try:
        work()
    except Exception as exc:  # the message is for the user; the rule's log keeps it
        log.error("%s: %s", type(exc).__name__, exc)
        for stale in remove_on_failure:
            if Path(stale).exists():
                Path(stale).unlink()
                log.error("removed %s: it would no longer match validated results", stale)
        if log_level.upper() == "DEBUG":
            raise
        raise SystemExit(1) from None


def _records(params: Mapping, results_dir: str):
    """Every cell of the sweep -> the refinement round that added it (0: the grid), every cell's
    checked record (a continued cell's longest), and classify_sweep's extension arguments (empty
    without extension rounds): each continued cell's budget multiple and its record at the budget."""
    from ..analysis.aggregate import load_records, sweep_cells
    from ..analysis.extend import extend_rounds, extended_cells
    from ..training.record import cell_settings
    from .fingerprint import fingerprint, training_code_files

    grid = sweep_cells(params, results_dir)
    settings = cell_settings(params)
    fp, _ = fingerprint(settings, training_code_files())
    if not extend_rounds(params):
        return grid, load_records(results_dir, grid, settings, fp), {}
    multiples = extended_cells(params, results_dir, grid)
    records = load_records(results_dir, grid, settings, fp, multiples)
    at_budget = load_records(results_dir, {c: grid[c] for c in multiples}, settings, fp)
    return grid, records, {"extend": params["extend"], "multiples": multiples, "at_budget": at_budget}


def _refinement(params: Mapping, grid: dict) -> dict:
    """classify_sweep's refinement arguments: none for the plain grid (rounds 0)."""
    return {"refine": params["refine"], "rounds": grid} if params["refine"]["rounds"] else {}


def classify_phases(params: Mapping, results_dir: str, phases_json: str, phases_csv: str, metrics_json: str,
                    refine_summary: str, extend_summary: str, settings_stamp: str,
                    remove_on_failure: Sequence[str] = (), log_path: str | None = None, log_level: str = "INFO") -> None:
    """Classify every cell; write phases.json, phases.csv, metrics.json, the refinement and
    extension summaries, and last the aggregation stamp (its name hashes the settings it holds)."""
    def work():
        from ..analysis.aggregate import aggregation_settings, classify_sweep, phases_csv as csv_of, summary_metrics
        from ..io import atomic_write_json, atomic_write_text

        # new phases make the published verdict stale at once: a kill between this step and the
        # validator must not leave a passing validation.json (or a report) beside new phases
        for stale in remove_on_failure:
            Path(stale).unlink(missing_ok=True)
        grid, records, extension = _records(params, results_dir)
        phases = classify_sweep(records, params["phases"], params["sweep"], **_refinement(params, grid), **extension)
        if phases["settings"] != aggregation_settings(params):
            raise RuntimeError("phases.json's settings differ from the aggregation stamp's "
                               "(grokmap.analysis.aggregate.aggregation_settings)")
        atomic_write_json(phases_json, phases)
        summary = {k: v for k, v in phases.get("refine", {}).items() if k != "coverage"}
        atomic_write_json(refine_summary, summary or {"rounds": 0, "cells_per_round": [len(grid)]})
        atomic_write_json(extend_summary, phases.get("extend") or {"rounds": 0})
        atomic_write_text(phases_csv, csv_of(phases))
        atomic_write_json(metrics_json, summary_metrics(phases))
        atomic_write_json(settings_stamp, phases["settings"])
        log.info("classified %d cells: %s", phases["n_cells"], phases["counts"])

    run_step(log_path, log_level, work, remove_on_failure)


def _figure_writer(formats: Sequence[str], dpi: int):
    """draw(path) for each format: the .png path given, and its .pdf/.svg siblings."""
    import matplotlib

    matplotlib.rcParams["savefig.dpi"] = dpi

    def write(path: str, draw) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            _atomic_figure(str(Path(path).with_suffix(f".{fmt}")), draw)

    return write


def _atomic_figure(path: str, draw) -> None:
    tmp = str(Path(path).with_name(f".{Path(path).stem}.tmp{Path(path).suffix}"))
    draw(tmp)
    os.replace(tmp, path)


def plot_phase_diagrams(phases_json: str, max_epochs: int, phase_diagram: str, smooth_diagram: str,
                        grokking_step: str, grokking_steps_csv: str, seed_diagrams: str | None,
                        formats: Sequence[str], dpi: int, log_path: str | None = None, log_level: str = "INFO") -> None:
    """The discrete and smooth phase diagrams, the grokking-step plot and its table (dvc plots),
    and each voter's own diagram when points have several voters."""
    def work():
        from ..analysis.aggregate import grokking_steps_csv as steps_csv
        from ..analysis.plots import plot_grokking_step, plot_phase_diagram, plot_seed_diagrams, plot_smooth_diagram
        from ..io import atomic_write_text, read_json

        phases = read_json(phases_json)
        figure = _figure_writer(formats, dpi)
        figure(phase_diagram, lambda tmp: plot_phase_diagram(phases, tmp))
        figure(smooth_diagram, lambda tmp: plot_smooth_diagram(phases, tmp, max_epochs))
        figure(grokking_step, lambda tmp: plot_grokking_step(phases, tmp))
        if seed_diagrams:
            figure(seed_diagrams, lambda tmp: plot_seed_diagrams(phases, tmp))
        atomic_write_text(grokking_steps_csv, steps_csv(phases))

    run_step(log_path, log_level, work)


def plot_curves(params: Mapping, results_dir: str, phases_json: str, out: str, formats: Sequence[str], dpi: int,
                log_path: str | None = None, log_level: str = "INFO") -> None:
    """Training curves of one clear example cell per phase (:func:`grokmap.analysis.report.representatives`)."""
    def work():
        import textwrap

        from ..analysis.aggregate import cell_path, sweep_cells
        from ..analysis.axes import cell_from_row
        from ..analysis.plots import plot_curves as draw_curves
        from ..analysis.report import representatives
        from ..io import read_json

        phases = read_json(phases_json)
        rounds = sweep_cells(params, results_dir)
        multiple = {cell_from_row(row, params["sweep"]): row.get("budget_multiple", 1) for row in phases["cells"]}
        examples = {ph: (textwrap.fill(cell.relpath.replace("/", " "), 44),
                         read_json(cell_path(results_dir, cell, rounds[cell], multiple[cell]))["curves"])
                    for ph, cell in representatives(phases).items()}
        loss = {"cross_entropy": "cross-entropy", "stablemax_cross_entropy": "StableMax cross-entropy",
                "mse": "MSE"}.get(params["training"]["loss"], "loss")
        if "training.loss" in params["sweep"]:
            loss = "loss"
        _figure_writer(formats, dpi)(out, lambda tmp: draw_curves(
            examples, tmp, params["phases"]["accuracy_threshold"], loss))

    run_step(log_path, log_level, work)


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


def refine_round(params: Mapping, results_dir: str, r: int, out: str, log_path: str | None = None,
                 log_level: str = "INFO") -> None:
    """Derive the cells refinement round ``r`` adds (params.yaml refine:, with refine.rounds = r)."""
    def work():
        from ..analysis.aggregate import classify_sweep, round_file, round_key
        from ..analysis.axes import cell_from_row
        from ..analysis.refine import next_round
        from ..io import atomic_write_json

        _check_round_name(out, round_file("", r, params), f"round {r}")
        # refinement reads the cells at their own budget: extension rounds come after it
        earlier = {**params, "refine": {**params["refine"], "rounds": r - 1}, "extend": {**params["extend"], "rounds": 0}}
        grid, records, _ = _records(earlier, results_dir)
        phases = classify_sweep(records, params["phases"], params["sweep"])
        rows, n_points = next_round(params, phases["groups"], r)
        new = [cell_from_row(row, params["sweep"]) for row in rows]
        clash = [c.relpath for c in new if c in grid]
        if clash:
            raise RuntimeError(f"refinement round {r} would add cells it already has: {clash[:3]}")
        atomic_write_json(out, {"format": "grokmap.refine-round/2", "round": r,
                                "settings": {k: params[k] for k in ("phases", "sweep", "refine")},
                                "derived_from": {"settings_key": round_key(params, r),
                                                 "records_sha256": _records_digest(results_dir, grid),
                                                 "cells": len(grid)},
                                "points": n_points, "cells": [c.relpath for c in new]})
        log.info("refinement round %d: %d new points, %d cells (rounds 0..%d have %d cells)",
                 r, n_points, len(new), r - 1, len(grid))

    run_step(log_path, log_level, work)


def extend_round(params: Mapping, results_dir: str, r: int, out: str, log_path: str | None = None,
                 log_level: str = "INFO") -> None:
    """Derive the cells extension round ``r`` continues (params.yaml extend:, with extend.rounds = r)."""
    def work():
        from ..analysis.aggregate import classify_sweep
        from ..analysis.extend import extension_file, extension_key, multiple, undecided_cells
        from ..io import atomic_write_json

        _check_round_name(out, extension_file("", r, params), f"extension round {r}")
        earlier = {**params, "extend": {**params["extend"], "rounds": r - 1}}
        grid, records, extension = _records(earlier, results_dir)
        phases = classify_sweep(records, params["phases"], params["sweep"], **extension)
        cells = undecided_cells(phases)
        digest = _records_digest(results_dir, grid, extension.get("multiples"))
        atomic_write_json(out, {"format": "grokmap.extend-round/1", "round": r, "multiple": multiple(params, r),
                                "settings": {k: params[k] for k in ("phases", "sweep", "refine", "extend")},
                                "derived_from": {"settings_key": extension_key(params, r),
                                                 "records_sha256": digest, "cells": len(grid)},
                                "cells": cells})
        log.info("extension round %d: %d of %d cells undecided at %d times their budget; continuing them to %d times",
                 r, len(cells), len(grid), multiple(params, r - 1), multiple(params, r))

    run_step(log_path, log_level, work)


def write_explorer(params: Mapping, results_dir: str, phases_json: str, renderer: str, out: str,
                   log_path: str | None = None, log_level: str = "INFO") -> None:
    """The offline sweep explorer: one self-contained HTML page."""
    def work():
        from ..analysis.aggregate import cell_path
        from ..analysis.axes import cell_from_row
        from ..analysis.explorer import explorer_document, explorer_html
        from ..io import atomic_write_text, read_json

        _, records, _ = _records(params, results_dir)
        phases = read_json(phases_json)
        sweep, page_dir = phases["settings"]["sweep"], Path(out).resolve().parent

        def path(row) -> Path:
            return cell_path(results_dir, cell_from_row(row, sweep), row.get("round", 0), row.get("budget_multiple", 1))

        doc = explorer_document(
            phases, lambda row: records[cell_from_row(row, sweep)]["curves"],
            lambda row: os.path.relpath(path(row).resolve(), page_dir),
            params["phases"]["accuracy_threshold"], text_of=lambda row: path(row).read_bytes())
        title = f"grokmap sweep explorer: {params['task']['name']}, {params['model']['name']}"
        html = explorer_html(doc, Path(renderer).read_text(encoding="utf8"), title)
        atomic_write_text(out, html)
        log.info("explorer: %d cells, %d points per curve, %.1f MB", doc["info"]["n_cells"],
                 doc["info"]["points_per_curve"], len(html.encode()) / 1e6)

    run_step(log_path, log_level, work)


def write_report(params: Mapping, results_dir: str, phases_json: str, metadata_out: str, report_out: str,
                 figures: Mapping[str, str], explorer: str | None, log_path: str | None = None,
                 log_level: str = "INFO") -> None:
    """metadata.json and report.md (``figures``: title -> path, linked relative to the report)."""
    def work():
        from ..analysis.report import build_metadata, render_report
        from ..io import atomic_write_json, atomic_write_text, read_json

        _, records, _ = _records(params, results_dir)
        phases = read_json(phases_json)
        metadata = build_metadata(params, phases, [r["train_seconds"] for r in records.values()],
                                  [r.get("machine") for r in records.values()], [r.get("kernel") for r in records.values()],
                                  efficiency=_efficiency(params, records))
        atomic_write_json(metadata_out, metadata)
        report_dir = Path(report_out).parent.resolve()
        linked = {title: str(Path(path).resolve().relative_to(report_dir)) for title, path in figures.items()}
        page = str(Path(explorer).resolve().relative_to(report_dir)) if explorer else None
        atomic_write_text(report_out, render_report(phases, metadata, linked, page))

    run_step(log_path, log_level, work)


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


def validate_results(params: Mapping, results_dir: str, phases_json: str, metrics_json: str, metadata: str,
                     out: str, remove_on_failure: Sequence[str] = (), log_path: str | None = None,
                     log_level: str = "INFO", explorer: str | None = None) -> None:
    """Check that every aggregated output agrees with the cell records (the independent
    validator, :mod:`grokmap.analysis.validate`); write validation.json only when all pass."""
    def work():
        from ..analysis.aggregate import REFINED, round_file
        from ..analysis.validate import validate_outputs
        from ..io import atomic_write_json, read_json

        # the records at the cells' own budget: the validator re-derives the extension rounds from them
        grid, records, _ = _records({**params, "extend": {**params["extend"], "rounds": 0}}, results_dir)
        files = {"phases.csv": Path(phases_json).with_name("phases.csv").read_text()}
        if explorer:
            files["explorer.html"] = Path(explorer).read_text(encoding="utf8")
        steps_csv = Path(results_dir) / "figures" / "grokking_steps.csv"
        if steps_csv.exists():
            files["figures/grokking_steps.csv"] = steps_csv.read_text()
        if params["extend"]["rounds"]:
            files["extension"] = _extension_files(results_dir, params, grid)
        summary = Path(results_dir) / REFINED / "summary.json"
        if summary.exists():
            files["refined/summary.json"] = read_json(summary)
        extended = Path(results_dir) / "extended" / "summary.json"
        if extended.exists():
            files["extended/summary.json"] = read_json(extended)
        files["round files"] = {r: str(round_file(results_dir, r, params))
                                for r in range(1, params["refine"]["rounds"] + 1)}
        checks = validate_outputs(grid, records, read_json(phases_json),
                                  read_json(metrics_json), read_json(metadata), params, files)
        for c in checks:
            log.info("%s %s %s", "ok  " if c["ok"] else "FAIL", c["check"], c["detail"])
        failed = [c for c in checks if not c["ok"]]
        if failed:
            raise RuntimeError("validation failed: " + "; ".join(
                f"{c['check']} ({c['detail']})" for c in failed))
        atomic_write_json(out, {"passed": True, "checks": checks,
                                "validated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        log.info("Validation passed: %d checks", len(checks))

    run_step(log_path, log_level, work, remove_on_failure)
