"""Adaptive refinement with real Snakemake and DVC on tiny grids (issue 20): rounds 0, 1, 2 and
the cells each trains; more rounds train only the new cells; a `phases:` edit re-derives the
rounds and trains only cells that do not exist yet; a kill in the middle of a round resumes;
S3's stacked cells refine through DVC. The rule itself, on known phase maps: tests/unit/test_refine.py."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from grokmap.analysis.aggregate import round_file
from grokmap.analysis.axes import cell_from_row
from grokmap.analysis.refine import next_round
from grokmap.settings import load_settings

from ..conftest import ROOT
from .helpers import TINY, Project, kill_when, trained_jobs

pytestmark = pytest.mark.workflow

# a 2 x 3 grid whose corner (wd 1, frac 0.8) groks and the rest memorises (TINY's map)
REFINED = {**TINY, "sweep": {**TINY["sweep"], "weight_decay": [0.0, 1.0], "train_fraction": [0.3, 0.55, 0.8]},
           "refine": {"rounds": 0, "axes": {"weight_decay": "linear", "train_fraction": "linear"}, "digits": 3}}


def _round_path(proj, r) -> str:
    """Round r's list under the project's current settings (named by them)."""
    params = load_settings(proj.path / "params.yaml", proj.path / "config.yaml", proj.path / "workflow" / "schemas").params
    return str(round_file(proj.path / "results", r, params).relative_to(proj.path))


def _round_cells(proj, r) -> list[str]:
    return json.loads(proj.read(_round_path(proj, r)))["cells"]


def _refined_files(proj) -> dict[str, int]:
    return {str(p.relative_to(proj.path)): p.stat().st_mtime_ns
            for p in sorted((proj.path / "results" / "refined" / "cells").rglob("metrics.json"))}


def _expected_next(proj, r) -> list[str]:
    """What round r must add, by the rule, from the phases of rounds 0..r-1 (phases.json)."""
    phases = json.loads(proj.read("results/phases.json"))
    params = {**proj.params, "refine": {**proj.params["refine"], "rounds": r}}
    rows, _ = next_round(params, phases["groups"], r)
    return [cell_from_row(row, params["sweep"]).relpath for row in rows]


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """One project taken through rounds 0, 1 and 2; each run's output kept."""
    proj = Project(tmp_path_factory.mktemp("refine"), REFINED)
    runs = {0: proj.snakemake()}
    proj.plain_summary = json.loads(proj.read("results/refined/summary.json"))
    proj.plain_files = sorted(p.name for p in (proj.path / "results" / "refined").iterdir())
    for r in (1, 2):
        expected = _expected_next(proj, r)
        proj.edit_params({"refine": {"rounds": r}})
        before = _refined_files(proj)
        runs[r] = (proj.snakemake(), expected, before)
    return proj, runs


def test_zero_rounds_is_the_plain_grid(grown):
    proj, runs = grown
    out = runs[0].stdout + runs[0].stderr
    assert trained_jobs(out) == 6 and "refine_round" not in out
    # the plain run wrote only the summary below refined/ (DVC keeps that directory)
    assert proj.plain_files == ["summary.json"]
    assert proj.plain_summary == {"rounds": 0, "cells_per_round": [6]}


def test_each_round_trains_exactly_the_cells_the_rule_gives(grown):
    proj, runs = grown
    for r in (1, 2):
        out, expected, before = runs[r]
        log = out.stdout + out.stderr
        listed = _round_cells(proj, r)
        assert listed == expected and listed, (r, listed, expected)
        refined_trained = len(re.findall(r"\(Rule: train_refined_cell\)", log))
        assert refined_trained == len(listed) and trained_jobs(log) == 0  # no grid cell retrained
        after = _refined_files(proj)
        assert {k: after[k] for k in before} == before  # earlier rounds' cells untouched
    phases = json.loads(proj.read("results/phases.json"))
    counts = phases["refine"]["cells_per_round"]
    assert counts == [6, len(_round_cells(proj, 1)), len(_round_cells(proj, 2))]
    assert phases["n_cells"] == sum(counts) and json.loads(proj.read("results/validation.json"))["passed"]
    assert "## Adaptive refinement" in proj.read("results/report.md").decode()
    assert "drawn at" in proj.read("results/explorer.html").decode()  # the explorer draws the coverage
    assert phases["refine"]["lattice_points"] == 5 * 9  # wd 0..1 by 1/4, frac 0.3..0.8 by 1/16


