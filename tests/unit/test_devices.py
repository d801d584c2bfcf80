"""config.yaml device: resolved per engine, and every engine trains through the device plumbing
on the CPU exactly as without it (this machine has no GPU; benchmarks/gpu_check.sh is for one)."""
from __future__ import annotations

import pytest
import torch

from grokmap.training.devices import resolve_device
from grokmap.training.engines import engine_for, load_engine
from grokmap.training.grid import Cell
from grokmap.training.loop import train
from grokmap.training.spec import CellSpec

from ..conftest import tiny_params


def test_auto_is_the_gpu_when_one_is_seen_and_the_fused_engine_stays_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", "stacked").type == "cpu"
    assert resolve_device("cpu", "generic").type == "cpu"
    with pytest.raises(RuntimeError, match="device = 'cuda', but no CUDA device is visible to this job; "
                                           "allowed: auto or cpu"):
        resolve_device("cuda", "stacked")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", "stacked").type == "cuda"
    assert resolve_device("cuda", "generic").type == "cuda"
    assert resolve_device("cuda", "fused").type == "cpu"
    with pytest.raises(ValueError, match="allowed: auto, cpu, cuda"):
        resolve_device("gpu", "generic")


@pytest.mark.parametrize("engine,training", [("generic", {"batch_size": 64}), ("fused", {})])
def test_cpu_through_the_device_plumbing_is_the_same_cell(default_params, engine, training):
    spec = CellSpec.of(tiny_params(default_params, max_epochs=60, **training), Cell(1.0, 0.5, 16, 0))
    assert engine_for(spec).name == engine
    plain = train([spec])[0]["curves"]
    assert train([spec], device="cpu")[0]["curves"] == plain
    assert train([spec], device="auto")[0]["curves"] == plain  # no GPU here: auto is the CPU


def test_the_stacked_engine_through_the_device_plumbing_is_the_same_stack():
    from .test_toy import TOY, _grid, replace

    specs = [replace(c, steps=200, eval_steps=(100, 200)) for c in _grid(TOY)]
    assert engine_for(specs[0]).name == "stacked"
    plain = [r["curves"] for r in train(specs)]
    assert [r["curves"] for r in train(specs, device="cpu")] == plain
    engine = load_engine(engine_for(specs[0]))(specs, device=torch.device("cpu"))
    assert {p.device.type for p in engine.opt.params} == {"cpu"} and engine.data["x"].device.type == "cpu"
    assert {c.device.type for c in engine.opt.count} == {"cpu"} and engine.kernel == "stacked/torch"


def test_the_generic_engine_puts_data_and_model_on_its_device(default_params):
    spec = CellSpec.of(tiny_params(default_params, batch_size=64), Cell(1.0, 0.5, 16, 0))
    engine = load_engine(engine_for(spec))([spec], device=torch.device("cpu"))
    assert engine.x.device.type == "cpu" and next(engine.model.parameters()).device.type == "cpu"
    assert engine.kernel == "generic/torch"  # no device suffix on the CPU: CPU records are unchanged
