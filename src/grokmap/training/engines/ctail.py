"""The fused engine's float32 elementwise tail as a hand-written C loop (``tail.c``).

Built with the C compiler (``$CC``, else ``gcc``) on first use, into a per-user cache
(``$GROKMAP_CACHE``, else ``$XDG_CACHE_HOME/grokmap``, else ``~/.cache/grokmap``), one file per
source, flags, compiler and CPU (``-march=native``: a node of another CPU kind builds its own);
written atomically, so processes and threads that build at once all end with the same file.
Called through ctypes, which releases the interpreter lock, so cells in threads overlap.

Without a compiler the fused step keeps torch's kernels for the tail (a warning says so once);
results then differ by float rounding only, as they do between machines.
"""
from __future__ import annotations

import ctypes
import hashlib
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

__all__ = ["SOURCE", "FLAGS", "library", "softmax_minus_onehot"]

SOURCE = Path(__file__).with_name("tail.c")
# -ffast-math is deliberately absent (see tail.c); -fopenmp-simd honours the loops' simd pragmas
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-shared", "-fPIC")
_LOCK = threading.Lock()
_LIB: Optional[ctypes.CDLL] = None
_TRIED = False
log = logging.getLogger(__name__)


def _cache_dir() -> Path:
    if os.environ.get("GROKMAP_CACHE"):
        return Path(os.environ["GROKMAP_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "grokmap"


def _cpu() -> bytes:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line.encode()
    except OSError:
        pass
    return platform.processor().encode()


def _build() -> Path:
    cc = shutil.which(os.environ.get("CC") or "gcc")
    if cc is None:
        raise OSError(f"no C compiler ({os.environ.get('CC') or 'gcc'}) on PATH")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join(FLAGS).encode(), version.encode(), _cpu(),
                                     platform.machine().encode()])).hexdigest()[:16]
    out = _cache_dir() / f"tail-{key}.so"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tail-", suffix=".so.tmp", dir=out.parent)
        os.close(fd)
        try:
            subprocess.run([cc, *FLAGS, str(SOURCE), "-o", tmp, "-lm"], capture_output=True, text=True, check=True)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
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
                except (OSError, subprocess.CalledProcessError) as e:
                    detail = getattr(e, "stderr", "") or str(e)
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
