"""The sweep grid: axes, cells, and the one canonical spelling of each value in paths.

A cell is one combination of sweep values. Four axes are always there (weight decay,
train fraction, width, seed); any other scalar setting of ``task``, ``model`` or
``training`` becomes an axis when ``sweep`` lists it by its dotted name, e.g.
``training.optimizer: [adamw, sgd]``. A cell's directory spells every axis as
``<name>=<value>`` with :func:`spell` (extra axes first, sorted, named with ``_`` for ``.``), so
the same number always gives the same path (0.1, 1e-1 and 0.10 all spell ``0.1``; 1 and 1.0
both spell ``1``) and cells of different studies never share a directory.
"""
from __future__ import annotations

import copy
import functools
import itertools
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["AXES", "Cell", "spell", "cells", "cell_from_wildcards", "extra_axes", "axis_name",
           "resolve_settings", "with_values", "SWEPT", "WORD"]

# (name in params.yaml `sweep:`, short name in paths, type)
AXES: tuple[tuple[str, str, type], ...] = (
    ("weight_decay", "wd", float),
    ("train_fraction", "frac", float),
    ("width", "width", int),
    ("seed", "seed", int),
)
_CORE = {name for name, _, _ in AXES}
# What a swept setting's own entry in task/model/training is replaced by in the settings
# every cell shares (and its fingerprint): the cell's value comes from its path.
SWEPT = "(swept)"
# Text values allowed on an extra axis (they are spelled as they are in paths).
WORD = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$")


def spell(value) -> str:
    """Canonical text of a value: shortest round-trip repr, no trailing ``.0``; text as is."""
    if isinstance(value, bool):
        raise TypeError("booleans are not sweep values")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def axis_name(key: str) -> str:
    """Path and wildcard name of an extra axis: ``training.optimizer`` -> ``training_optimizer``."""
    return key.replace(".", "_")


def extra_axes(sweep: Mapping) -> list[str]:
    """The dotted names of the extra axes, sorted: one order whatever the order of the keys
    in params.yaml or in the JSON the rules pass on (paths must not depend on it)."""
    return sorted(k for k in sweep if k not in _CORE)


@dataclass(frozen=True, order=True)
class Cell:
    """One sweep cell (all axes, typed). ``extra`` holds ((dotted key, value), ...)."""

    weight_decay: float
    train_fraction: float
    width: int
    seed: int
    extra: tuple = ()

    @property
    def wildcards(self) -> dict[str, str]:
        out = {axis_name(k): spell(v) for k, v in self.extra}
        out.update({short: spell(getattr(self, name)) for name, short, _ in AXES})
        return out

    @functools.cached_property
    def relpath(self) -> str:
        """Directory of the cell below ``<results>/cells`` (spelled once per cell: a sweep's plan
        asks for it several times per cell)."""
        return "/".join(f"{short}={text}" for short, text in self.wildcards.items())

    def as_dict(self) -> dict:
        out = {name: getattr(self, name) for name, _, _ in AXES}
        out.update(dict(self.extra))
        return out


def cells(sweep: Mapping) -> list[Cell]:
    """All cells of a validated ``sweep`` mapping: extra axes outermost, then wd, frac, width, seed."""
    extras = extra_axes(sweep)
    core = [[typ(v) for v in sweep[name]] for name, _, typ in AXES]
    out = []
    for ex in itertools.product(*(sweep[k] for k in extras)):
        for combo in itertools.product(*core):
            out.append(Cell(*combo, extra=tuple(zip(extras, ex))))
    return out


def _parse(text: str, choices: Sequence | None) -> Any:
    if choices is not None:
        for v in choices:
            if spell(v) == text:
                return v
        raise ValueError(f"{text!r} is not one of the swept values {list(choices)}")
    for typ in (int, float):
        try:
            return typ(text)
        except ValueError:
            pass
    return text


def cell_from_wildcards(wildcards: Mapping[str, str], sweep: Mapping | None = None) -> Cell:
    """Inverse of :attr:`Cell.wildcards`. Extra axes are the wildcards beyond the four core
    ones; their values are matched against ``sweep`` (typed as there) when it is given."""
    core = [typ(float(wildcards[short])) if typ is float else typ(wildcards[short])
            for _, short, typ in AXES]
    shorts = {short for _, short, _ in AXES}
    keys = (extra_axes(sweep) if sweep is not None
            else sorted(k.replace("_", ".", 1) for k in wildcards if k not in shorts))
    extra = []
    for key in keys:
        text = wildcards[axis_name(key)]
        extra.append((key, _parse(str(text), sweep[key] if sweep is not None else None)))
    return Cell(*core, extra=tuple(extra))


def with_values(settings: dict, values) -> dict:
    """A copy of ``settings`` with each ``(dotted key, value)`` of ``values`` put in place."""
    out = copy.deepcopy(settings)
    for key, value in values:
        section, name = key.split(".", 1)
        out[section][name] = value
    return out


def resolve_settings(settings: dict, cell: Cell) -> dict:
    """The cell's own settings: the shared ones with each extra axis's value put in place."""
    return with_values(settings, cell.extra)
