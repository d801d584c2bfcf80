"""The SLURM profile on a real one-node SLURM cluster started on this machine.

`scripts/slurm_local.sh start` installs Debian's slurm-wlm and munge if they are missing
(needs root or sudo), writes a one-node configuration and starts munged, slurmctld and
slurmd. The tiny grid then runs twice, once with the local default profile and once with
`--workflow-profile workflow/profiles/slurm`, and the two must agree cell by cell.
If SLURM cannot be installed or started, the test is skipped with the script's output.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grokmap.jobs.cluster import cell_runtime_minutes
from grokmap.training.grid import cells

from ..conftest import ROOT
from .helpers import Project

pytestmark = pytest.mark.workflow

SCRIPT = ROOT / "scripts" / "slurm_local.sh"
STATE = Path(os.environ.get("GROKMAP_SLURM_DIR", "/tmp/grokmap-slurm"))
CELLS_PER_CLUSTER_JOB = 2


@pytest.fixture(scope="module")
def cluster():
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to start the test cluster")
    if os.geteuid() != 0 and shutil.which("sudo") is None:
        pytest.skip("starting a SLURM cluster needs root or sudo; neither is available")
    proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.skip(f"could not install or start SLURM with {SCRIPT.name}:\n{proc.stdout[-2000:]}"
                    f"\n{proc.stderr[-2000:]}")
    yield STATE
    subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True, timeout=120)


def _finished_jobs(state: Path) -> list[dict]:
    """Slurm's job-completion records (jobcomp/filetxt), one dict per finished job."""
    path = state / "log" / "jobcomp.txt"
    if not path.exists():
        return []
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in path.read_text().splitlines() if line]


def _cells(proj: Project) -> dict[str, dict]:
    return {str(p.parent.relative_to(proj.path / "results" / "cells")): json.loads(p.read_text())
            for p in (proj.path / "results" / "cells").rglob("metrics.json")}


SLURM_ARGS = ("--workflow-profile", "workflow/profiles/slurm",
              "--slurm-status-command", "squeue",  # accounting (sacct) is off on this cluster
              "--slurm-init-seconds-before-status-checks", "1", "--slurm-no-account")


def test_tiny_sweep_on_slurm_equals_local_run(cluster, tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "slurm").mkdir()
    local = Project(tmp_path / "local")
    t0 = time.perf_counter()
    local.snakemake()
    local_s = time.perf_counter() - t0

    before = {j.get("JobId") for j in _finished_jobs(cluster)}
    slurm = Project(tmp_path / "slurm")
    t0 = time.perf_counter()
    out = slurm.run(*SLURM_ARGS, "--cores", "2", "--group-components", f"cells={CELLS_PER_CLUSTER_JOB}",
                    timeout=900)
    slurm_s = time.perf_counter() - t0
    log = out.stdout + out.stderr

    # the cells ran as cluster jobs: one SLURM job per group of cells, all completed on the node
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", log)
    n_cells = len(_cells(slurm))
    assert n_cells == 4
    assert len(submitted) == n_cells // CELLS_PER_CLUSTER_JOB, log[-3000:]
    assert "Group job cells" in log
    jobs = {j["JobId"]: j for j in _finished_jobs(cluster) if j.get("JobId") not in before}
    assert set(submitted) <= set(jobs), (submitted, jobs)
    # two cells at once on 2 cores: the time limit is one cell's estimate (src/grokmap/cluster.py)
    limit = max(cell_runtime_minutes(slurm.params, c) for c in cells(slurm.params["sweep"]))
    for jid in submitted:
        assert jobs[jid]["JobState"] == "COMPLETED", jobs[jid]
        assert jobs[jid]["WorkDir"] == str(slurm.path)
        assert jobs[jid]["TimeLimit"] == str(limit), jobs[jid]
    # the aggregation ran on the submit host (localrules), not as cluster jobs
    assert len(jobs) == len(submitted)

    # same cells, same curves, same phases as the local run
    a, b = _cells(local), _cells(slurm)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key]["fingerprint"] == b[key]["fingerprint"]
        assert a[key]["curves"] == b[key]["curves"], key
    pa = json.loads(local.read("results/phases.json"))
    pb = json.loads(slurm.read("results/phases.json"))
    assert pa["cells"] == pb["cells"]
    assert json.loads(slurm.read("results/validation.json"))["passed"]
    print(f"\ntiny sweep (4 cells): local {local_s:.1f} s, SLURM {slurm_s:.1f} s "
          f"({len(submitted)} cluster jobs: {', '.join(submitted)})")


def test_cancelled_cluster_job_keeps_its_finished_cells_and_the_same_command_resumes(cluster, tmp_path):
    """All four cells in one cluster job, one at a time; scancel it after the first cell."""
    proj = Project(tmp_path)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cmd = [str(Path(sys.executable).parent / "snakemake"), *SLURM_ARGS, "--cores", "1",
           "--group-components", "cells=4", "--retries", "0"]
    first = subprocess.Popen(cmd, cwd=proj.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list((proj.path / "results" / "cells").rglob("metrics.json")):
        time.sleep(0.2)
    finished = {str(p.relative_to(proj.path)) for p in (proj.path / "results" / "cells").rglob("*.json")}
    assert finished, "no cell finished within 5 minutes"
    jobs = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
    subprocess.run(["scancel", *jobs], check=True)
    out, _ = first.communicate(timeout=300)
    assert first.returncode != 0, out[-2000:]
    kept = {str(p.relative_to(proj.path)) for p in (proj.path / "results" / "cells").rglob("*.json")}
    assert finished <= kept, "the cells finished before the cancel were deleted"
    n_done = len([k for k in kept if k.endswith("metrics.json")])
    assert n_done < 4, "the cancel came too late to test anything"

    again = proj.run(*SLURM_ARGS, "--cores", "2", timeout=900)
    log = again.stdout + again.stderr
    assert f"[progress] {4 - n_done} of 4 cells to train" in log, log[-3000:]
    assert len(list((proj.path / "results" / "cells").rglob("metrics.json"))) == 4
    assert json.loads(proj.read("results/validation.json"))["passed"]


def test_tiles_are_the_unit_of_submission(cluster, tmp_path):
    """config.yaml tile_cells = 2: the 4 cells go to the cluster as 2 jobs, one per tile
    (a 100,000-cell sweep in tiles of 100 submits 1,000: tests/workflow/test_tiles.py)."""
    proj = Project(tmp_path)
    cfg = (proj.path / "config.yaml").read_text()
    (proj.path / "config.yaml").write_text(re.sub(r"\ntile_cells: \d+", "\ntile_cells: 2", cfg))
    before = {j.get("JobId") for j in _finished_jobs(cluster)}
    out = proj.run(*SLURM_ARGS, "--cores", "2", timeout=900)
    log = out.stdout + out.stderr
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == 2 and len(re.findall(r"rule train_tile:", log)) == 2, log[-3000:]
    jobs = {j["JobId"]: j for j in _finished_jobs(cluster) if j.get("JobId") not in before}
    assert all(jobs[jid]["JobState"] == "COMPLETED" for jid in submitted), jobs
    assert len(_cells(proj)) == 4
    assert json.loads(proj.read("results/validation.json"))["passed"]
