"""The edges of the newer capabilities, tried as a hostile or careless user would (issue 28):
settings that reach a shell, refinement that would train what the grid refuses or without
bound, stale or hand-edited round files, results directories that are someone else's or are
written by another run, read-only commands, runs registered on another host, and a refused DVC
experiment. Through the real entry points; each case is refused in one line before any work,
or runs correctly, and loses nothing of the user's."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from .helpers import BIN, TINY, Project, kill_when, trained_jobs
from .test_dvc import _commit, dvc, repo  # noqa: F401  (the fixture)
from .test_refine import REFINED, REFINED_THRESHOLD, _round_path
from .test_reliability import SLOW, _refused_before_work

pytestmark = pytest.mark.workflow

ONE = {**TINY, "sweep": {**TINY["sweep"], "weight_decay": [1.0], "train_fraction": [0.8]}}


@pytest.mark.parametrize("results_dir", ["r $(touch pwned)", "with space/run `touch pwned2`", "q'uote\"d;touch pwned3"])
def test_a_setting_never_reaches_a_shell_and_odd_paths_work_end_to_end(tmp_path, results_dir):
    proj = Project(tmp_path, ONE)
    before = set(os.listdir(proj.path))
    out = proj.snakemake("--config", f"results_dir={results_dir}")
    assert not list(tmp_path.rglob("pwned*")), "a command inside a setting ran"
    results = proj.path / results_dir
    assert json.loads((results / "validation.json").read_text())["passed"], out.stderr[-2000:]
    assert (results / "report.md").exists() and (results / "explorer.html").exists()
    # nothing written beside the results (a word of the path taken for a file name, say)
    assert set(os.listdir(proj.path)) - before == {".snakemake", results_dir.split("/")[0]}


def test_refinement_that_would_train_what_the_grid_refuses_is_refused_before_any_work(tmp_path):
    proj = Project(tmp_path, {**ONE, "task": {"name": "modular_division", "modulus": 23},
                              "sweep": {**ONE["sweep"], "task.modulus": [23, 31]},
                              "refine": {"rounds": 1, "axes": {"task.modulus": "linear"}, "digits": 3}})
    out = proj.snakemake(check=False)
    _refused_before_work(proj, out, "'task.modulus' = 27 is not allowed; allowed: a prime with task "
                                    "'modular_division'")
    assert "refinement can train on refine.axes task.modulus" in out.stderr


@pytest.mark.parametrize("refine, message", [
    ({"rounds": 6, "axes": {"weight_decay": "log", "train_fraction": "linear", "width": "linear"}},
     "'refine.rounds' = 6 can train up to 274,625 cells"),
    ({"rounds": 4, "digits": 1, "axes": {"train_fraction": "linear"}},
     "'refine.digits' = 1 rounds two lattice values of train_fraction"),
])
def test_refinement_without_bounds_is_refused_before_any_work(tmp_path, refine, message):
    proj = Project(tmp_path, {**ONE, "sweep": {"weight_decay": [0.1, 1.0], "train_fraction": [0.3, 0.9],
                                               "width": [16, 80], "seed": [0]},
                              "refine": {"digits": 3, **refine}})
    _refused_before_work(proj, proj.snakemake(check=False), message)


def test_round_files_follow_their_settings_and_a_hand_edit_is_caught(tmp_path):
    proj = Project(tmp_path, {**REFINED, "refine": {**REFINED["refine"], "rounds": 1}})
    proj.snakemake()
    first = _round_path(proj, 1)
    listed = json.loads(proj.read(first))
    assert listed["derived_from"]["records_sha256"] and listed["cells"]
    # forget what Snakemake remembers, change a threshold, and ask for mtime-only triggers:
    # the round is derived again all the same (its file is named by its settings)
    shutil.rmtree(proj.path / ".snakemake")
    proj.edit_params({"phases": {"accuracy_threshold": 0.0}})
    out = proj.snakemake("--rerun-triggers", "mtime")
    assert "refine_round" in out.stdout + out.stderr
    assert _round_path(proj, 1) != first and json.loads(proj.read(_round_path(proj, 1)))["cells"] == []
    assert json.loads(proj.read("results/validation.json"))["passed"]
    # a hand-edited round list (one cell dropped) is caught by the validator, and nothing passes
    proj.edit_params({"phases": {"accuracy_threshold": REFINED_THRESHOLD}})
    assert _round_path(proj, 1) == first
    edited = json.loads(proj.read(first))
    edited["cells"] = edited["cells"][1:]
    (proj.path / first).write_text(json.dumps(edited))
    bad = proj.snakemake(check=False)
    assert bad.returncode != 0
    log = proj.read("results/logs/validate_results.log").decode()
    assert "refinement rounds re-derived from the records" in log and "delete the round files and rerun" in log
    assert not (proj.path / "results" / "validation.json").exists()
    # deleting it derives it again
    (proj.path / first).unlink()
    proj.snakemake()
    assert json.loads(proj.read(first))["cells"] == listed["cells"]
    assert json.loads(proj.read("results/validation.json"))["passed"]


def test_a_round_list_edited_to_name_a_cell_off_the_lattice_trains_nothing(tmp_path):
    proj = Project(tmp_path, {**REFINED, "refine": {**REFINED["refine"], "rounds": 1}})
    proj.snakemake()
    first = _round_path(proj, 1)
    edited = json.loads(proj.read(first))
    edited["cells"].append("wd=0.7/frac=0.5/width=32/seed=0")  # not a point of the lattice
    (proj.path / first).write_text(json.dumps(edited))
    out = proj.snakemake(check=False)
    assert out.returncode != 0 and "not a point of the refinement lattice" in out.stdout + out.stderr
    assert "delete the file and rerun" in out.stdout + out.stderr
    assert not (proj.path / "results" / "refined" / "cells" / "wd=0.7").exists()
    (proj.path / first).unlink()
    proj.snakemake()
    assert json.loads(proj.read("results/validation.json"))["passed"]


def test_a_folder_of_someone_elses_results_is_refused_and_left_as_it_was(tmp_path):
    proj = Project(tmp_path, ONE)
    mine = proj.path / "paper"
    (mine / "figures").mkdir(parents=True)
    for name, text in (("report.md", "my own report"), ("metrics.json", '{"mine": 1}')):
        (mine / name).write_text(text)
    (mine / "figures" / "phase_diagram.png").write_bytes(b"my figure")
    out = proj.snakemake("--config", "results_dir=paper", check=False)
    assert out.returncode != 0 and "already holds files the workflow did not write (figures, metrics.json, report.md)" \
        in out.stderr and "Traceback" not in out.stderr
    assert (mine / "report.md").read_text() == "my own report"
    assert (mine / "figures" / "phase_diagram.png").read_bytes() == b"my figure"
    assert sorted(os.listdir(mine)) == ["figures", "metrics.json", "report.md"]


def _start(path, results):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.Popen([str(BIN / "snakemake"), "--cores", "1", "--config", f"results_dir={results}"],
                            cwd=path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_another_checkout_or_a_link_cannot_write_a_live_runs_results(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    a, b = Project(tmp_path / "a", TINY), Project(tmp_path / "b", TINY)
    a.edit_params(SLOW)
    b.edit_params(SLOW)
    shared = tmp_path / "shared_results"
    (tmp_path / "link").symlink_to(shared, target_is_directory=True)
    live = _start(a.path, shared)
    try:
        deadline = time.time() + 120
        while not (shared / "cells").exists() and time.time() < deadline:
            time.sleep(0.05)
        for results in (shared, tmp_path / "link"):  # the same absolute path, and a link to it
            out = b.snakemake("--config", f"results_dir={results}", check=False)
            assert out.returncode != 0 and "is being written by a live run" in out.stderr, out.stderr[-2000:]
            assert "Traceback" not in out.stderr
    finally:
        os.killpg(live.pid, signal.SIGKILL)
        live.wait()
    # the kill released the lock: the same directory resumes from the other checkout
    b.snakemake("--config", f"results_dir={shared}")
    assert json.loads((shared / "validation.json").read_text())["passed"]


def test_graphs_reports_and_lint_neither_refuse_nor_delete_after_a_crash(tmp_path):
    proj = Project(tmp_path)
    proj.edit_params(SLOW)
    pause = {"GROKMAP_TEST_PAUSE_BEFORE_RENAME": "2"}
    kill_when(proj, lambda: any(n.startswith(".metrics.json.") for _, _, files in
                                os.walk(proj.path / "results" / "cells") for n in files)
              if (proj.path / "results" / "cells").exists() else False, **pause)
    markers = sorted(p.name for p in (proj.path / ".snakemake" / "incomplete").rglob("*") if p.is_file())
    assert markers
    for args in (["--rulegraph"], ["--dag"], ["--lint"], ["--report", str(tmp_path / "r.html")], ["--summary"]):
        out = proj.run(*args, check=False)
        assert "Traceback" not in out.stderr and "[resume]" not in out.stderr, args
        assert sorted(p.name for p in (proj.path / ".snakemake" / "incomplete").rglob("*") if p.is_file()) \
            == markers, f"{args} deleted a crash's records"
    out = proj.snakemake()
    assert "[resume]" in out.stderr and json.loads(proj.read("results/validation.json"))["passed"]


def test_a_run_registered_on_another_host_has_a_clear_way_out(tmp_path):
    proj = Project(tmp_path, ONE)
    runs = proj.path / ".snakemake" / "grokmap-runs"
    runs.mkdir(parents=True)
    (runs / "4242.run").write_text(f"4242 123 {socket.gethostname()}-container "
                                   f"{proj.path / 'results'}\n")  # killed inside a container
    out = proj.snakemake(check=False)
    assert out.returncode != 0 and "'snakemake --unlock' forgets it" in out.stderr and "Traceback" not in out.stderr
    unlock = proj.run("--unlock", check=False)
    assert unlock.returncode == 0 and "[unlock] forgot 1 run(s) registered on another host (pid 4242)" in unlock.stderr
    proj.snakemake()
    assert json.loads(proj.read("results/validation.json"))["passed"]


def test_classification_leaves_no_passing_validation_beside_new_phases(tmp_path):
    proj = Project(tmp_path, ONE)
    proj.snakemake()
    assert (proj.path / "results" / "validation.json").exists()
    proj.edit_params({"phases": {"accuracy_threshold": 0.5}})
    proj.snakemake("--until", "classify_phases")  # as if killed right after classification
    assert not (proj.path / "results" / "validation.json").exists()
    assert not (proj.path / "results" / "report.md").exists()


def test_a_refused_dvc_experiment_loses_no_published_result(repo):  # noqa: F811
    dvc(repo, "repro")
    _commit(repo, "baseline")
    published = {rel: repo.read(rel) for rel in ("results/phases.json", "results/report.md",
                                                  "results/validation.json", "results/metrics.json")}
    cells = repo.cell_files()
    out = dvc(repo, "exp", "run", "-S", "refine.rounds=7", check=False)
    assert out.returncode != 0
    assert "'refine.rounds' = 7 is not allowed" in out.stdout + out.stderr
    assert {rel: repo.read(rel) for rel in published} == published and repo.cell_files() == cells
    # a key DVC does not track is checked too (params.yaml is the first stage's dependency), not skipped
    (repo.path / "params.yaml").write_text(repo.read("params.yaml").decode() + "unknwon_section: 1\n")
    out = dvc(repo, "repro", check=False)
    assert out.returncode != 0 and "unknwon_section" in out.stdout + out.stderr
    assert {rel: repo.read(rel) for rel in published} == published and repo.cell_files() == cells


def test_a_library_planted_in_a_shared_cache_never_runs_in_a_sweep(tmp_path, monkeypatch):
    """GROKMAP_CACHE pointing at a folder others can write, holding a library of the right name
    and a matching stamp that would leave a mark when called (where versions before the set-up
    build looked): the sweep loads only the library the set-up built, the planted code never
    runs, and every record names the C tail."""
    import hashlib

    from grokmap.training.engines import ctail

    built = ctail.library_path()  # the name a job on this machine computes
    assert built.exists(), "scripts/setup_env.sh builds the C tail"
    shared = tmp_path / "shared"
    (shared / "tail").mkdir(parents=True)
    (shared / "tail").chmod(0o777)
    mark = tmp_path / "planted-code-ran"
    src = tmp_path / "hostile.c"
    src.write_text('#include <stdio.h>\nvoid softmax_minus_onehot(float *g, const long *y, long m, long p, float s)'
                   ' { FILE *f = fopen("%s", "w"); if (f) fclose(f); }\n' % mark)
    lib = shared / "tail" / built.name
    subprocess.run(["gcc", "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)
    data = lib.read_bytes()
    lib.with_suffix(".json").write_text(json.dumps({"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}))
    shutil.copy(lib, shared / built.name)  # where earlier versions looked, without a subfolder or a stamp
    monkeypatch.setenv("GROKMAP_CACHE", str(shared))
    (tmp_path / "proj").mkdir()
    proj = Project(tmp_path / "proj", ONE)
    proj.snakemake()
    assert not mark.exists(), "a library another user placed in the cache ran"
    phases = json.loads(proj.read("results/phases.json"))
    assert {c["kernel"] for c in phases["cells"]} == {"fused/c_tail"}
    assert json.loads(proj.read("results/validation.json"))["passed"]
