"""Resuming after a crash, with nothing deleted while the workflow is parsed.

Every run registers itself while it runs: one file per scheduler process in
``.snakemake/grokmap-runs/<pid>.run`` with its PID, process start time and results directory,
and holds the results directory's lock (:func:`hold_results_dir`), which the kernel drops when
the run dies, however it dies. So a second run on a live run's results directory is refused,
and Snakemake's own locks are off (``nolock`` in the workflow profiles): a killed run leaves none
behind. Snakemake redoes the outputs a killed run left unfinished when it runs their jobs
(``rerun-incomplete``); a job clears its own cells' markers before it writes their last file
(:func:`release_finished`), so a kill after a cell is done never redoes it; the dead run's registration is forgotten when the next run starts
(:func:`forget_dead_runs`, from ``onstart``). The same command resumes.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional

__all__ = ["record_scheduler", "forget_scheduler", "forget_dead_runs", "live_run_on",
           "incomplete_markers", "release_finished", "is_dry_run", "is_unlock", "hold_results_dir", "prepare_run",
           "RunRefused", "READ_ONLY", "RUN_LOCK"]

_RUNS = "grokmap-runs"


def _start_time(pid: int) -> Optional[str]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time since boot


def record_scheduler(state_dir: str | os.PathLike, results_dir: str | os.PathLike, pid: int | None = None) -> None:
    """Register this scheduler (or ``pid``) as writing ``results_dir``."""
    pid = pid or os.getpid()
    path = Path(state_dir) / _RUNS / f"{pid}.run"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid} {_start_time(pid) or '?'} {socket.gethostname()} {os.path.abspath(results_dir)}\n")


def forget_scheduler(state_dir: str | os.PathLike, pid: int | None = None) -> None:
    (Path(state_dir) / _RUNS / f"{pid or os.getpid()}.run").unlink(missing_ok=True)


def _runs(state_dir: str | os.PathLike) -> list[tuple[int, bool, str, Path]]:
    """(pid, alive, results directory, registration file) of every registered run. A run
    registered on another host (a cluster's submit node seen from a compute node) counts as
    alive: its process cannot be checked from here."""
    out, host = [], socket.gethostname()
    for path in sorted((Path(state_dir) / _RUNS).glob("*.run")):
        try:
            pid_text, start, where, results = path.read_text().rstrip("\n").split(" ", 3)
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        alive = where != host or (start != "?" and _start_time(pid) == start)
        out.append((pid, alive, results, path))
    return out


def _other_host(path: Path) -> str | None:
    """The host a registration names, when it is not this one."""
    try:
        where = path.read_text().split(" ", 3)[2]
    except (OSError, IndexError):
        return None
    return where if where != socket.gethostname() else None


def live_run_on(state_dir: str | os.PathLike, results_dir: str | os.PathLike) -> Optional[int]:
    """PID of a live run (not this process) writing ``results_dir``, or None."""
    target = os.path.abspath(results_dir)
    for pid, alive, results, _ in _runs(state_dir):
        if alive and results == target and pid != os.getpid():
            return pid
    return None


def incomplete_markers(state_dir: str | os.PathLike) -> dict[str, Path]:
    """Output path -> marker file, from Snakemake's file-based ``incomplete/`` records.

    Each marker is named by the urlsafe base64 of the output path, split into
    ``@``-prefixed directory parts when longer than a file name may be.
    """
    import base64
    import binascii

    root = Path(state_dir) / "incomplete"
    out = {}
    if not root.is_dir():
        return out
    for marker in root.rglob("*"):
        try:
            if not marker.is_file():
                continue
        except OSError:  # a marker removed while listing
            continue
        parts = marker.relative_to(root).parts
        b64 = "".join(p[1:] if p.startswith("@") else p for p in parts)
        try:
            out[base64.urlsafe_b64decode(b64).decode()] = marker
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
    return out


def release_finished(outputs, state_dir: str | os.PathLike = ".snakemake") -> int:
    """Remove Snakemake's incomplete markers of ``outputs`` (paths relative to the working
    directory, or absolute), returning how many it removed. A job calls it once the outputs it
    has written are complete and only the last one remains to be written: Snakemake removes the
    markers itself only after the job has returned and its metadata is recorded, so a run killed
    in between would leave a finished cell marked and the next run (``rerun-incomplete``) would
    train it again. A kill before the last output is written still redoes the job (that output is
    missing). No-op outside a Snakemake working directory."""
    wanted = {os.path.abspath(str(o)) for o in outputs}
    removed = 0
    for path, marker in incomplete_markers(state_dir).items():
        if os.path.abspath(path) in wanted:
            try:
                marker.unlink()
                removed += 1
            except FileNotFoundError:  # Snakemake got there first
                pass
    return removed


class RunRefused(RuntimeError):
    """Another live run is writing the results directory."""


# Snakemake options after which it only reads (plans, draws, reports, lists) and runs no job;
# --nolock is what Snakemake passes to the jobs it spawns inside a live run.
READ_ONLY = ("--dry-run", "--dryrun", "--nolock", "--report", "--report-stylesheet", "--rulegraph", "--dag",
             "--filegraph", "--d3dag", "--lint", "--summary", "--detailed-summary", "--list-rules", "--list",
             "--list-target-rules", "--lt", "--list-changes", "--lc", "--list-input-changes", "--li",
             "--list-params-changes", "--lp", "--list-code-changes", "--list-untracked", "--lu",
             "--print-compilation", "--containerize", "--export-cwl", "--archive", "--generate-unit-tests",
             "--cleanup-metadata", "--cm")
_READ_ONLY_SHORT = set("nSDl")  # -n, -S (--summary), -D (--detailed-summary), -l (--list-rules)


def is_dry_run(argv: list[str]) -> bool:
    """Whether a Snakemake command line runs no job: -n/--dry-run (also inside a bundle of short
    flags such as -np), --report, --rulegraph, --dag, --lint, the summaries and listings
    (:data:`READ_ONLY`). Such a command neither refuses nor repairs anything."""
    return any(a.split("=", 1)[0] in READ_ONLY
               or (a.startswith("-") and not a.startswith("--") and _READ_ONLY_SHORT & set(a[1:])) for a in argv)


def is_unlock(argv: list[str]) -> bool:
    return "--unlock" in argv


RUN_LOCK = ".grokmap-run.lock"  # in the results directory; held (flock) by the run writing it
_HELD: dict[str, int] = {}  # real path of a results directory -> the open lock file this process holds


def hold_results_dir(results_dir: str | os.PathLike) -> None:
    """Hold the results directory's run lock for the rest of this process (the scheduler), or
    refuse (:class:`RunRefused`) when another process holds it. The lock lives in the directory
    itself (its real path), so a second checkout writing the same absolute path, or a path that
    reaches it through a symbolic link, meets it too; the kernel drops it when its holder dies,
    however it dies, so a killed run never blocks the next."""
    import fcntl

    real = os.path.realpath(results_dir)
    if real in _HELD:
        return
    os.makedirs(real, exist_ok=True)
    fd = os.open(os.path.join(real, RUN_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunRefused(f"results_dir {str(results_dir)!r} is being written by a live run ({holder}, in {real}); "
                         f"allowed: wait for it to finish (or stop it), or choose another results_dir") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} from {os.getcwd()}\n".encode())
    _HELD[real] = fd


def prepare_run(state_dir: str | os.PathLike, results_dir: str | os.PathLike, dry_run: bool,
                unlock: bool = False) -> list[str]:
    """What every run does before Snakemake builds its graph, returning the lines to print: refuse
    (:class:`RunRefused`) when a live run writes ``results_dir`` (:func:`hold_results_dir`, and a
    run registered in this checkout), and say what a killed run left (read only: the next run
    redoes it, :func:`grokmap.jobs.plan.prepare`). A dry run (or a report, a graph, a lint:
    :func:`is_dry_run`) refuses and says nothing. ``unlock`` (``snakemake --unlock``, the user's
    explicit step): the registered runs this machine cannot check (on another host, e.g. a
    container) are gone, so they are forgotten."""
    if dry_run:
        return []
    if unlock:
        gone = [pid for pid, alive, _, path in _runs(state_dir) if alive and _other_host(path)]
        for path in [p for _, alive, _, p in _runs(state_dir) if alive and _other_host(p)]:
            path.unlink(missing_ok=True)
        return [f"[unlock] forgot {len(gone)} run(s) registered on another host (pid {', '.join(map(str, gone))})"
                ] if gone else []
    hold_results_dir(results_dir)
    live = live_run_on(state_dir, results_dir)
    if live:
        where = next((p for pid, _, _, p in _runs(state_dir) if pid == live), None)
        if where is not None and _other_host(where):
            raise RunRefused(f"results_dir {str(results_dir)!r} is registered to run pid {live} on host "
                             f"{_other_host(where)!r}, which this machine cannot check; allowed: if that run is "
                             f"gone (e.g. a container that was stopped), 'snakemake --unlock' forgets it")
        raise RunRefused(f"results_dir {str(results_dir)!r} is being written by a live run (pid {live}); "
                         f"allowed: wait for it to finish (or stop it), or choose another results_dir")
    lines = []
    dead = [pid for pid, alive, _, _ in _runs(state_dir) if not alive]
    if dead:
        lines.append(f"[resume] a killed run (pid {', '.join(map(str, dead))}) left its work: the finished cells "
                     f"are kept, the rest is trained now")
    target = os.path.abspath(results_dir)
    unfinished = [p for p in incomplete_markers(state_dir)
                  if os.path.exists(p) and os.path.abspath(p).startswith(target.rstrip(os.sep) + os.sep)]
    if unfinished:
        lines.append(f"[resume] after an interrupted run: {len(unfinished)} unfinished output(s) will be made again")
    return lines


def forget_dead_runs(state_dir: str | os.PathLike) -> list[int]:
    """Forget the registrations of runs that are dead (called when a run starts, not while the
    workflow is parsed); their PIDs."""
    dead = [(pid, path) for pid, alive, _, path in _runs(state_dir) if not alive]
    for _, path in dead:
        path.unlink(missing_ok=True)
    return [pid for pid, _ in dead]
