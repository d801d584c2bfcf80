"""Cell records, fingerprints, atomic writes, aggregation and the validator."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from grokmap.analysis.aggregate import classify_sweep, load_records, summary_metrics
from grokmap.training.record import cell_settings, train_records
from grokmap.training.spec import CellSpec
from grokmap.jobs.fingerprint import dumps_with_fingerprint, fingerprint, read_fingerprint, training_code_files
from grokmap.training.grid import cells
from grokmap.io import atomic_write_text
from grokmap.analysis.records import CellRecordError, check_record
from grokmap.analysis.report import build_metadata
from grokmap.analysis.validate import validate_outputs

from ..conftest import tiny_params


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    from grokmap.settings import load_settings
    from ..conftest import ROOT, SCHEMAS

    base = load_settings(ROOT / "params.yaml", ROOT / "config.yaml", SCHEMAS).params
    params = tiny_params(base, max_epochs=120)
    params["sweep"] = {"weight_decay": [0.0, 1.0], "train_fraction": [0.5], "width": [16], "seed": [0, 1]}
    settings = cell_settings(params)
    fp, _ = fingerprint(settings, training_code_files())
    root = tmp_path_factory.mktemp("results")
    grid = cells(params["sweep"])
    for cell in grid:
        path = root / "cells" / cell.relpath / "metrics.json"
        atomic_write_text(path, dumps_with_fingerprint(fp, train_records([CellSpec.of(settings, cell)], fp)[0]))
    return params, settings, fp, root, grid


@pytest.mark.slow
def test_fingerprint_is_first_and_read_cheaply(tiny_sweep):
    params, settings, fp, root, grid = tiny_sweep
    path = root / "cells" / grid[0].relpath / "metrics.json"
    assert read_fingerprint(path) == fp and json.loads(path.read_text())["fingerprint"] == fp
    other = dict(settings, training=dict(settings["training"], max_epochs=121))
    assert fingerprint(other, training_code_files())[0] != fp


def test_records_load_and_validate(tiny_sweep):
    params, settings, fp, root, grid = tiny_sweep
    records = load_records(root, grid, settings, fp)
    phases = classify_sweep(records, params["phases"], params["sweep"])
    assert phases["n_cells"] == 4 and len(phases["groups"]) == 2
    assert all(g["n_seeds"] == 2 for g in phases["groups"])
    metadata = build_metadata(params, phases, [1.0] * 4)
    checks = validate_outputs(grid, records, phases, summary_metrics(phases), metadata, params)
    assert all(c["ok"] for c in checks), checks
    # the validator catches a tampered phase, a dropped cell and a wrong count
    bad = json.loads(json.dumps(phases))
    bad["cells"][0]["phase"] = "grokking" if bad["cells"][0]["phase"] != "grokking" else "confusion"
    assert not all(c["ok"] for c in validate_outputs(grid, records, bad, summary_metrics(phases), metadata, params))
    bad = json.loads(json.dumps(phases))
    bad["cells"].pop()
    failed = {c["check"] for c in validate_outputs(grid, records, bad, summary_metrics(phases), metadata, params)
              if not c["ok"]}
    assert "full grid coverage" in failed
    bad = json.loads(json.dumps(phases))
    bad["cells"].append(bad["cells"][0])
    failed = {c["check"] for c in validate_outputs(grid, records, bad, summary_metrics(phases), metadata, params)
              if not c["ok"]}
    assert "no duplicate cells" in failed
    # efficiency (issue 34): cell-steps per second re-derived from the records, the share from its parts
    from grokmap.jobs.steps import _efficiency

    eff = _efficiency(params, records)
    assert eff["cell_steps"] == sum(r["steps_run"] for r in records.values()) and 0 < eff["matmul_peak_share"]
    metadata = build_metadata(params, phases, [r["train_seconds"] for r in records.values()], efficiency=eff)
    assert all(c["ok"] for c in validate_outputs(grid, records, phases, summary_metrics(phases), metadata, params))
    for edit in ({"cell_steps_per_second": eff["cell_steps_per_second"] * 2}, {"matmul_peak_share": 0.99},
                 {"cell_steps": eff["cell_steps"] + 1}):
        bad_meta = {**metadata, "efficiency": {**eff, **edit}}
        failed = {c["check"] for c in validate_outputs(grid, records, phases, summary_metrics(phases), bad_meta, params)
                  if not c["ok"]}
        assert failed == {"efficiency (metadata.json) re-derived from the records"}, edit


def test_the_explorers_numbers_are_re_derived_and_a_tampered_page_fails(tiny_sweep):
    """The validator reads the page the explorer step wrote and checks every number it draws:
    the headline, each point's phase, accuracies and grokking steps, each curve point."""
    from grokmap.analysis.explorer import explorer_document, explorer_html

    params, settings, fp, root, grid = tiny_sweep
    records = load_records(root, grid, settings, fp)
    phases = classify_sweep(records, params["phases"], params["sweep"])
    metadata = build_metadata(params, phases, [1.0] * 4)
    from grokmap.analysis.axes import cell_from_row

    def cell(row):
        return cell_from_row(row, params["sweep"])

    doc = explorer_document(phases, lambda row: records[cell(row)]["curves"],
                            lambda row: f"cells/{cell(row).relpath}/metrics.json", params["phases"]["accuracy_threshold"])

    def failed(document) -> set:
        files = {"explorer.html": explorer_html(document, "", "t")}
        return {c["check"] for c in validate_outputs(grid, records, phases, summary_metrics(phases), metadata,
                                                     params, files) if not c["ok"]}

    checks = validate_outputs(grid, records, phases, summary_metrics(phases), metadata, params,
                              {"explorer.html": explorer_html(doc, "", "t")})
    assert all(c["ok"] for c in checks) and sum("explorer" in c["check"] for c in checks) == 3, checks
    curves_check, points_check = "explorer curves re-derived from the records", \
        "explorer points (phase, accuracies, grokking steps) re-derived"
    bad = json.loads(json.dumps(doc))
    bad["curves"][0][0]["test_acc"][-1] = round(bad["curves"][0][0]["test_acc"][-1] + 0.01, 4)  # one point moved
    assert failed(bad) == {curves_check}
    bad = json.loads(json.dumps(doc))
    bad["curves"][1][0]["file"] = bad["curves"][0][0]["file"]  # a curve linked to another cell's record
    assert curves_check in failed(bad)
    bad = json.loads(json.dumps(doc))
    bad["groups"][0]["phase"] = "grokking" if bad["groups"][0]["phase"] != "grokking" else "confusion"
    assert failed(bad) == {points_check}
    bad = json.loads(json.dumps(doc))
    bad["groups"][0]["final train / test accuracy"] = "1.000 / 1.000, 1.000 / 1.000"
    assert failed(bad) == {points_check}
    bad = json.loads(json.dumps(doc))
    bad["info"]["counts"] = {p: 1 for p in bad["info"]["counts"]}
    assert failed(bad) == {"explorer headline (cells, phase counts, undecided)"}
    files = {"explorer.html": "<html>no data</html>"}
    assert "explorer (explorer.html) readable" in {
        c["check"] for c in validate_outputs(grid, records, phases, summary_metrics(phases), metadata, params, files)
        if not c["ok"]}


