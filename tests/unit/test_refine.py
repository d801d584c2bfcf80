"""Adaptive refinement's logic (analysis/refine.py) on known phase maps, without training:
the lattice, the rule round by round, the coverage of the finest lattice, and phases.json's
refinement summary. The workflow tests (real Snakemake and DVC) are tests/workflow/test_refine.py."""
from __future__ import annotations

import copy
from fractions import Fraction as F

import pytest

from grokmap.analysis.aggregate import classify_sweep
from grokmap.analysis.axes import cell_from_row
from grokmap.analysis.refine import (RefineAxis, RefineError, coverage, lattice, next_round, refine_axes,
                                     round_points)
from grokmap.training.grid import cells

from .test_records import _hand_record

S3_LR = [1e-05, 1.41e-05, 2e-05, 2.82e-05, 3.98e-05, 5.62e-05, 7.94e-05, 0.000112, 0.000158, 0.000224, 0.000316,
         0.000447, 0.000631, 0.000891, 0.00126, 0.00178, 0.00251, 0.00355, 0.00501, 0.00708, 0.01]


def test_two_rounds_of_a_six_point_grid_land_on_the_21_point_grid():
    """S3's Figure 1 axes: 6 x 6 (lr 1e-5..1e-2 log, wd 0..20 linear) refined twice is the
    21 x 21 lattice of studies/s3_toy_classification.yaml, value for value (3 digits)."""
    lr = RefineAxis("training.learning_rate", "log", tuple(S3_LR[::4]), False, 3)
    wd = RefineAxis("weight_decay", "linear", (0.0, 4.0, 8.0, 12.0, 16.0, 20.0), False, 3)
    assert lattice(lr, 2) == S3_LR
    assert lattice(wd, 2) == [float(v) for v in range(21)]
    assert lattice(lr, 0) == S3_LR[::4] and lattice(lr, 1) == S3_LR[::2]
    # an uneven grid is split between neighbours, in its own scale
    odd = RefineAxis("train_fraction", "linear", (0.3, 0.5, 0.9), False, 3)
    assert lattice(odd, 1) == [0.3, 0.4, 0.5, 0.7, 0.9]
    width = RefineAxis("width", "linear", (16, 32, 64), True, 3)
    assert lattice(width, 2) == [16, 20, 24, 28, 32, 40, 48, 56, 64]


def _params(rounds=2, axes=None, sweep=None):
    return {"phases": {"accuracy_threshold": 0.95, "grokking_gap_epochs": 200, "grokking_step_accuracy": 0.99,
                       "require_final_accuracy": True, "diagram_columns": "train_fraction",
                       "majority_over": ["seed"], "smooth_scale_max": None, "undecided_window_share": 0.2,
                       "undecided_min_gain": 0.05},
            "sweep": sweep or {"weight_decay": [0.0, 1.0, 2.0], "train_fraction": [0.2, 0.4, 0.6],
                               "width": [8], "seed": [0, 1]},
            "refine": {"rounds": rounds, "axes": axes or {"weight_decay": "auto", "train_fraction": "auto"},
                       "digits": 3}}


def test_axes_are_checked_and_spacing_inferred():
    axes = refine_axes(_params())
    assert [(a.name, a.spacing) for a in axes] == [("train_fraction", "linear"), ("weight_decay", "linear")]
    logs = refine_axes(_params(axes={"weight_decay": "auto"},
                               sweep={"weight_decay": [0.001, 0.01, 0.1, 1.0], "train_fraction": [0.5],
                                      "width": [8], "seed": [0]}))
    assert logs[0].spacing == "log"
    assert refine_axes(_params(rounds=0)) == []
    with pytest.raises(RefineError, match="'refine.axes.seed'"):
        refine_axes(_params(axes={"seed": "linear"}))
    with pytest.raises(RefineError, match="holds a value <= 0"):
        refine_axes(_params(axes={"weight_decay": "log"}))


