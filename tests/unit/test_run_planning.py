"""What the workflow decides before its first job (torch-free, in the package): which cells
still need training, how stacked cells are split into jobs, and what a run repairs after a
crash (nothing on a dry run)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from grokmap.jobs.planning import cells_to_train
from grokmap.jobs.planning import plan_stacks as plan_spec_stacks
from grokmap.training.record import cell_settings
from grokmap.training.spec import CellSpec
from grokmap.training.grid import cells
from grokmap.jobs.resume import RUN_LOCK, RunRefused, forget_dead_runs, is_dry_run, prepare_run, record_scheduler
from grokmap.settings import load_settings

from ..conftest import ROOT, SCHEMAS


def plan_stacks(settings, grid, max_cells_per_job, cores):
    """The planned jobs, as cells."""
    specs = [CellSpec.of(settings, c) for c in grid]
    return [[s.cell for s in stack] for stack in plan_spec_stacks(specs, max_cells_per_job, cores)]


@pytest.fixture(scope="module")
def toy():
    params = load_settings(ROOT / "studies" / "reduced" / "s3_toy_activations.yaml", ROOT / "config.yaml",
                           SCHEMAS).params
    return cell_settings(params), cells(params["sweep"])


def test_each_stack_group_is_split_into_enough_jobs_dealt_round_robin(toy):
    settings, grid = toy  # three groups (one per activation) of len(grid) / 3 cells
    per_group = len(grid) // 3
    one = plan_stacks(settings, grid, max_cells_per_job=10_000, cores=1)
    assert [len(s) for s in one] == [per_group] * 3
    two = plan_stacks(settings, grid, max_cells_per_job=10_000, cores=2)  # at least one job per core
    assert len(two) == 6 and two[0] == one[0][0::2] and two[1] == one[0][1::2]
    capped = plan_stacks(settings, grid, max_cells_per_job=1, cores=1)  # at most one cell per job
    assert len(capped) == len(grid) and all(len(s) == 1 for s in capped)
    assert sorted(c.relpath for s in two for c in s) == sorted(c.relpath for c in grid)
    assert plan_stacks(settings, [], 64, 2) == []
    # a multiple of the cores: every core gets as many jobs (as far as there are cells)
    assert [len(s) for s in plan_stacks(settings, grid[:per_group], max(1, per_group // 3), 2)] \
        == [len(grid[:per_group][i::4]) for i in range(4)]
    assert len(plan_stacks(settings, grid[:3], 1, 2)) == 3
    with pytest.raises(ValueError, match="must be >= 1"):
        plan_stacks(settings, grid, 0, 1)


def _write_cell(results, cell, fp, complete=True):
    d = results / "cells" / cell.relpath
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics.json").write_text('{"fingerprint": "%s", "curves": {}}' % fp)
    if complete:
        (d / f"fingerprint-{fp[:16]}.json").write_text('{"fingerprint": "%s"}' % fp)


def test_cells_to_train_are_the_missing_half_written_and_stale_ones(toy, tmp_path):
    _, grid = toy
    fp, other = "a" * 64, "b" * 64
    fp_file = f"fingerprint-{fp[:16]}.json"
    _write_cell(tmp_path, grid[0], fp)                  # finished under these settings and code
    _write_cell(tmp_path, grid[1], fp, complete=False)  # killed between its two writes
    _write_cell(tmp_path, grid[2], other)               # finished under other settings
    todo = cells_to_train(tmp_path, grid, fp_file)
    assert grid[0] not in todo and grid[1] in todo and grid[2] in todo and len(todo) == len(grid) - 1


def test_dry_run_flags():
    # planning, drawing, reporting, linting and listing run no job: they never refuse or repair
    for argv in (["-n"], ["--dry-run"], ["-np"], ["--cores", "2", "--nolock"], ["-pn", "all"],
                 ["--report", "r.html"], ["--report=r.zip"], ["--rulegraph"], ["--dag"], ["--lint"], ["--summary"],
                 ["-S"], ["--detailed-summary"], ["--list-rules"], ["--filegraph"], ["--list-changes", "code"]):
        assert is_dry_run(argv), argv
    for argv in ([], ["--cores", "all"], ["-p"], ["--config", "results_dir=n"], ["--delete-all-output"],
                 ["--unlock"], ["--forceall"]):
        assert not is_dry_run(argv), argv


def test_the_results_directory_is_held_by_one_live_process(tmp_path):
    """The run lock lives in the results directory (its real path): another process meets it
    through the same path or a link to it, and it is gone when the holder dies."""
    results = tmp_path / "results"
    (tmp_path / "link").symlink_to(results, target_is_directory=True)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
                               "from grokmap.jobs.resume import hold_results_dir; hold_results_dir(sys.argv[2]);"
                               "print('held', flush=True); time.sleep(60)", str(ROOT / "src"), str(results)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for path in (results, tmp_path / "link"):
            with pytest.raises(RunRefused, match=f"live run \\(pid {holder.pid} on "):
                prepare_run(tmp_path / "state", path, False)
    finally:
        holder.kill()
        holder.wait()
    assert prepare_run(tmp_path / "state", tmp_path / "link", False) == []


def test_nothing_is_deleted_before_a_run_and_a_dry_run_says_nothing(tmp_path):
    import base64

    state, results = tmp_path / ".snakemake", tmp_path / "results"
    half = results / "cells" / "x" / "metrics.json"  # an output a killed run left unfinished
    half.parent.mkdir(parents=True)
    half.write_text("{")
    marker = state / "incomplete" / base64.urlsafe_b64encode(str(half).encode()).decode()
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    (state / "locks").mkdir()
    (state / "locks" / "0.output.lock").write_text("results/cells/x/metrics.json\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record_scheduler(state, results, dead.pid)
    everything = sorted(str(p) for p in tmp_path.rglob("*"))
    assert prepare_run(state, results, True) == []
    lines = prepare_run(state, results, False)  # the real run says what it will redo, and reads only
    assert lines[0].startswith(f"[resume] a killed run (pid {dead.pid}) left its work")
    assert lines[1] == "[resume] after an interrupted run: 1 unfinished output(s) will be made again"
    assert sorted(str(p) for p in tmp_path.rglob("*") if p.name != RUN_LOCK) == everything
    # the dead run's registration is forgotten when the run starts (onstart), not before
    assert forget_dead_runs(state) == [dead.pid] and not list((state / "grokmap-runs").iterdir())


def test_a_second_run_on_a_live_runs_results_is_refused(tmp_path):
    state, results = tmp_path / ".snakemake", tmp_path / "results"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record_scheduler(state, results, live.pid)
        with pytest.raises(RunRefused, match=f"live run \\(pid {live.pid}\\)"):
            prepare_run(state, results, False)
        assert prepare_run(state, tmp_path / "elsewhere", False) == []
    finally:
        live.kill()
        live.wait()


def test_the_plan_reads_a_cells_values_from_its_path(tmp_path):
    """A cell's spec holds the values its path spells (an extra axis' 0.0 is 0, as a cluster
    node's job reads it), so its record is the same wherever it trains; tiles are grid slices."""
    from grokmap.jobs.plan import Plan
    from grokmap.settings import Settings

    params = load_settings(ROOT / "studies" / "reduced" / "s1_noise.yaml", ROOT / "config.yaml", SCHEMAS).params
    run = load_settings(None, ROOT / "config.yaml", SCHEMAS, overrides={"params_file": str(
        ROOT / "studies" / "reduced" / "s1_noise.yaml")}).run
    plan = Plan(Settings(params, {**run, "results_dir": str(tmp_path / "r"), "tile_cells": 1}), cores=2)
    typed = [c for c in plan.grid if dict(c.extra)["training.embedding_noise"] == 0][0]
    assert dict(typed.extra)["training.embedding_noise"] == 0.0 and isinstance(dict(typed.extra)["training.embedding_noise"], float)
    spec = plan.specs[typed.relpath]
    assert spec.cell.as_dict() == plan.spec_of(typed.wildcards).cell.as_dict()
    assert repr(dict(spec.cell.extra)["training.embedding_noise"]) == "0"
    tiled = Plan(Settings(params, {**run, "results_dir": str(tmp_path / "r"), "tile_cells": 1000}), cores=2)
    assert tiled.tiled and [s.cell.relpath for s in tiled.tile_specs(0)] == [c.relpath for c in plan.grid]
    assert len(tiled.cell_outputs) == 1 and tiled.cell_outputs[0].startswith(str(tmp_path / "r" / "tiles" / "tile-0-"))