def test_corrupt_and_foreign_files_are_detected(tiny_sweep, tmp_path):
    params, settings, fp, root, grid = tiny_sweep
    good = json.loads((root / "cells" / grid[0].relpath / "metrics.json").read_text())
    with pytest.raises(CellRecordError, match="holds cell"):
        check_record(good, grid[1], settings, fp)  # another cell's file
    with pytest.raises(CellRecordError, match="other settings"):
        check_record(good, grid[0], dict(settings, task={"name": "modular_addition", "modulus": 7}), fp)
    with pytest.raises(CellRecordError, match="fingerprint"):
        check_record(good, grid[0], settings, "0" * 64)
    with pytest.raises(CellRecordError, match="not a grokmap cell record"):
        check_record({"hello": 1}, grid[0], settings, fp)
    broken = json.loads(json.dumps(good))
    broken["curves"]["test_acc"][-1] = 7.0
    with pytest.raises(CellRecordError, match="outside"):
        check_record(broken, grid[0], settings, fp)
    # a truncated file at a cell path
    copy = tmp_path / "cells" / grid[0].relpath / "metrics.json"
    copy.parent.mkdir(parents=True)
    copy.write_text((root / "cells" / grid[0].relpath / "metrics.json").read_text()[:500])
    with pytest.raises(CellRecordError, match="not valid JSON"):
        load_records(tmp_path, [grid[0]], settings, fp)
    with pytest.raises(CellRecordError, match="missing"):
        load_records(tmp_path, [grid[1]], settings, fp)


