"""The values a sweep axis takes: how it is scaled (log, symlog or linear, as the diagrams draw
it) and, with refinement (``params.yaml`` ``refine:``), the lattice of values rounds can add.

Below analysis and settings both: the settings check sizes and checks the finest lattice before
any work, and refinement (:mod:`grokmap.analysis.refine`) walks it. No torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping, Sequence

from .training.grid import AXES, extra_axes, spell

__all__ = ["axis_scale", "RefineError", "RefineAxis", "refine_axes", "lattice", "round_sig"]


def _numeric(values: Sequence) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _spread(xs: list[float]) -> float:
    """Relative spread of successive differences (0 for an evenly spaced list)."""
    d = [b - a for a, b in zip(xs, xs[1:])]
    mean = sum(d) / len(d)
    return math.sqrt(sum((x - mean) ** 2 for x in d) / len(d)) / mean


def axis_scale(values: Sequence) -> dict:
    """How an axis of the diagram is drawn: ``{"type": "band"}`` for text values, else
    ``log`` when the values are positive and more evenly spaced in log than in linear terms
    (spanning at least a factor 10), ``symlog`` when such an axis also holds 0 (its
    ``constant`` a tenth of the smallest positive value, so 0 sits about one step of the grid
    below it), and ``linear`` otherwise."""
    if not _numeric(values):
        return {"type": "band"}
    xs = sorted({float(v) for v in values})
    positive = [x for x in xs if x > 0]
    if len(positive) >= 3 and positive[-1] / positive[0] >= 10 and (
            _spread([math.log10(x) for x in positive]) < _spread(positive)):
        if positive == xs:
            return {"type": "log"}
        if xs == [0.0] + positive:
            return {"type": "symlog", "constant": positive[0] / 10}
    return {"type": "linear"}


class RefineError(ValueError):
    """A ``refine:`` setting that cannot be honoured (one line naming key, value and what is allowed)."""


def _refuse(key: str, value, allowed: str):
    raise RefineError(f"'refine.{key}' = {value!r} is not allowed; allowed: {allowed}")


def round_sig(v: float, digits: int) -> float:
    return 0.0 if v == 0 else float(f"{v:.{digits}g}")


@dataclass(frozen=True)
class RefineAxis:
    """One refined axis: its grid values, spacing, and how a lattice position becomes a value."""

    name: str
    spacing: str  # "log" or "linear"
    base: tuple  # the grid's values, sorted
    integer: bool
    digits: int

    def _t(self, v: float) -> float:
        return math.log10(v) if self.spacing == "log" else float(v)

    def _inv(self, t: float) -> float:
        return 10 ** t if self.spacing == "log" else t

    @property
    def _uniform(self) -> tuple[float, float] | None:
        """(first, step) in the axis' scale when the grid is evenly spaced there (within its rounding)."""
        ts = [self._t(v) for v in self.base]
        step = (ts[-1] - ts[0]) / (len(ts) - 1)
        tol = 0.51 * 10.0 ** (1 - self.digits)  # what rounding to `digits` significant digits moves
        for i, v in enumerate(self.base):
            fitted = self._inv(ts[0] + i * step)
            if abs(fitted - v) > tol * abs(v) + 1e-12 * max(abs(x) for x in self.base):
                return None
        return ts[0], step

    def value(self, pos: Fraction):
        """The axis value at a lattice position (grid index units)."""
        if pos.denominator == 1:
            return self.base[int(pos)]
        uniform = self._uniform
        if uniform is not None:
            t = uniform[0] + uniform[1] * float(pos)
        else:
            i = math.floor(pos)
            a, b = self._t(self.base[i]), self._t(self.base[i + 1])
            t = a + (b - a) * float(pos - i)
        v = self._inv(t)
        if self.integer:
            return int(round(v))
        return round_sig(v, self.digits)

    def positions(self, level: int) -> dict[str, Fraction]:
        """Spelled value -> lattice position, for every position up to ``level``."""
        n = (len(self.base) - 1) * 2 ** level
        return {spell(self.value(Fraction(k, 2 ** level))): Fraction(k, 2 ** level) for k in range(n + 1)}


def refine_axes(params: Mapping) -> list[RefineAxis]:
    """The refined axes of params.yaml, checked against the sweep and the voting axes."""
    refine, sweep = params["refine"], params["sweep"]
    if refine["rounds"] == 0:
        return []
    if not refine["axes"]:
        _refuse("axes", dict(refine["axes"]), "at least one swept numeric axis when refine.rounds > 0")
    core = {name: typ for name, _, typ in AXES}
    swept = [n for n in core] + extra_axes(sweep)
    vote = list(params["phases"]["majority_over"])
    out = []
    for name, spacing in sorted(refine["axes"].items()):  # one order, whatever the YAML's
        if name not in swept or name in vote:
            _refuse(f"axes.{name}", spacing, "a swept axis that does not vote (not in phases.majority_over): "
                    + ", ".join(a for a in swept if a not in vote))
        values = sweep[name]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            _refuse(f"axes.{name}", spacing, "a numeric axis (its sweep values are not all numbers)")
        xs = sorted(values)
        if len(xs) < 2:
            _refuse(f"axes.{name}", spacing, "an axis with at least two sweep values")
        integer = core.get(name) is int or all(isinstance(v, int) for v in values)
        if spacing == "auto":
            spacing = "log" if axis_scale(xs)["type"] == "log" else "linear"  # as the diagrams draw it
        if spacing == "log" and not all(x > 0 for x in xs):
            _refuse(f"axes.{name}", "log", f"linear (sweep.{name} holds a value <= 0)")
        if integer and spacing == "log":
            _refuse(f"axes.{name}", "log", "linear (an integer axis is refined only linearly)")
        if integer and any((b - a) % 2 ** refine["rounds"] for a, b in zip(xs, xs[1:])):
            _refuse("rounds", refine["rounds"], f"at most as many rounds as halve every gap of sweep.{name} "
                    f"{xs} into integers")
        out.append(RefineAxis(name, spacing, tuple(xs), integer, refine["digits"]))
    return out


def lattice(axis: RefineAxis, level: int) -> list:
    """The axis values of the finest lattice after ``level`` rounds."""
    n = (len(axis.base) - 1) * 2 ** level
    return [axis.value(Fraction(k, 2 ** level)) for k in range(n + 1)]
