"""What a cell keeps while it trains, and small helpers on recorded curves (no torch).

:class:`CellLog` is the one per-cell bookkeeping every engine's cells share: the curves at the
evaluation schedule, the run-length encoded accuracy log, the early-stop rule, the non-finite
check, and the result record's training facts. The helpers read curves back (training
records and classification both use them).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

from .schedule import epoch_of

__all__ = ["CURVES", "EarlyStop", "Runs", "CellLog", "first_epoch_at", "first_logged_step"]

# Every curve of a record, in the order a cell's evaluation fills them.
CURVES = ("epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc",
          "param_norm", "subnetwork_fraction", "ipr", "softmax_collapse")
# None where an engine does not measure one; softmax_collapse: the share of training examples
# whose loss is exactly 0 in the loss's precision (grokmap.training.losses.collapse_count)
MEASURES = ("param_norm", "subnetwork_fraction", "ipr", "softmax_collapse")


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


class Runs:
    """Run-length encoded integers: [[value, count], ...]."""

    def __init__(self):
        self.runs: list[list[int]] = []

    def add(self, value: int) -> None:
        if self.runs and self.runs[-1][0] == value:
            self.runs[-1][1] += 1
        else:
            self.runs.append([value, 1])


class CellLog:
    """One cell's curves, accuracy log and stopping state.

    ``spec`` is the cell's :class:`grokmap.training.spec.CellSpec`. The early-stop rule is
    checked on the accuracy log when ``training.accuracy_every_steps`` is set (S3 needs the
    first step at 90 %), else at every evaluation. A cell is *done* at its budget, on early
    stop, or on a non-finite loss; a cell that becomes done between evaluations is evaluated
    once more at that step, so its curves end where it stopped.
    """

    def __init__(self, spec, n_train: int, n_test: int):
        tr = spec.training
        self.n_train, self.n_test = n_train, n_test
        self.total, self.per_epoch = spec.total_steps, spec.steps_per_epoch
        self.acc_every = tr.accuracy_every_steps
        self.evals = set(spec.eval_steps)
        self.curves: dict[str, list] = {k: [] for k in CURVES}
        self.train_runs, self.test_runs = Runs(), Runs()
        self.stopped_early, self.non_finite, self.done = False, False, False
        self.stopper = EarlyStop(tr.early_stop_accuracy, tr.early_stop_evals, tr.early_stop_rule)

    def resume(self, curves: dict, state_step) -> int:
        """Take over the curves of an earlier, shorter run of this cell (which ended at its budget)
        so that training goes on as one run of this cell's longer budget: the earlier evaluations
        must be the first ones of this schedule, and the early-stop rule sees them again. Returns
        the last step run."""
        steps = [int(s) for s in curves["step"]]
        if not steps or steps[-1] >= self.total or steps[-1] != state_step:
            raise ValueError(f"cannot continue from step {steps[-1] if steps else None} (state at {state_step}) "
                             f"to a budget of {self.total} steps")
        if self.acc_every is not None or steps[-1] % self.per_epoch:
            raise ValueError("a cell continues from an epoch's end, without an accuracy log")
        if steps != sorted(s for s in self.evals if s <= steps[-1]):
            raise ValueError(f"the earlier run was evaluated at other steps than this budget's schedule "
                             f"(it ended at step {steps[-1]})")
        self.curves = {k: list(curves[k]) if k in curves else [None] * len(steps) for k in CURVES}
        if not all(math.isfinite(v) for k in ("train_loss", "test_loss") for v in curves[k]):
            raise ValueError("the earlier run's loss is not finite: it ended there")
        for train_acc, test_acc in zip(curves["train_acc"], curves["test_acc"]):
            if self.stopper.update(train_acc, test_acc):
                raise ValueError("the earlier run met its early-stop rule: it has nothing left to learn")
        return steps[-1]

    def log_accuracy(self, step: int, train_correct: int, test_correct: int) -> None:
        """Every ``accuracy_every_steps`` steps; early stop is checked here when the log is on."""
        self.train_runs.add(train_correct)
        self.test_runs.add(test_correct)
        self._check_stop(step, train_correct / self.n_train, test_correct / self.n_test)

    def wants_eval(self, step: int) -> bool:
        return step in self.evals or self.done

    def evaluate(self, step: int, train: tuple, test: tuple, measures: Optional[dict] = None) -> None:
        """``train``/``test`` = (loss, correct count). Marks the cell done at the budget or on a
        non-finite loss."""
        c = self.curves
        values = {"epoch": epoch_of(step, self.per_epoch), "step": step, "train_loss": train[0],
                  "train_acc": train[1] / self.n_train, "test_loss": test[0], "test_acc": test[1] / self.n_test}
        for k in CURVES:
            c[k].append(values[k] if k in values else (measures or {}).get(k))
        if not (math.isfinite(train[0]) and math.isfinite(test[0])):
            self.non_finite = self.done = True
        if self.acc_every is None and not self.done:
            self._check_stop(step, c["train_acc"][-1], c["test_acc"][-1])
        if step >= self.total:
            self.done = True

    def _check_stop(self, step: int, train_acc: float, test_acc: float) -> None:
        if self.stopper.update(train_acc, test_acc):
            self.stopped_early, self.done = step < self.total, True

    def result(self, seconds: float, n_parameters: int, extras: dict) -> dict:
        """The training facts of the cell's record (its curves included)."""
        out = {"curves": self.curves, "epochs_run": self.curves["epoch"][-1], "steps_run": self.curves["step"][-1],
               "steps_per_epoch": self.per_epoch, "stopped_early": self.stopped_early,
               "non_finite_loss": self.non_finite, "train_seconds": seconds, "n_train": self.n_train,
               "n_test": self.n_test, "n_parameters": n_parameters, **extras}
        if self.acc_every is not None:
            out["accuracy_log"] = {"every": self.acc_every, "n_train": self.n_train, "n_test": self.n_test,
                                   "train": self.train_runs.runs, "test": self.test_runs.runs}
        return out
