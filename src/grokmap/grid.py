"""The sweep grid: axes, cells, and the one canonical spelling of each value in paths.

A cell is one combination of sweep values. Its directory spells every axis as
``<short>=<value>`` with :func:`spell`, so the same number always gives the same path
(0.1, 1e-1 and 0.10 all spell ``0.1``; 1 and 1.0 both spell ``1``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping

__all__ = ["AXES", "Cell", "spell", "cells", "cell_from_wildcards"]

# (name in params.yaml `sweep:`, short name in paths, type)
AXES: tuple[tuple[str, str, type], ...] = (
    ("weight_decay", "wd", float),
    ("train_fraction", "frac", float),
    ("width", "width", int),
    ("seed", "seed", int),
)


def spell(value) -> str:
    """Canonical text of a number: shortest round-trip repr, no trailing ``.0``."""
    if isinstance(value, bool):
        raise TypeError("booleans are not sweep values")
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True, order=True)
class Cell:
    """One sweep cell (all axes, typed)."""

    weight_decay: float
    train_fraction: float
    width: int
    seed: int

    @property
    def wildcards(self) -> dict[str, str]:
        return {short: spell(getattr(self, name)) for name, short, _ in AXES}

    @property
    def relpath(self) -> str:
        """Directory of the cell below ``<results>/cells``."""
        return "/".join(f"{short}={text}" for short, text in self.wildcards.items())

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name, _, _ in AXES}


def cells(sweep: Mapping) -> list[Cell]:
    """All cells of a validated ``sweep`` mapping, in axis order (wd-major)."""
    values = [[typ(v) for v in sweep[name]] for name, _, typ in AXES]
    return [Cell(*combo) for combo in itertools.product(*values)]


def cell_from_wildcards(wildcards: Mapping[str, str]) -> Cell:
    """Inverse of :attr:`Cell.wildcards` (values parsed from their spelling)."""
    return Cell(*(typ(float(wildcards[short])) if typ is float else typ(wildcards[short])
                  for _, short, typ in AXES))

