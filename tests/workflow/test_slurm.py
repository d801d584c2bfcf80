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
import time
from pathlib import Path

import pytest

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
    out = slurm.run("--workflow-profile", "workflow/profiles/slurm", "--cores", "2",
                    "--group-components", f"cells={CELLS_PER_CLUSTER_JOB}",
                    "--slurm-status-command", "squeue",  # accounting (sacct) is off on this cluster
                    "--slurm-init-seconds-before-status-checks", "1", "--slurm-no-account",
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
    for jid in submitted:
        assert jobs[jid]["JobState"] == "COMPLETED", jobs[jid]
        assert jobs[jid]["WorkDir"] == str(slurm.path)
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
