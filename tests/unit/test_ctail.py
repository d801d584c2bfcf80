"""The fused float32 step's hand-written C softmax tail (grokmap.training.engines.ctail)."""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from grokmap.jobs.fingerprint import training_code_files
from grokmap.training.engines import ctail
from grokmap.training.grid import Cell
from grokmap.training.loop import train_cell

from ..conftest import tiny_params
from ..reference import train_reference


@pytest.fixture
def fresh_kernel(monkeypatch, tmp_path):
    """ctail as if this process had never loaded it, building into an empty cache."""
    monkeypatch.setenv("GROKMAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ctail, "_LIB", None)
    monkeypatch.setattr(ctail, "_TRIED", False)
    return tmp_path / "cache"


@pytest.mark.parametrize("m, p", [(7, 97), (960, 97), (33, 5), (4, 113)])
def test_kernel_is_softmax_minus_onehot_over_n(fresh_kernel, m, p):
    gen = torch.Generator().manual_seed(m * p)
    x = torch.randn(m, p, generator=gen) * 8
    y = torch.randint(0, p, (m,), generator=gen)
    g = x.clone()
    assert ctail.softmax_minus_onehot(g, y, 1 / 1000)
    want = (torch.softmax(x.double(), 1) - F.one_hot(y, p).double()) / 1000
    assert torch.allclose(g.double(), want, rtol=1e-6, atol=1e-6 / 1000)  # float32: ~1 ulp of 1/n where it cancels
    assert [f.name for f in fresh_kernel.iterdir()][0].startswith("tail-")  # built into the cache


def test_loading_the_kernel_keeps_subnormals(fresh_kernel):
    # A -ffast-math shared object turns on flush-to-zero for its whole process when gcc < 13
    # links it: every float computation after the load would round differently.
    assert ctail.library() is not None
    assert (torch.tensor([1e-40]) * 1.0).item() > 0
    assert (torch.tensor([1e-40], dtype=torch.float64).float() * 1.0).item() > 0


def test_kernel_refuses_what_it_cannot_read(fresh_kernel):
    with pytest.raises(ValueError, match="contiguous float32"):
        ctail.softmax_minus_onehot(torch.zeros(4, 6).t(), torch.zeros(6, dtype=torch.int64), 1.0)
    with pytest.raises(ValueError, match="contiguous float32"):
        ctail.softmax_minus_onehot(torch.zeros(4, 6, dtype=torch.float64), torch.zeros(4, dtype=torch.int64), 1.0)


def test_float32_fused_step_uses_the_kernel_and_keeps_the_mathematics(default_params, monkeypatch):
    calls = []
    real = ctail.softmax_minus_onehot

    def spy(*a):
        calls.append(a[0].shape)
        return real(*a)

    import grokmap.training.engines.fused as fused

    monkeypatch.setattr(fused, "softmax_minus_onehot", spy)
    q = tiny_params(default_params, max_epochs=60, eval_every_epochs=20)
    cell = Cell(0.1, 0.5, 32, 1)
    fast, ref = train_cell(q, cell), train_reference(q, cell)
    assert len(calls) >= 60
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert fast["curves"][key] == pytest.approx(ref["curves"][key], rel=1e-3, abs=1e-3), key


def test_without_a_compiler_the_step_keeps_torchs_tail_and_says_so(default_params, fresh_kernel, monkeypatch,
                                                                   caplog):
    q = tiny_params(default_params, max_epochs=40, eval_every_epochs=20)
    cell = Cell(0.1, 0.5, 32, 1)
    with_c = train_cell(q, cell)
    monkeypatch.setattr(ctail, "_LIB", None)
    monkeypatch.setattr(ctail, "_TRIED", False)
    monkeypatch.setenv("CC", "no-such-compiler-here")
    with caplog.at_level(logging.WARNING, logger="grokmap.training.engines.ctail"):
        without = train_cell(q, cell)
    assert ctail.library() is None
    # the two records share one fingerprint and differ in their numbers: each names its kernel
    assert (with_c["kernel"], without["kernel"]) == ("fused/c_tail", "fused/torch_tail")
    assert any("keeps torch's kernels" in r.message and "no-such-compiler-here" in r.message for r in caplog.records)
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):  # float rounding apart, no more
        assert without["curves"][key] == pytest.approx(with_c["curves"][key], rel=1e-4, abs=1e-5), key


def test_the_c_source_is_part_of_the_training_fingerprint():
    assert "tail.c" in [f.name for f in training_code_files()]
