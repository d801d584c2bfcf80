"""A cell's training budget in optimizer steps and its evaluation schedule (no torch here,
so the workflow can size cluster jobs without importing it).

With full-batch training an epoch is one optimizer step; with minibatches an epoch is
ceil(n_train / batch_size) steps. Evaluations happen every ``eval_every_epochs`` epochs and
at the last step; the budget is ``max_epochs``, capped by ``max_steps`` when that is set.
"""
from __future__ import annotations

import math

__all__ = ["eval_schedule", "step_budget", "budget_size", "step_schedule", "epoch_of", "lr_factor"]


def eval_schedule(max_epochs: int, every: int) -> list[int]:
    """Evaluation epochs: every ``every`` epochs, plus the last epoch."""
    epochs = list(range(every, max_epochs + 1, every))
    if not epochs or epochs[-1] != max_epochs:
        epochs.append(max_epochs)
    return epochs


def step_budget(training: dict, n_train: int) -> tuple[int, int]:
    """(steps per epoch, total optimizer steps) of a cell's budget."""
    batch = training["batch_size"]
    per_epoch = 1 if batch == "full" else math.ceil(n_train / batch)
    total = training["max_epochs"] * per_epoch
    if training["max_steps"] is not None:
        total = min(total, training["max_steps"])
    return per_epoch, total


def budget_size(training: dict, n_train: int) -> tuple[int, int]:
    """(optimizer steps, evaluations) of a cell's budget, without listing its schedule (the
    settings check sizes budgets of any length with it)."""
    per_epoch, total = step_budget(training, n_train)
    evaluations = min(training["max_epochs"] // training["eval_every_epochs"] + 1,
                      total // per_epoch // training["eval_every_epochs"] + 2)
    return total, evaluations


def step_schedule(training: dict, n_train: int) -> tuple[int, int, list[int]]:
    """(steps per epoch, total steps, evaluation steps) of a cell's budget."""
    per_epoch, total = step_budget(training, n_train)
    steps = [e * per_epoch for e in eval_schedule(training["max_epochs"], training["eval_every_epochs"])]
    return per_epoch, total, [s for s in steps if s < total] + [total]


def lr_factor(step: int, per_epoch: int, decay) -> float:
    """``training.lr_decay``: the learning rate of optimizer step ``step`` (1-based) is the base
    rate x decay ** (epochs completed before it), PyTorch's ExponentialLR stepped once per
    epoch (S1: 0.99). 1.0 when decay is None."""
    return 1.0 if decay is None else float(decay) ** ((step - 1) // per_epoch)


def epoch_of(step: int, per_epoch: int):
    """The epoch a step ends: an int on epoch boundaries, else a fraction (4 decimals)."""
    return step // per_epoch if step % per_epoch == 0 else round(step / per_epoch, 4)
