"""Real DVC and Git on a tiny grid: the sweep-to-sweep loop a researcher uses."""
from __future__ import annotations

import subprocess

import pytest

from ..conftest import ROOT
from .helpers import Project

pytestmark = pytest.mark.workflow


def _git(proj, *args):
    return subprocess.run(["git", *args], cwd=proj.path, check=True, capture_output=True, text=True)


def _rewritten(before: dict, after: dict) -> set:
    return {k for k in after if before.get(k) != after[k]}


@pytest.fixture
def repo(tmp_path):
    proj = Project(tmp_path)
    (proj.path / ".dvc").mkdir()
    for rel in (".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore"):
        (proj.path / rel).write_bytes((ROOT / rel).read_bytes())
    _git(proj, "init", "-q")
    _git(proj, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    _git(proj, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "tiny sweep")
    return proj


def _commit(proj, msg):
    _git(proj, "add", "-A")
    _git(proj, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", msg)


def dvc(proj, *args, **kw):
    return proj.run(*args, tool="dvc", **kw)


def test_sweep_to_sweep_loop(repo):
    proj = repo
    out = dvc(proj, "repro")
    assert "Running stage 'train_cells'" in out.stdout and "Running stage 'aggregate'" in out.stdout
    first = proj.cell_files()
    assert len(first) == 4 and (proj.path / "results/report.md").exists()
    _commit(proj, "sweep 1")
    sweep1_phases = proj.read("results/phases.json")

    again = dvc(proj, "repro")
    assert "Data and pipelines are up to date" in again.stdout
    assert proj.cell_files() == first

    # one new weight decay: only its 2 cells train; old files untouched, byte for byte
    old_bytes = {k: proj.read(k) for k in first}
    proj.edit_params({"sweep": {"weight_decay": [0.0, 1.0, 0.1]}})
    dvc(proj, "repro")
    second = proj.cell_files()
    assert len(second) == 6 and _rewritten(first, second) == {k for k in second if "wd=0.1/" in k}
    assert all(proj.read(k) == b for k, b in old_bytes.items())
    params_diff = dvc(proj, "params", "diff").stdout
    assert "sweep.weight_decay" in params_diff and "[0.0, 1.0, 0.1]" in params_diff
    metrics_diff = dvc(proj, "metrics", "diff").stdout
    assert "n_cells" in metrics_diff and "phase_counts" in metrics_diff
    _commit(proj, "sweep 2: wd 0.1")

    # a phase threshold: nothing retrains, the metrics change
    proj.edit_params({"phases": {"accuracy_threshold": 0.01}})
    out = dvc(proj, "repro")
    assert "Stage 'train_cells' didn't change" in out.stdout
    assert proj.cell_files() == second
    assert "phases.accuracy_threshold" in dvc(proj, "params", "diff").stdout
    assert "phase_counts" in dvc(proj, "metrics", "diff").stdout
    _commit(proj, "sweep 3: threshold")

    # back to sweep 1: outputs restored from the cache, nothing retrained
    _git(proj, "checkout", "-q", "HEAD~2", "--", "params.yaml", "dvc.lock")
    dvc(proj, "checkout")
    out = dvc(proj, "repro")
    assert "Data and pipelines are up to date" in out.stdout
    assert proj.read("results/phases.json") == sweep1_phases
    restored = proj.cell_files()
    assert set(restored) == set(first) and all(proj.read(k) == old_bytes[k] for k in first)
    dry = proj.snakemake("-n", "--quiet", "rules")
    assert "train_cell" not in dry.stdout  # Snakemake agrees: the restored cells are current

    # a training setting shared by all cells retrains all of them
    _git(proj, "checkout", "-q", "HEAD", "--", "params.yaml", "dvc.lock")
    dvc(proj, "checkout")
    before = proj.cell_files()
    proj.edit_params({"training": {"max_epochs": 700}})
    dvc(proj, "repro")
    assert _rewritten(before, proj.cell_files()) == set(before)


def test_snakemake_and_dvc_give_identical_phases(repo, tmp_path_factory):
    dvc(repo, "repro")
    plain = Project(tmp_path_factory.mktemp("plain"))
    plain.snakemake()
    assert plain.read("results/phases.json") == repo.read("results/phases.json")
    assert plain.read("results/metrics.json") == repo.read("results/metrics.json")


def test_experiments_with_set_param(repo):
    dvc(repo, "repro")
    _commit(repo, "baseline")
    out = dvc(repo, "exp", "run", "-S", "sweep.weight_decay=[0,1,0.01]")
    assert "Ran experiment" in out.stdout + out.stderr
    show = dvc(repo, "exp", "show", "--no-pager", "--csv").stdout
    assert "0.01" in show and "grokking_fraction" in show


def test_an_extra_axis_through_dvc_experiments(repo):
    # `-S` writes the axis nested (sweep: {training: {optimizer: [...]}}); settings read it
    # as training.optimizer, the cells get their own paths, and the aggregate stage's
    # metrics and params are tracked like any sweep's.
    dvc(repo, "repro")
    _commit(repo, "baseline")
    out = dvc(repo, "exp", "run", "-S", "+sweep.training.optimizer=[adamw,sgd]",  # + adds a new key
              "-S", "sweep.weight_decay=[1.0]", "-S", "sweep.train_fraction=[0.8]")
    assert "Ran experiment" in out.stdout + out.stderr
    cells = sorted(p.parent.relative_to(repo.path / "results" / "cells").as_posix()
                   for p in (repo.path / "results" / "cells").glob("training_optimizer=*/**/metrics.json"))
    assert cells == ["training_optimizer=adamw/wd=1/frac=0.8/width=32/seed=0",
                     "training_optimizer=sgd/wd=1/frac=0.8/width=32/seed=0"]
    assert "training.optimizer" in (repo.path / "results" / "phases.csv").read_text().splitlines()[0]
    diff = dvc(repo, "params", "diff", "--all").stdout
    assert "sweep.training.optimizer" in diff


def test_an_s3_study_through_dvc(repo):
    """S3's stacked cells under DVC: `dvc repro` trains the grid in stack jobs; a new learning
    rate through `dvc exp run -S` trains only its own cells, and `dvc params diff` names it."""
    import yaml

    study = yaml.safe_load((repo.path / "studies" / "reduced" / "s3_toy_classification.yaml").read_text())
    (repo.path / "params.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    repo.edit_params({"training": {"max_epochs": 200},
                      "sweep": {"weight_decay": [0.0, 5.0], "task": {"data_seed": [41]},
                                "training": {"learning_rate": [0.001, 0.01]}}})
    dvc(repo, "repro")
    assert len(list((repo.path / "results" / "logs" / "stacks").glob("stack_*.log"))) == 2  # one per core
    _commit(repo, "s3 baseline")
    before = repo.cell_files()
    assert len(before) == 4
    dvc(repo, "exp", "run", "-S", "sweep.training.learning_rate=[0.001,0.01,0.003]")
    after = repo.cell_files()
    assert len(after) == 6 and _rewritten(before, after) == {k for k in after if "0.003" in k}
    assert "sweep.training.learning_rate" in dvc(repo, "params", "diff").stdout


def test_queued_experiments_run_in_parallel_and_one_is_applied(repo):
    """`dvc exp run --queue` twice, `dvc queue start -j 2`: both succeed in DVC's temporary
    workspaces (no results marker there, no git-ignored renderer bundle: the environment's copy
    is used), `dvc exp show` lists their params and metrics, `dvc exp apply` brings one back."""
    import json
    import time

    dvc(repo, "repro")
    _commit(repo, "baseline")
    dvc(repo, "exp", "run", "--queue", "-S", "sweep.seed=[5]", "--name", "seed-five")
    dvc(repo, "exp", "run", "--queue", "-S", "training.learning_rate=0.02", "--name", "faster")
    dvc(repo, "queue", "start", "-j", "2")
    deadline = time.time() + 600
    while time.time() < deadline:
        status = dvc(repo, "queue", "status").stdout
        if "Queued" not in status and "Running" not in status and "Success" in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2 and "Failed" not in status, status
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    exps = {e["name"]: e for row in shown for e in (row.get("experiments") or []) for e in e.get("revs", [])}
    assert set(exps) >= {"seed-five", "faster"}, list(exps)
    params = exps["faster"]["data"]["params"]["params.yaml"]["data"]
    metrics = exps["faster"]["data"]["metrics"]["results/metrics.json"]["data"]
    assert params["training"]["learning_rate"] == 0.02 and metrics["n_cells"] == 4
    dvc(repo, "exp", "apply", "faster")
    assert "learning_rate: 0.02" in repo.read("params.yaml").decode()
    assert json.loads(repo.read("results/metrics.json")) == metrics


def test_a_temporary_experiment_runs(repo):
    out = dvc(repo, "exp", "run", "--temp", "-S", "sweep.seed=[7]")
    assert "Ran experiment" in out.stdout + out.stderr


def test_a_study_named_in_config_is_refused_under_dvc(repo):
    """A study named in config.yaml would train untracked under DVC (dvc.lock records
    params.yaml): refused in one line that says how to run a study with DVC."""
    cfg = repo.read("config.yaml").decode().replace("params_file: params.yaml",
                                                      "params_file: studies/reduced/s1_noise.yaml")
    (repo.path / "config.yaml").write_text(cfg)
    out = dvc(repo, "repro", check=False)
    assert out.returncode != 0
    line = next(x for x in (out.stdout + out.stderr).splitlines() if "Invalid settings" in x)
    assert "'params_file' = 'studies/reduced/s1_noise.yaml'" in line and "cp studies/reduced/s1_noise.yaml params.yaml" in line
    assert not (repo.path / "results" / "cells").exists()  # nothing trained


def test_an_extension_round_through_dvc(repo):
    """`dvc exp run -S extend.rounds=1`: the aggregate stage continues the undecided cells into the
    persisted results/extended, retrains no cell of the grid, and `dvc params diff` names it."""
    import json

    dvc(repo, "repro")
    _commit(repo, "baseline")
    before = repo.cell_files()
    undecided = json.loads(repo.read("results/phases.json"))["undecided_cells"]
    dvc(repo, "exp", "run", "-S", "extend.rounds=1", "-S", "extend.factor=2")
    assert repo.cell_files() == before
    phases = json.loads(repo.read("results/phases.json"))
    assert phases["extend"]["cells_per_round"] == [undecided]
    assert len(list((repo.path / "results" / "extended").rglob("metrics.json"))) == undecided
    assert json.loads(repo.read("results/extended/summary.json")) == phases["extend"]
    assert "extend.rounds" in dvc(repo, "params", "diff").stdout
