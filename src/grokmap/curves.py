"""Small helpers on recorded curves, shared by training records and classification."""
from __future__ import annotations

from typing import Optional, Sequence

__all__ = ["first_epoch_at", "first_logged_step"]


def first_epoch_at(epochs: Sequence[int], values: Sequence[float], threshold: float) -> Optional[int]:
    """First evaluated epoch whose value is >= threshold, or None."""
    for epoch, value in zip(epochs, values):
        if value >= threshold:
            return int(epoch)
    return None


def first_logged_step(log: dict, split: str, threshold: float) -> Optional[int]:
    """First step of a run-length encoded accuracy log (``{"every", "n_train", "n_test", "train",
    "test"}``, runs of [correct count, length]) whose accuracy is >= threshold, or None.
    Accuracy is correct / n in double precision, so 9 of 10 is exactly 0.9."""
    n, step = log[f"n_{split}"], 0
    for value, count in log[split]:
        if value / n >= threshold:
            return step + log["every"]
        step += count * log["every"]
    return None