WRITER = """
import sys
from grokmap.io import atomic_write_text
payload = "x" * 3_000_000
i = 0
while True:
    atomic_write_text(sys.argv[1], '{"n": %d, "pad": "%s"}' % (i, payload))
    i += 1
"""


@pytest.mark.slow
def test_atomic_write_survives_sigkill_mid_write(tmp_path):
    target = tmp_path / "out.json"
    for delay in (0.05, 0.13, 0.21, 0.34):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)])
        deadline = time.time() + 60  # a loaded machine may take a while to the first write
        while not target.exists() and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert json.loads(target.read_text())["n"] >= 0  # never a half-written file
    leftovers = [p for p in os.listdir(tmp_path) if p != "out.json"]
    assert all(p.startswith(".out.json.") and p.endswith(".tmp") for p in leftovers)


def test_incomplete_markers_round_trip(tmp_path):
    import base64

    from grokmap.jobs.resume import incomplete_markers

    state = tmp_path / ".snakemake"
    (state / "incomplete").mkdir(parents=True)
    done, partial = tmp_path / "done.json", tmp_path / "partial.json"
    done.write_text("{}")
    partial.write_text("{")
    long_name = str(tmp_path / ("x" * 300))
    for path in (str(done), str(partial), long_name):
        b64 = base64.urlsafe_b64encode(path.encode()).decode()
        chunks = [b64[i:i + 254] for i in range(0, len(b64), 254)]
        marker = state / "incomplete" / os.path.join(*(["@" + c for c in chunks[:-1]] + [chunks[-1]]))
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("{}")
    assert set(incomplete_markers(state)) == {str(done), str(partial), long_name}
    # a job releases the markers of the outputs it names (relative or absolute), nothing else
    from grokmap.jobs.resume import release_finished

    assert release_finished([os.path.relpath(done), long_name], state) == 2
    assert set(incomplete_markers(state)) == {str(partial)}
    assert release_finished([str(done)], state) == 0 and release_finished([str(done)], tmp_path / "none") == 0
    # a live run is seen as live, a dead one is forgotten when the next run starts
    from grokmap.jobs.resume import forget_dead_runs, forget_scheduler, live_run_on, record_scheduler

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        record_scheduler(state, tmp_path / "results_a", live.pid)
        record_scheduler(state, tmp_path / "results_b", dead.pid)  # killed after the live run started
        assert live_run_on(state, tmp_path / "results_a") == live.pid and live_run_on(state, tmp_path / "results_b") is None
        assert forget_dead_runs(state) == [dead.pid]
        assert [p.name for p in (state / "grokmap-runs").iterdir()] == [f"{live.pid}.run"]
    finally:
        live.kill()
        live.wait()
    assert forget_dead_runs(state) == [live.pid]
    record_scheduler(state, tmp_path / "results_a")
    forget_scheduler(state)
    assert not list((state / "grokmap-runs").iterdir())


def test_cell_files_complete_needs_both_agreeing_files(tiny_sweep, tmp_path):
    from grokmap.jobs.fingerprint import cell_files_complete, fingerprint_filename

    params, settings, fp, root, grid = tiny_sweep
    cell_dir = tmp_path / "cell"
    cell_dir.mkdir()
    (cell_dir / "metrics.json").write_bytes((root / "cells" / grid[0].relpath / "metrics.json").read_bytes())
    assert not cell_files_complete(cell_dir / "metrics.json")  # killed between the two writes
    (cell_dir / fingerprint_filename(fp)).write_text(json.dumps({"fingerprint": fp}))
    assert cell_files_complete(cell_dir / "metrics.json")
    assert cell_files_complete(cell_dir / fingerprint_filename(fp))
    (cell_dir / fingerprint_filename(fp)).write_text(json.dumps({"fingerprint": "1" * 64}))
    assert not cell_files_complete(cell_dir / "metrics.json")


def test_dvc_stage_depends_on_every_training_module():
    import yaml

    from grokmap.jobs.fingerprint import TRAINING_DIR, training_code_files

    from ..conftest import ROOT

    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train_cells"]["deps"]
    assert "src/grokmap/training" in deps  # the folder the fingerprint hashes, every module in it
    files = training_code_files()
    assert TRAINING_DIR == ROOT / "src" / "grokmap" / "training"
    assert {f.relative_to(TRAINING_DIR).as_posix() for f in files} >= {"loop.py", "engines/fused.py", "spec.py"}
    assert all(f.is_relative_to(TRAINING_DIR) for f in files)


