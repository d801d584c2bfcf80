"""Private folders for code this process may load: torch.compile's generated code (cached at
run time) and the C tail's library (built at set-up, :mod:`grokmap.training.engines.ctail`).

A cache that holds code which this process will load must be writable by nobody else: a
library another local user placed there would run inside every training job. So a cache
folder is used only when it is a real directory (not a symbolic link), owned by this user,
with no permission for group or others, and its parent cannot be written by others unless it
is sticky (as /tmp is); it is created that way when missing. Anything else is refused: the
caller then builds into a fresh private temporary folder (:func:`scratch_dir`), slower but safe,
and says why once.

Where: ``$GROKMAP_CACHE``, else ``$XDG_CACHE_HOME/grokmap``, else ``~/.cache/grokmap``; each
user of it gets a subfolder (``inductor``). The C tail's folder is the environment's own
(``share/grokmap/tail``), checked by :func:`check_private` the same way.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

__all__ = ["CacheRefused", "cache_root", "check_private", "make_private", "private_dir", "scratch_dir"]


class CacheRefused(OSError):
    """A cache folder that is not private to this user, or that cannot be found or made."""


def cache_root() -> Path:
    for name, sub in (("GROKMAP_CACHE", ""), ("XDG_CACHE_HOME", "grokmap")):
        value = os.environ.get(name)
        if value:
            if not os.path.isabs(value):  # relative to wherever a job happens to run: refused
                raise CacheRefused(f"{name} = {value!r} is not an absolute path")
            return Path(value) / sub
    try:
        home = Path.home()
    except (RuntimeError, KeyError) as err:  # HOME unset and no password-file entry
        raise CacheRefused(f"no cache folder: HOME is unset and {err}") from None
    if not home.is_absolute():
        raise CacheRefused(f"no cache folder: HOME is {str(home)!r}, not an absolute path")
    return home / ".cache" / "grokmap"


def check_private(path: Path) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise CacheRefused(f"{path}: not a directory of its own (a link or a file)")
    if st.st_uid != os.geteuid():
        raise CacheRefused(f"{path}: owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})")
    if st.st_mode & 0o077:
        raise CacheRefused(f"{path}: mode {stat.S_IMODE(st.st_mode):o}; a code cache must be 700")
    parent = os.stat(path.parent)
    if parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX:
        raise CacheRefused(f"{path.parent}: writable by others and not sticky, so {path.name} could be replaced")


def private_dir(name: str) -> Path:
    """``<cache root>/<name>``, made 0700 if missing, checked private (:class:`CacheRefused`)."""
    return make_private(cache_root() / name, parents_mode=0o700)


def make_private(path: Path, parents_mode: int = 0o777) -> Path:
    """``path``, made 0700 if missing (its missing parents with ``parents_mode``, less the umask),
    then checked private (:class:`CacheRefused`)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=parents_mode)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        check_private(path)
    except CacheRefused:
        raise
    except OSError as err:
        raise CacheRefused(f"{path}: {err.strerror or err}") from None
    return path


def scratch_dir(name: str) -> Path:
    """A fresh private (0700) temporary folder for this process, when the cache is refused."""
    return Path(tempfile.mkdtemp(prefix=f"grokmap-{name}-"))
