"""Adaptive refinement: spend cells on phase boundaries, not phase interiors (params.yaml ``refine:``).

The sweep's grid is round 0, with spacing h = one grid step on every refined axis (each with
log or linear spacing). Round r looks at every pair of trained cells that are neighbours along
one refined axis at the previous round's spacing h / 2^(r-1); where their majority phases over
``phases.majority_over`` differ (a tie between voters is a label of its own), it adds the
midpoint between them and, to follow the boundary across, the midpoint's neighbours at the new
spacing h / 2^r along each other refined axis. So each round halves the spacing near
boundaries only; 0 rounds is the plain grid.

Refinement runs per *panel*: one combination of the axes that are neither refined nor voting
(e.g. one width); every new point is trained for every voter (e.g. every seed).

Points live on a lattice: an axis' position is a fraction of its grid index (round r adds the
positions k / 2^r). A grid evenly spaced in the axis' scale (within the rounding of its values)
is extended evenly from its first value and step, so refining a 6-point axis twice lands on the
21 values of the 21-point grid of the same range; other grids are split between neighbours.
Refined values are rounded to ``refine.digits`` significant digits (integers stay integers).

Every point of the finest lattice is *covered* by one trained point (:func:`coverage`): a point
trained in round r represents the box of its round's spacing around it, and a lattice point
takes the finest such box that holds it. Diagrams draw the coverage, so each cell fills the
region it represents, and a refined map is compared point by point with a full grid this way.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from fractions import Fraction
from typing import Mapping, Sequence

from ..lattice import RefineAxis, RefineError, lattice, refine_axes, round_sig
from ..training.grid import spell
from .axes import group_axes, voters

__all__ = ["RefineError", "RefineAxis", "refine_axes", "panel_axes", "round_points", "lattice", "coverage",
           "resolution", "known_points", "next_round", "refinement_summary"]


def panel_axes(params: Mapping, axes: Sequence[RefineAxis]) -> list[str]:
    """The axes that are neither refined nor voting: refinement runs per combination of them."""
    refined = {a.name for a in axes}
    return [a for a in group_axes(params["sweep"], voters(params["phases"])) if a not in refined]


# --- the rule -----------------------------------------------------------------------------------

Point = tuple  # lattice positions (Fractions), one per refined axis


def _spacing(r: int) -> Fraction:
    """The spacing round ``r`` reaches, in grid steps (round 0: the grid's own)."""
    return Fraction(1, 2 ** r)


def round_points(sizes: Sequence[int], known: Mapping[Point, str], r: int) -> list[Point]:
    """The points round ``r`` adds to one panel. ``sizes`` are the refined axes' numbers of grid
    steps, ``known`` maps every trained point of the panel to its label. Where two trained
    points that are neighbours along one axis at the previous round's spacing h disagree, the
    round adds the midpoint between them and, to follow the boundary across, the midpoint's
    neighbours at h/2 along each other refined axis."""
    h, half = _spacing(r - 1), _spacing(r)
    new: set = set()
    for p, label in known.items():
        for a in range(len(sizes)):
            q = p[:a] + (p[a] + h,) + p[a + 1:]
            if q not in known or known[q] == label:
                continue
            m = p[:a] + (p[a] + half,) + p[a + 1:]
            new.add(m)
            for b in range(len(sizes)):
                if b != a:
                    for step in (-half, half):
                        if 0 <= m[b] + step <= sizes[b]:
                            new.add(m[:b] + (m[b] + step,) + m[b + 1:])
    return sorted(new - set(known))


def lattice_positions(sizes: Sequence[int], level: int) -> list[Point]:
    return list(itertools.product(*[[Fraction(k, 2 ** level) for k in range(n * 2 ** level + 1)] for n in sizes]))


def coverage(sizes: Sequence[int], rounds: Mapping[Point, int], level: int) -> dict[Point, Point]:
    """Every point of the finest lattice after ``level`` rounds -> the trained point covering it.
    A point trained in round r represents the box of its round's spacing around it (half that
    spacing either way on every refined axis); a lattice point takes the finest such box that
    holds it (then the nearest centre, then the lowest)."""
    buckets: dict[tuple, list[Point]] = {}
    for q in rounds:
        buckets.setdefault(tuple(math.floor(x) for x in q), []).append(q)
    out = {}
    for p in lattice_positions(sizes, level):
        if p in rounds:
            out[p] = p
            continue
        cell = tuple(math.floor(x) for x in p)
        best = None
        for off in itertools.product((-1, 0, 1), repeat=len(p)):
            for q in buckets.get(tuple(c + o for c, o in zip(cell, off)), ()):
                far = max(abs(x - y) for x, y in zip(p, q))
                if far <= _spacing(rounds[q]) / 2:
                    key = (-rounds[q], sum((x - y) ** 2 for x, y in zip(p, q)), q)
                    if best is None or key < best[0]:
                        best = (key, q)
        out[p] = best[1]
    return out


def resolution(axes: Sequence[RefineAxis], level: int) -> dict[str, str]:
    """The spacing the finest lattice reaches on each refined axis, in words."""
    out = {}
    for a in axes:
        values = lattice(a, level)
        if a.spacing == "log":
            steps = [math.log10(b / x) for x, b in zip(values, values[1:])]
            out[a.name] = f"{min(steps):.3g}-{max(steps):.3g} decades (x{10 ** max(steps):.3g})" \
                if max(steps) - min(steps) > 0.01 else f"{steps[0]:.3g} decades (x{10 ** steps[0]:.3g})"
        else:
            steps = [b - x for x, b in zip(values, values[1:])]
            out[a.name] = spell(round_sig(min(steps), 3)) if max(steps) - min(steps) < 1e-9 * abs(max(steps)) \
                else f"{spell(round_sig(min(steps), 3))}-{spell(round_sig(max(steps), 3))}"
    return out


# --- from phases to points and back -------------------------------------------------------------

def known_points(params: Mapping, axes: Sequence[RefineAxis], groups: Sequence[Mapping],
                 level: int) -> dict[tuple, dict[Point, tuple[str, int]]]:
    """Per panel: every trained point -> (its group's majority phase, the group's index); a tie
    between the voters is a label of its own."""
    tables = [a.positions(level) for a in axes]
    pan = panel_axes(params, axes)
    out: dict[tuple, dict] = {}
    for gi, g in enumerate(groups):
        try:
            p = tuple(t[spell(g[a.name])] for t, a in zip(tables, axes))
        except KeyError:
            raise RefineError(f"a cell at {', '.join(f'{a.name}={spell(g[a.name])}' for a in axes)} is not on the "
                              f"refinement lattice of refine.axes after {level} round(s)") from None
        out.setdefault(tuple(g[a] for a in pan), {})[p] = (g["phase"], gi)
    return out


def next_round(params: Mapping, groups: Sequence[Mapping], r: int) -> tuple[list[dict], int]:
    """The rows (every group axis and every voting axis) of the cells round ``r`` adds, and the
    number of new points (each trained for every voter), from the groups of every cell trained
    in rounds 0..r-1."""
    axes = refine_axes(params)
    pan = panel_axes(params, axes)
    vote = voters(params["phases"])
    sweep = params["sweep"]
    rows, n_points = [], 0
    sizes = [len(a.base) - 1 for a in axes]
    for panel, pts in known_points(params, axes, groups, r).items():
        new = round_points(sizes, {p: lab for p, (lab, _) in pts.items()}, r)
        n_points += len(new)
        for p in new:
            values = {a.name: a.value(x) for a, x in zip(axes, p)}
            for combo in itertools.product(*(sweep[v] for v in vote)):
                rows.append({**dict(zip(pan, panel)), **values, **dict(zip(vote, combo))})
    return rows, n_points


def refinement_summary(params: Mapping, phases: Mapping) -> dict:
    """phases.json's ``refine``: cells per round, the finest lattice and resolution, the share of
    the boundary resolved at the finest spacing, and the coverage of every lattice point."""
    axes = refine_axes(params)
    level = params["refine"]["rounds"]
    pan = panel_axes(params, axes)
    known = known_points(params, axes, phases["groups"], level)
    per_round = Counter(row["round"] for row in phases["cells"])
    shared = group_axes(params["sweep"], voters(params["phases"]))
    round_of: dict[tuple, int] = {}
    for row in phases["cells"]:
        key = tuple(row[a] for a in shared)
        round_of[key] = min(row["round"], round_of.get(key, row["round"]))
    sizes = [len(a.base) - 1 for a in axes]
    points, pairs, resolved = [], 0, 0
    for panel, pts in known.items():
        rounds = {p: round_of[tuple(phases["groups"][gi][a] for a in shared)] for p, (_, gi) in pts.items()}
        cov = coverage(sizes, rounds, level)
        for p, q in cov.items():
            points.append([*panel, *(a.value(x) for a, x in zip(axes, p)), pts[q][1]])
            for i in range(len(axes)):  # the finest-lattice neighbour along each axis
                n = tuple(x + Fraction(1, 2 ** level) if j == i else x for j, x in enumerate(p))
                if n in cov and pts[cov[n]][0] != pts[q][0]:
                    pairs += 1
                    resolved += p in pts and n in pts
    return {
        "rounds": level,
        "axes": {a.name: {"spacing": a.spacing, "lattice": lattice(a, level)} for a in axes},
        "cells_per_round": [per_round.get(r, 0) for r in range(level + 1)],
        "lattice_points": len(points),
        "voters_per_point": math.prod(len(params["sweep"][v]) for v in voters(params["phases"])),
        "resolution": resolution(axes, level),
        "boundary_pairs": pairs,
        "boundary_pairs_resolved": resolved,
        "coverage": {"axes": pan + [a.name for a in axes], "points": points},
    }