@pytest.mark.slow
def test_a_tied_seed_group_is_reported_as_a_tie_and_hatched(tiny_sweep, tmp_path):
    """One seed memorises, the other comprehends: the group's phase is 'tie' (not the first
    phase in the list), counted apart, named in the report and drawn hatched."""
    import copy

    from grokmap.analysis.aggregate import TIE
    from grokmap.analysis.plots import plot_phase_diagram, plot_smooth_diagram
    from grokmap.analysis.report import render_report

    params, settings, fp, root, grid = tiny_sweep
    records = copy.deepcopy(load_records(root, grid, settings, fp))
    first_group = [c for c in grid if c.weight_decay == 0.0]
    for cell, test_value in zip(first_group, (0.0, 1.0)):
        curves = records[cell]["curves"]
        curves["train_acc"] = [1.0] * len(curves["train_acc"])
        curves["test_acc"] = [test_value] * len(curves["test_acc"])
        records[cell]["final"].update(train_acc=1.0, test_acc=test_value)
    phases = classify_sweep(records, params["phases"], params["sweep"])
    tied = [g for g in phases["groups"] if g["weight_decay"] == 0.0][0]
    assert tied["phase"] == TIE and tied["tied_phases"] == ["memorization", "comprehension"]
    assert phases["group_counts"][TIE] == 1 and summary_metrics(phases)["tied_groups"] == 1
    assert sum(phases["group_counts"].values()) == len(phases["groups"])
    plot_phase_diagram(phases, tmp_path / "phase.png")
    plot_smooth_diagram(phases, tmp_path / "smooth.png", params["training"]["max_epochs"])
    assert (tmp_path / "phase.png").stat().st_size > 0 and (tmp_path / "smooth.png").stat().st_size > 0
    text = render_report(phases, build_metadata(params, phases, [1.0] * 4), {})
    assert "1 point(s) have no majority" in text and "memorization = comprehension" in text


def _hand_record(train_acc, test_acc, epochs, stopped_early=False):
    """A minimal S0-style cell record, written out by hand."""
    return {"curves": {"epoch": epochs, "step": epochs, "train_acc": train_acc, "test_acc": test_acc,
                       "train_loss": [1.0] * len(epochs), "test_loss": [1.0] * len(epochs)},
            "final": {"train_acc": train_acc[-1], "test_acc": test_acc[-1], "train_loss": 1.0, "test_loss": 1.0},
            "first_epoch_at_early_stop_accuracy": {
                "train": next((e for e, a in zip(epochs, train_acc) if a >= 0.99), None),
                "test": next((e for e, a in zip(epochs, test_acc) if a >= 0.99), None)},
            "epochs_run": epochs[-1], "steps_run": epochs[-1], "steps_per_epoch": 1,
            "stopped_early": stopped_early, "non_finite_loss": False,
            "kernel": "fused/c_tail", "machine": {"kind": "a CPU"}}


