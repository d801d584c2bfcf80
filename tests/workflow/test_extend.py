"""Extension rounds with real Snakemake on a tiny grid (issue 29): only undecided cells are
continued, each from its saved state, and its record equals one longer run's; more rounds keep
the finished ones; a hand-edited list or a replaced state is refused. The loop's continuation on
every engine: tests/unit/test_extend.py."""
from __future__ import annotations

import json
import re

import pytest

from grokmap.analysis.extend import extension_file
from grokmap.settings import load_settings

from .helpers import TINY, Project

pytestmark = pytest.mark.workflow

# a budget short enough that some cells are still learning when it ends (2 of 8 undecided)
SHORT = {**TINY, "training": {**TINY["training"], "max_epochs": 300},
         "sweep": {"weight_decay": [0.1, 1.0], "train_fraction": [0.5, 0.8], "width": [32], "seed": [1, 2]},
         "extend": {"rounds": 0, "factor": 2}}


def _params(proj) -> dict:
    return load_settings(proj.path / "params.yaml", proj.path / "config.yaml", proj.path / "workflow" / "schemas").params


def _listed(proj, r) -> list[str]:
    return json.loads(extension_file(proj.path / "results", r, _params(proj)).read_text())["cells"]


def _extended_files(proj) -> dict[str, int]:
    return {str(p.relative_to(proj.path)): p.stat().st_mtime_ns
            for p in sorted((proj.path / "results" / "extended").rglob("metrics.json"))}


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    """One project taken through extension rounds 0, 1 and 2; each run's output kept."""
    proj = Project(tmp_path_factory.mktemp("extend"), SHORT)
    proj.snakemake()
    proj.at_budget = json.loads(proj.read("results/phases.json"))
    proj.cells_before = proj.cell_files()
    runs = {}
    for r in (1, 2):
        proj.edit_params({"extend": {"rounds": r, "factor": 2}})
        runs[r] = proj.snakemake().stderr
        proj.__dict__[f"files_{r}"] = _extended_files(proj)
    proj.runs = runs
    return proj


def test_a_round_continues_only_the_undecided_cells(extended):
    proj = extended
    undecided = sorted(f"wd={r['weight_decay']:g}/frac={r['train_fraction']:g}/width={r['width']}/seed={r['seed']}"
                       for r in proj.at_budget["cells"] if r["undecided"])
    assert undecided, "the tiny budget leaves no cell undecided: the test would prove nothing"
    assert sorted(_listed(proj, 1)) == undecided
    assert len(re.findall(r"\(Rule: train_extended_cell\)", proj.runs[1])) == len(undecided)
    assert "Rule: train_cell)" not in proj.runs[1]  # no cell of the grid retrains
    assert proj.cell_files() == proj.cells_before
    # round 2 continues those of round 1 still undecided, and only them
    assert set(_listed(proj, 2)) <= set(_listed(proj, 1))
    assert len(re.findall(r"\(Rule: train_extended_cell\)", proj.runs[2])) == len(_listed(proj, 2))
    assert {k: v for k, v in proj.files_2.items() if "/x2/" in k} == proj.files_1  # round 1 kept as it was
    phases = json.loads(proj.read("results/phases.json"))
    assert phases["extend"]["cells_per_round"] == [len(_listed(proj, 1)), len(_listed(proj, 2))]
    assert phases["extend"]["counts_at_budget"] == proj.at_budget["counts"]
    assert json.loads(proj.read("results/validation.json"))["passed"]
    report = proj.read("results/report.md").decode()
    assert "## Extension rounds" in report and f"{len(undecided)} of 8 cells were undecided" in report
    assert "budget_multiple" in proj.read("results/phases.csv").decode().splitlines()[0]


def test_a_continued_cell_equals_one_longer_run(extended, tmp_path):
    """The record of a cell continued to 4 x its budget has the curves of the same cell trained
    for 4 x the budget in one go (bit for bit: one computation on one CPU)."""
    proj = extended
    rel = sorted(_listed(proj, 2) or _listed(proj, 1))[0]
    multiple = 4 if _listed(proj, 2) else 2
    values = dict(part.split("=") for part in rel.split("/"))
    longer = Project(tmp_path, {**SHORT, "training": {**SHORT["training"], "max_epochs": 300 * multiple},
                                "sweep": {"weight_decay": [float(values["wd"])], "train_fraction": [float(values["frac"])],
                                          "width": [int(values["width"])], "seed": [int(values["seed"])]}})
    longer.snakemake("--", "cells")
    one_run = json.loads(longer.read(f"results/cells/{rel}/metrics.json"))
    continued = json.loads(proj.read(f"results/extended/x{multiple}/cells/{rel}/metrics.json"))
    assert continued["curves"] == one_run["curves"]
    assert continued["epochs_run"] == one_run["epochs_run"] == 300 * multiple
    assert continued["extended_from"]["multiple"] == multiple


def test_a_hand_edited_list_or_a_replaced_state_is_refused(extended):
    proj = extended
    # a replaced state: the cell it belongs to is not continued from it
    rel = _listed(proj, 1)[0]
    state = proj.path / "results" / "cells" / rel / "state.pt"
    good = state.read_bytes()
    state.write_bytes(good + b"\0")
    out = proj.snakemake(check=False)
    assert out.returncode != 0 and "not the state its record names" in (out.stdout + out.stderr + "".join(
        p.read_text() for p in (proj.path / "results" / "logs" / "extended").rglob("*.log")))
    state.write_bytes(good)
    # a list naming a cell that is not in the sweep trains nothing
    path = extension_file(proj.path / "results", 1, _params(proj))
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "cells": doc["cells"] + ["wd=5/frac=0.8/width=32/seed=1"]}))
    out = proj.snakemake(check=False)
    assert out.returncode != 0 and "not a cell of this sweep" in out.stdout + out.stderr
    # a list naming a decided cell of the sweep: the validator re-derives the list and fails
    decided = next(f"wd={r['weight_decay']:g}/frac={r['train_fraction']:g}/width={r['width']}/seed={r['seed']}"
                   for r in proj.at_budget["cells"] if not r["undecided"])
    path.write_text(json.dumps({**doc, "cells": doc["cells"] + [decided]}))
    out = proj.snakemake(check=False)
    assert out.returncode != 0 and "extension rounds re-derived" in out.stdout + out.stderr + \
        proj.read("results/logs/validate_results.log").decode()
    assert not (proj.path / "results" / "report.md").exists()
