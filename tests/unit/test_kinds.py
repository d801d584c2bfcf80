"""Model kinds: one record each (grokmap.training.kinds), the schema's list the same, and every
record's facts used where they are needed (build, settings rules, cost, engine)."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from grokmap.settings import SettingsError, load_yaml
from grokmap.settings.rules import check_task_and_model
from grokmap.training.grid import Cell
from grokmap.training.kinds import KINDS, engine_name, kind, multiply_adds
from grokmap.training.models import build_model
from grokmap.training.spec import CellSpec

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "params.schema.yaml"


def _settings(params: dict, name: str) -> dict:
    q = copy.deepcopy(params)
    q["model"]["name"] = name
    q["task"]["modulus"] = 11
    if name == "s3_mlp":
        q["task"]["name"], q["model"]["depth"] = "toy_addition", 2
    if name == "quadratic_mlp":
        q["model"]["depth"] = 1
    if name == "transformer":
        q["model"]["heads"] = 1
    return q


def test_the_schema_lists_exactly_the_registered_kinds():
    enum = load_yaml(SCHEMA)["properties"]["model"]["properties"]["name"]["enum"]
    assert sorted(enum) == sorted(KINDS)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_builds_checks_and_costs(default_params, name):
    q = _settings(default_params, name)
    check_task_and_model(q, q["sweep"], "test")  # its own rules accept its own settings
    spec = CellSpec.of(q, Cell(0.0, 0.5, 8, 0))
    net = build_model(spec)
    x = torch.zeros(3, 2, dtype=torch.long)
    logits = net(x)
    assert logits.shape == (3, spec.out_dim)
    weights = sum(p.numel() for n, p in net.named_parameters() if p.dim() > 1)
    macs = multiply_adds(q["model"], q["task"], 8)
    assert 0 < macs <= 4 * weights  # an estimate of the weights' products, never far above them
    assert engine_name(spec) in ("fused", "generic", "stacked")


def test_a_kind_made_for_other_tasks_is_refused_the_modular_ones(default_params):
    q = _settings(default_params, "s3_mlp")
    q["task"]["name"] = "modular_addition"
    with pytest.raises(SettingsError, match="'task.name' = 'modular_addition' is not allowed; allowed: one of "
                                            "toy_addition, digits with model 's3_mlp'"):
        check_task_and_model(q, q["sweep"], "test")
    q = _settings(default_params, "lstm")
    q["task"]["name"] = "digits"
    with pytest.raises(SettingsError, match="'model.name' = 'lstm' is not allowed; allowed: 's3_mlp' with task"):
        check_task_and_model(q, q["sweep"], "test")


def test_unknown_kind_is_named_with_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown model 'nope'; allowed: 'embed_concat_mlp'"):
        kind("nope")