def test_the_validator_accepts_hand_computed_outputs_and_rejects_wrong_ones():
    """Four hand-made records (two seeds x two weight decays) and the outputs worked out by
    hand: S0's rule (threshold 0.95, gap > 200 epochs, final accuracy required)."""
    from grokmap.analysis.aggregate import wilson_interval  # checked against published values below
    from grokmap.analysis.validate import validate_outputs

    params = {"phases": {"accuracy_threshold": 0.95, "grokking_gap_epochs": 200, "grokking_step_accuracy": 0.99,
                         "require_final_accuracy": True, "diagram_columns": "train_fraction",
                         "majority_over": ["seed"], "smooth_scale_max": None, "undecided_window_share": 0.2,
                         "undecided_min_gain": 0.05},
              "sweep": {"weight_decay": [0.0, 1.0], "train_fraction": [0.5], "width": [8], "seed": [0, 1]},
              "training": {"early_stop_accuracy": 0.99, "early_stop_evals": 2, "early_stop_rule": "together",
                           "optimizer": "adamw", "loss": "cross_entropy", "batch_size": "full", "embedding_noise": 0,
                           "precision": "float32"},
              "model": {"name": "embed_concat_mlp", "depth": 1, "activation": "relu", "dropout": 0},
              "task": {"operands": 2},
              "refine": {"rounds": 0, "axes": {}, "digits": 3}, "extend": {"rounds": 0, "factor": 4}}
    e = [100, 200, 300, 400, 500]
    grid = cells(params["sweep"])  # (wd 0, seed 0), (wd 0, seed 1), (wd 1, seed 0), (wd 1, seed 1)
    records = dict(zip(grid, [
        _hand_record([0.5, 0.96, 1.0, 1.0, 1.0], [0.1, 0.2, 0.3, 0.97, 1.0], e),   # train 200, test 400: grokking? gap 200 -> comprehension
        _hand_record([0.96, 1.0, 1.0, 1.0, 1.0], [0.1, 0.1, 0.1, 0.96, 0.99], e),  # 100 -> 400, gap 300: grokking
        _hand_record([0.2, 0.3, 0.3, 0.3, 0.3], [0.1, 0.1, 0.1, 0.1, 0.1], e),     # confusion
        _hand_record([1.0, 1.0, 1.0, 1.0, 1.0], [0.1, 0.1, 0.1, 0.1, 0.1], e),     # memorization
    ]))
    # the last 20 % of 500 epochs starts after epoch 400: the two non-generalising cells gained 0
    rows = [("comprehension", 200, 200, 400, 500, None), ("grokking", 300, 100, 400, 500, None),
            ("confusion", None, None, None, None, 0.0), ("memorization", None, 100, None, None, 0.0)]
    cells_out = []
    for cell, (phase, gap, tr, te, grok, gain) in zip(grid, rows):
        rec = records[cell]
        cells_out.append({**cell.as_dict(), "phase": phase, "gap_epochs": gap, "first_train_epoch": tr,
                          "first_test_epoch": te, "first_train_step": tr, "first_test_step": te, "grokking_step": grok,
                          "final_train_acc": rec["curves"]["train_acc"][-1], "final_test_acc": rec["curves"]["test_acc"][-1],
                          "initial_ipr": None, "final_ipr": None, "final_param_norm": None, "final_subnetwork_fraction": None,
                          "final_softmax_collapse": None, "max_softmax_collapse": None,
                          "epochs_run": 500, "steps_run": 500, "non_finite_loss": False,
                          "undecided": False, "budget_gain": gain, "kernel": "fused/c_tail", "cpu_kind": "a CPU"})
    groups = [{"weight_decay": 0.0, "train_fraction": 0.5, "width": 8, "phase": "tie", "agreement": 0.5, "n_seeds": 2,
               "tied_phases": ["grokking", "comprehension"], "seed_phases": {"0": "comprehension", "1": "grokking"},
               "mean_gap_epochs": None, "grokking_steps": [500, 500], "undecided": False,
               "votes": {"grokking": 1, "comprehension": 1}, "generalising_share": 1.0,
               "generalising_interval": wilson_interval(2, 2), "flips_with_one_vote": True},
              {"weight_decay": 1.0, "train_fraction": 0.5, "width": 8, "phase": "tie", "agreement": 0.5, "n_seeds": 2,
               "tied_phases": ["confusion", "memorization"], "seed_phases": {"0": "confusion", "1": "memorization"},
               "mean_gap_epochs": None, "grokking_steps": [], "undecided": False,
               "votes": {"confusion": 1, "memorization": 1}, "generalising_share": 0.0,
               "generalising_interval": wilson_interval(0, 2), "flips_with_one_vote": True}]
    counts = {"confusion": 1, "memorization": 1, "grokking": 1, "comprehension": 1}
    phases = {"settings": {"phases": params["phases"], "sweep": params["sweep"]}, "n_cells": 4, "counts": counts,
              "group_counts": {"confusion": 0, "memorization": 0, "grokking": 0, "comprehension": 0, "tie": 2},
              "non_finite_cells": 0, "undecided_cells": 0, "fragile_groups": 2, "cells": cells_out, "groups": groups}
    metrics = {"n_cells": 4, "phase_counts": counts, "grokking_fraction": 0.25, "generalizing_fraction": 0.5,
               "seed_agreement_mean": 0.5, "non_finite_cells": 0, "tied_groups": 2, "undecided_cells": 0}
    metadata = {"n_cells": 4, "counts": counts, "params": params}

    from grokmap.analysis.aggregate import phases_csv

    def failed(ph=phases, me=metrics, recs=records, csv=None):
        files = {"phases.csv": csv if csv is not None else phases_csv(ph)}
        return {c["check"] for c in validate_outputs(grid, recs, ph, me, metadata, params, files) if not c["ok"]}

    assert failed() == set()
    # every published number is checked (issue 28, class 6): the groups' lists and means, the CSV
    for edit in ({"grokking_steps": [12345, 500]}, {"seed_phases": {"0": "grokking", "1": "grokking"}},
                 {"mean_gap_epochs": 250.0}, {"generalising_interval": [0.5, 1.0]}, {"flips_with_one_vote": False},
                 {"votes": {"grokking": 2}}):
        bad = json.loads(json.dumps(phases))
        bad["groups"][0].update(edit)
        assert "seed-group votes (ties reported as ties)" in failed(ph=bad), edit
    csv_text = phases_csv(phases)
    assert "phases.csv re-derived from the records" in failed(csv=csv_text.replace(",500,500,", ",500,670,", 1))
    assert "phases.csv re-derived from the records" in failed(csv="\n".join(csv_text.splitlines()[:-1]) + "\n")
    nan = json.loads(json.dumps(records[grid[2]]))
    nan["curves"]["train_loss"][-1] = float("nan")  # a loss that ended in NaN, flagged as finite
    nan["final"]["train_loss"] = float("nan")
    assert "every record agrees with itself" in failed(recs={**records, grid[2]: nan})
    # a confusion cell still learning when its budget ended: undecided, and the published "decided" is caught
    rising = json.loads(json.dumps(records[grid[2]]))
    rising["curves"]["train_acc"] = [0.2, 0.3, 0.3, 0.3, 0.4]
    rising["final"]["train_acc"] = 0.4
    assert "every published cell number re-derived from its record" in failed(recs={**records, grid[2]: rising})
    other = {**records, grid[0]: {**records[grid[0]], "kernel": "fused/compiled"}}  # bfloat16's graph in float32
    assert "every record names a kernel its settings allow" in failed(recs=other)
    unnamed = {**records, grid[0]: {k: v for k, v in records[grid[0]].items() if k != "machine"}}
    assert "every record names the CPU kind it was made on" in failed(recs=unnamed)
    bad = json.loads(json.dumps(phases))
    bad["cells"][0]["gap_epochs"] = 199
    assert "every published cell number re-derived from its record" in failed(ph=bad)
    bad = json.loads(json.dumps(phases))
    bad["groups"][0].update(phase="comprehension", tied_phases=[])  # a tie resolved silently
    assert "seed-group votes (ties reported as ties)" in failed(ph=bad)
    assert "summary metrics (metrics.json)" in failed(me={**metrics, "generalizing_fraction": 0.75})
    # a record edited consistently (curves and final values together) so that it groks earlier
    edited = json.loads(json.dumps(records[grid[1]]))
    edited["curves"]["test_acc"] = [0.1, 0.96, 0.99, 0.99, 0.99]
    edited["final"]["test_acc"] = 0.99
    assert "every record agrees with itself" in failed(recs={**records, grid[1]: edited})
    # softmax collapse (issue 32): never above the train accuracy, always a count of examples,
    # and its published maximum re-derived
    # (records[grid[2]] ends at train accuracy 0.3; 100 training examples)
    fine = json.loads(json.dumps(records[grid[2]]))
    fine.update(n_train=100)
    fine["curves"]["softmax_collapse"] = [0.0, 0.0, 0.01, 0.2, 0.3]
    assert "every record agrees with itself" not in failed(recs={**records, grid[2]: fine})
    for bad_share in (0.31, 0.005):  # above the train accuracy; half an example
        edited = json.loads(json.dumps(fine))
        edited["curves"]["softmax_collapse"][-1] = bad_share
        assert "every record agrees with itself" in failed(recs={**records, grid[2]: edited}), bad_share
    bad = json.loads(json.dumps(phases))
    bad["cells"][0]["max_softmax_collapse"] = 0.25
    assert "every published cell number re-derived from its record" in failed(ph=bad)


