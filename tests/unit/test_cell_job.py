"""The cell job: in-process (threads of one process, as the workflow runs it) and as a command."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading

import pytest

from grokmap.jobs.cell import CellJobError, train_cell_job
from grokmap.training.record import cell_settings
from grokmap.jobs.fingerprint import fingerprint, fingerprint_filename, training_code_files

from ..conftest import ROOT, tiny_params

CELLS = [{"wd": "0", "frac": "0.5", "width": "32", "seed": "0"},
         {"wd": "1", "frac": "0.8", "width": "32", "seed": "3"},
         {"wd": "0.1", "frac": "0.8", "width": "16", "seed": "7"}]


@pytest.fixture
def job(default_params, tmp_path):
    settings = cell_settings(tiny_params(default_params, max_epochs=200))
    fp_name = fingerprint_filename(fingerprint(settings, training_code_files())[0])

    def paths(wc: dict, tag: str):
        d = tmp_path / tag / "/".join(f"{k}={v}" for k, v in wc.items())
        d.mkdir(parents=True, exist_ok=True)
        return d / "metrics.json", d / fp_name, d / "job.log"

    return json.dumps(settings), paths


def _curves(path) -> dict:
    return json.loads(path.read_text())["curves"]


@pytest.mark.slow
def test_cells_trained_in_parallel_threads_equal_cells_trained_one_by_one(job):
    settings, paths = job
    for wc in CELLS:
        train_cell_job(wc, settings, 1, *paths(wc, "serial"))
    threads = [threading.Thread(target=train_cell_job, args=(wc, settings, 1, *paths(wc, "threads")))
               for wc in CELLS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for wc in CELLS:
        serial_out, _, _ = paths(wc, "serial")
        threaded_out, threaded_fp, threaded_log = paths(wc, "threads")
        assert _curves(serial_out) == _curves(threaded_out), wc
        assert threaded_fp.exists()
        log = threaded_log.read_text()
        assert "training" in log and "done in" in log
        assert all(f"{k}={v}" in log for k, v in wc.items())  # each job logs only its own cell
        others = [c for c in CELLS if c != wc]
        assert not any("/".join(f"{k}={v}" for k, v in c.items()) in log for c in others)


@pytest.mark.slow
def test_a_long_cell_logs_its_progress_by_the_clock(job, monkeypatch):
    # the interval is wall time, not a share of max_epochs (which S2's step cap made never come)
    import grokmap.jobs.cell

    settings, paths = job
    monkeypatch.setattr(grokmap.jobs.cell, "PROGRESS_SECONDS", 0.0)
    out, fp, log = paths(CELLS[0], "progress")
    train_cell_job(CELLS[0], settings, 1, out, fp, log)
    lines = [line for line in log.read_text().splitlines() if " train_acc " in line]
    assert len(lines) == len(_curves(out)["epoch"])  # every evaluation, at interval 0
    monkeypatch.setattr(grokmap.jobs.cell, "PROGRESS_SECONDS", 3600.0)
    out, fp, log = paths(CELLS[0], "quiet")
    train_cell_job(CELLS[0], settings, 1, out, fp, log)
    assert " train_acc " not in log.read_text()


@pytest.mark.slow
def test_command_line_job_writes_the_same_record_and_fails_in_one_line(job, tmp_path):
    settings, paths = job
    wc = CELLS[1]
    out, fp, log = paths(wc, "in-process")
    train_cell_job(wc, settings, 1, out, fp, log)
    out2, fp2, log2 = paths(wc, "command")
    cmd = [sys.executable, str(ROOT / "scripts" / "train_cell.py"), *[x for k, v in wc.items() for x in (f"--{k}", v)],
           "--settings", settings, "--out", str(out2), "--fingerprint-out", str(fp2), "--log", str(log2)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert _curves(out) == _curves(out2)
    assert fp2.exists() and json.loads(fp2.read_text())["fingerprint"] == json.loads(fp.read_text())["fingerprint"]

    bad = dict(wc, wd="1.0")  # not the canonical spelling of 1
    out3, fp3, log3 = paths(bad, "bad")
    cmd[cmd.index("--wd") + 1] = "1.0"
    cmd[cmd.index("--out") + 1], cmd[cmd.index("--fingerprint-out") + 1] = str(out3), str(fp3)
    proc = subprocess.run(cmd[:-2], capture_output=True, text=True)  # no --log: message on stderr
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("cell wd=1.0/frac=0.8/width=32/seed=3 failed: ValueError")
    assert "Traceback" not in proc.stderr
    assert not out3.exists() and not fp3.exists()
    with pytest.raises(CellJobError, match="not the canonical spelling"):
        train_cell_job(bad, settings, 1, out3, fp3, log3)
    assert "not the canonical spelling" in log3.read_text()


def test_cluster_runtime_limit_follows_the_training_budget(default_params):
    from grokmap.jobs.cluster import cell_runtime_minutes
    from grokmap.training.grid import Cell

    small = cell_runtime_minutes(default_params, Cell(0.1, 0.3, 16, 0))
    assert small >= 5
    assert cell_runtime_minutes(default_params, Cell(0.1, 0.9, 64, 0)) > small
    longer = copy.deepcopy(default_params)
    longer["training"]["max_epochs"] *= 20
    big = Cell(0.1, 0.9, 64, 0)
    assert cell_runtime_minutes(longer, big) > 10 * cell_runtime_minutes(default_params, big) / 2
    # an extra axis is resolved per cell: a transformer cell asks for more than the MLP's
    swept = copy.deepcopy(default_params)
    swept["sweep"]["model.name"] = ["embed_concat_mlp", "transformer"]
    mlp, tf = (Cell(0.1, 0.9, 64, 0, (("model.name", m),)) for m in ("embed_concat_mlp", "transformer"))
    assert cell_runtime_minutes(swept, tf) > cell_runtime_minutes(swept, mlp)


@pytest.mark.slow
def test_a_cell_job_with_swept_budget_and_model(default_params, tmp_path):
    # the shared settings hold "(swept)" for swept keys; the job reads the path's values
    q = tiny_params(default_params)
    q["sweep"]["training.max_epochs"] = [30, 60]
    q["sweep"]["model.name"] = ["lstm"]
    settings = cell_settings(q)
    assert settings["training"]["max_epochs"] == "(swept)" == settings["model"]["name"]
    fp_name = fingerprint_filename(fingerprint(settings, training_code_files())[0])
    wc = {"model_name": "lstm", "training_max_epochs": "60", "wd": "1", "frac": "0.8", "width": "16", "seed": "0"}
    out = tmp_path / "metrics.json"
    train_cell_job(wc, json.dumps(settings), 1, out, tmp_path / fp_name, tmp_path / "job.log")
    record = json.loads(out.read_text())
    assert record["cell"]["training.max_epochs"] == 60 and record["cell"]["model.name"] == "lstm"
    assert record["epochs_run"] == 60 and record["settings"]["model"]["name"] == "(swept)"
    assert "(60 epochs)" in (tmp_path / "job.log").read_text()  # the run the log reports is the swept budget
