"""How the analysis names and groups the sweep's axes: labels for figures and tables, the
axes a voting group shares, and cells read back from a table row (no torch)."""
from __future__ import annotations

from typing import Mapping, Sequence

from ..lattice import axis_scale
from ..training.grid import AXES, Cell, extra_axes, spell

__all__ = ["short_label", "axis_label", "axis_scale", "cell_from_row", "group_axes", "voters", "DiagramLayout"]


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


def axis_label(axis: str) -> str:
    """How a figure's axis or title names a sweep axis: ``training.learning_rate`` ->
    ``learning rate``, ``train_fraction`` -> ``train fraction``."""
    return (short_label(axis) if "." in axis else axis).replace("_", " ")


class DiagramLayout:
    """Where a group or cell of phases.json goes in a phase diagram: rows are weight decays,
    columns the values of ``phases.diagram_columns`` (S0: train fraction; S3: learning rate),
    and every other axis that does not vote (``phases.majority_over``) gets its own panel."""

    def __init__(self, phases: dict):
        sweep, ph = phases["settings"]["sweep"], phases["settings"]["phases"]
        self.col = ph["diagram_columns"]
        self.vote = voters(ph)
        self.panel_axes = [a for a in group_axes(sweep, self.vote) if a not in ("weight_decay", self.col)]
        self.varying = {a for a in self.panel_axes if len(sweep[a]) > 1}  # named in panel titles
        self.wds = sorted(float(v) for v in sweep["weight_decay"])
        values = list(sweep[self.col])
        self.cols = sorted(values) if all(isinstance(v, (int, float)) for v in values) else values
        self.covered = None
        refine = phases.get("refine")
        if refine:  # adaptive refinement: draw every point of the finest lattice (analysis.refine)
            lattice = refine["axes"]
            if "weight_decay" in lattice:
                self.wds = [float(v) for v in lattice["weight_decay"]["lattice"]]
            if self.col in lattice:
                self.cols = list(lattice[self.col]["lattice"])
            names = refine["coverage"]["axes"]
            self.covered = [(dict(zip(names, pt[:-1])), pt[-1]) for pt in refine["coverage"]["points"]]
        self.panels = []
        for row in ([r for r, _ in self.covered] if self.covered else phases["groups"]):
            if self.panel(row) not in self.panels:
                self.panels.append(self.panel(row))

    def points(self, phases: dict) -> list[tuple[dict, dict]]:
        """(where, group) for every point a diagram draws: each group at its own place for a
        grid; with refinement, every point of the finest lattice with the group of the trained
        point that covers it (so each cell fills the region it represents)."""
        groups = phases["groups"]
        if self.covered is None:
            return [(g, g) for g in groups]
        return [(row, groups[gi]) for row, gi in self.covered]

    def panel(self, row: dict) -> tuple:
        return tuple(row[a] for a in self.panel_axes)

    @property
    def columns(self) -> int:
        """Panels per figure row: up to 4; more than 4 panels that are a product whose last
        varying axis cycles fastest (e.g. precision x loss) get one column per value of that
        axis, so each row holds one value of the others."""
        n = len(self.panels)
        varying = [i for i, a in enumerate(self.panel_axes) if a in self.varying]
        if n > 4 and varying:
            last = varying[-1]
            k = len({p[last] for p in self.panels})
            if 2 <= k <= 5 and n % k == 0 and all(p[last] == self.panels[i % k][last] for i, p in enumerate(self.panels)):
                return k
        return max(1, min(n, 4))

    def key(self, row: dict) -> tuple:
        return self.panel(row), float(row["weight_decay"]), row[self.col]

    def title(self, panel: tuple, extra: str = "") -> str:
        own = " ".join(f"{axis_label(a)}={spell(v)}" for a, v in zip(self.panel_axes, panel) if a in self.varying)
        return "\n".join(t for t in (own, extra) if t)