@pytest.mark.parametrize("mutation", ["classify", "summary"])
def test_a_wrong_producer_fails_the_validator(tiny_sweep, monkeypatch, mutation):
    """Mutation test: the validator does not reuse the producer's code, so a producer that
    classifies or summarises wrongly is caught."""
    import grokmap.analysis.aggregate as aggregate
    import grokmap.analysis.phases as phases_mod
    from grokmap.analysis.validate import validate_outputs

    params, settings, fp, root, grid = tiny_sweep
    records = load_records(root, grid, settings, fp)
    if mutation == "classify":
        real = phases_mod.classify

        def wrong(*a, **k):  # confuses the two non-generalising phases
            phase, gap = real(*a, **k)
            return {"confusion": "memorization", "memorization": "confusion"}.get(phase, phase), gap

        monkeypatch.setattr(phases_mod, "classify", wrong)
        phases = aggregate.classify_sweep(records, params["phases"], params["sweep"])
        metrics = aggregate.summary_metrics(phases)
    else:
        phases = aggregate.classify_sweep(records, params["phases"], params["sweep"])
        metrics = {**aggregate.summary_metrics(phases), "seed_agreement_mean": 0.123}
    metadata = build_metadata(params, phases, [1.0] * 4)
    checks = validate_outputs(grid, records, phases, metrics, metadata, params)
    assert not all(c["ok"] for c in checks)


