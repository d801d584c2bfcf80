"""Small helpers on recorded curves, shared by training records and classification."""
from __future__ import annotations

from typing import Optional, Sequence

__all__ = ["EarlyStop", "first_epoch_at", "first_logged_step"]


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


class EarlyStop:
    """``training.early_stop_rule`` over the accuracies seen at successive checks:

    * ``together`` (S0): train and test both >= ``accuracy`` at ``evals`` consecutive checks;
    * ``each_reached`` (S3's code): each split has been >= ``accuracy`` at some check, not
      necessarily the same one (``evals`` is 1 with this rule; the settings check says so);
    * ``none``: never; the cell trains its whole budget (S4's regimes after generalisation).
    """

    def __init__(self, accuracy: float, evals: int, rule: str):
        if rule not in ("together", "each_reached", "none"):
            raise ValueError(f"unknown early-stop rule {rule!r}")
        self.accuracy, self.evals, self.rule = accuracy, evals, rule
        self.run, self.train_reached, self.test_reached = 0, False, False

    def update(self, train_acc: float, test_acc: float) -> bool:
        """Whether to stop after this check."""
        if self.rule == "none":
            return False
        if self.rule == "each_reached":
            self.train_reached |= train_acc >= self.accuracy
            self.test_reached |= test_acc >= self.accuracy
            return self.train_reached and self.test_reached
        ok = train_acc >= self.accuracy and test_acc >= self.accuracy
        self.run = self.run + 1 if ok else 0
        return self.run >= self.evals
