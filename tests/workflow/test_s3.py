"""S3's model in the workflow (issue 8): cells that still need training run as stacked jobs,
each cell keeps its own files and invalidation, and a stacked cell equals the same cell
trained alone."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from grokmap.training.grid import cells
from grokmap.settings import load_settings

from .helpers import Project, kill_when

SMALL = {  # studies/reduced/s3_toy_classification.yaml, smaller still
    "training": {"max_epochs": 300},
    "sweep": {"weight_decay": [0.0, 5.0], "task": {"data_seed": [41]},
              "training": {"learning_rate": [0.0001, 0.001, 0.01]}},
}


def _grid(proj) -> list:
    """The project's cells, from its params.yaml as the workflow reads it (nested axes too)."""
    params = load_settings(proj.path / "params.yaml", proj.path / "config.yaml", proj.path / "workflow" / "schemas").params
    return cells(params["sweep"])


def _stack_jobs(output: str) -> list[str]:
    return re.findall(r"\(Rule: (train_stack_\d+)\)", output)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    proj = Project(tmp_path_factory.mktemp("s3"), {})
    study = yaml.safe_load((proj.path / "studies" / "reduced" / "s3_toy_classification.yaml").read_text())
    (proj.path / "params.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    proj.edit_params(SMALL)
    proj.first = proj.snakemake()
    return proj


def test_pending_cells_train_as_stacks_one_job_per_core(project):
    out = project.first.stdout + project.first.stderr
    assert sorted(_stack_jobs(out)) == ["train_stack_0", "train_stack_1"]  # --cores 2, 6 cells
    assert "train_cell" not in out
    logs = sorted((project.path / "results" / "logs" / "stacks").glob("*.log"))
    assert [p.name for p in logs] == ["stack_0_of_2.log", "stack_1_of_2.log"]
    assert "training 3 cells as one stack" in logs[0].read_text()
    grid = _grid(project)
    for cell in grid:
        d = project.path / "results" / "cells" / cell.relpath
        record = json.loads((d / "metrics.json").read_text())
        assert len(list(d.glob("fingerprint-*.json"))) == 1
        assert record["stacked_cells"] == 3
        log = record["accuracy_log"]  # every step, run-length encoded
        assert log["every"] == 1 and sum(n for _, n in log["train"]) == record["steps_run"]
    assert json.loads((project.path / "results" / "validation.json").read_text())["passed"]
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(project.snakemake())


def test_a_stacked_cell_equals_the_same_cell_trained_alone(project):
    """scripts/train_cell.py trains one cell on the one-cell path (nn.Module + torch.optim.AdamW)."""
    cell = _grid(project)[1]
    stacked = json.loads((project.path / "results" / "cells" / cell.relpath / "metrics.json").read_text())
    settings = stacked["settings"]
    fp_name = next((project.path / "results" / "cells" / cell.relpath).glob("fingerprint-*.json")).name
    out = project.path / "alone" / "metrics.json"
    args = [x for k, v in cell.wildcards.items() if k in ("wd", "frac", "width", "seed") for x in (f"--{k}", v)]
    args += [x for k, v in cell.wildcards.items() if k not in ("wd", "frac", "width", "seed")
             for x in ("--axis", f"{k}={v}")]
    subprocess.run([sys.executable, str(project.path / "scripts" / "train_cell.py"), *args,
                    "--settings", json.dumps(settings), "--out", str(out),
                    "--fingerprint-out", str(out.parent / fp_name)], check=True, cwd=project.path,
                   env={"PYTHONPATH": str(project.path / "src"), "PATH": "/usr/bin:/bin"})
    alone = json.loads(out.read_text())
    assert alone["stacked_cells"] == 1 and alone["steps_run"] == stacked["steps_run"]
    assert alone["accuracy_log"] == stacked["accuracy_log"]
    for key in ("train_loss", "test_loss", "param_norm"):
        assert alone["curves"][key] == pytest.approx(stacked["curves"][key], rel=1e-3), key


def test_a_new_learning_rate_trains_only_its_cells_and_phase_edits_train_nothing(project):
    before = project.cell_files()
    project.edit_params({"sweep": {"training": {"learning_rate": [0.0001, 0.001, 0.01, 0.003]}}})
    out = project.snakemake()
    after = project.cell_files()
    assert len(after) == len(before) + 2
    assert {k: after[k] for k in before} == before  # the finished cells were not touched
    log = next(iter(sorted((project.path / "results" / "logs" / "stacks").glob("stack_*_of_*.log"),
                           key=lambda p: p.stat().st_mtime)[-1:]))
    assert len(_stack_jobs(out.stdout + out.stderr)) == 2 and "training 1 cells as one stack" in log.read_text()

    phases_before = json.loads((project.path / "results" / "phases.json").read_text())
    project.edit_params({"phases": {"accuracy_threshold": 0.5, "majority_over": ["task.data_seed"]}})
    out = project.snakemake()
    assert not _stack_jobs(out.stdout + out.stderr) and project.cell_files() == after
    phases = json.loads((project.path / "results" / "phases.json").read_text())
    assert phases["settings"]["phases"]["accuracy_threshold"] == 0.5
    assert [r["first_train_epoch"] for r in phases["cells"]] != [r["first_train_epoch"] for r in phases_before["cells"]]


def _early_and_late_stoppers(tmp_path) -> Project:
    """The reduced S3 study where some cells stop early and others train the whole budget
    (data seed 42, model seed 102, S3's Figure 1 pair): lr 6.3e-4 and 1.6e-4 at wd 0 reach 90 %
    on both splits by steps 317 and 825 and stop; lr 1e-5 and wd 20 train all 6,000 steps."""
    proj = Project(tmp_path, {})
    study = yaml.safe_load((proj.path / "studies" / "reduced" / "s3_toy_classification.yaml").read_text())
    (proj.path / "params.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    proj.edit_params({"training": {"max_epochs": 6000},
                      "sweep": {"weight_decay": [0.0, 20.0], "seed": [102], "task": {"data_seed": [42]},
                                "training": {"learning_rate": [0.000158, 0.000631, 1e-05]}}})
    return proj


