"""How the analysis names and groups the sweep's axes: labels for figures and tables, the
axes a voting group shares, and cells read back from a table row (no torch)."""
from __future__ import annotations

from typing import Mapping, Sequence

from ..training.grid import AXES, Cell, extra_axes

__all__ = ["short_label", "cell_from_row", "group_axes", "voters"]


def short_label(key: str) -> str:
    """How figures and tables name an extra axis: ``training.optimizer`` -> ``optimizer``,
    ``model.name`` -> ``model``."""
    section, name = key.split(".", 1)
    return section if name == "name" else name


def cell_from_row(row: Mapping, sweep: Mapping) -> Cell:
    """The cell of a table row that holds every axis by name (phases.json ``cells``)."""
    return Cell(*(typ(row[name]) for name, _, typ in AXES),
                extra=tuple((k, row[k]) for k in extra_axes(sweep)))


def group_axes(sweep: Mapping, majority_over: Sequence[str] = ("seed",)) -> list[str]:
    """The axes a voting group shares: every axis (extra axes first) except those whose cells
    vote for the group's majority phase (params.yaml ``phases.majority_over``; S0: the seed)."""
    return [a for a in extra_axes(sweep) + [name for name, _, _ in AXES] if a not in majority_over]


def voters(phases_settings: Mapping) -> list[str]:
    """``phases.majority_over`` of a phases.json's settings."""
    return list(phases_settings["majority_over"])
