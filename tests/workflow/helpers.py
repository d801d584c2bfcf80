"""A throwaway copy of the project in a temporary directory, driven by real Snakemake/DVC."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..conftest import ROOT

BIN = Path(sys.executable).parent
COPIED = ("Snakefile", "workflow", "profiles", "scripts", "src", "studies", "config.yaml", "params.yaml",
          "dvc.yaml", "renderer")

# Small enough to train in seconds, large enough to show more than one phase.
TINY = {
    "task": {"modulus": 23},
    "training": {"learning_rate": 0.01, "max_epochs": 800, "eval_every_epochs": 10},
    "sweep": {"weight_decay": [0.0, 1.0], "train_fraction": [0.5, 0.8], "width": [32], "seed": [0]},
}


def _merge(base: dict, over: dict) -> dict:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


class Project:
    def __init__(self, path: Path, overrides: dict | None = None, terminal: str = "full"):
        """A copy of the project; ``terminal``: config.yaml's (the tests read Snakemake's per-job
        lines, which the default ``summary`` keeps in the log file only; tests of the summary set it)."""
        self.path = path
        for name in COPIED:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, path / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "node_modules"))
            elif src.exists():
                shutil.copy2(src, path / name)
        self.edit_params(TINY if overrides is None else overrides)
        cfg = (path / "config.yaml").read_text()
        (path / "config.yaml").write_text(cfg.replace("\nterminal: summary", f"\nterminal: {terminal}"))

    @property
    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def edit_params(self, over: dict) -> None:
        (self.path / "params.yaml").write_text(yaml.safe_dump(_merge(self.params, over), sort_keys=False))

    def run(self, *args: str, tool: str = "snakemake", check: bool = True, timeout: int = 900):
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        proc = subprocess.run([str(BIN / tool), *args], cwd=self.path, capture_output=True,
                              text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def snakemake(self, *args: str, **kw):
        return self.run("--cores", "2", *args, **kw)

    def cell_files(self) -> dict[str, int]:
        """Cell metrics path -> mtime_ns (to count what a run rewrote)."""
        return {str(p.relative_to(self.path)): p.stat().st_mtime_ns
                for p in sorted((self.path / "results" / "cells").rglob("metrics.json"))}

    def read(self, rel: str) -> bytes:
        return (self.path / rel).read_bytes()


def trained_jobs(output: str) -> int:
    """Number of train_cell jobs Snakemake reports as finished in a run's output."""
    return len(re.findall(r"\(Rule: train_cell\)", output))


def kill_when(proj, condition, timeout=120, poll=0.05, **env_extra):
    """Start `snakemake --cores 2` in the project and SIGKILL its process group once condition() holds."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **env_extra)
    proc = subprocess.Popen([str(BIN / "snakemake"), "--cores", "2"], cwd=proj.path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline and proc.poll() is None:
        time.sleep(poll)
    assert proc.poll() is None, "the run finished before the kill point"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
