"""The fused engine's float32 elementwise tail as a hand-written C loop (``tail.c``).

Built with the C compiler (``$CC``, else ``gcc``) on first use, into this user's private cache
(:func:`grokmap.cache.private_dir`: ``$GROKMAP_CACHE``, else ``$XDG_CACHE_HOME/grokmap``, else
``~/.cache/grokmap``, subfolder ``tail``; a folder that is not private is refused and the library
is built into a fresh private temporary folder instead), one file per source, flags, compiler and
CPU (``-march=native``: a node of another CPU kind builds its own); written atomically, so
processes and threads that build at once all end with the same file. Beside each library a
stamp holds its size and SHA-256; a cached library whose bytes do not match its stamp (empty,
truncated, replaced) is built again, never loaded. The compiler gets a time limit.
Called through ctypes, which releases the interpreter lock, so cells in threads overlap.

Without a usable compiler (none, one that hangs, fails or writes nothing) the fused step keeps
torch's kernels for the tail (a warning says so once, and the record names the kernel,
``fused/torch_tail``); results then differ by float rounding only.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Optional

import torch

from ...cache import CacheRefused, private_dir, scratch_dir

__all__ = ["SOURCE", "FLAGS", "COMPILE_SECONDS", "library", "softmax_minus_onehot"]

SOURCE = Path(__file__).with_name("tail.c")
# -ffast-math is deliberately absent (see tail.c); -fopenmp-simd honours the loops' simd pragmas
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-shared", "-fPIC")
COMPILE_SECONDS = 120  # a compiler that takes longer is given up (tail.c builds in about a second)
_LOCK = threading.Lock()
_LIB: Optional[ctypes.CDLL] = None
_TRIED = False
log = logging.getLogger(__name__)


def _cpu() -> bytes:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line.encode()
    except OSError:
        pass
    return platform.processor().encode()


def _digest(path: Path) -> dict:
    data = path.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _verified(lib: Path, stamp: Path) -> bool:
    """The cached library exists, is not empty, and its bytes are those its stamp names."""
    try:
        want = json.loads(stamp.read_text())
        return want["size"] > 0 and _digest(lib) == want
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _folder() -> Path:
    try:
        return private_dir("tail")
    except CacheRefused as err:
        log.warning("the C tail is built in a private temporary folder, not the cache: %s", err)
        return scratch_dir("tail")


def _build() -> Path:
    cc = shutil.which(os.environ.get("CC") or "gcc")
    if cc is None:
        raise OSError(f"no C compiler ({os.environ.get('CC') or 'gcc'}) on PATH")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True,
                             timeout=COMPILE_SECONDS).stdout.split("\n")[0]
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join(FLAGS).encode(), version.encode(), _cpu(),
                                     platform.machine().encode()])).hexdigest()[:16]
    folder = _folder()
    out, stamp = folder / f"tail-{key}.so", folder / f"tail-{key}.json"
    if _verified(out, stamp):
        return out
    fd, tmp = tempfile.mkstemp(prefix=".tail-", suffix=".so.tmp", dir=folder)
    os.close(fd)
    try:
        subprocess.run([cc, *FLAGS, str(SOURCE), "-o", tmp, "-lm"], capture_output=True, text=True, check=True,
                       timeout=COMPILE_SECONDS)
        digest = _digest(Path(tmp))
        if not digest["size"]:
            raise OSError(f"{cc} wrote an empty library")
        os.replace(tmp, out)
        sfd, stmp = tempfile.mkstemp(prefix=".tail-", suffix=".json.tmp", dir=folder)
        with os.fdopen(sfd, "w") as fh:
            json.dump(digest, fh)
        os.replace(stmp, stamp)  # written last: a library without its stamp is built again
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if not _verified(out, stamp):  # another process replaced it between the two renames: build again next time
        raise OSError(f"{out}: changed while it was written")
    return out


def library() -> Optional[ctypes.CDLL]:
    """The built kernel, or None (and one warning) when it cannot be built here."""
    global _LIB, _TRIED
    if not _TRIED:
        with _LOCK:
            if not _TRIED:
                try:
                    lib = ctypes.CDLL(str(_build()))
                    lib.softmax_minus_onehot.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                                         ctypes.c_int64, ctypes.c_float]
                    lib.softmax_minus_onehot.restype = None
                    _LIB = lib
                except (OSError, AttributeError, subprocess.SubprocessError) as e:  # AttributeError: no such symbol
                    detail = (e.stderr if isinstance(e, subprocess.CalledProcessError) else "") or str(e)
                    log.warning("the fused float32 step keeps torch's kernels for its softmax tail: "
                                "tail.c could not be built (%s)", detail.strip().split("\n")[-1])
                _TRIED = True
    return _LIB


def softmax_minus_onehot(logits: torch.Tensor, y: torch.Tensor, inv_n: float) -> bool:
    """Overwrite the contiguous float32 (m, p) ``logits`` with (softmax - onehot(y)) * inv_n;
    False (nothing written) when the kernel is not available."""
    lib = library()
    if lib is None:
        return False
    if not (logits.dtype == torch.float32 and logits.is_contiguous() and y.dtype == torch.int64
            and y.is_contiguous() and logits.dim() == 2 and y.numel() == logits.shape[0]):
        raise ValueError("softmax_minus_onehot: needs contiguous float32 (m, p) logits and m int64 labels")
    lib.softmax_minus_onehot(logits.data_ptr(), y.data_ptr(), logits.shape[0], logits.shape[1], inv_n)
    return True