def test_compare_results_ignores_timings_and_names_every_moved_number(tmp_path):
    from grokmap.jobs.tools import compare_records_main, compare_results

    record = {"fingerprint": "a" * 64, "cell": {"seed": 0}, "curves": {"test_acc": [0.1, 0.5], "ipr": [None, 0.2]},
              "steps_run": 200, "train_seconds": 1.5, "wall_seconds": 2.0, "peak_rss_mb": 300.0,
              "versions": {"torch": "1"}, "final": {"test_loss": float("nan")},
              "machine": {"kind": "GenuineIntel Xeon (x86_64; avx512f amx_bf16; AMX)"}}

    def write(root, rel, rec):
        path = root / "cells" / rel / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))

    a, b = tmp_path / "tree_a" / "study", tmp_path / "tree_b" / "study"
    for rel in ("wd=0/seed=0", "wd=1/seed=0"):
        write(a, rel, record)
        write(b, rel, {**record, "fingerprint": "b" * 64, "train_seconds": 9.0, "versions": {"torch": "2"}})
    for root in (a, b):
        (root / "phases.json").write_text(json.dumps({"cells": [{"phase": "grokking"}]}))
    assert compare_results(a, b) == (2, [])  # NaN equals NaN; timings, versions and fingerprints ignored
    assert compare_records_main(["--tree", str(a.parent), str(b.parent)]) == 0

    write(b, "wd=1/seed=0", {**record, "curves": {"test_acc": [0.1, 0.5000001], "ipr": [None, 0.2]}})
    write(a, "wd=2/seed=0", record)
    (b / "phases.json").write_text(json.dumps({"cells": [{"phase": "memorization"}]}))
    n, diffs = compare_results(a, b)
    assert n == 2 and diffs == [f"wd=2/seed=0: only in {a}", "wd=1/seed=0: differs in curves (curves: test_acc)",
                                "phases.json: differs"]
    assert compare_records_main([str(a), str(b)]) == 1


def test_phase_agreement_is_counted_cell_by_cell(tmp_path):
    from grokmap.jobs.tools import phase_agreement, phase_agreement_main

    sweep = {"weight_decay": [0.0, 1.0], "train_fraction": [0.5], "width": [16], "seed": [0]}

    def results(name, phases, steps):
        d = tmp_path / name
        d.mkdir()
        rows = [{"weight_decay": wd, "train_fraction": 0.5, "width": 16, "seed": 0, "phase": ph, "grokking_step": st}
                for wd, ph, st in zip((0.0, 1.0), phases, steps)]
        (d / "phases.json").write_text(json.dumps({"settings": {"sweep": sweep}, "cells": rows}))
        return d

    a = results("f32", ["memorization", "grokking"], [None, 1200])
    b = results("bf16", ["memorization", "comprehension"], [None, 300])
    table, summary = phase_agreement({"float32": a, "bfloat16": b})
    assert table.splitlines() == [
        "weight_decay,train_fraction,width,seed,phase_float32,phase_bfloat16,grokking_step_float32,"
        "grokking_step_bfloat16,agree",
        "0.0,0.5,16,0,memorization,memorization,,,True",
        "1.0,0.5,16,0,grokking,comprehension,1200,300,False"]
    assert summary["agreement_with_float32"] == {"float32": 1.0, "bfloat16": 0.5}
    assert summary["counts"]["bfloat16"]["comprehension"] == 1
    assert phase_agreement_main([f"float32={a}", f"bfloat16={b}", "--out", str(tmp_path / "t.csv")]) == 0
    assert (tmp_path / "t.csv").read_text() == table
    c = results("other", ["memorization"], [None])
    assert phase_agreement_main([f"float32={a}", f"other={c}"]) == 1  # not the same grid