def test_a_killed_stack_keeps_the_cells_that_had_finished(tmp_path):
    """Cells that stop early are written at once; SIGKILL the run after the first one, and the
    same command trains only the others."""
    proj = _early_and_late_stoppers(tmp_path)
    # kill once a cell is finished (its fingerprint file is written last): a kill between a cell's
    # two files would leave nothing finished, and the test would have nothing to check
    kill_when(proj, lambda: any((proj.path / "results" / "cells").rglob("fingerprint-*.json"))
              if (proj.path / "results" / "cells").exists() else False, timeout=300)
    survived = {k: v for k, v in proj.cell_files().items()
                if list((proj.path / k).parent.glob("fingerprint-*.json"))}
    assert survived and all("wd=0/" in k for k in survived)
    proj.snakemake()
    after = proj.cell_files()
    assert len(after) == 6 and {k: after[k] for k in survived} == survived
    assert json.loads((proj.path / "results" / "validation.json").read_text())["passed"]


def test_max_cells_per_job_bounds_every_stack(project, tmp_path):
    """A dry run into a fresh results directory: every cell is pending; at most 2 per job."""
    n = len(_grid(project))  # 6 or 8 cells, depending on whether the test that adds a learning rate ran
    out = project.snakemake("-n", "--config", f"results_dir={tmp_path}/other", "max_cells_per_job=2")
    assert len(set(re.findall(r"train_stack_\d+", out.stdout + out.stderr))) == -(-n // 2) > 2  # more than one per core


def test_a_cell_directory_deleted_while_its_stack_runs_is_named(tmp_path):
    """A finished cell's directory removed while its stack still trains: the job fails naming
    the deleted files (not Snakemake's 'filesystem latency' guess) and the same command
    retrains just that cell."""
    import os
    import shutil
    import time

    from .helpers import BIN

    proj = _early_and_late_stoppers(tmp_path)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    run = subprocess.Popen([str(BIN / "snakemake"), "--cores", "1"], cwd=proj.path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and run.poll() is None:
        done = [k for k in proj.cell_files() if list((proj.path / k).parent.glob("fingerprint-*.json"))]
        if done:
            shutil.rmtree((proj.path / done[0]).parent)
            break
        time.sleep(0.05)
    out, _ = run.communicate(timeout=900)
    assert run.returncode != 0
    logs = "".join(p.read_text() for p in (proj.path / "results" / "logs").rglob("*.log"))
    assert "were deleted while this job ran" in out + logs and "run the same command again" in out + logs
    again = proj.snakemake()
    assert len(proj.cell_files()) == 6 and json.loads(proj.read("results/validation.json"))["passed"]
    assert len(_stack_jobs(again.stdout + again.stderr)) >= 1
