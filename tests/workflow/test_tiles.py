"""Tiles (config.yaml tile_cells > 1): cells of the one-cell-at-a-time engines trained in jobs of
several, one after another, the workflow seeing one marker per tile instead of the cells."""
from __future__ import annotations

import copy
import json
import re

import pytest

from .helpers import TINY, Project, kill_when

pytestmark = pytest.mark.workflow


def _curves(proj: Project) -> dict:
    return {str(p.parent.relative_to(proj.path / "results" / "cells")): json.loads(p.read_text())["curves"]
            for p in (proj.path / "results" / "cells").rglob("metrics.json")}


def _set_tiles(proj: Project, n: int) -> None:
    cfg = (proj.path / "config.yaml").read_text()
    (proj.path / "config.yaml").write_text(re.sub(r"\ntile_cells: \d+", f"\ntile_cells: {n}", cfg))


def test_tiles_train_the_same_cells_and_retrain_only_what_is_missing(tmp_path):
    (tmp_path / "cells").mkdir()
    (tmp_path / "tiles").mkdir()
    single, tiled = Project(tmp_path / "cells"), Project(tmp_path / "tiles")
    _set_tiles(tiled, 3)
    single.snakemake()
    out = tiled.snakemake()
    log = out.stdout + out.stderr
    # 4 cells in tiles of 3: two tile jobs, no per-cell job; the same records, the same phases
    assert len(re.findall(r"\(Rule: train_tile\)", log)) == 2 and "(Rule: train_cell)" not in log
    assert _curves(single) == _curves(tiled)
    assert json.loads(single.read("results/phases.json"))["cells"] == json.loads(tiled.read("results/phases.json"))["cells"]
    assert json.loads(tiled.read("results/validation.json"))["passed"]
    assert len(list((tiled.path / "results" / "tiles").glob("*.done"))) == 2

    # nothing to do: no tile runs, and the aggregation does not either (its inputs are every tile's marker)
    again = tiled.snakemake()
    assert "(Rule: train_tile)" not in again.stdout + again.stderr
    assert "(Rule: classify_phases)" not in again.stdout + again.stderr

    # one cell lost: its tile gets a marker of a new generation (nothing is deleted before the
    # run), and the cells target (the DVC train_cells stage) runs that tile, training only the lost
    # cell; the tile job then drops the older marker; the aggregation follows
    markers = sorted(p.name for p in (tiled.path / "results" / "tiles").glob("*.done"))
    lost = next((tiled.path / "results" / "cells").rglob("fingerprint-*.json"))
    lost.unlink()
    before = _curves(tiled)
    dry = tiled.snakemake("cells", "-n")
    assert sorted(p.name for p in (tiled.path / "results" / "tiles").glob("*.done")) == markers
    assert "(Rule: train_tile)" in dry.stdout + dry.stderr or "train_tile" in dry.stdout + dry.stderr
    out = tiled.snakemake("cells")
    log = out.stdout + out.stderr
    assert "[resume] 1 tile(s) with a cell still to train will run again" in log
    assert len(re.findall(r"\(Rule: train_tile\)", log)) == 1 and "1 of 4 cells to train" in log
    assert lost.exists() and _curves(tiled) == before
    now = sorted(p.name for p in (tiled.path / "results" / "tiles").glob("*.done"))
    assert len(now) == 2 and sum(n.endswith("-g1.done") for n in now) == 1 and len(set(now) & set(markers)) == 1
    out = tiled.snakemake()
    assert "(Rule: classify_phases)" in out.stdout + out.stderr


def test_a_killed_tile_keeps_its_finished_cells_and_the_same_command_resumes(tmp_path):
    proj = Project(tmp_path)
    _set_tiles(proj, 4)  # all four cells in one tile
    cells = proj.path / "results" / "cells"
    kill_when(proj, lambda: len(list(cells.rglob("fingerprint-*.json"))) >= 1)
    done = {str(p) for p in cells.rglob("fingerprint-*.json")}
    assert 1 <= len(done) < 4
    out = proj.snakemake()
    log = out.stdout + out.stderr
    assert f"{4 - len(done)} of 4 cells to train" in log
    assert done <= {str(p) for p in cells.rglob("fingerprint-*.json")}
    assert len(list(cells.rglob("fingerprint-*.json"))) == 4
    assert json.loads(proj.read("results/validation.json"))["passed"]


def test_a_hundred_thousand_cells_in_tiles_plan_as_a_thousand_jobs(tmp_path):
    big = copy.deepcopy(TINY)
    big["sweep"]["seed"] = list(range(25005))  # 4 x 25,005 cells
    proj = Project(tmp_path, overrides=big)
    _set_tiles(proj, 100)
    out = proj.run("-n", "--config", "max_sweep_cells=200000")
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out.stdout, flags=re.M))
    assert stats["train_tile"] == "1001" and "train_cell" not in stats