def _cells_and_phases(root, kind: str, phases: list[str], test_acc: float) -> None:
    sweep = {"weight_decay": [0.0, 1.0], "train_fraction": [0.5], "width": [16], "seed": [0]}
    rows = []
    for wd, ph in zip((0.0, 1.0), phases):
        path = root / "cells" / f"wd={wd:g}/frac=0.5/width=16/seed=0" / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"curves": {"test_acc": [0.1, test_acc]}, "machine": {"kind": kind}}))
        rows.append({"weight_decay": wd, "train_fraction": 0.5, "width": 16, "seed": 0, "phase": ph,
                     "grokking_step": None})
    (root / "phases.json").write_text(json.dumps({"settings": {"sweep": sweep}, "cells": rows}))


def test_records_of_another_cpu_kind_are_compared_by_phase_not_failed(tmp_path, capsys):
    """Two CPU kinds take other kernel paths, so their last digits differ legitimately: the tool
    reports the phase agreement (and how many records are equal anyway) and does not fail; on
    one CPU kind the same difference fails, as it means the code moved a number."""
    from grokmap.jobs.tools import compare_records_main

    intel, amd = "GenuineIntel Xeon (x86_64; amx_bf16; AMX)", "AuthenticAMD AMD EPYC (x86_64; avx512_bf16; no AMX)"
    _cells_and_phases(tmp_path / "a", intel, ["memorization", "grokking"], 0.95)
    _cells_and_phases(tmp_path / "b", amd, ["memorization", "comprehension"], 0.9500001)
    assert compare_records_main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert f"other CPU kind ({amd}; {intel}): phase agreement 1 of 2 (0 of 2 records also equal to the bit)" in out
    assert "identical" not in out.split("\n")[0]
    _cells_and_phases(tmp_path / "c", intel, ["memorization", "grokking"], 0.9500001)
    assert compare_records_main([str(tmp_path / "a"), str(tmp_path / "c")]) == 1
    assert f"same CPU kind ({intel}): bit for bit: 2 cells and phases.json compared: 2 difference(s)" \
        in capsys.readouterr().out
    # a record that names no CPU kind (made before they were recorded) is never claimed identical by kind
    _cells_and_phases(tmp_path / "d", intel, ["memorization", "grokking"], 0.95)
    old = tmp_path / "d" / "cells" / "wd=0/frac=0.5/width=16/seed=0" / "metrics.json"
    old.write_text(json.dumps({"curves": {"test_acc": [0.1, 0.95]}}))
    assert compare_records_main([str(tmp_path / "a"), str(tmp_path / "d")]) == 0
    assert "records that name none" in capsys.readouterr().out


def test_this_machines_cpu_kind_names_vendor_model_and_amx():
    from grokmap.machine import cpu_facts, cpu_kind, same_cpu_kind

    facts = cpu_facts()
    assert facts["kind"] == cpu_kind() and facts["vendor"] in facts["kind"] and facts["model"] in facts["kind"]
    assert ("AMX" if facts["amx"] else "no AMX") in facts["kind"]
    assert same_cpu_kind(cpu_kind(), cpu_kind()) and not same_cpu_kind(None, None)
    assert cpu_kind({"machine": {"kind": "k"}}) == "k" and cpu_kind({}) is None


@pytest.mark.parametrize("k, n, low, high", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0),
                                             (1, 1, 0.2065, 1.0), (3, 5, 0.2307, 0.8824)])
def test_the_seed_share_interval_is_wilsons(k, n, low, high):
    """Published values of the 95 % Wilson score interval (e.g. Newcombe 1998, Table I style)."""
    from grokmap.analysis.aggregate import wilson_interval

    assert wilson_interval(k, n) == pytest.approx([low, high], abs=1e-4)
