"""``training.precision``: the dtypes a cell trains in.

* ``float32``: everything in float32 (S0's).
* ``float64``: parameters, data, optimizer state and every operation in float64. The model is
  built in float32 and cast, so a cell starts from the same initial weights in every precision.
* ``bfloat16``: the matrix products in bfloat16 (AMX where the CPU has it: oneDNN's kernels);
  parameters, gradients, optimizer state, losses and the other elementwise work in float32.
  The fused engine casts the operands of its products; the generic and stacked engines run the
  forward pass under ``torch.autocast`` (its products in bfloat16) and take the loss in float32.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

__all__ = ["PRECISIONS", "precision_dtypes", "autocast", "full"]

PRECISIONS = ("float32", "float64", "bfloat16")


def precision_dtypes(precision: str) -> tuple[Optional[torch.dtype], Optional[torch.dtype]]:
    """(dtype parameters and data are cast to, or None to keep them as built (torch's default
    dtype, float32); dtype of matrix products, or None for the parameters' own)."""
    if precision == "float32":
        return None, None
    if precision == "float64":
        return torch.float64, None
    if precision == "bfloat16":
        return None, torch.bfloat16
    raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")


def autocast(precision: str):
    """The context a forward pass runs in: bfloat16 products for ``bfloat16``, else nothing."""
    if precision == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full(t: torch.Tensor) -> torch.Tensor:
    """A bfloat16 result (an autocast product) back in float32, for losses and accumulation."""
    return t.float() if t.dtype == torch.bfloat16 else t
