"""Phase rules: a boundary table."""
from __future__ import annotations

import pytest

from grokmap.phases import classify, classify_curves, first_epoch_at

T, GAP = 0.95, 200

CASES = [
    # first_train, first_test, final_train, final_test -> phase, gap
    (None, None, 0.5, 0.01, "confusion", None),
    (100, None, 0.94, 0.01, "confusion", None),       # reached once, final below
    (100, 300, 0.9499, 0.99, "confusion", None),
    (100, None, 1.0, 0.2, "memorization", None),
    (100, 200, 1.0, 0.94, "memorization", None),     # test reached, final below
    (100, 300, 1.0, 0.99, "comprehension", 200),     # gap == 200 is not > 200
    (100, 301, 1.0, 0.99, "grokking", 201),
    (100, 100, 0.95, 0.95, "comprehension", 0),       # exactly at the threshold counts
    (300, 100, 1.0, 1.0, "comprehension", -200),     # test first
    (100, 2500, 1.0, 0.96, "grokking", 2400),
]


@pytest.mark.parametrize("ft,fte,trf,tef,phase,gap", CASES)
def test_boundary_table(ft, fte, trf, tef, phase, gap):
    assert classify(ft, fte, trf, tef, T, GAP) == (phase, gap)


def test_first_epoch_and_curves():
    curves = {"epoch": [100, 200, 300, 400], "train_acc": [0.5, 0.96, 1.0, 1.0],
              "test_acc": [0.01, 0.2, 0.5, 0.97], "train_loss": [1] * 4, "test_loss": [1] * 4}
    assert first_epoch_at(curves["epoch"], curves["train_acc"], T) == 200
    assert first_epoch_at(curves["epoch"], curves["test_acc"], 0.99) is None
    c = classify_curves(curves, T, GAP)
    assert (c["phase"], c["gap_epochs"], c["first_train_epoch"], c["first_test_epoch"]) == (
        "comprehension", 200, 200, 400)
    assert classify_curves(curves, T, 199)["phase"] == "grokking"
    assert classify_curves(curves, 0.98, GAP)["phase"] == "memorization"
