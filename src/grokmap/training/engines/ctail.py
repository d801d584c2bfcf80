"""The fused engine's float32 elementwise tail as a hand-written C loop (``tail.c``).

The library is a declared artefact of the set-up, never built at run time:
``bash scripts/setup_env.sh`` runs ``python -m grokmap.training.engines.ctail``, which compiles
``tail.c`` with the C compiler (``$CC``, else ``gcc``; ``-march=native``) into the environment's
``share/grokmap/tail`` (:data:`FOLDER`, here ``.venv/share/grokmap/tail``), one file per source,
flags and CPU kind, with a stamp beside it holding its size, SHA-256 and the compiler that built it.
A training job only loads: the library named by this source, these flags and this CPU, from a
folder nobody else can write (:func:`grokmap.cache.check_private`), whose bytes match its stamp.
Anything else (not built, built for another source or CPU kind, emptied, altered, a folder others
can write) is never loaded; the fused step then keeps torch's kernels for the tail, one warning
says why and how to build it, and the record names the kernel (``fused/torch_tail``). Results
then differ by float rounding only.

Called through ctypes, which releases the interpreter lock, so cells in threads overlap.
Why this path and not torch.compile's: ``benchmarks/run.py --only kernels`` (docs/performance.md).
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Optional

import torch

from ...cache import check_private, make_private

__all__ = ["SOURCE", "FLAGS", "FOLDER", "COMPILE_SECONDS", "build", "library", "library_path",
           "softmax_minus_onehot"]

SOURCE = Path(__file__).with_name("tail.c")
# -ffast-math is deliberately absent (see tail.c); -fopenmp-simd honours the loops' simd pragmas
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-shared", "-fPIC")
FOLDER = Path(sys.prefix) / "share" / "grokmap" / "tail"
COMPILE_SECONDS = 120  # a compiler that takes longer is given up (tail.c builds in about a second)
SETUP = "bash scripts/setup_env.sh (or: python -m grokmap.training.engines.ctail)"
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


def library_path(folder: Optional[Path] = None) -> Path:
    """Where the library of this source, these flags and this CPU kind is (or would be) built."""
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join(FLAGS).encode(), _cpu(),
                                     platform.machine().encode()])).hexdigest()[:16]
    return (folder or FOLDER) / f"tail-{key}.so"


def _digest(path: Path) -> dict:
    data = path.read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _check(lib: Path) -> None:
    """Refuse (OSError) a library this process must not load: its folder is not private, it is
    missing, or its bytes are not those its stamp names."""
    check_private(lib.parent)
    if not lib.exists():
        raise OSError(f"no C tail built for this source and CPU kind ({lib} is missing)")
    try:
        want = json.loads(lib.with_suffix(".json").read_text())
        ok = want["size"] > 0 and _digest(lib) == {"size": want["size"], "sha256": want["sha256"]}
    except (OSError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise OSError(f"{lib} does not match its stamp (empty, altered or half-written)")


def build(folder: Optional[Path] = None) -> Path:
    """Build the library into ``folder`` (default :data:`FOLDER`; made 0700 and checked private)
    unless a verified one is there already; its path. OSError or SubprocessError with the reason."""
    out = library_path(folder)
    make_private(out.parent)
    try:
        _check(out)
        return out
    except OSError:
        pass
    cc = shutil.which(os.environ.get("CC") or "gcc")
    if cc is None:
        raise OSError(f"no C compiler ({os.environ.get('CC') or 'gcc'}) on PATH")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True,
                             timeout=COMPILE_SECONDS).stdout.split("\n")[0]
    fd, tmp = tempfile.mkstemp(prefix=".tail-", suffix=".so.tmp", dir=out.parent)
    os.close(fd)
    try:
        subprocess.run([cc, *FLAGS, str(SOURCE), "-o", tmp, "-lm"], capture_output=True, text=True, check=True,
                       timeout=COMPILE_SECONDS)
        digest = _digest(Path(tmp))
        if not digest["size"]:
            raise OSError(f"{cc} wrote an empty library")
        os.replace(tmp, out)
        sfd, stmp = tempfile.mkstemp(prefix=".tail-", suffix=".json.tmp", dir=out.parent)
        with os.fdopen(sfd, "w") as fh:
            json.dump({**digest, "compiler": version, "flags": list(FLAGS), "source": SOURCE.name}, fh)
        os.replace(stmp, out.with_suffix(".json"))  # written last: a library without its stamp is never loaded
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _check(out)
    return out


def library() -> Optional[ctypes.CDLL]:
    """The library the set-up built, verified, or None (and one warning saying why)."""
    global _LIB, _TRIED
    if not _TRIED:
        with _LOCK:
            if not _TRIED:
                try:
                    path = library_path()
                    _check(path)
                    lib = ctypes.CDLL(str(path))
                    lib.softmax_minus_onehot.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                                         ctypes.c_int64, ctypes.c_float]
                    lib.softmax_minus_onehot.restype = None
                    _LIB = lib
                except (OSError, AttributeError) as e:  # AttributeError: no such symbol
                    log.warning("the fused float32 step keeps torch's kernels for its softmax tail: %s; "
                                "build it with %s", e, SETUP)
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


def main(argv=None) -> int:
    """The set-up step: build (or verify) the library for this machine; one line either way."""
    ap = argparse.ArgumentParser(description="Build the fused float32 step's C softmax tail for this CPU kind.")
    ap.add_argument("--folder", type=Path, default=None, help=f"where to build (default {FOLDER})")
    args = ap.parse_args(argv)
    try:
        path = build(args.folder)
    except (OSError, subprocess.SubprocessError) as e:
        detail = (e.stderr if isinstance(e, subprocess.CalledProcessError) else "") or str(e)
        print(f"ctail: not built ({detail.strip().splitlines()[-1]}); float32 cells will use torch's kernels "
              "for the softmax tail", file=sys.stderr)
        return 1
    print(f"ctail: {path} ({json.loads(path.with_suffix('.json').read_text()).get('compiler', '?')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
