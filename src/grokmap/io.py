"""Atomic file writes and the run-environment facts recorded with every result."""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Seconds to wait between writing the temporary file and renaming it (tests only).
_PAUSE = os.environ.get("GROKMAP_TEST_PAUSE_BEFORE_RENAME")

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_write_json", "read_json", "package_versions"]


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would race with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of the text in UTF-8."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temporary file in the same directory, fsync, then rename over ``path``.

    A reader (or a resumed sweep) sees either the old file, no file, or the whole new
    file, never a half-written one, even if the process is killed mid-write. The file gets
    the permissions any new file of the process gets (0666 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results get the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if _PAUSE:  # fault injection for the kill tests: widen the mid-write window
            time.sleep(float(_PAUSE))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as fh:
        return json.load(fh)


def package_versions() -> dict:
    """Versions of the packages that can change a number in a result."""
    import numpy
    import torch

    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform()}
