"""The CPU kind a number was computed on.

torch's matrix kernels (oneDNN, MKL) choose their code path by CPU: an Intel core with AMX runs
bfloat16 products on its tile units, an AMD EPYC with AVX-512 but no AMX runs them on vector
units, and a batched product of another batch count can take another path again. Results are
bit-identical only for the same code, the same CPU kind and the same shapes; across CPU kinds
the last digits move, and so, rarely, does a phase (docs/reproducibility.md). Every cell record
names the kind it was made on (:func:`cpu_facts`), and the comparison tools use it to say which
of the two they are checking.
"""
from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

__all__ = ["cpu_facts", "cpu_kind", "same_cpu_kind", "sgemm_gflops", "RELEVANT_FLAGS"]

# The instruction-set features that select a different kernel path in torch's CPU kernels.
RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                  "amx_tile", "amx_bf16", "amx_int8")


def _cpuinfo() -> dict:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info: dict = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if info:  # the first processor's block is enough
                break
            continue
        info.setdefault(key.strip(), value.strip())
    return info


@lru_cache(maxsize=1)
def cpu_facts() -> dict:
    """What the kernels' choice depends on: vendor, model name, the relevant instruction-set
    flags, and a one-line ``kind`` made of them (equal kinds take the same kernel paths)."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    vendor = info.get("vendor_id") or platform.processor() or "unknown"
    model = info.get("model name") or platform.machine() or "unknown"
    have = [f for f in RELEVANT_FLAGS if f in flags]
    amx = "amx_bf16" in flags
    features = " ".join(have) if have else "no vector flags read"
    return {"vendor": vendor, "model": model, "arch": platform.machine(), "flags": have, "amx": amx,
            "kind": f"{vendor} {model} ({platform.machine()}; {features}; {'AMX' if amx else 'no AMX'})"}


def cpu_kind(record: dict | None = None) -> str | None:
    """The CPU kind of a cell record (None when it predates the field), or of this machine."""
    if record is None:
        return cpu_facts()["kind"]
    machine = record.get("machine")
    return machine.get("kind") if isinstance(machine, dict) else None


def same_cpu_kind(a: str | None, b: str | None) -> bool:
    """Two kinds that are known and equal: only then can two runs be expected bit for bit."""
    return a is not None and a == b


def sgemm_gflops(n: int = 512, seconds: float = 0.3) -> float:
    """This machine's single-thread float32 matrix-product rate (GFLOP/s) on n x n operands,
    timed now for about ``seconds``: the peak a cell's training step is measured against.
    Taken while other work shares the cores, it reads low (the share then reads high)."""
    import time

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.mm(a, b)
        reps, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b, out=out)
            reps += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return 2 * n ** 3 * reps / elapsed / 1e9
    finally:
        torch.set_num_threads(threads)
