"""Small helpers on recorded curves, shared by training records and classification."""
from __future__ import annotations

from typing import Optional, Sequence

__all__ = ["first_epoch_at"]


def first_epoch_at(epochs: Sequence[int], values: Sequence[float], threshold: float) -> Optional[int]:
    """First evaluated epoch whose value is >= threshold, or None."""
    for epoch, value in zip(epochs, values):
        if value >= threshold:
            return int(epoch)
    return None
