"""Training one sweep cell as a workflow job: :func:`train_cell_job` (called in-process by
the ``train_cell`` rule) and :func:`train_cell_main` (the same, from a command line:
``scripts/train_cell.py``).

Kept apart from the aggregation entry points in :mod:`grokmap.cli` because its source is
part of the training fingerprint: editing it retrains cells, editing those does not.

Several cells may train at once in threads of one process (the workflow runs its cell jobs
that way so ``import torch`` is paid once per sweep, not once per cell): each job logs to
its own file through its own logger and touches no process-wide state except torch's
thread count, which every cell job of a run sets to the same value.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

__all__ = ["train_cell_job", "train_stack_job", "train_cell_main"]

_FORMAT = "%(asctime)s %(levelname)s %(message)s"
PROGRESS_SECONDS = 60.0  # a cell logs its accuracies at most this often


class CellJobError(RuntimeError):
    """A cell job failed; the message names the cell and its log file."""


def _run_logged(label: str, log_path: str | None, log_level: str, work) -> None:
    """``work(log)`` with its own logger to ``log_path`` (stderr if None); a failure becomes
    a CellJobError naming ``label`` and the log."""
    # Its own logger, outside logging's registry: nothing shared with other cells' threads,
    # and nothing left behind per cell in a long in-process sweep.
    log = logging.Logger(f"grokmap.cell.{label}", getattr(logging, log_level.upper(), logging.INFO))
    handler = logging.FileHandler(log_path, mode="w") if log_path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    log.addHandler(handler)
    try:
        work(log)
    except Exception as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        where = f"; log: {log_path}" if log_path else ""
        raise CellJobError(f"{label} failed: {type(exc).__name__}: {exc}{where}") from exc
    finally:
        log.removeHandler(handler)
        handler.close()


def train_cell_job(wildcards: dict, settings_json: str, threads: int, out: str, fingerprint_out: str,
                   log_path: str | None = None, log_level: str = "INFO") -> None:
    """Train the cell named by ``wildcards`` (path spellings of its axes: extra axes such as
    ``training_optimizer``, then wd/frac/width/seed) and write ``out`` then ``fingerprint_out``
    atomically. Logs to ``log_path`` (stderr if None)."""
    given = {k: str(v) for k, v in dict(wildcards).items()}
    label = "cell " + "/".join(f"{k}={v}" for k, v in given.items())
    _run_logged(label, log_path, log_level, lambda log: _train(
        given, json.loads(settings_json), threads, Path(out), Path(fingerprint_out), log))


def train_stack_job(cells_wildcards: list, settings_json: str, threads: int, outs: list, fingerprint_outs: list,
                    log_path: str | None = None, log_level: str = "INFO") -> None:
    """Train several cells (S3's model) as one stacked computation; each cell still gets its own
    two files, written atomically as for :func:`train_cell_job`."""
    label = f"stack of {len(cells_wildcards)} cells"
    _run_logged(label, log_path, log_level, lambda log: _train_stack(
        [{k: str(v) for k, v in dict(w).items()} for w in cells_wildcards], json.loads(settings_json),
        threads, [Path(o) for o in outs], [Path(f) for f in fingerprint_outs], log))


def _prepare(given: dict, settings: dict, threads: int, fp_path: Path):
    """(cell, fingerprint, fingerprint document) after checking the path spellings and that the
    workflow asked for this job's fingerprint file."""
    import torch

    from .fingerprint import fingerprint, fingerprint_filename, training_code_files
    from .grid import cell_from_wildcards

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    cell = cell_from_wildcards(given)
    for short, text in cell.wildcards.items():
        if given.get(short) != text:
            raise ValueError(f"{short}={given[short]} is not the canonical spelling {text!r}")
    fp, fp_doc = fingerprint(settings, training_code_files())
    if fp_path.name != fingerprint_filename(fp):
        raise ValueError(f"{fp_path.name} does not match this job's fingerprint {fp[:16]}: the "
                         f"workflow and this job see different settings or code")
    return cell, fp, fp_doc


def _write(record: dict, fp: str, fp_doc: dict, out: Path, fp_path: Path) -> None:
    from .fingerprint import dumps_with_fingerprint
    from .io import atomic_write_json, atomic_write_text

    atomic_write_text(out, dumps_with_fingerprint(fp, record))
    # Written last: a cell counts as done under this fingerprint only once both exist.
    atomic_write_json(fp_path, {"fingerprint": fp, **fp_doc})
    for old in fp_path.parent.glob("fingerprint-*.json"):
        if old != fp_path:
            old.unlink(missing_ok=True)


def _check_written(files: list) -> None:
    """Every output of the job is on disk at its end: a cell directory deleted while the job ran
    (after its files were written) is named here instead of surfacing as Snakemake's
    'filesystem latency' guess."""
    gone = [str(f) for f in files if not Path(f).exists()]
    if gone:
        raise FileNotFoundError(f"{len(gone)} output file(s) were deleted while this job ran, e.g. {gone[0]} "
                                f"(was its cell directory removed?); run the same command again to retrain "
                                f"the cell(s)")


def _train(given: dict, settings: dict, threads: int, out: Path, fp_path: Path, log: logging.Logger) -> None:
    from .cells import run_cell

    cell, fp, fp_doc = _prepare(given, settings, threads, fp_path)
    log.info("training %s (fingerprint %s, process %d)", cell.relpath, fp[:12], os.getpid())
    last = [time.monotonic()]

    def progress(epoch, m):
        """A line per minute of training: long cells (S2's run for hours) show they advance."""
        now = time.monotonic()
        if now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            log.info("epoch %s train_acc %.3f test_acc %.3f", epoch, m["train_acc"], m["test_acc"])

    record = run_cell(settings, cell, fp, progress)
    _write(record, fp, fp_doc, out, fp_path)
    _check_written([out, fp_path])
    log.info("done in %.1f s (%d epochs)", record["wall_seconds"], record["epochs_run"])


def _train_stack(given: list, settings: dict, threads: int, outs: list, fp_paths: list,
                 log: logging.Logger) -> None:
    import time

    from .cells import run_stack

    prepared = [_prepare(g, settings, threads, f) for g, f in zip(given, fp_paths)]
    cells = [c for c, _, _ in prepared]
    fp, fp_doc = prepared[0][1], prepared[0][2]
    log.info("training %d cells as one stack (fingerprint %s, process %d), from %s to %s", len(cells), fp[:12],
             os.getpid(), cells[0].relpath, cells[-1].relpath)
    for c in cells:
        log.debug("in this stack: %s", c.relpath)
    started = time.perf_counter()
    files = {c: (o, f) for c, o, f in zip(cells, outs, fp_paths)}
    # each cell's files are written as soon as it finishes: a killed job keeps those cells
    run_stack(settings, cells, fp, log.info, lambda cell, record: _write(record, fp, fp_doc, *files[cell]))
    seconds = time.perf_counter() - started
    _check_written([*outs, *fp_paths])
    log.info("done in %.1f s (%.3f s per cell)", seconds, seconds / len(cells))


def train_cell_main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Train one sweep cell and write its metrics.json atomically.")
    for short in ("wd", "frac", "width", "seed"):
        p.add_argument(f"--{short}", required=True, help="value as spelled in the cell path")
    p.add_argument("--axis", action="append", default=[], metavar="NAME=VALUE",
                   help="an extra sweep axis as spelled in the cell path, e.g. training_optimizer=sgd")
    p.add_argument("--settings", required=True, help="JSON of params.yaml task/model/training")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--fingerprint-out", required=True,
                   help="fingerprint-<first 16 hex>.json beside --out; written last")
    p.add_argument("--log", default=None, help="log file (default: stderr)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    try:
        extra = dict(a.split("=", 1) for a in args.axis)
        train_cell_job({**extra, **{k: getattr(args, k) for k in ("wd", "frac", "width", "seed")}},
                       args.settings,
                       args.threads, args.out, args.fingerprint_out, args.log, args.log_level)
    except CellJobError as exc:
        if args.log_level.upper() == "DEBUG":
            raise
        print(exc, file=sys.stderr)
        return 1
    return 0
