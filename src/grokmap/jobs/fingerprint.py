"""Training fingerprints: which settings and which code produced a cell.

A cell's fingerprint is the SHA-256 of the params.yaml sections every cell reads
(task, model, training) and of the source of every module of the ``training/`` folder
(everything that decides a cell's numbers lives there). It is
the first key of each ``metrics.json``, so the workflow can tell a current cell from a
stale one by reading a few bytes, and decide per cell what to retrain from the files
themselves: after ``git checkout`` + ``dvc checkout`` of an earlier sweep the restored
cells carry that sweep's fingerprint and count as current, whatever the scheduler
remembers of later runs.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterable, Optional

__all__ = ["TRAINING_DIR", "training_code_files", "fingerprint", "read_fingerprint",
           "dumps_with_fingerprint", "fingerprint_filename", "cell_files_complete"]

# The folder whose code decides a cell's numbers.
TRAINING_DIR = Path(__file__).resolve().parent.parent / "training"

_HEAD = re.compile(rb'^\{"fingerprint": "([0-9a-f]{64})"')


def training_code_files(training_dir: Path | str | None = None) -> list[Path]:
    """Every module of the training folder and the C source it builds (``engines/tail.c``), sorted."""
    root = Path(training_dir or TRAINING_DIR)
    return sorted([*root.rglob("*.py"), *root.rglob("*.c")])


def fingerprint(settings: dict, code_files: Iterable[Path]) -> tuple[str, dict]:
    """(hex digest, the document it is the digest of)."""
    files = [Path(f) for f in code_files]
    root = Path(os.path.commonpath([f.parent for f in files])) if files else Path(".")  # named from there
    code = {Path(f).relative_to(root).as_posix(): hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files}
    doc = {"settings": settings, "code_sha256": dict(sorted(code.items()))}
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return digest, doc


def dumps_with_fingerprint(fp: str, record: dict) -> str:
    """JSON text of ``record`` with ``"fingerprint"`` as its first key."""
    rest = {k: v for k, v in record.items() if k != "fingerprint"}
    body = json.dumps(rest, indent=1, sort_keys=True, allow_nan=True)
    return '{"fingerprint": ' + json.dumps(fp) + (",\n" + body[1:] if rest else "}") + "\n"


def read_fingerprint(path: Path | str) -> Optional[str]:
    """The fingerprint at the head of a cell file; None if absent, unreadable or foreign."""
    try:
        with open(path, "rb") as fh:
            m = _HEAD.match(fh.read(96))
    except OSError:
        return None
    return m.group(1).decode() if m else None


def fingerprint_filename(fp: str) -> str:
    """Name of the file a cell writes beside metrics.json once it is finished under ``fp``."""
    return f"fingerprint-{fp[:16]}.json"


def cell_files_complete(path: Path | str) -> bool:
    """True if ``path`` is one of a cell's two files and both are written and agree.

    Used after a crash to tell a finished cell from one killed between its two writes.
    """
    cell_dir = Path(path).parent
    fp = read_fingerprint(cell_dir / "metrics.json")
    if not fp or Path(path).name not in ("metrics.json", fingerprint_filename(fp)):
        return False
    try:
        return json.loads((cell_dir / fingerprint_filename(fp)).read_text())["fingerprint"] == fp
    except (OSError, ValueError, KeyError):
        return False
