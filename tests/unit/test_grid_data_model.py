"""Grid expansion and path spelling; data and split; model construction."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from grokmap.training.data import split, split_indices, task_inputs
from grokmap.training.grid import Cell, cell_from_wildcards, cells, spell
from grokmap.training.tasks import task_size
from grokmap.training.models import EmbedConcatMLP, build_model


@pytest.mark.parametrize("value,text", [(0.1, "0.1"), (1e-1, "0.1"), (0.10, "0.1"), (1.0, "1"),
                                        (0.0, "0"), (1e-05, "1e-05"), (0.001, "0.001"),
                                        (64, "64"), (42, "42"), (2.5, "2.5")])
def test_spelling_is_canonical(value, text):
    assert spell(value) == text


def test_cell_path_and_round_trip():
    c = Cell(0.01, 0.5, 32, 42)
    assert c.relpath == "wd=0.01/frac=0.5/width=32/seed=42"
    assert cell_from_wildcards(c.wildcards) == c
    assert cell_from_wildcards({"wd": "1", "frac": "0.3", "width": "16", "seed": "0"}) == Cell(1.0, 0.3, 16, 0)


def test_grid_expansion_default(default_params):
    grid = cells(default_params["sweep"])
    assert len(grid) == 60 and len(set(grid)) == 60
    assert len({c.relpath for c in grid}) == 60
    many = dict(default_params["sweep"], seed=[0, 1, 2, 3, 4])
    assert len(cells(many)) == 300


def test_pairs_are_a_major_with_modular_labels():
    x, y = task_inputs(5)
    a, b = x[:, 0], x[:, 1]
    assert a.tolist()[:6] == [0, 0, 0, 0, 0, 1] and b.tolist()[:6] == [0, 1, 2, 3, 4, 0]
    assert torch.equal(y, (a + b) % 5) and len(y) == 25


@pytest.mark.parametrize("name,n,op", [
    ("modular_addition", 49, lambda a, b: (a + b) % 7),
    ("modular_subtraction", 49, lambda a, b: (a - b) % 7),
    ("modular_multiplication", 49, lambda a, b: (a * b) % 7),
    ("modular_division", 42, None),
])
def test_tasks_label_every_pair(name, n, op):
    x, y = task_inputs(7, name)
    a, b = x[:, 0], x[:, 1]
    assert len(y) == n == task_size(7, name)
    assert len(set(zip(a.tolist(), b.tolist()))) == n and a.tolist() == sorted(a.tolist())
    for ai, bi, yi in zip(a.tolist(), b.tolist(), y.tolist()):
        if op is None:  # division: y * b == a (mod 7), never b = 0
            assert bi != 0 and (yi * bi) % 7 == ai
        else:
            assert yi == op(ai, bi)


def test_split_follows_s0():
    tr, te = split_indices(97 * 97, 0.3, 42)
    perm = np.random.RandomState(42).permutation(97 * 97)
    assert len(tr) == int(97 * 97 * 0.3) == 2822
    assert np.array_equal(tr, perm[:2822]) and np.array_equal(te, perm[2822:])
    (x, y), (tx, ty) = split("modular_addition", 97, 0.3, 42)
    assert len(y) + len(ty) == 97 * 97
    assert not set((x[:, 0] * 97 + x[:, 1]).tolist()) & set((tx[:, 0] * 97 + tx[:, 1]).tolist())


def _spec(params: dict, **model):
    from grokmap.training.spec import CellSpec

    q = {k: dict(params[k]) for k in ("task", "model", "training")}
    q["task"]["modulus"] = 97
    q["model"].update(model)
    return CellSpec.of(q, Cell(0.0, 0.3, 64, 42))


def test_model_shapes_and_init_order(default_params):
    m = build_model(_spec(default_params, name="embed_concat_mlp", embedding_dim=16, depth=1, activation="relu"))
    assert isinstance(m, EmbedConcatMLP)
    assert m.hidden.weight.shape == (64, 32) and m.output.weight.shape == (97, 64)
    # the same seed and creation order S0 uses: embed_a, embed_b, hidden, output
    torch.manual_seed(42)
    ea, eb = torch.nn.Embedding(97, 16), torch.nn.Embedding(97, 16)
    hid, out = torch.nn.Linear(32, 64), torch.nn.Linear(64, 97)
    for mine, ref in [(m.embed_a, ea), (m.embed_b, eb), (m.hidden, hid), (m.output, out)]:
        assert torch.equal(mine.weight, ref.weight)
    assert sum(p.numel() for p in m.parameters()) == 2 * 97 * 16 + 32 * 64 + 64 + 64 * 97 + 97
    with pytest.raises(ValueError, match="unknown model"):
        build_model(_spec(default_params, name="nope"))


def test_the_settings_side_of_training_imports_no_torch():
    """training/__init__.py's statement: planning a sweep never loads torch."""
    import subprocess
    import sys

    code = ("import sys, grokmap.training.grid, grokmap.training.spec, grokmap.training.tasks, "
            "grokmap.training.schedule, grokmap.training.curves, grokmap.training.record, grokmap.training.kinds, "
            "grokmap.training.engines, grokmap.training.loop; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
