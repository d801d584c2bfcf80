"""Real Snakemake on a tiny grid in a temporary directory."""
from __future__ import annotations

import json
import re

import pytest

from .helpers import Project, trained_jobs

pytestmark = pytest.mark.workflow

ARTEFACTS = ["results/phases.json", "results/phases.csv", "results/metrics.json",
             "results/figures/phase_diagram.png", "results/figures/smooth_diagram.png",
             "results/figures/curves.png", "results/report.md", "results/metadata.json",
             "results/validation.json", "results/explorer.html"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full run of the tiny grid, shared by the tests that only read it."""
    proj = Project(tmp_path_factory.mktemp("wf"))
    first = proj.snakemake()
    return proj, first


def test_dry_run_counts_cells_plus_aggregation(tmp_path):
    proj = Project(tmp_path)
    out = proj.snakemake("-n", "--quiet", "rules").stdout
    counts = dict((m.split()[0], int(m.split()[1])) for m in out.splitlines()
                  if len(m.split()) == 2 and m.split()[1].isdigit())
    assert counts["train_cell"] == 4
    aggregation = ["classify_phases", "plot_phase_diagrams", "plot_curves", "write_explorer", "write_report",
                   "validate_results", "all"]
    assert all(counts[r] == 1 for r in aggregation)
    assert counts["total"] == 4 + len(aggregation)


def test_full_run_produces_every_artefact(built):
    proj, first = built
    assert trained_jobs(first.stderr + first.stdout) == 4
    for rel in ARTEFACTS:
        assert (proj.path / rel).stat().st_size > 0, rel
    assert len(proj.cell_files()) == 4
    phases = json.loads(proj.read("results/phases.json"))
    assert phases["n_cells"] == 4 and sum(phases["counts"].values()) == 4
    assert json.loads(proj.read("results/validation.json"))["passed"] is True
    report = proj.read("results/report.md").decode()
    for words in ("Phase distribution", "Per-cell results", "figures/phase_diagram.png", "Metadata",
                  "(explorer.html)", f"**{phases['undecided_cells']} of 4 cells are undecided at budget**",
                  "cells per CPU kind", "cells per kernel: fused/c_tail: 4"):
        assert words in report
    # each cell says whether the budget decided its label, in every published form
    assert all(isinstance(c["undecided"], bool) for c in phases["cells"])
    assert "undecided" in proj.read("results/phases.csv").decode().splitlines()[0]
    assert json.loads(proj.read("results/metrics.json"))["undecided_cells"] == phases["undecided_cells"]
    assert "undecided at budget" in proj.read("results/explorer.html").decode()
    rec = json.loads(proj.read("results/cells/wd=1/frac=0.8/width=32/seed=0/metrics.json"))
    assert rec["cell"] == {"weight_decay": 1.0, "train_fraction": 0.8, "width": 32, "seed": 0}
    assert rec["settings"]["task"]["modulus"] == 23 and rec["versions"]["torch"]
    assert "[progress]" in first.stderr


def test_cells_train_in_the_scheduler_process(built):
    """The default profile (profiles/default -> workflow/profiles/local) runs cell jobs as
    threads of the Snakemake process: every cell log names one and the same process."""
    proj, _ = built
    logs = sorted((proj.path / "results" / "logs" / "cells").rglob("*.log"))
    pids = {int(m) for log in logs for m in re.findall(r"process (\d+)\)", log.read_text())}
    assert len(logs) == 4 and len(pids) == 1, pids


def test_second_run_does_nothing(built):
    proj, _ = built
    before = proj.cell_files()
    again = proj.snakemake()
    assert "Nothing to be done" in again.stdout + again.stderr
    assert proj.cell_files() == before


def test_new_grid_value_trains_only_new_cells(tmp_path):
    proj = Project(tmp_path)
    proj.snakemake()
    before = proj.cell_files()
    proj.edit_params({"sweep": {"weight_decay": [0.0, 1.0, 0.1]}})
    out = proj.snakemake()
    after = proj.cell_files()
    assert trained_jobs(out.stdout + out.stderr) == 2
    assert {k: after[k] for k in before} == before  # old cells untouched
    assert len(after) == 6
    assert json.loads(proj.read("results/phases.json"))["n_cells"] == 6
    # a threshold edit reclassifies and retrains nothing
    old = json.loads(proj.read("results/phases.json"))
    proj.edit_params({"phases": {"accuracy_threshold": 0.2}})
    out = proj.snakemake()
    assert trained_jobs(out.stdout + out.stderr) == 0
    assert proj.cell_files() == after
    new = json.loads(proj.read("results/phases.json"))
    assert new["settings"]["phases"]["accuracy_threshold"] == 0.2
    assert new["counts"] != old["counts"] or new["cells"] != old["cells"]


def test_shared_training_setting_retrains_all_and_config_retrains_none(tmp_path):
    proj = Project(tmp_path)
    proj.snakemake()
    before = proj.cell_files()
    cfg = (proj.path / "config.yaml").read_text().replace("log_level: INFO", "log_level: DEBUG")
    (proj.path / "config.yaml").write_text(cfg)
    out = proj.snakemake()
    assert trained_jobs(out.stdout + out.stderr) == 0 and proj.cell_files() == before
    proj.edit_params({"training": {"max_epochs": 200}})
    out = proj.snakemake()
    assert trained_jobs(out.stdout + out.stderr) == 4


def test_config_override_on_the_command_line(tmp_path):
    proj = Project(tmp_path)
    out = proj.snakemake("-n", "--quiet", "rules", "--config", "sweep={seed: [0, 1, 2]}")
    assert "train_cell           12" in out.stdout.replace("\t", " ") or " 12" in out.stdout
    bad = proj.snakemake("-n", "--config", "sweep={width: [0]}", check=False)
    assert bad.returncode != 0
    assert "sweep.width[0]" in bad.stderr and "Traceback" not in bad.stderr


def test_restored_cells_of_an_earlier_sweep_are_current(tmp_path):
    """What `git checkout` + `dvc checkout` do: old params and old cell files come back.

    The cells carry their training fingerprint, so Snakemake does not retrain them even
    though its own records remember the later run; a real settings change still retrains.
    """
    import shutil

    proj = Project(tmp_path)
    proj.snakemake()
    saved_params = proj.read("params.yaml")
    shutil.copytree(proj.path / "results" / "cells", tmp_path / "saved_cells")
    proj.edit_params({"training": {"learning_rate": 0.02}})
    out = proj.snakemake()
    assert trained_jobs(out.stdout + out.stderr) == 4
    (proj.path / "params.yaml").write_bytes(saved_params)
    shutil.rmtree(proj.path / "results" / "cells")
    shutil.copytree(tmp_path / "saved_cells", proj.path / "results" / "cells")
    dry = proj.snakemake("-n", "--quiet", "rules")
    assert "train_cell" not in dry.stdout
    out = proj.snakemake()
    assert trained_jobs(out.stdout + out.stderr) == 0
    # a cell whose fingerprint file is missing (killed between its two writes, before
    # aggregation ran) retrains, alone
    next(proj.path.glob("results/cells/wd=0/frac=0.5/width=32/seed=0/fingerprint-*.json")).unlink()
    for rel in ("phases.json", "validation.json", "report.md", "metadata.json"):
        (proj.path / "results" / rel).unlink()
    out = proj.snakemake()
    assert trained_jobs(out.stdout + out.stderr) == 1


def test_html_report_with_captions(built):
    proj, _ = built
    proj.run("--report", "report.html")
    html = proj.read("report.html").decode(errors="replace")
    assert "Smooth phase diagram after S3" in html and "phase_diagram.png" in html
    assert "explorer.html" in html and "The sweep explorer" in html  # the explorer is in the report


def test_the_default_terminal_ends_with_the_answer(tmp_path):
    """config.yaml terminal: summary (the default): progress and the answer on the terminal,
    Snakemake's per-job lines in its log file only; terminal: full prints them as Snakemake does."""
    proj = Project(tmp_path, terminal="summary")
    out = proj.snakemake()
    text = out.stdout + out.stderr
    phases = json.loads(proj.read("results/phases.json"))
    counts = ", ".join(f"{phases['counts'][p]} {p}" for p in ("confusion", "memorization", "grokking", "comprehension"))
    assert "grokmap: this run's results" in text and f"4 cells: {counts}" in text
    assert "validation: passed" in text and "results/report.md" in text and "results/explorer.html" in text
    assert "[progress] 4/4 cells trained" in text
    assert "Select jobs to execute" not in text and "(Rule: train_cell)" not in text
    log = re.search(r"Complete log\(s\): (\S+)", text).group(1)
    assert trained_jobs(open(log).read()) == 4  # the per-job lines went to the log
    again = proj.snakemake()
    assert "Nothing to be done" in again.stderr and "grokmap: results up to date" in again.stderr
    cfg = (proj.path / "config.yaml").read_text().replace("terminal: summary", "terminal: full")
    (proj.path / "config.yaml").write_text(cfg)
    proj.edit_params({"sweep": {"seed": [0, 1]}})
    full = proj.snakemake()
    assert trained_jobs(full.stdout + full.stderr) == 4 and "Select jobs to execute" in full.stderr


def test_a_failed_aggregation_job_prints_a_short_error_and_logs_it_whole(tmp_path):
    """terminal: summary: a failed job's error names its first input files and the reason its step
    gave; Snakemake's log file holds every input, the step's log the whole story."""
    proj = Project(tmp_path, terminal="summary")
    proj.snakemake()
    phases = json.loads(proj.read("results/phases.json"))
    phases["counts"]["confusion"] += 1  # a hand edit the validator refuses
    (proj.path / "results" / "phases.json").write_text(json.dumps(phases))
    out = proj.snakemake(check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Error in rule validate_results" in text
    assert "more (all of them in the log file)" in text
    assert "reason: RuntimeError: validation failed: phase counts" in text
    assert len(re.findall(r"cells/wd=[^,\s]+/metrics\.json", text)) <= 3
    log = open(re.search(r"Complete log\(s\): (\S+)", text).group(1)).read()
    assert len(set(re.findall(r"cells/wd=[^,\s]+/metrics\.json", log))) == 4  # every cell, in the log file
    step_log = proj.read("results/logs/validate_results.log").decode()
    assert "FAIL phase counts" in step_log and "removed results/report.md" in step_log


def test_figures_for_papers(tmp_path):
    """config.yaml plots: every figure also as PDF and SVG at the PNG's name; one seed draws no
    per-seed diagram; dvc plots' grokking steps list only cells that grokked."""
    proj = Project(tmp_path)
    cfg = (proj.path / "config.yaml").read_text().replace("formats: [png]", "formats: [png, pdf, svg]")
    (proj.path / "config.yaml").write_text(cfg.replace("dpi: 150", "dpi: 200"))
    proj.snakemake()
    figures = proj.path / "results" / "figures"
    for name in ("phase_diagram", "smooth_diagram", "grokking_step", "curves"):
        assert (figures / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert b"<svg" in (figures / f"{name}.svg").read_bytes()[:2000]
    assert not (figures / "seed_diagrams.png").exists()
    assert "Phase diagram of each seed" not in proj.read("results/report.md").decode()
    from PIL import Image

    assert round(Image.open(figures / "phase_diagram.png").info["dpi"][0]) == 200
    phases = json.loads(proj.read("results/phases.json"))
    rows = proj.read("results/figures/grokking_steps.csv").decode().splitlines()
    assert len(rows) - 1 == sum(c["grokking_step"] is not None for c in phases["cells"])
    # two seeds: each voter's diagram is drawn and in the report
    proj.edit_params({"sweep": {"seed": [0, 1]}})
    proj.snakemake()
    assert (figures / "seed_diagrams.png").exists() and (figures / "seed_diagrams.svg").exists()
    assert "Phase diagram of each seed" in proj.read("results/report.md").decode()
