"""A finished sweep as data (grokmap.load_results, load_curves) and the command line that
summarises one sweep or compares two (grokmap summary / grokmap diff)."""
from __future__ import annotations

import json

import grokmap
from grokmap.analysis.aggregate import cell_path
from grokmap.cli import main

from .test_explorer import _phases


def _write(root, phases, records, flip=None):
    """A results directory as the workflow leaves it: phases.json and each cell's record."""
    if flip is not None:  # one cell's phase changed, as another sweep could give
        phases = json.loads(json.dumps(phases))
        phases["cells"][flip]["phase"] = "comprehension"
    root.mkdir()
    (root / "phases.json").write_text(json.dumps(phases))
    (root / "validation.json").write_text(json.dumps({"passed": True, "checks": [{}] * 3}))
    for cell, rec in records.items():
        path = cell_path(root, cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
    return root


def test_load_results_gives_one_row_per_cell_with_its_settings_and_phase(tmp_path):
    phases, records = _phases()
    root = _write(tmp_path / "a", phases, records)
    cells = grokmap.load_results(root)
    assert len(cells) == len(phases["cells"]) == 16
    assert list(cells.columns[:8]) == ["weight_decay", "train_fraction", "width", "seed", "round", "phase",
                                       "undecided", "budget_gain"]
    assert cells.groupby("phase").size().to_dict() == {p: c for p, c in phases["counts"].items() if c}
    assert (cells["round"] == 0).all() and cells["grokking_step"].notna().sum() == 12


def test_load_curves_filters_cells_and_returns_long_form(tmp_path):
    phases, records = _phases()
    root = _write(tmp_path / "a", phases, records)
    curves = grokmap.load_curves(root, phase="memorization")
    assert set(curves["metric"]) >= {"train_acc", "test_acc", "train_loss", "param_norm"}
    assert set(curves["seed"]) == {1} and set(curves["phase"]) == {"memorization"}
    one = curves[(curves.metric == "test_acc") & (curves.weight_decay == 0.0) & (curves.train_fraction == 0.5)
                 & (curves.width == 8)]
    assert one["step"].tolist() == [100, 200, 300, 400, 500] and one["value"].tolist() == [0.1] * 5


def test_summary_and_diff_on_the_command_line(tmp_path, capsys):
    phases, records = _phases()
    a = _write(tmp_path / "a", phases, records)
    b = _write(tmp_path / "b", phases, records, flip=3)
    assert main(["summary", str(a)]) == 0
    out = capsys.readouterr().out
    assert "16 cells: 0 confusion, 4 memorization, 12 grokking, 0 comprehension" in out
    assert "undecided at budget" in out and "validation: passed (3 checks)" in out
    assert main(["diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out.splitlines()
    row = phases["cells"][3]
    assert out[0] == f"1 of 16 cells changed phase between {a} and {b}"
    assert out[1] == (f"  weight_decay={row['weight_decay']}, train_fraction={row['train_fraction']}, "
                      f"width={row['width']}, seed={row['seed']}: {row['phase']} -> comprehension")
    assert f"  {row['phase']} -> comprehension: 1" in out
    assert main(["summary", str(tmp_path / "none")]) == 1