def test_the_rule_adds_midpoints_where_neighbours_disagree_and_follows_the_boundary():
    # 1-D: labels a a b on 3 points; round 1 adds only the midpoint between the 2nd and 3rd
    known = {(F(0),): "a", (F(1),): "a", (F(2),): "b"}
    assert round_points([2], known, 1) == [(F(3, 2),)]
    known[(F(3, 2),)] = "b"
    assert round_points([2], known, 2) == [(F(5, 4),)]  # between 1 (a) and 3/2 (b)
    # 2-D: a vertical boundary between x=0 and x=1 on a 2 x 3 grid
    grid = {(F(x), F(y)): ("a" if x == 0 else "b") for x in range(2) for y in range(3)}
    new = round_points([1, 2], grid, 1)
    # the midpoints of the three disagreeing edges, and their neighbours at half spacing along y
    assert new == sorted({(F(1, 2), F(y, 2)) for y in range(5)})
    # agreeing neighbours add nothing
    assert round_points([1, 2], {p: "a" for p in grid}, 1) == []


def test_coverage_gives_each_lattice_point_the_finest_trained_cell_around_it():
    rounds = {(F(0),): 0, (F(1),): 0, (F(2),): 0, (F(3, 2),): 1, (F(5, 4),): 2}
    cov = coverage([2], rounds, 2)
    assert cov[(F(1, 4),)] == (F(0),) and cov[(F(3, 4),)] == (F(1),)
    assert cov[(F(5, 4),)] == (F(5, 4),)  # trained: itself
    assert cov[(F(7, 4),)] == (F(3, 2),)  # round 1's box (half-width 1/4) beats round 0's
    assert len(cov) == 9


def _records(params, phase_of):
    """Hand-made records whose phase is phase_of(weight decay, fraction, seed)."""
    e = [100, 200, 300, 400, 500]
    recs = {"comprehension": _hand_record([0.96, 1, 1, 1, 1], [0.96, 1, 1, 1, 1], e),
            "memorization": _hand_record([1.0] * 5, [0.1] * 5, e),
            "confusion": _hand_record([0.1] * 5, [0.1] * 5, e)}
    return lambda grid: {c: copy.deepcopy(recs[phase_of(c.weight_decay, c.train_fraction, c.seed)]) for c in grid}


def test_rounds_from_records_to_cells_and_the_summary():
    """A known map (comprehension where wd + 5 * frac > 3, else memorization) refined for two
    rounds on a 3 x 3 grid: each round's cells, every one trained for both seeds, and the
    summary of phases.json (cells per round, coverage of the 9 x 9 lattice)."""
    params = _params()
    make = _records(params, lambda wd, frac, seed: "comprehension" if wd + 5 * frac > 3 else "memorization")
    grid = {c: 0 for c in cells(params["sweep"])}
    for r in (1, 2):
        records = make(grid)
        groups = classify_sweep(records, params["phases"], params["sweep"])["groups"]
        rows, n_points = next_round(params, groups, r)
        assert len(rows) == 2 * n_points and n_points > 0  # both seeds of every new point
        added = [cell_from_row(row, params["sweep"]) for row in rows]
        assert not set(added) & set(grid)
        grid.update({c: r for c in added})
    phases = classify_sweep(make(grid), params["phases"], params["sweep"], params["refine"], grid)
    ref = phases["refine"]
    assert ref["cells_per_round"][0] == 18 and sum(ref["cells_per_round"]) == len(grid) == phases["n_cells"]
    assert ref["lattice_points"] == 81 and ref["voters_per_point"] == 2
    assert ref["axes"]["weight_decay"]["lattice"] == [i / 4 for i in range(9)]
    assert all(row["round"] == grid[c] for row, c in zip(phases["cells"], grid))
    # every lattice point is covered by a trained point of the same phase as the map there,
    # except within one finest step of the boundary
    truth = lambda wd, frac: "comprehension" if wd + 5 * frac > 3 else "memorization"  # noqa: E731
    names = ref["coverage"]["axes"]
    wrong = [pt for pt in ref["coverage"]["points"]
             if phases["groups"][pt[-1]]["phase"] != truth(*(dict(zip(names, pt[:-1]))[k]
                                                             for k in ("weight_decay", "train_fraction")))]
    assert len(wrong) <= 4, wrong
    assert ref["boundary_pairs"] > 0 and ref["boundary_pairs_resolved"] == ref["boundary_pairs"]
    # the validator re-derives the coverage by itself and catches a point drawn with another cell
    from grokmap.analysis.validate import _check_refinement

    def failed(ph):
        out = []
        _check_refinement(lambda name, ok, detail="": out.append((name, ok)), grid, list(grid), ph, params)
        return [name for name, ok in out if not ok]

    assert failed(phases) == []
    bad = copy.deepcopy(phases)
    point = next(pt for pt in bad["refine"]["coverage"]["points"]
                 if bad["groups"][pt[-1]]["phase"] == "memorization")
    point[-1] = next(i for i, g in enumerate(bad["groups"]) if g["phase"] == "comprehension")
    assert failed(bad) == ["refined map: each lattice point drawn with the cell covering it"]
    bad = copy.deepcopy(phases)
    bad["cells"][-1]["round"] = 0
    assert "refinement rounds of the cells" in failed(bad)


