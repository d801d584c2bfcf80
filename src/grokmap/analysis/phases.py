"""Phase rules (S0): confusion, memorization, grokking, comprehension.

* confusion     - train accuracy never reached the threshold, or final train accuracy is below it;
* memorization  - test accuracy never reached it, or final test accuracy is below it;
  (the final-accuracy conditions apply with ``phases.require_final_accuracy``: S0 yes, S3 no)
* grokking      - (first eval epoch with test >= threshold) - (first with train >= threshold) > gap;
* comprehension - otherwise (both reached, test lagging by at most the gap).

All thresholds come from params.yaml ``phases:`` and are passed in; none is written here.
"""
from __future__ import annotations

from typing import Optional

from ..training.curves import first_epoch_at, first_logged_step
from ..training.schedule import epoch_of

__all__ = ["PHASES", "PHASE_COLORS", "SPLIT_COLORS", "first_epoch_at", "classify", "classify_curves", "classify_record", "first_epochs",
           "first_steps", "budget_gain", "UNDECIDED_SPLIT"]

PHASES: tuple[str, ...] = ("confusion", "memorization", "grokking", "comprehension")
# One fixed colour per phase (figures and the explorer), so a diagram missing a phase keeps the others' colours.
PHASE_COLORS = {"confusion": "#3b3b3b", "memorization": "#d62728",
                "grokking": "#ff9f1c", "comprehension": "#2a9d8f"}
# Train and test curves: colours no phase uses, so a test curve never reads as "memorization".
SPLIT_COLORS = {"train": "#1f77b4", "test": "#9467bd"}


def classify(first_train: Optional[int], first_test: Optional[int], final_train: float,
             final_test: float, threshold: float, gap_epochs: float,
             require_final: bool = True) -> tuple[str, Optional[int]]:
    """Phase and generalization gap (epochs; None unless both splits reached the threshold).
    ``require_final`` (S0): a split that reached the threshold must also end at or above it;
    S3 judges by the first-threshold steps alone."""
    if first_train is None or (require_final and final_train < threshold):
        return "confusion", None
    if first_test is None or (require_final and final_test < threshold):
        return "memorization", None
    gap = first_test - first_train
    return ("grokking" if gap > gap_epochs else "comprehension"), gap


def first_epochs(record: dict, threshold: float) -> tuple[Optional[float], Optional[float]]:
    """First epochs with train and with test accuracy >= threshold: from the per-step accuracy
    log when the record has one (S3: every step), else from the evaluated curves."""
    log = record.get("accuracy_log")
    if log is None:
        epochs = record["curves"]["epoch"]
        return (first_epoch_at(epochs, record["curves"]["train_acc"], threshold),
                first_epoch_at(epochs, record["curves"]["test_acc"], threshold))
    per_epoch = record.get("steps_per_epoch", 1)
    steps = [first_logged_step(log, split, threshold) for split in ("train", "test")]
    return tuple(None if s is None else epoch_of(s, per_epoch) for s in steps)


def first_steps(record: dict, threshold: float) -> tuple[Optional[int], Optional[int]]:
    """The same first crossings as :func:`first_epochs`, in optimizer steps (S3's T_train, T_test)."""
    log = record.get("accuracy_log")
    if log is not None:
        return tuple(first_logged_step(log, split, threshold) for split in ("train", "test"))
    curves = record["curves"]
    steps = curves.get("step") or curves["epoch"]
    return (first_epoch_at(steps, curves["train_acc"], threshold),
            first_epoch_at(steps, curves["test_acc"], threshold))


def classify_record(record: dict, threshold: float, gap_epochs: float, require_final: bool = True) -> dict:
    """Classify a cell record (its accuracy log if it has one, else its curves)."""
    first_train, first_test = first_epochs(record, threshold)
    train_step, test_step = first_steps(record, threshold)
    curves = record["curves"]
    phase, gap = classify(first_train, first_test, curves["train_acc"][-1],
                          curves["test_acc"][-1], threshold, gap_epochs, require_final)
    return {"phase": phase, "gap_epochs": gap, "first_train_epoch": first_train,
            "first_test_epoch": first_test, "first_train_step": train_step, "first_test_step": test_step}


def classify_curves(curves: dict, threshold: float, gap_epochs: float) -> dict:
    """Classify from a cell's recorded curves; returns the phase and the epochs it rests on."""
    return classify_record({"curves": curves}, threshold, gap_epochs)


# The split whose accuracy decides a non-generalising phase: confusion waits on train, memorization on test.
UNDECIDED_SPLIT = {"confusion": "train", "memorization": "test"}


def budget_gain(record: dict, phase: str, share: float) -> Optional[float]:
    """How much the split that decides ``phase`` (:data:`UNDECIDED_SPLIT`) gained over the last
    ``share`` of the epochs the cell ran: its final evaluated accuracy minus its accuracy at the
    last evaluation at or before epoch ``(1 - share) * epochs run``. None when the budget did not
    decide the phase: a generalising phase, an early stop or a non-finite loss. A cell is
    *undecided at budget* when this is at least ``phases.undecided_min_gain``."""
    split = UNDECIDED_SPLIT.get(phase)
    if split is None or record.get("stopped_early") or record.get("non_finite_loss"):
        return None
    epochs, acc = record["curves"]["epoch"], record["curves"][f"{split}_acc"]
    start = epochs[-1] * (1 - share)
    before = [a for e, a in zip(epochs, acc) if e <= start]
    return acc[-1] - (before[-1] if before else acc[0])
