"""Where a cell's tensors live (config.yaml ``device``): ``cpu``, ``cuda``, or ``auto`` (a CUDA
device when one is visible to the job, else the CPU). The stacked and generic engines run on
either; the fused engine (hand-written for the CPU, with its C tail) always runs on the CPU.
Every random draw stays on the CPU generator of the cell, so a cell's batches, dropout masks and
noise are the same draws on every device; products on a GPU round differently, so records made
on a GPU are compared with the CPU's by phase, not bit for bit (``benchmarks/gpu_check.sh``).
"""
from __future__ import annotations

__all__ = ["resolve_device", "DEVICES"]

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(setting: str, engine: str):
    """The torch.device a job of ``engine`` trains on under config.yaml ``device = setting``
    (torch is imported here: the loop that calls this is imported by the workflow's planning)."""
    import torch

    if setting not in DEVICES:
        raise ValueError(f"device {setting!r}; allowed: {', '.join(DEVICES)}")
    if setting == "cpu" or engine == "fused":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if setting == "cuda" and not available:
        raise RuntimeError("config.yaml device = 'cuda', but no CUDA device is visible to this job; "
                           "allowed: auto or cpu here (or run the job on a node with a GPU)")
    return torch.device("cuda" if available else "cpu")
