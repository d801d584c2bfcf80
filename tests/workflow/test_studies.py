"""Every named study (studies/*.yaml) runs end to end at its reduced budget
(studies/reduced/*.yaml), selected with the one documented command."""
from __future__ import annotations

import csv
import json
import math

import pytest

from grokmap.machine import cpu_kind
from grokmap.training.grid import axis_name, cells, extra_axes, spell
from grokmap.settings import load_settings

from ..conftest import ROOT, SCHEMAS
from .helpers import Project

STUDIES = sorted(p.stem for p in (ROOT / "studies").glob("*.yaml"))


def _params(path) -> dict:
    """A study's params as the workflow reads them (extra axes nested or dotted -> dotted)."""
    return load_settings(path, ROOT / "config.yaml", SCHEMAS).params


def test_every_study_has_a_reduced_version_with_the_same_axes_and_model():
    assert {"s1_models", "s1_optimizers", "s1_noise", "s2_fraction_scan", "s4_gd_mse", "s4_adamw"} <= set(STUDIES)
    for name in STUDIES:
        full = _params(ROOT / "studies" / f"{name}.yaml")
        small = _params(ROOT / "studies" / "reduced" / f"{name}.yaml")
        assert extra_axes(full["sweep"]) == extra_axes(small["sweep"]), name
        assert full["model"]["name"] == small["model"]["name"], name
        assert full["training"]["optimizer"] == small["training"]["optimizer"], name
        assert full["training"]["loss"] == small["training"]["loss"], name
        text = (ROOT / "studies" / f"{name}.yaml").read_text()
        assert f"--config params_file=studies/{name}.yaml results_dir=results/{name}" in text
        assert f"`{name}`" in (ROOT / "README.md").read_text(), f"README does not list {name}"


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """One project copy; every reduced study run into its own results directory."""
    proj = Project(tmp_path_factory.mktemp("studies"), {})
    for name in STUDIES:
        proj.snakemake("--config", f"params_file=studies/reduced/{name}.yaml", f"results_dir=results/{name}")
    return proj


