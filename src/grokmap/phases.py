"""Phase rules (S0): confusion, memorization, grokking, comprehension.

* confusion     - train accuracy never reached the threshold, or final train accuracy is below it;
* memorization  - test accuracy never reached it, or final test accuracy is below it;
* grokking      - (first eval epoch with test >= threshold) - (first with train >= threshold) > gap;
* comprehension - otherwise (both reached, test lagging by at most the gap).

All thresholds come from params.yaml ``phases:`` and are passed in; none is written here.
"""
from __future__ import annotations

from typing import Optional

from .curves import first_epoch_at

__all__ = ["PHASES", "first_epoch_at", "classify", "classify_curves"]

PHASES: tuple[str, ...] = ("confusion", "memorization", "grokking", "comprehension")


def classify(first_train: Optional[int], first_test: Optional[int], final_train: float,
             final_test: float, threshold: float, gap_epochs: float) -> tuple[str, Optional[int]]:
    """Phase and generalization gap (epochs; None unless both splits reached the threshold)."""
    if first_train is None or final_train < threshold:
        return "confusion", None
    if first_test is None or final_test < threshold:
        return "memorization", None
    gap = first_test - first_train
    return ("grokking" if gap > gap_epochs else "comprehension"), gap


def classify_curves(curves: dict, threshold: float, gap_epochs: float) -> dict:
    """Classify from a cell's recorded curves; returns the phase and the epochs it rests on."""
    epochs = curves["epoch"]
    first_train = first_epoch_at(epochs, curves["train_acc"], threshold)
    first_test = first_epoch_at(epochs, curves["test_acc"], threshold)
    phase, gap = classify(first_train, first_test, curves["train_acc"][-1],
                          curves["test_acc"][-1], threshold, gap_epochs)
    return {"phase": phase, "gap_epochs": gap, "first_train_epoch": first_train,
            "first_test_epoch": first_test}
