"""Extension rounds (issue 29): a cell continued from its saved final state to a longer budget
trains exactly as one uninterrupted run of the longer budget."""
from __future__ import annotations

import copy
import io

import pytest
import torch

from grokmap.training.grid import cells
from grokmap.training.loop import train
from grokmap.training.record import cell_settings
from grokmap.training.spec import CellSpec

from ..conftest import tiny_params


def _spec(default_params, model: dict | None = None, **training) -> CellSpec:
    q = tiny_params(default_params, **{"max_epochs": 200, **training})
    q["model"].update(model or {})
    q["sweep"] = {"weight_decay": [1.0], "train_fraction": [0.8], "width": [32], "seed": [3]}
    return CellSpec.of(cell_settings(q), cells(q["sweep"])[0])


def _saved(state: dict) -> dict:
    """Through the bytes a state file holds, as an extension round reads it."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return torch.load(io.BytesIO(buf.getvalue()), weights_only=True)


@pytest.mark.parametrize("kernel, model, training", [
    ("fused/c_tail", None, {}),
    ("fused/torch_tail", None, {"precision": "float64"}),
    ("fused/compiled", None, {"precision": "bfloat16"}),
    ("generic/torch", None, {"batch_size": 64}),  # minibatches drawn from the cell's generator
    ("generic/torch", None, {"batch_size": 64, "batch_sampling": "epoch_shuffle", "lr_decay": 0.999}),
    ("generic/torch", {"dropout": 0.1}, {}),
    ("generic/torch", None, {"optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.05}),
])
def test_continued_cell_equals_one_longer_run(default_params, kernel, model, training):
    short = _spec(default_params, model, **training)
    longer = _spec(default_params, model, **{**training, "max_epochs": 500})
    first = train([short], with_state=True)[0]
    assert first["kernel"] == kernel or not kernel.startswith("fused/c")  # the C tail may not build here
    state = _saved(first.pop("state"))
    assert state["step"] == first["steps_run"] == short.total_steps
    continued = train([longer], resume={"state": state, "curves": first["curves"]})[0]
    whole = train([longer])[0]
    assert continued["curves"] == whole["curves"]  # bit for bit: one computation, run twice on this CPU
    assert continued["steps_run"] == whole["steps_run"] == longer.total_steps
    assert continued["curves"]["step"][:len(first["curves"]["step"])] == first["curves"]["step"]


def test_continuing_refuses_what_one_longer_run_would_not_be(default_params):
    short = _spec(default_params)
    first = train([short], with_state=True)[0]
    state = first.pop("state")
    # a budget that is not longer
    with pytest.raises(ValueError, match="cannot continue"):
        train([short], resume={"state": state, "curves": first["curves"]})
    # another evaluation schedule: the curves would not be those of one run
    other = _spec(default_params, max_epochs=500, eval_every_epochs=30)
    with pytest.raises(ValueError, match="other steps"):
        train([other], resume={"state": state, "curves": first["curves"]})
    # a state from another step than the curves end at
    longer = _spec(default_params, max_epochs=500)
    with pytest.raises(ValueError, match="cannot continue"):
        train([longer], resume={"state": {**state, "step": 100}, "curves": first["curves"]})
    # a state that does not fit the model
    wide = _spec(default_params, max_epochs=500)
    wide_state = {**state, "flat": torch.zeros(3)}
    with pytest.raises(ValueError, match="saved state 'flat'"):
        train([wide], resume={"state": wide_state, "curves": first["curves"]})


def test_a_cell_that_met_its_stopping_rule_is_not_continued(default_params):
    stop = {"early_stop_accuracy": 0.3, "early_stop_evals": 1}  # met within the budget
    short = _spec(default_params, max_epochs=800, **stop)
    first = train([short], with_state=True)[0]
    assert first["stopped_early"]
    longer = _spec(default_params, max_epochs=1600, **stop)
    curves = copy.deepcopy(first["curves"])
    state = first.pop("state")
    with pytest.raises(ValueError):
        train([longer], resume={"state": state, "curves": curves})


@pytest.mark.parametrize("overrides, message", [
    ({"training": {"max_epochs": 2550}}, "not a multiple of eval_every_epochs"),
    ({"training": {"max_steps": 1000}}, "caps the budget in steps"),
    ({"extend": {"rounds": 6, "factor": 16}}, "optimizer steps per cell"),
    ({"extend": {"rounds": 3, "factor": 16}}, "more cell budgets"),
])
def test_extension_settings_refused_before_any_work(overrides, message):
    from grokmap.settings import SettingsError, load_settings

    from ..conftest import ROOT, SCHEMAS

    over = {"extend": {"rounds": 1, "factor": 4}}
    for k, v in overrides.items():
        over[k] = {**over.get(k, {}), **v}
    with pytest.raises(SettingsError, match=message):
        load_settings(ROOT / "params.yaml", ROOT / "config.yaml", SCHEMAS, overrides=over)


def test_extension_refused_for_stacked_cells():
    from grokmap.settings import SettingsError, load_settings

    from ..conftest import ROOT, SCHEMAS

    with pytest.raises(SettingsError, match="s3_mlp trains its cells stacked"):
        load_settings(ROOT / "studies" / "reduced" / "s3_toy_classification.yaml", ROOT / "config.yaml", SCHEMAS,
                      overrides={"extend": {"rounds": 1, "factor": 2}})