@pytest.mark.parametrize("name", STUDIES)
def test_reduced_study_runs_end_to_end(studies, name):
    params = _params(studies.path / "studies" / "reduced" / f"{name}.yaml")
    out = studies.path / "results" / name
    assert json.loads((out / "validation.json").read_text())["passed"]
    for fig in ("phase_diagram", "smooth_diagram", "curves", "grokking_step"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    # each voter's own diagram only when the diagram's points have several voters
    voters = math.prod(len(params["sweep"].get(a, [None])) for a in params["phases"]["majority_over"])
    assert (out / "figures" / "seed_diagrams.png").exists() is (voters > 1)
    report = (out / "report.md").read_text()
    assert "## Grokking step" in report and "## Measurements" in report
    header = report.splitlines()[2]  # what the cells trained with, swept settings named as such
    for key in extra_axes(params["sweep"]):
        assert f"Swept: {key} ({', '.join(spell(v) for v in params['sweep'][key])})." in header, header
    steps = params["training"]["max_steps"]
    assert (f"or {steps} steps" in header) == (steps is not None), header
    assert ("(depth" in header) == (params["model"]["name"] != "quadratic_mlp"), header
    every = params["training"]["accuracy_every_steps"]
    assert ("(accuracy every " in header) == (every is not None), header
    grid = cells(params["sweep"])
    rows = list(csv.DictReader((out / "phases.csv").open()))
    grid_rows = [r for r in rows if r.get("round", "0") == "0"]  # refined studies add rounds 1, 2, ...
    assert len(grid_rows) == len(grid)
    if params["refine"]["rounds"]:
        refined = [r for r in rows if r.get("round", "0") != "0"]
        assert refined and all((out / "refined" / "cells").rglob("metrics.json"))
        assert "## Adaptive refinement" in report
    extras = extra_axes(params["sweep"])
    for key in extras:  # the swept settings name the cell paths and the table's columns
        assert {r[key] for r in grid_rows} == {str(v) for v in params["sweep"][key]}
        assert all(f"{axis_name(key)}=" in c.relpath for c in grid)
    for cell in grid:
        record = json.loads((out / "cells" / cell.relpath / "metrics.json").read_text())
        assert record["settings"]["model"]["name"] in (params["model"]["name"], "(swept)")
        curves = record["curves"]
        name = record["cell"].get("model.name", params["model"]["name"])  # s1_models sweeps it
        logged = curves["param_norm"] if name == "s3_mlp" else (  # S3's model: the norm only
            curves["ipr"] + curves["param_norm"] + curves["subnetwork_fraction"])
        if name == "transformer":  # no linear readout of its last hidden layer: no sparsity
            assert set(curves["subnetwork_fraction"]) == {None}
            logged = curves["ipr"] + curves["param_norm"]
        assert all(v is not None for v in logged)


def test_record_tables_and_curve_figures_from_a_finished_study(studies, tmp_path):
    """scripts/reproduction_record.py and scripts/measures_figure.py on a reduced study."""
    import subprocess
    import sys

    out = studies.path / "results" / "s4_adamw"
    script = [sys.executable, str(ROOT / "scripts" / "measures_figure.py"), str(out)]
    rows = json.loads((out / "phases.json").read_text())["cells"]
    half = subprocess.run(script + [str(tmp_path / "wd0.png"), "--absolute", "--only", "weight_decay=0"],
                          capture_output=True, text=True, check=True)
    assert f"({sum(r['weight_decay'] == 0 for r in rows)} cells)" in half.stdout
    png = tmp_path / "ipr.png"
    done = subprocess.run(script + [str(png), "--curves", "train_acc,test_acc,ipr", "--absolute"],
                          capture_output=True, text=True, check=True)
    assert png.stat().st_size > 1000 and f"({len(rows)} cells)" in done.stdout  # every cell
    aligned = subprocess.run(script + [str(tmp_path / "aligned.png")], capture_output=True, text=True)
    grokked = sum(r["grokking_step"] is not None for r in rows)
    assert aligned.returncode == (0 if grokked else 1), aligned.stderr
    assert (f"({grokked} cells)" in aligned.stdout) if grokked else "nothing to align" in aligned.stderr
    bad = subprocess.run(script + [str(tmp_path / "x.png"), "--curves", "test_acc,nonsense"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "unknown curve(s) nonsense" in bad.stderr
    record = [sys.executable, str(ROOT / "scripts" / "reproduction_record.py"), str(out), str(tmp_path / "rec_frac0.35")]
    subprocess.run(record + ["--columns", "grokking_step,final_test_acc"], check=True, capture_output=True)
    table = list(csv.DictReader((tmp_path / "rec_frac0.35.csv").open()))  # a dot in the name stays
    assert len(table) == len(rows) and list(table[0])[-4:] == ["first_test_step", "grokking_step", "final_test_acc",
                                                               "cpu_kind"]
    assert {t["cpu_kind"] for t in table} == {cpu_kind()}  # every record names the CPU kind it was made on
    assert [t["grokking_step"] for t in table] == ["" if r["grokking_step"] is None else str(r["grokking_step"])
                                                   for r in rows]
    assert (tmp_path / "rec_frac0.35_phase_diagram.png").exists()
    wrong = subprocess.run(record + ["--columns", "grokking_stepz"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "unknown column(s) grokking_stepz" in wrong.stderr


def test_studies_never_share_a_results_directory_or_a_cell(studies):
    seen = {}
    for name in STUDIES:
        for path in (studies.path / "results" / name / "cells").rglob("metrics.json"):
            record = json.loads(path.read_text())
            seen[path] = record["fingerprint"]
    assert len(seen) == sum(len(cells(_params(studies.path / "studies" / "reduced" / f"{n}.yaml")["sweep"]))
                            for n in STUDIES)
    # a second run of a study does nothing: the other studies' runs did not touch its cells
    out = studies.snakemake("--config", "params_file=studies/reduced/s1_noise.yaml",
                            "results_dir=results/s1_noise")
    assert "Nothing to be done" in out.stdout + out.stderr
