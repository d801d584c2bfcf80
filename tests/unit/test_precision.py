"""training.precision: float32, float64 and bfloat16 matrix products, on every engine."""
from __future__ import annotations

import copy

import pytest
import torch

from grokmap.settings import SettingsError, load_settings
from grokmap.training.engines import engine_for, load_engine
from grokmap.training.grid import Cell, cells
from grokmap.training.loop import train
from grokmap.training.record import cell_settings
from grokmap.training.spec import CellSpec

from ..conftest import ROOT, SCHEMAS, tiny_params


def _specs(kind: str, default_params) -> list[CellSpec]:
    """One short cell per engine: S0's (fused), an LSTM (generic), two S3 toy cells (stacked)."""
    if kind == "fused":
        return [CellSpec.of(tiny_params(default_params, max_epochs=100, eval_every_epochs=20), Cell(1.0, 0.8, 32, 0))]
    if kind == "generic":
        q = tiny_params(default_params, max_epochs=60, eval_every_epochs=20)
        q["model"]["name"] = "lstm"
        return [CellSpec.of(q, Cell(1.0, 0.8, 32, 0))]
    params = load_settings(ROOT / "studies" / "reduced" / "s3_toy_classification.yaml", ROOT / "config.yaml",
                           SCHEMAS).params
    return [s.with_training(max_epochs=200, eval_every_epochs=50)
            for s in (CellSpec.of(cell_settings(params), c) for c in cells(params["sweep"])[:2])]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fused", "generic", "stacked"])
def test_every_engine_trains_in_every_precision(default_params, kind):
    specs = _specs(kind, default_params)
    assert engine_for(specs[0]).name == kind
    runs = {p: train([s.with_training(precision=p) for s in specs]) for p in ("float32", "float64", "bfloat16")}
    for i in range(len(specs)):
        loss = {p: r[i]["curves"]["train_loss"] for p, r in runs.items()}
        assert runs["float64"][i]["steps_run"] == runs["float32"][i]["steps_run"]
        # float64 follows float32 to float32's rounding over a short run ...
        assert loss["float64"] == pytest.approx(loss["float32"], rel=1e-3)
        assert loss["float64"] != loss["float32"]  # ... but is computed in another precision
        # bfloat16 products: an 8-bit mantissa, so the losses move in the second or third digit
        assert loss["bfloat16"] == pytest.approx(loss["float32"], rel=5e-2)
        assert loss["bfloat16"] != loss["float32"]
    # every result names what computed it (the fused engine: its tail, or the compiled bfloat16 graph)
    want = {"fused": {"float32": "fused/c_tail", "float64": "fused/torch_tail", "bfloat16": "fused/compiled"},
            "generic": dict.fromkeys(runs, "generic/torch"), "stacked": dict.fromkeys(runs, "stacked/torch")}[kind]
    assert {p: {r["kernel"] for r in rs} for p, rs in runs.items()} == {p: {k} for p, k in want.items()}


@pytest.mark.parametrize("kind", ["fused", "generic", "stacked"])
def test_a_cell_starts_from_the_same_weights_in_every_precision(default_params, kind):
    def initial(precision):
        engine = load_engine(engine_for(specs[0]))([s.with_training(precision=precision) for s in specs])
        if kind == "fused":
            return [engine.net.flat]
        params = engine.model.parameters() if kind == "generic" else engine.opt.params
        return [p.detach() for p in params]

    specs = _specs(kind, default_params)
    f32, f64, bf16 = initial("float32"), initial("float64"), initial("bfloat16")
    assert all(t.dtype == torch.float64 for t in f64) and all(t.dtype == torch.float32 for t in bf16)
    for a, b, c in zip(f32, f64, bf16):
        assert torch.equal(a.double(), b) and torch.equal(a, c)


def test_fused_bfloat16_products_round_like_bfloat16():
    from grokmap.training.engines.fused import FusedEmbedConcatMLP
    from grokmap.training.models import EmbedConcatMLP

    torch.manual_seed(0)
    model = EmbedConcatMLP(31, 8, 16)
    a, b = torch.randint(31, (200,)), torch.randint(31, (200,))
    exact = FusedEmbedConcatMLP(model).logits(a, b)[0].clone()
    low = FusedEmbedConcatMLP(model, torch.bfloat16).logits(a, b)[0]
    assert low.dtype == torch.float32 and not torch.equal(low, exact)
    assert torch.allclose(low, exact, rtol=3e-2, atol=3e-2)


def test_precision_is_swept_like_any_setting_and_refused_when_unknown(default_params):
    q = copy.deepcopy(default_params)
    q["sweep"] = {"weight_decay": [1.0], "train_fraction": [0.5], "width": [16], "seed": [0],
                  "training.precision": ["float32", "bfloat16"]}
    grid = cells(q["sweep"])
    assert [c.relpath for c in grid] == [f"training_precision={p}/wd=1/frac=0.5/width=16/seed=0"
                                         for p in ("float32", "bfloat16")]
    assert [CellSpec.of(cell_settings(q), c).training.precision for c in grid] == ["float32", "bfloat16"]
    assert cell_settings(q)["training"]["precision"] == "(swept)"
    bad = ROOT / "params.yaml"
    with pytest.raises(SettingsError, match=r"'training.precision' = 'float16' is not allowed; allowed: one of 'float32', 'float64', 'bfloat16'"):
        load_settings(bad, ROOT / "config.yaml", SCHEMAS, overrides={"training": {"precision": "float16"}})
