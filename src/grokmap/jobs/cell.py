"""Training cells as a workflow job: :func:`train_job` (called in-process by the ``train_cell``
and ``train_stack_*`` rules, with the cells' specifications resolved once by the workflow) and
:func:`train_cell_main` (one cell from a command line: ``scripts/train_cell.py``).

Several jobs may train at once in threads of one process (the workflow runs its cell jobs that
way so ``import torch`` is paid once per sweep, not once per cell): each job logs to its own
file through its own logger and touches no process-wide state except torch's thread count,
which every cell job of a run sets to the same value.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Sequence

from ..training.spec import CellSpec
from .resume import release_finished

__all__ = ["CellJobError", "train_job", "extend_job", "train_cell_job", "spec_from_wildcards", "train_cell_main",
           "PROGRESS_SECONDS", "STATE_FILE", "STATE_FORMAT", "save_state", "load_state"]

_FORMAT = "%(asctime)s %(levelname)s %(message)s"
PROGRESS_SECONDS = 60.0  # a job logs its progress at most this often


class CellJobError(RuntimeError):
    """A cell job failed; the message names the cell(s) and the log file."""


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


STATE_FILE = "state.pt"  # beside a cell's metrics.json: what an extension round continues from
STATE_FORMAT = "grokmap.state/1"


def save_state(path: Path, state: dict) -> dict:
    """Write a cell's final state (tensors and numbers only) atomically; its description for the
    record: file name, SHA-256 and size. An extension round loads it only when the record it
    continues names these bytes (:func:`load_state`)."""
    import hashlib
    import io

    import torch

    from ..io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"format": STATE_FORMAT, **state}, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def load_state(path: Path, described: dict | None) -> dict:
    """A cell's saved state, after checking its bytes are those its record names (a stale,
    replaced or hand-edited file is refused). Loaded with ``weights_only``: tensors and numbers,
    never code."""
    import hashlib
    import io

    import torch

    if not isinstance(described, dict) or "sha256" not in described:
        raise ValueError(f"{path.parent / 'metrics.json'} names no saved state (a cell of an engine that stacks "
                         f"cells, or trained before states were kept): it cannot be continued; retrain it")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: missing; the cell cannot be continued until it is retrained") from None
    if hashlib.sha256(data).hexdigest() != described["sha256"]:
        raise ValueError(f"{path}: not the state its record names (SHA-256 differs): refusing to continue from it; "
                         f"delete the cell directory and rerun to retrain it")
    state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")  # a GPU run's state too
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: not a {STATE_FORMAT} file")
    return state


def _write(record: dict, fp: str, fp_doc: dict, out: Path, fp_path: Path, state: dict | None = None) -> None:
    from .fingerprint import dumps_with_fingerprint
    from ..io import atomic_write_json, atomic_write_text

    if state is not None:
        record = {**record, "state": save_state(out.with_name(STATE_FILE), state)}
    atomic_write_text(out, dumps_with_fingerprint(fp, record))
    # The scheduler's "unfinished" marks go before the last file: a kill from here on either finds
    # the cell done or its fingerprint file missing (then the job runs again), never done but marked.
    release_finished([out, out.with_name(STATE_FILE), fp_path])
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


def _progress(log: logging.Logger, n_cells: int):
    """A line per minute of training: long cells (S2's run for hours) show they advance."""
    last = [time.monotonic()]

    def report(step: int, total: int, live: list) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_SECONDS:
            return
        last[0] = now
        if n_cells == 1:
            c = live[0].curves
            log.info("epoch %s (step %d of %d) train_acc %.3f test_acc %.3f", c["epoch"][-1], step, total,
                     c["train_acc"][-1], c["test_acc"][-1])
        else:
            log.info("step %d of %d: %d of %d cells still training", step, total, len(live), n_cells)

    return report


def _train(specs: list, fp: str, fp_doc: dict, outs: Sequence, fp_outs: Sequence, threads: int,
           log: logging.Logger, resume: dict | None = None, extended_from: dict | None = None,
           device: str = "cpu") -> None:
    import torch

    from ..training.engines import engine_for
    from ..training.record import train_records
    from .fingerprint import fingerprint_filename

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    files = {s.cell: (Path(o), Path(f)) for s, o, f in zip(specs, outs, fp_outs)}
    for _, fp_path in files.values():
        if fp_path.name != fingerprint_filename(fp):
            raise ValueError(f"{fp_path.name} does not match this job's fingerprint {fp[:16]}: the "
                             f"workflow and this job see different settings or code")
    stack = engine_for(specs[0]).stacks  # an engine that stacks logs as a stack, whatever its size
    if resume is not None:
        log.info("continuing %s from step %d to step %d (fingerprint %s, process %d)", specs[0].cell.relpath,
                 resume["curves"]["step"][-1], specs[0].total_steps, fp[:12], os.getpid())
    elif not stack:
        log.info("training %s (fingerprint %s, process %d)", specs[0].cell.relpath, fp[:12], os.getpid())
    else:
        log.info("training %d cells as one stack (fingerprint %s, process %d), from %s to %s", len(specs),
                 fp[:12], os.getpid(), specs[0].cell.relpath, specs[-1].cell.relpath)
        for s in specs:
            log.debug("in this stack: %s", s.cell.relpath)
    started = time.perf_counter()
    # each cell's files are written as soon as it finishes: a killed stack keeps those cells
    extra = {"extended_from": extended_from} if extended_from else {}
    records = train_records(specs, fp, _progress(log, len(specs)),
                            lambda spec, record, state: _write({**record, **extra}, fp, fp_doc, *files[spec.cell],
                                                               state=state), resume=resume, device=device)
    _check_written([f for pair in files.values() for f in pair])
    seconds = time.perf_counter() - started
    if not stack:
        log.info("done in %.1f s (%d epochs)", records[0]["wall_seconds"], records[0]["epochs_run"])
    else:
        log.info("done in %.1f s (%.3f s per cell)", seconds, seconds / len(specs))


def train_job(specs: Sequence[CellSpec], fp: str, fp_doc: dict, outs: Sequence, fp_outs: Sequence, threads: int,
              log_path: str | None = None, log_level: str = "INFO", device: str = "cpu") -> None:
    """Train ``specs`` together (one cell, or a stack of cells one engine trains at once) and write
    each cell's ``metrics.json`` (``outs``) then its fingerprint file (``fp_outs``) atomically, as
    soon as the cell finishes. Logs to ``log_path`` (stderr if None). The workflow calls this in
    its own process with the specifications and fingerprint it resolved once."""
    specs = list(specs)
    label = f"cell {specs[0].cell.relpath}" if len(specs) == 1 else f"stack of {len(specs)} cells"
    _run_logged(label, log_path, log_level,
                lambda log: _train(specs, fp, fp_doc, outs, fp_outs, threads, log, device=device))


# a tile's marker: tile-<index>-<key>.done, or its generation N > 0, tile-<index>-<key>-g<N>.done
# (TILE_KEY: the key with its generation, the rule's wildcard constraint)
TILE_KEY = r"[0-9a-f]{12}(?:-g[0-9]+)?"
TILE_MARKER = re.compile(r"(?P<base>tile-[0-9]+-[0-9a-f]{12})(?:-g(?P<gen>[0-9]+))?\.done")


def train_marked_job(specs: Sequence[CellSpec], cells_root: str | Path, fp: str, fp_doc: dict, fp_file: str,
                     marker: str | Path, threads: int, log_path: str | None, log_level: str = "INFO",
                     device: str = "cpu") -> None:
    """Cells the workflow sees through one marker file (a refinement round's stack, or a tile of
    config.yaml tile_cells), below ``cells_root``: trains those whose two files are not complete
    (a job resumed after a kill skips the finished), together when their engine stacks cells and
    one after another otherwise (each exactly as its own job would, its files written as soon as
    it finishes), then checks every cell and writes ``marker`` naming them and those trained now."""
    from ..io import atomic_write_json
    from ..training.engines import engine_for
    from .fingerprint import cell_files_complete

    root = Path(cells_root)
    todo = [s for s in specs if not cell_files_complete(root / s.cell.relpath / fp_file)]
    groups = [todo] if todo and engine_for(todo[0]).stacks else [[s] for s in todo]
    for group in groups:
        train_job(group, fp, fp_doc, [str(root / s.cell.relpath / "metrics.json") for s in group],
                  [str(root / s.cell.relpath / fp_file) for s in group], threads, log_path, log_level, device)
    missing = [s.cell.relpath for s in specs if not cell_files_complete(root / s.cell.relpath / fp_file)]
    if missing:
        raise RuntimeError(f"{marker}: {len(missing)} cell(s) not complete after training, e.g. {missing[0]}")
    release_finished([marker])  # as _write does: a kill from here on leaves the marker missing, or done
    atomic_write_json(marker, {"cells": [s.cell.relpath for s in specs], "trained_now": [s.cell.relpath for s in todo]})
    _drop_older_generations(Path(marker))


def _drop_older_generations(marker: Path) -> None:
    """A tile's marker replaces its earlier generations (:data:`TILE_MARKER`: the plan names a new
    generation when a finished tile has a cell to train again)."""
    mine = TILE_MARKER.fullmatch(marker.name)
    if mine is None:
        return
    for other in marker.parent.glob(f"{mine['base']}*.done"):
        m = TILE_MARKER.fullmatch(other.name)
        if other != marker and m is not None and m["base"] == mine["base"]:
            other.unlink(missing_ok=True)


def extend_job(spec: CellSpec, multiple: int, source: str | Path, fp: str, fp_doc: dict, out: str | Path,
               fp_out: str | Path, threads: int, log_path: str | None = None, log_level: str = "INFO",
               device: str = "cpu") -> None:
    """Continue the cell whose record is ``source`` (its ``metrics.json``, with its saved state
    beside it) to ``spec``'s longer budget (``multiple`` times the cell's own, named in the record's
    ``extended_from``), writing its record like a cell job: the result is the
    record one uninterrupted run of the longer budget would write (curves bit for bit, on one CPU
    kind). The source must be this cell under the same fingerprint, run to its full budget."""
    from ..io import read_json

    source = Path(source)

    def work(log: logging.Logger) -> None:
        record = read_json(source)
        if record.get("fingerprint") != fp or record.get("cell") != spec.cell.as_dict():
            raise ValueError(f"{source}: not cell {spec.cell.relpath} under this fingerprint ({fp[:16]}); "
                             f"rerun to retrain it first")
        state = load_state(source.with_name(STATE_FILE), record.get("state"))
        steps = record["curves"]["step"]
        from_ = {"multiple": int(multiple), "epochs": record["epochs_run"], "steps": steps[-1],
                 "state_sha256": record["state"]["sha256"]}
        _train([spec], fp, fp_doc, [out], [fp_out], threads, log,
               resume={"state": state, "curves": record["curves"]}, extended_from=from_, device=device)

    _run_logged(f"cell {spec.cell.relpath} (extended)", log_path, log_level, work)


def spec_from_wildcards(wildcards: dict, settings: dict) -> CellSpec:
    """The cell named by path spellings (extra axes such as ``training_optimizer``, then
    wd/frac/width/seed) under the shared settings, after checking the spellings are canonical."""
    from ..training.grid import cell_from_wildcards

    given = {k: str(v) for k, v in dict(wildcards).items()}
    cell = cell_from_wildcards(given)
    for short, text in cell.wildcards.items():
        if given.get(short) != text:
            raise ValueError(f"{short}={given[short]} is not the canonical spelling {text!r}")
    return CellSpec.of(settings, cell)


def train_cell_job(wildcards: dict, settings_json: str, threads: int, out: str, fingerprint_out: str,
                   log_path: str | None = None, log_level: str = "INFO") -> None:
    """One cell from its path spellings and the shared settings as JSON (the command line's job,
    e.g. on a cluster node): the cell's specification and the fingerprint are resolved here."""
    from .fingerprint import fingerprint, training_code_files

    given = {k: str(v) for k, v in dict(wildcards).items()}
    label = "cell " + "/".join(f"{k}={v}" for k, v in given.items())

    def work(log: logging.Logger) -> None:
        settings = json.loads(settings_json)
        spec = spec_from_wildcards(given, settings)
        fp, fp_doc = fingerprint(settings, training_code_files())
        _train([spec], fp, fp_doc, [out], [fingerprint_out], threads, log)

    _run_logged(label, log_path, log_level, work)


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
                       args.settings, args.threads, args.out, args.fingerprint_out, args.log, args.log_level)
    except CellJobError as exc:
        if args.log_level.upper() == "DEBUG":
            raise
        print(exc, file=sys.stderr)
        return 1
    return 0
