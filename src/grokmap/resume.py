"""Resuming after a crash: recognise the scheduler lock left by a killed run.

The scheduler records its PID and process start time while it runs. A lock whose
recorded scheduler no longer exists (SIGKILL, power loss) is stale and may be removed,
so the same command resumes the sweep; a lock held by a live process is left alone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

__all__ = ["record_scheduler", "forget_scheduler", "remove_stale_lock"]

_PIDFILE = "grokmap-scheduler.pid"


def _start_time(pid: int) -> Optional[str]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time since boot


def record_scheduler(state_dir: str | os.PathLike, pid: int | None = None) -> None:
    pid = pid or os.getpid()
    path = Path(state_dir) / _PIDFILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid} {_start_time(pid) or '?'}\n")


def forget_scheduler(state_dir: str | os.PathLike) -> None:
    (Path(state_dir) / _PIDFILE).unlink(missing_ok=True)


def remove_stale_lock(state_dir: str | os.PathLike) -> Optional[int]:
    """Delete ``locks/*.lock`` if the run that wrote them is dead; return its PID, else None."""
    state_dir = Path(state_dir)
    locks = list((state_dir / "locks").glob("*.lock"))
    pidfile = state_dir / _PIDFILE
    if not locks or not pidfile.exists():
        return None
    try:
        pid_text, start = pidfile.read_text().split()
        pid = int(pid_text)
    except ValueError:
        return None
    if _start_time(pid) is not None and _start_time(pid) == start:
        return None  # that scheduler is still running
    for lock in locks:
        lock.unlink(missing_ok=True)
    pidfile.unlink(missing_ok=True)
    return pid


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
        if not marker.is_file():
            continue
        parts = marker.relative_to(root).parts
        b64 = "".join(p[1:] if p.startswith("@") else p for p in parts)
        try:
            out[base64.urlsafe_b64decode(b64).decode()] = marker
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
    return out


def repair_incomplete(state_dir: str | os.PathLike, is_complete) -> tuple[list[str], list[str]]:
    """After a crash: keep outputs ``is_complete(path)`` vouches for, delete the others.

    Call only when no scheduler is running. Returns (kept, deleted) paths. Files that do
    not exist need nothing: Snakemake reruns their jobs anyway.
    """
    kept, deleted = [], []
    for path, marker in incomplete_markers(state_dir).items():
        if os.path.exists(path):
            if is_complete(path):
                kept.append(path)
            else:
                os.unlink(path)
                deleted.append(path)
        marker.unlink(missing_ok=True)
    return kept, deleted


def scheduler_running(state_dir: str | os.PathLike) -> bool:
    """True while a lock is held (call after :func:`remove_stale_lock`)."""
    return any((Path(state_dir) / "locks").glob("*.lock"))