def test_more_rounds_keep_earlier_rounds_and_a_phases_edit_trains_only_new_cells(grown):
    proj, _ = grown
    round1 = proj.read(_round_path(proj, 1))
    again = proj.snakemake()
    assert "refine_round" not in again.stdout + again.stderr and "train_" not in again.stdout + again.stderr
    assert proj.read(_round_path(proj, 1)) == round1  # a finished round is not recomputed
    # threshold 0: every cell "reaches" at its first evaluation, so all are comprehension and
    # no boundary is left: the rounds are empty, no refined cell is needed
    before = _refined_files(proj)
    proj.edit_params({"phases": {"accuracy_threshold": 0.0}})
    out = proj.snakemake()
    log = out.stdout + out.stderr
    assert "train_refined_cell" not in log and trained_jobs(log) == 0  # nothing new to train
    assert _round_cells(proj, 1) == [] and _round_cells(proj, 2) == []
    assert _refined_files(proj) == before  # cells no longer needed are kept on disk ...
    phases = json.loads(proj.read("results/phases.json"))
    assert phases["n_cells"] == 6 and phases["refine"]["cells_per_round"] == [6, 0, 0]  # ... and not counted
    # back to the first threshold: the old rounds again, from the cells on disk, nothing trained
    proj.edit_params({"phases": {"accuracy_threshold": REFINED_THRESHOLD}})
    out = proj.snakemake()
    assert "train_refined_cell" not in out.stdout + out.stderr
    assert proj.read(_round_path(proj, 1)) == round1


REFINED_THRESHOLD = yaml.safe_load((ROOT / "params.yaml").read_text())["phases"]["accuracy_threshold"]


def test_a_kill_in_the_middle_of_a_round_resumes(tmp_path):
    proj = Project(tmp_path, {**REFINED, "refine": {**REFINED["refine"], "rounds": 1}})
    cells_dir = proj.path / "results" / "refined" / "cells"
    kill_when(proj, lambda: len(list(cells_dir.rglob("metrics.json"))) >= 1, timeout=300)
    done = len(list(cells_dir.rglob("metrics.json")))
    listed = _round_cells(proj, 1)
    assert done >= 1 and len(listed) >= 2
    out = proj.snakemake()
    log = out.stdout + out.stderr
    resumed = len(re.findall(r"\(Rule: train_refined_cell\)", log))
    assert resumed <= len(listed) - done + 1  # at most the cell that was being written when killed
    assert len(list(cells_dir.rglob("metrics.json"))) == len(listed)
    assert json.loads(proj.read("results/validation.json"))["passed"]


SMALL_S3 = {"training": {"max_epochs": 300},
            "sweep": {"weight_decay": [0.0, 10.0], "task": {"data_seed": [41]},
                      "training": {"learning_rate": [0.0001, 0.01]}},
            "refine": {"rounds": 1, "axes": {"weight_decay": "linear", "training.learning_rate": "log"},
                       "digits": 3}}


def _git(proj, *args):
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=proj.path,
                          check=True, capture_output=True, text=True)


def test_stacked_cells_refine_through_dvc(tmp_path):
    """S3's model: a round's cells train as stacks; `dvc repro` runs the rounds, persists
    results/refined, and is up to date after; one more round trains only its own cells."""
    proj = Project(tmp_path, {})
    study = yaml.safe_load((proj.path / "studies" / "reduced" / "s3_toy_classification.yaml").read_text())
    (proj.path / "params.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    proj.edit_params(SMALL_S3)
    (proj.path / ".dvc").mkdir()
    for rel in (".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore"):
        (proj.path / rel).write_bytes((ROOT / rel).read_bytes())
    _git(proj, "init", "-q")
    out = proj.run("repro", tool="dvc").stdout
    assert "Running stage 'aggregate'" in out
    listed = _round_cells(proj, 1)
    markers = list((proj.path / "results" / "refined" / "round-1").glob("stack-*.done"))
    stacked = [c for m in markers for c in json.loads(m.read_text())["cells"]]
    assert sorted(stacked) == sorted(listed) and len(markers) >= 1
    for rel in listed:
        record = json.loads((proj.path / "results" / "refined" / "cells" / rel / "metrics.json").read_text())
        assert record["stacked_cells"] >= 1 and record["cell"]["weight_decay"] in (0.0, 5.0, 10.0)
    lock = yaml.safe_load((proj.path / "dvc.lock").read_text())
    assert any(o["path"] == "results/refined" for o in lock["stages"]["aggregate"]["outs"])
    assert "Data and pipelines are up to date" in proj.run("repro", tool="dvc").stdout
    before = _refined_files(proj)
    proj.edit_params({"refine": {"rounds": 2}})
    out = proj.run("repro", tool="dvc").stdout
    assert "Stage 'train_cells' didn't change" in out
    after = _refined_files(proj)
    assert {k: after[k] for k in before} == before
    assert len(after) == len(before) + len(_round_cells(proj, 2))
    assert json.loads(proj.read("results/validation.json"))["passed"]