def test_zero_rounds_leave_phases_json_as_it_was():
    params = _params(rounds=0)
    grid = cells(params["sweep"])
    records = _records(params, lambda wd, frac, seed: "memorization")(grid)
    plain = classify_sweep(records, params["phases"], params["sweep"])
    assert "refine" not in plain and "round" not in plain["cells"][0]
    assert set(plain["settings"]) == {"phases", "sweep"}


def test_a_refined_map_is_compared_point_by_point_with_the_full_grid(tmp_path):
    """scripts/refinement_agreement.py's logic: the full 9 x 9 grid of the same map against the
    3 x 3 grid refined twice; the figure is drawn."""
    from grokmap.jobs.tools import refinement_agreement
    from grokmap.analysis.plots import plot_refinement_comparison

    params = _params()
    truth = lambda wd, frac, seed: "comprehension" if wd + 5 * frac > 3 else "memorization"  # noqa: E731
    make = _records(params, truth)
    grid = {c: 0 for c in cells(params["sweep"])}
    for r in (1, 2):
        groups = classify_sweep(make(grid), params["phases"], params["sweep"])["groups"]
        grid.update({cell_from_row(row, params["sweep"]): r for row in next_round(params, groups, r)[0]})
    refined = classify_sweep(make(grid), params["phases"], params["sweep"], params["refine"], grid)
    lat = refined["refine"]["axes"]
    full_sweep = {**params["sweep"], "weight_decay": lat["weight_decay"]["lattice"],
                  "train_fraction": lat["train_fraction"]["lattice"]}
    full = classify_sweep(make(cells(full_sweep)), params["phases"], full_sweep)
    table, summary = refinement_agreement(refined, full)
    assert summary["points"] == 81 and summary["full_cells"] == 162 and summary["refined_cells"] == len(grid)
    assert summary["agreement"] >= 0.95 and summary["cells_share"] < 1
    lines = table.splitlines()
    assert lines[0].startswith("width,train_fraction,weight_decay,full_phase,refined_phase") and len(lines) == 82
    assert sum(line.endswith(",1") for line in lines[1:]) == summary["agree"]
    plot_refinement_comparison(refined, full, tmp_path / "side.png")
    assert (tmp_path / "side.png").stat().st_size > 10_000


def test_a_round_list_is_read_only_when_it_is_this_rounds_and_lies_on_the_lattice(default_params, tmp_path):
    """A round list another set of settings made, or one edited by hand to name a cell off the
    lattice (a value the settings were never checked for), is refused before anything trains."""
    import json

    from grokmap.analysis.aggregate import read_round, round_file, round_key
    from grokmap.analysis.records import CellRecordError

    params = copy.deepcopy(default_params)
    params["sweep"] = {"weight_decay": [0.0, 1.0], "train_fraction": [0.3, 0.5], "width": [16], "seed": [42]}
    params["refine"] = {"rounds": 1, "axes": {"weight_decay": "linear", "train_fraction": "linear"}, "digits": 3}
    path = round_file(tmp_path, 1, params)
    path.parent.mkdir(parents=True)
    good = "wd=0.5/frac=0.4/width=16/seed=42"

    def write(cells, key=round_key(params, 1), r=1):
        path.write_text(json.dumps({"round": r, "derived_from": {"settings_key": key}, "cells": cells}))

    write([good])
    assert [c.relpath for c in read_round(path, params, 1)] == [good]
    for cells, key in (([good], "0" * 16), (["wd=0.5/frac=0.45/width=16/seed=42"], round_key(params, 1)),
                       (["wd=0.5/frac=0.4/width=17/seed=42"], round_key(params, 1)),
                       (["wd=0.5/frac=0.4/width=16"], round_key(params, 1))):
        write(cells, key)
        with pytest.raises(CellRecordError, match="delete"):
            read_round(path, params, 1)
