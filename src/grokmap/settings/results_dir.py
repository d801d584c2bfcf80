"""The results directory: one the workflow can own (no braces, paths the file system takes, no
one else's files in it), writable, and marked as the workflow's when a real run starts.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..training.grid import AXES, axis_name, extra_axes, spell
from .documents import SettingsError

__all__ = ["RESULTS_MARKER", "check_results_dir", "check_writable", "longest_cell_path", "mark_results_dir"]


RESULTS_MARKER = ".grokmap-results"  # written into every results directory the workflow uses
# What the workflow writes at the top of a results directory: a directory holding only these
# (made before the marker existed) is taken as the workflow's too.
_RESULT_ENTRIES = {"cells", "tiles", "refined", "extended", "logs", "figures", "phases.json", "phases.csv", "metrics.json", "validation.json",
                   "metadata.json", "report.md", "explorer.html", RESULTS_MARKER}
_TEMP_FILE = re.compile(r"^\..+\.tmp$")  # an atomic write's temporary file, left by a kill
_NAME_MAX, _PATH_MAX = 255, 4000  # bytes per path component; a whole path, with room to spare


def longest_cell_path(sweep: dict) -> str:
    """The longest path below results_dir that a cell of this sweep writes."""
    parts = [f"{axis_name(k)}={max((spell(v) for v in sweep[k]), key=len)}" for k in extra_axes(sweep)]
    parts += [f"{short}={max((spell(typ(v)) for v in sweep[name]), key=len)}" for name, short, typ in AXES]
    return "cells/" + "/".join(parts) + "/fingerprint-0123456789abcdef.json"


def check_results_dir(results_dir: str, label: str, longest_rel: str = "") -> None:
    """Refuse a results directory the workflow cannot own: braces (Snakemake reads them as
    wildcards), paths too long for the file system, and an existing directory with files the
    workflow did not write (e.g. '/', a home or system directory). A directory is the
    workflow's when it holds RESULTS_MARKER, or only names the workflow writes, or nothing."""
    def refuse(why: str, allowed: str):
        raise SettingsError(f"{label}: 'results_dir' = {results_dir!r} {why}; allowed: {allowed}")

    if not results_dir.strip():
        refuse("is empty", "a directory path")
    if "{" in results_dir or "}" in results_dir:
        refuse("contains '{' or '}' (Snakemake reads them as wildcards)", "a path without braces")
    full = os.path.join(results_dir, longest_rel)
    for part in Path(full).parts:
        if len(os.fsencode(part)) > _NAME_MAX:
            refuse(f"makes a path component of {len(os.fsencode(part))} bytes ({part[:40]}...)",
                   f"components of at most {_NAME_MAX} bytes")
    if len(os.fsencode(os.path.abspath(full))) > _PATH_MAX:
        refuse(f"makes cell paths of {len(os.fsencode(os.path.abspath(full)))} bytes",
               f"a shorter path (cell paths of at most {_PATH_MAX} bytes)")
    path = Path(os.path.abspath(results_dir))  # 'results/../..' is the directory two levels up
    if path.is_dir():
        try:
            foreign = _foreign_entries(path)
        except OSError as exc:
            refuse(f"cannot be listed ({exc.strerror})", "a readable directory")
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            refuse(f"already holds files the workflow did not write ({shown})",
                   f"a new or empty directory, or one the workflow made (it holds {RESULTS_MARKER})")


def _ours(entry: str) -> bool:
    return entry in _RESULT_ENTRIES or entry.startswith(".grokmap") or bool(_TEMP_FILE.match(entry))


def _is_results_tree(path: Path, depth: int) -> bool:
    """Whether a sub-directory holds only results directories (or is one)."""
    if (path / RESULTS_MARKER).exists():
        return True
    if depth <= 0 or path.is_symlink():
        return False
    try:
        return not _foreign_entries(path, depth)
    except OSError:
        return False


def _holds_cell_records(path: Path, budget: int = 5000) -> bool:
    """Whether ``cells/`` below ``path`` holds a finished cell (a fingerprint file), looking at
    no more than ``budget`` entries."""
    seen = 0
    for _, dirs, files in os.walk(path / "cells"):
        if any(f.startswith("fingerprint-") and f.endswith(".json") for f in files):
            return True
        seen += len(dirs) + len(files)
        if seen > budget:
            break
    return False


def _foreign_entries(path: Path, depth: int = 3) -> list[str]:
    """Entries of ``path`` the workflow did not write: none if it holds RESULTS_MARKER; else
    every name other than sub-directories that hold only results directories (e.g. results/
    holding the studies' results/<study>/), to ``depth`` levels, and the workflow's own names
    when its cell records are there too (a results directory restored by ``dvc checkout``,
    which does not track the marker). A report.md, metrics.json or figures/ with no cell records
    beside them are someone's own files, not the workflow's."""
    if (path / RESULTS_MARKER).exists():
        return []
    entries = sorted(os.listdir(path))
    subtree = {e for e in entries if (path / e).is_dir() and _is_results_tree(path / e, depth - 1)}
    ours = {e for e in entries if _ours(e)} if _holds_cell_records(path) else \
        {e for e in entries if e.startswith(".grokmap") or _TEMP_FILE.match(e)}
    return [e for e in entries if e not in subtree and e not in ours]


def mark_results_dir(results_dir: str | os.PathLike) -> None:
    """Make the directory and mark it as the workflow's (called when a real run starts)."""
    path = Path(results_dir)
    path.mkdir(parents=True, exist_ok=True)
    marker = path / RESULTS_MARKER
    if not marker.exists():
        marker.write_text("This directory is written by the grokmap workflow (README.md of the grokmap project, 'How it works').\n")


def check_writable(results_dir: str, label: str) -> None:
    """The directory, or its nearest existing parent, must be a writable directory."""
    probe = Path(results_dir)
    while not probe.exists():
        probe = probe.parent if probe.parent != probe else probe
        if probe == probe.parent:
            break
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise SettingsError(
            f"{label}: 'results_dir' = {results_dir!r} cannot be written "
            f"({probe} is not a writable directory); allowed: a writable directory path")
