"""Faults and bad input through the real entry points (Snakemake and DVC)."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from grokmap.jobs.resume import incomplete_markers

from .helpers import BIN, Project, kill_when, trained_jobs

pytestmark = pytest.mark.workflow

# Longer training than TINY so that a kill lands while cells are running.
SLOW = {"training": {"max_epochs": 3000},
        "sweep": {"weight_decay": [0.0, 1.0, 2.0], "train_fraction": [0.5, 0.8], "width": [32], "seed": [0]}}


def _curves(proj) -> dict:
    return {k: json.loads(proj.read(k))["curves"] for k in proj.cell_files()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    proj = Project(tmp_path_factory.mktemp("ref"))
    proj.edit_params(SLOW)
    proj.snakemake()
    return proj


KILL_POINTS = {
    "before any cell finished": lambda p: (p.path / "results" / "logs" / "cells").exists(),
    "after two cells": lambda p: len(p.cell_files()) >= 2,
    "mid-write of a cell": lambda p: any(n.startswith(".metrics.json.")
                                         for _, _, files in os.walk(p.path / "results" / "cells")
                                         for n in files) if (p.path / "results" / "cells").exists() else False,
    # the moment a cell's last file appears, before the scheduler has recorded the job as done
    "as a cell finishes": lambda p: any((p.path / "results" / "cells").rglob("fingerprint-*.json")),
    "during aggregation": lambda p: (p.path / "results" / "logs" / "classify_phases.log").exists(),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_same_command_resumes(tmp_path, reference, point):
    proj = Project(tmp_path)
    proj.edit_params(SLOW)
    # mid-write: every atomic write pauses 2 s between its temporary file and the rename
    pause = {"GROKMAP_TEST_PAUSE_BEFORE_RENAME": "2"} if point.startswith("mid-write") else {}
    kill_when(proj, lambda: KILL_POINTS[point](proj), poll=0.002 if point == "as a cell finishes" else 0.05,
              **pause)
    # finished = both files of the cell written (metrics.json, then its fingerprint file)
    survived = {k: v for k, v in proj.cell_files().items()
                if list((proj.path / k).parent.glob("fingerprint-*.json"))}
    # a finished cell carries no "unfinished" mark of Snakemake's, however close to its end the kill came
    marked = {os.path.dirname(p) for p in incomplete_markers(proj.path / ".snakemake")}
    assert not marked & {os.path.dirname(k) for k in survived}
    out = proj.snakemake()  # the same command, nothing else
    err = out.stdout + out.stderr
    after = proj.cell_files()
    assert len(after) == 6
    # only the unfinished cells ran again; finished ones were not touched
    assert trained_jobs(err) == 6 - len(survived)
    assert {k: after[k] for k in survived} == survived
    assert proj.read("results/phases.json") == reference.read("results/phases.json")
    assert _curves(proj) == _curves(reference)
    assert json.loads(proj.read("results/validation.json"))["passed"]


def test_non_finite_loss_is_a_flag_in_the_report(tmp_path):
    proj = Project(tmp_path)
    proj.edit_params({"training": {"learning_rate": 1.0e30, "max_epochs": 100},
                      "sweep": {"weight_decay": [0.0], "train_fraction": [0.5], "width": [16], "seed": [0]}})
    proj.snakemake()
    phases = json.loads(proj.read("results/phases.json"))
    assert phases["non_finite_cells"] == 1 and phases["cells"][0]["non_finite_loss"] is True
    assert "non-finite loss" in proj.read("results/report.md").decode()
    assert json.loads(proj.read("results/metrics.json"))["non_finite_cells"] == 1


def test_corrupt_cell_file_fails_the_workflow_with_its_path(tmp_path):
    proj = Project(tmp_path)
    proj.snakemake()
    victim = "results/cells/wd=0/frac=0.8/width=32/seed=0/metrics.json"
    (proj.path / victim).write_text('{"fingerprint": "' + "0" * 64 + '", "format": "something else"}')
    out = proj.snakemake(check=False)
    assert out.returncode != 0
    log = proj.read("results/logs/classify_phases.log").decode()
    assert victim in log and "not a grokmap cell record" in log and "delete it and rerun" in log
    # nothing stale survives the failed aggregation: no report, no all-pass validation
    assert not (proj.path / "results" / "report.md").exists()
    assert not (proj.path / "results" / "validation.json").exists()


def test_results_copied_without_snakemake_records_rebuild_after_a_phases_edit(tmp_path):
    """The aggregated outputs carry the settings they were built from: a copy of the results
    (no .snakemake/ records) whose phases: are then edited is re-aggregated, nothing retrained."""
    import shutil

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = Project(tmp_path / "a")
    first.snakemake()
    second = Project(tmp_path / "b")
    shutil.copytree(first.path / "results", second.path / "results")
    before = second.cell_files()
    second.edit_params({"phases": {"accuracy_threshold": 0.5}})
    out = second.snakemake()
    assert trained_jobs(out.stdout + out.stderr) == 0 and second.cell_files() == before
    phases = json.loads(second.read("results/phases.json"))
    assert phases["settings"]["phases"]["accuracy_threshold"] == 0.5
    assert "0.5" in second.read("results/report.md").decode()
    assert json.loads(second.read("results/validation.json"))["passed"]


BAD_INPUTS = [
    ("sweep.wieght_decay: [0.1]", "unknown key 'wieght_decay'"),
    ("training.max_epochs: lots", "'training.max_epochs' = 'lots' is not allowed; allowed: a value of type integer"),
    ("sweep.weight_decay: []", "'sweep.weight_decay' = [] is not allowed"),
    ("sweep.weight_decay: [0.1, 1e-1]", "'sweep.weight_decay' has repeated value(s) [0.1]"),
    ("sweep.train_fraction: [0]", "'sweep.train_fraction[0]' = 0.0 is not allowed; allowed: a number > 0 and < 1"),
    ("sweep.train_fraction: [1.5]", "'sweep.train_fraction[0]' = 1.5"),
    ("sweep.train_fraction: [0.001]", "leaves 0 train"),
    ("task.modulus: 1", "'task.modulus' = 1 is not allowed; allowed: a number >= 2"),
    ("task.modulus: 23.5", "'task.modulus' = 23.5 is not allowed; allowed: a value of type integer"),
    ("sweep.weight_decay: [-0.1]", "'sweep.weight_decay[0]' = -0.1"),
    ("training.learning_rate: -0.001", "'training.learning_rate' = -0.001"),
    ("sweep.width: [0]", "'sweep.width[0]' = 0 is not allowed"),
    ("model.name: resnet", "'model.name' = 'resnet' is not allowed; allowed: one of 'embed_concat_mlp', 'transformer'"),
    ("training.optimizer: sgdd", "'training.optimizer' = 'sgdd'"),
    ("training.loss: hinge", "'training.loss' = 'hinge'"),
    ("task.name: modular_exponentiation", "'task.name' = 'modular_exponentiation'"),
    ("training.eval_every_epochs: 100000", "at most training.max_epochs"),
    ("phases.accuracy_threshold: 1.2", "'phases.accuracy_threshold' = 1.2 is not allowed; allowed: a number >= 0 and <= 1"),
    # non-finite numbers: NaN compares false with everything, so it would change phases silently
    ("phases.accuracy_threshold: .nan", "'phases.accuracy_threshold' = nan is not allowed; allowed: a finite number"),
    ("phases.grokking_gap_epochs: .inf", "'phases.grokking_gap_epochs' = inf is not allowed; allowed: a finite number"),
    ("sweep.weight_decay: [0.0, .nan]", "'sweep.weight_decay[1]' = nan is not allowed; allowed: a finite number"),
    ("training.learning_rate: -.inf", "'training.learning_rate' = -inf is not allowed"),
    # what cannot fit, refused with the estimate and the limit before any job
    ("training.max_epochs: 1000000000000", "optimizer steps per cell; allowed: at most 1,000,000,000"),
    ("sweep.width: [10000000]", "'sweep.width' = 10000000 needs about"),
    ("sweep.seed: [" + ", ".join(str(i) for i in range(6000)) + "]", "'sweep' has 24,000 cells"),  # 2 x 2 x 1 x 6,000
]


def _apply(proj, edit: str):
    key, value = edit.split(": ", 1)
    import yaml

    params = proj.params
    *parents, last = key.split(".")
    node = params
    for k in parents:
        node = node[k]
    node[last] = yaml.safe_load(value)
    (proj.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.parametrize("edit,message", BAD_INPUTS)
def test_bad_params_through_snakemake(tmp_path, edit, message):
    proj = Project(tmp_path)
    _apply(proj, edit)
    out = proj.snakemake(check=False)
    assert out.returncode != 0
    assert message in out.stderr and "params.yaml" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (proj.path / "results" / "cells").exists()  # refused before any job


def test_unwritable_results_dir_and_bad_config_through_snakemake(tmp_path):
    proj = Project(tmp_path)
    (proj.path / "blocker").write_text("a file, not a directory")
    cfg = proj.read("config.yaml").decode()
    (proj.path / "config.yaml").write_text(cfg.replace("results_dir: results", "results_dir: blocker/results"))
    out = proj.snakemake(check=False)
    assert out.returncode != 0 and "'results_dir' = 'blocker/results'" in out.stderr
    assert "cannot be written" in out.stderr and "Traceback" not in out.stderr
    (proj.path / "config.yaml").write_text(cfg.replace("log_level: INFO", "log_level: LOUD"))
    out = proj.snakemake(check=False)
    assert out.returncode != 0 and "config.yaml: 'log_level' = 'LOUD'" in out.stderr


def test_bad_input_through_dvc_and_yaml_syntax(tmp_path):
    proj = Project(tmp_path)
    (proj.path / "params.yaml").write_text(proj.read("params.yaml").decode().replace(
        "modulus: 23", "modulus: 23\n  bad: [unclosed"))
    subprocess.run(["git", "init", "-q"], cwd=proj.path, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=proj.path, check=True)
    def refused(*replacements, message):
        text = proj.read("params.yaml").decode()
        for old, new in replacements:
            text = text.replace(old, new)
        (proj.path / "params.yaml").write_text(text)
        out = proj.run("repro", tool="dvc", check=False)
        assert out.returncode != 0 and message in out.stdout + out.stderr
        assert not (proj.path / "results" / "cells").exists()

    refused(message="YAML")
    refused(("\n  bad: [unclosed", ""), ("modulus: 23", "modulus: 23.5"), message="'task.modulus' = 23.5 is not allowed")
    # a non-finite threshold through dvc repro: refused, not a silent all-confusion diagram
    refused(("modulus: 23.5", "modulus: 23"), ("accuracy_threshold: 0.95", "accuracy_threshold: .nan"),
            message="'phases.accuracy_threshold' = nan is not allowed; allowed: a finite number")


def _refused_before_work(proj, out, message):
    assert out.returncode != 0, out.stdout[-2000:]
    assert message in out.stderr, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    assert not (proj.path / "results" / "cells").exists()


def test_non_finite_numbers_through_config_text(tmp_path):
    proj = Project(tmp_path)
    out = proj.snakemake("--config", "phases={accuracy_threshold: nan}", check=False)
    _refused_before_work(proj, out, "'phases.accuracy_threshold' = nan is not allowed; allowed: a finite number")
    out = proj.snakemake("--config", "sweep={training: {learning_rate: [0.01, inf]}}", check=False)
    _refused_before_work(proj, out, "'training.learning_rate' = inf is not allowed; allowed: a finite number")


@pytest.mark.parametrize("content,message", [
    ("task:\n  modulus: 23\n  modulus: 29\n", "key 'modulus' is given twice in one mapping"),
    ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
     "its YAML aliases expand to more than 100,000 values"),
    (b"\xff\xfe\x00\x01binary", "not UTF-8 text"),
])
def test_yaml_hazards_are_refused(tmp_path, content, message):
    proj = Project(tmp_path)
    path = proj.path / "params.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif "modulus" in content:  # a duplicate key inside the real file
        path.write_text(path.read_text().replace("  modulus: 23\n", "  modulus: 23\n  modulus: 29\n", 1))
    else:
        path.write_text(content)
    out = proj.snakemake(check=False)
    _refused_before_work(proj, out, message)


@pytest.mark.parametrize("results_dir,message", [
    ("/", "already holds files the workflow did not write"),
    ("/usr", "already holds files the workflow did not write"),
    ("res{x}", "contains '{' or '}'"),
    ("r" * 300, "makes a path component of 300 bytes"),
    ("mine", "already holds files the workflow did not write (notes.txt)"),
    ("results/../mine", "already holds files the workflow did not write (notes.txt)"),  # through a missing dir
])
def test_results_dir_must_be_the_workflows(tmp_path, results_dir, message):
    proj = Project(tmp_path)
    (proj.path / "mine").mkdir()
    (proj.path / "mine" / "notes.txt").write_text("a researcher's own file")
    out = proj.snakemake("--config", f"results_dir={results_dir}", check=False)
    _refused_before_work(proj, out, message)
    assert (proj.path / "mine" / "notes.txt").read_text() == "a researcher's own file"


def test_results_get_normal_permissions_and_a_marker_absolute_paths_work(tmp_path):
    proj = Project(tmp_path)
    scratch = tmp_path / "scratch" / "run1"  # absolute, outside the checkout
    old = os.umask(0o022)
    try:
        proj.snakemake("--config", f"results_dir={scratch}")
    finally:
        os.umask(old)
    assert (scratch / ".grokmap-results").exists()
    for name in ("phases.json", "phases.csv", "report.md", "validation.json"):
        assert (scratch / name).stat().st_mode & 0o777 == 0o644, name
    cell = next((scratch / "cells").rglob("metrics.json"))
    assert cell.stat().st_mode & 0o777 == 0o644
    assert not (proj.path / "results").exists()  # nothing written outside the chosen directory
    # the directory is the workflow's now: a second run accepts it and has nothing to do
    out = proj.snakemake("--config", f"results_dir={scratch}")
    assert trained_jobs(out.stdout + out.stderr) == 0


def test_a_killed_run_never_breaks_a_live_runs_lock(tmp_path):
    """Two live runs in two results directories of one checkout; A is killed after B started.
    B's command started again is refused (B is alive) and B finishes untouched, every cell
    trained once; A's command then resumes A."""
    import signal
    import time

    proj = Project(tmp_path)
    proj.edit_params(SLOW)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")

    def start(results):
        return subprocess.Popen([str(BIN / "snakemake"), "--cores", "1", "--config", f"results_dir={results}"],
                                cwd=proj.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)

    runs = proj.path / ".snakemake" / "grokmap-runs"
    a = start("ra")
    deadline = time.time() + 120
    while not (runs.exists() and len(list(runs.glob("*.run"))) >= 1) and time.time() < deadline:
        time.sleep(0.05)
    b = start("rb")
    while not len(list(runs.glob("*.run"))) >= 2 and time.time() < deadline:
        time.sleep(0.05)
    assert a.poll() is None and b.poll() is None, "both runs must be live"
    os.killpg(a.pid, signal.SIGKILL)
    a.wait()
    again = proj.snakemake("--config", "results_dir=rb", check=False)
    assert again.returncode != 0 and "is being written by a live run" in again.stderr
    assert "Traceback" not in again.stderr
    out, _ = b.communicate(timeout=900)
    assert b.returncode == 0, out[-3000:]
    assert trained_jobs(out) == 6 and json.loads(proj.read("rb/validation.json"))["passed"]
    resumed = proj.snakemake("--config", "results_dir=ra")
    assert json.loads(proj.read("ra/validation.json"))["passed"]
    assert trained_jobs(resumed.stdout + resumed.stderr) + len(
        [1 for _ in (proj.path / "ra" / "cells").rglob("fingerprint-*.json")]) >= 6
