"""The training loop: one for every engine and every number of cells.

:func:`train` trains C >= 1 cells that an engine can train together. It owns the schedule
(the optimizer steps, the learning-rate decay, the accuracy log and the evaluations), early
stopping, the non-finite check, the curves and each cell's result (:class:`CellLog`); the
engine (:mod:`grokmap.training.engines`) only computes a step and an evaluation.

Step t is the t-th optimizer update (1-based); evaluations at step t see the parameters after
it. With ``training.accuracy_every_steps`` the train and test accuracy are also logged every
that many steps: with full-batch training the train accuracy logged at step t is that of step
t's own forward pass, before its update (S3's code measures it on the output it takes the
gradient of), and the test accuracy is after the update; with minibatches both are after the
update, on the whole train and test sets.

A cell that finishes (its budget, early stop, a non-finite loss) is handed to ``on_done`` at
once, so its record can be written before the other cells of its stack finish, and is dropped
from the computation (an engine with ``min_rows`` 2 keeps a finished row as padding instead
of training a stack of one).

An engine that trains one cell at a time (fused, generic) also hands over the cell's final
state (``result["state"]``: parameters, optimizer state, generator), and :func:`train` can
continue a cell from such a state (``resume``) to a longer budget: the steps, evaluations and
curves that follow are those of one uninterrupted run of the longer budget (extension rounds,
params.yaml ``extend:``).
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Protocol, Sequence

from .curves import CellLog
from .devices import resolve_device
from .engines import ENGINES, engine_for, load_engine
from .schedule import lr_factor
from .spec import CellSpec

__all__ = ["Engine", "train", "train_cell", "ProgressFn"]

# progress(step, total steps, the logs of the cells still training), after each evaluation
ProgressFn = Callable[[int, int, list], None]


class Engine(Protocol):
    """What an engine implements, for the stack of ``specs`` it is built with (rows in order)."""

    n_train: int
    n_test: int
    n_parameters: int  # of one cell's model
    kernel: str  # what computes the step, named in every record (e.g. "fused/c_tail")

    def __init__(self, specs: Sequence[CellSpec]): ...

    def step(self, step: int, lr_factor: float, pre_accuracy: bool) -> Optional[list[int]]:
        """Optimizer update ``step`` of every row, its rates scaled by ``lr_factor``; with
        ``pre_accuracy``, each row's correct count on the forward pass the gradient came from."""

    def accuracy(self) -> tuple[list[int], list[int]]:
        """Each row's correct counts on the whole train and test sets, now."""

    def evaluate(self, rows: list[int]) -> list[tuple]:
        """For each row asked: ((train loss, correct), (test loss, correct), measures dict)."""

    def keep(self, rows: list[int]) -> None:
        """Go on with these rows only (in this order)."""

    # engines that train one cell at a time (``not info.stacks``) also have:
    # state() -> dict of tensors and numbers; load_state(state) continues from it


def train(specs: Sequence[CellSpec], progress: Optional[ProgressFn] = None,
          on_done: Optional[Callable[[int, dict], None]] = None, engine: Optional[str] = None,
          resume: Optional[dict] = None, with_state: bool = False, device: str = "cpu") -> list[dict]:
    """Train ``specs`` together; one result per spec, in order. ``on_done(index, result)`` is
    called as soon as a cell finishes. A result's ``train_seconds`` is the time until then,
    divided by the number of cells. ``engine`` names another engine than the cells' own
    (:func:`grokmap.training.engines.engine_for`; the tests compare engines on one cell).

    ``resume`` continues one cell from where an earlier run of it ended: ``{"state": the
    earlier result's state, "curves": its curves}``; ``specs`` is then that cell with a longer
    budget, whose evaluation schedule begins with the earlier one's. ``with_state``: each result
    of an engine that trains one cell at a time carries the cell's final ``state``. ``device``:
    config.yaml's (:func:`grokmap.training.devices.resolve_device`)."""
    specs = list(specs)
    if not specs:
        return []
    info = ENGINES[engine] if engine else engine_for(specs[0])
    if resume is not None and (info.stacks or len(specs) != 1):
        raise ValueError(f"only one cell of an engine that trains one at a time continues from a saved state; "
                         f"got {len(specs)} cell(s) of the {info.name} engine")
    if len(specs) > 1:
        if not info.stacks:
            raise ValueError(f"the {info.name} engine trains one cell at a time; got {len(specs)}")
        key = specs[0].key_without(info.per_cell)
        if any(engine_for(s) != engine_for(specs[0]) or s.key_without(info.per_cell) != key for s in specs):
            raise ValueError(f"cells differ in more than {', '.join(info.per_cell)}; they cannot train stacked")
    started = time.perf_counter()
    pad = max(0, info.min_rows - len(specs))
    rows_specs = specs + specs[:1] * pad  # a lone cell trains beside a copy of itself
    handed = set(range(len(specs), len(rows_specs)))  # rows whose cell is finished and returned
    engine = load_engine(info)(rows_specs, device=resolve_device(device, info.name))
    logs = [CellLog(s, engine.n_train, engine.n_test) for s in rows_specs]
    s0 = specs[0]
    total, per_epoch, decay = s0.total_steps, s0.steps_per_epoch, s0.training.lr_decay
    acc_every, full_batch = s0.training.accuracy_every_steps, s0.training.full_batch
    extras = {"kernel": engine.kernel, **({"stacked_cells": len(specs)} if info.stacks else {})}
    results: list = [None] * len(specs)
    active = list(range(len(rows_specs)))  # the cell of each row
    first = 1
    if resume is not None:
        first = logs[0].resume(resume["curves"], resume["state"].get("step")) + 1
        engine.load_state(resume["state"])
    for step in range(first, total + 1):
        log_acc = acc_every is not None and step % acc_every == 0
        pre = engine.step(step, lr_factor(step, per_epoch, decay), log_acc and full_batch)
        live = [(row, i) for row, i in enumerate(active) if i not in handed]
        if log_acc:
            train_c, test_c = engine.accuracy()
            logged = pre if full_batch else train_c
            for row, i in live:
                logs[i].log_accuracy(step, logged[row], test_c[row])
        rows = [row for row, i in live if logs[i].wants_eval(step)]
        if rows:
            for row, (tr, te, measures) in zip(rows, engine.evaluate(rows)):
                logs[active[row]].evaluate(step, tr, te, measures)
            if progress:
                progress(step, total, [logs[i] for _, i in live])
        for _, i in live:
            if logs[i].done:
                handed.add(i)
                results[i] = logs[i].result((time.perf_counter() - started) / len(specs), engine.n_parameters, extras)
                if with_state and not info.stacks:  # what a longer run of this cell continues from
                    results[i]["state"] = {"step": step, "engine": info.name, **engine.state()}
                if on_done:
                    on_done(i, results[i])
        keep = [row for row, i in enumerate(active) if i not in handed]
        if not keep:
            break
        while len(keep) < min(info.min_rows, len(active)):  # keep finished rows as padding
            keep = sorted(keep + [next(row for row in range(len(active)) if row not in keep)])
        if len(keep) < len(active):
            engine.keep(keep)
            active = [active[row] for row in keep]
    return results


def train_cell(settings: dict, cell, progress: Optional[ProgressFn] = None) -> dict:
    """One cell under the shared settings (its extra axes resolved here): its result."""
    return train([CellSpec.of(settings, cell)], progress)[0]
