"""Every setting the other seeds need (issue 7), each trained on a tiny instance.

Tiny means p = 11 (121 examples; 96 train at fraction 0.8), width 32, 150 steps: each run
takes well under two seconds, and every model fits its training set in that budget.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch

from grokmap.analysis.aggregate import first_step_at
from grokmap.training.grid import Cell, cells, resolve_settings
from grokmap.training.models import QuadraticMLP, Transformer, build_model, ipr, subnetwork_fraction
from grokmap.training.schedule import step_schedule
from grokmap.training.data import split
from grokmap.training.engines import engine_for
from grokmap.training.loop import train, train_cell
from grokmap.training.spec import CellSpec


def tiny(default_params: dict, **settings) -> dict:
    """``section__key=value`` edits on a p = 11, lr 0.01, 150-epoch copy of the defaults."""
    q = copy.deepcopy(default_params)
    q["task"]["modulus"] = 11
    q["training"].update(learning_rate=0.01, max_epochs=150, eval_every_epochs=10)
    for key, value in settings.items():
        section, name = key.split("__")
        q[section][name] = value
    return q


CELL = Cell(0.0, 0.8, 32, 0)


def uses_fused_path(q: dict) -> bool:
    return engine_for(CellSpec.of(q, CELL)).name == "fused"


def _train_fused(q: dict, cell: Cell) -> dict:
    spec = CellSpec.of(q, cell)
    assert engine_for(spec).name == "fused"
    return train([spec])[0]


def train_generic(q: dict, cell: Cell) -> dict:
    return train([CellSpec.of(q, cell)], engine="generic")[0]


def build(params: dict, p: int | None = None, width: int = 32, seed: int = 0, **model):
    """The model a cell of these settings builds (``model`` edits its settings)."""
    q = copy.deepcopy(params)
    if p is not None:
        q["task"]["modulus"] = p
    q["model"].update(model)
    return build_model(CellSpec.of(q, Cell(0.0, 0.8, width, seed)))


def _fits(result: dict) -> None:
    """The run trained for real: finite numbers, train loss fell, the train set was fitted."""
    c = result["curves"]
    assert not result["non_finite_loss"]
    assert all(math.isfinite(v) for v in c["train_loss"] + c["test_loss"])
    assert c["train_loss"][-1] < 0.5 * c["train_loss"][0], c["train_loss"]
    assert c["train_acc"][-1] >= 0.9, c["train_acc"]


MODELS = {
    "S1/S2 deeper GELU MLP": dict(model__depth=3, model__activation="gelu"),
    "S1 transformer": dict(model__name="transformer", model__depth=2, model__heads=4),
    "S1 LSTM": dict(model__name="lstm"),
    "S4 quadratic MLP": dict(model__name="quadratic_mlp"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_every_model_trains(default_params, name):
    q = tiny(default_params, **MODELS[name])
    assert not uses_fused_path(q)
    _fits(train_cell(q, CELL))


OPTIMIZERS = {
    "adamw": dict(training__optimizer="adamw", model__depth=2),  # depth 2: not the fused path
    "adam": dict(training__optimizer="adam"),
    "rmsprop": dict(training__optimizer="rmsprop", training__learning_rate=0.003),
    "sgd with momentum": dict(training__optimizer="sgd", training__momentum=0.9, training__learning_rate=0.5),
    "gd": dict(training__optimizer="gd", training__learning_rate=2.0, training__max_epochs=400),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_trains(default_params, name):
    _fits(train_cell(tiny(default_params, **OPTIMIZERS[name]), CELL))


@pytest.mark.slow
def test_optimizers_differ_and_weight_decay_reaches_them(default_params):
    runs = {name: train_cell(tiny(default_params, training__optimizer=name, training__max_epochs=20,
                                  training__momentum=0.9), CELL)["curves"]["train_loss"]
            for name in ("adam", "rmsprop", "sgd", "gd")}
    assert len({tuple(v) for v in runs.values()}) == 4
    q = tiny(default_params, training__optimizer="sgd", training__learning_rate=0.5, training__max_epochs=100)
    free, decayed = (train_cell(q, Cell(wd, 0.8, 32, 0))["curves"]["param_norm"] for wd in (0.0, 0.5))
    assert decayed[-1] < free[-1]


@pytest.mark.slow
def test_mse_loss_trains_and_is_recorded_as_mse(default_params):
    q = tiny(default_params, training__loss="mse")
    r = train_cell(q, CELL)
    _fits(r)
    # MSE against one-hot targets starts near 1 (sum over outputs), cross-entropy near log(p)
    assert r["curves"]["train_loss"][0] < 1.5 < math.log(11)


@pytest.mark.slow
def test_gd_with_mse_on_the_quadratic_mlp_trains_without_weight_decay(default_params):
    q = tiny(default_params, model__name="quadratic_mlp", training__optimizer="gd", training__loss="mse",
             training__learning_rate=5.0, training__max_epochs=300)
    _fits(train_cell(q, CELL))


@pytest.mark.slow
def test_minibatches_count_steps_and_epochs(default_params):
    q = tiny(default_params, training__batch_size=16, training__max_epochs=30, training__eval_every_epochs=5)
    r = train_cell(q, CELL)
    per_epoch = math.ceil(96 / 16)
    assert r["steps_per_epoch"] == per_epoch and r["n_train"] == 96
    assert r["curves"]["epoch"] == [5, 10, 15, 20, 25, 30]
    assert r["curves"]["step"] == [e * per_epoch for e in r["curves"]["epoch"]]
    assert r["steps_run"] == 30 * per_epoch
    _fits(train_cell(tiny(default_params, training__batch_size=16), CELL))
    # the same cell draws the same batches; another seed draws others
    assert train_cell(q, CELL)["curves"] == r["curves"]
    assert train_cell(q, Cell(0.0, 0.8, 32, 1))["curves"]["train_loss"] != r["curves"]["train_loss"]


def test_max_steps_caps_the_budget(default_params):
    q = tiny(default_params, training__batch_size=16, training__max_steps=50, training__eval_every_epochs=5)
    assert step_schedule(q["training"], 96) == (6, 50, [30, 50])
    r = train_cell(q, CELL)
    assert r["steps_run"] == 50 and r["curves"]["step"] == [30, 50]
    assert r["curves"]["epoch"] == [5, round(50 / 6, 4)]


@pytest.mark.slow
@pytest.mark.parametrize("key,value", [("model__dropout", 0.3), ("training__embedding_noise", 0.5)])
def test_dropout_and_embedding_noise_train_reproducibly(default_params, key, value):
    q = tiny(default_params, **{key: value})
    plain = train_cell(tiny(default_params), CELL)["curves"]
    r = train_cell(q, CELL)
    _fits(r)
    assert r["curves"]["train_loss"] != plain["train_loss"]  # the perturbation acted ...
    assert train_cell(q, CELL)["curves"] == r["curves"]  # ... from the cell's own generator


def test_perturbations_act_in_training_only(default_params):
    from grokmap.training.models import Perturb

    q = tiny(default_params, model__dropout=0.5)
    model = build(q)
    x = torch.tensor([[1, 2], [3, 4]])
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(model.features(x)[0], model.features(x)[0])
    noisy = model.features(x, Perturb(0.5, 0.5, gen))[0]
    assert not torch.equal(noisy, model.features(x)[0])


@pytest.mark.parametrize("p,k,model,lr,width", [(7, 3, "embed_concat_mlp", 0.01, 32),
                                                (5, 4, "embed_concat_mlp", 0.01, 32),
                                                (7, 3, "quadratic_mlp", 0.1, 64),
                                                (7, 3, "transformer", 0.01, 32)])
@pytest.mark.slow
def test_k_ary_sums_train(default_params, p, k, model, lr, width):
    q = tiny(default_params, task__modulus=p, task__operands=k, model__name=model, training__max_epochs=400,
             training__learning_rate=lr)
    r = train_cell(q, Cell(0.0, 0.8, width, 0))
    assert r["n_train"] + r["n_test"] == p ** k
    _fits(r)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["modular_subtraction", "modular_multiplication", "modular_division"])
def test_other_tasks_train_on_the_generic_path(default_params, task):
    _fits(train_cell(tiny(default_params, task__name=task, model__name="lstm"), CELL))


def test_generic_path_matches_the_fused_path_on_s0_settings(default_params):
    # The same S0 cell through both implementations: float32 with different summation
    # orders, so equal to rounding, over a short run before trajectories can drift.
    q = tiny(default_params, training__max_epochs=60)
    fused, generic = _train_fused(q, CELL), train_generic(q, CELL)
    for key in ("train_loss", "test_loss", "param_norm", "ipr"):
        assert generic["curves"][key] == pytest.approx(fused["curves"][key], rel=2e-3), key
    # a share of neurons: the two paths may rank a near-tied neuron differently
    assert generic["curves"]["subnetwork_fraction"] == pytest.approx(fused["curves"]["subnetwork_fraction"],
                                                                     abs=2.5 / CELL.width)
    assert generic["curves"]["train_acc"] == pytest.approx(fused["curves"]["train_acc"], abs=0.03)
    assert generic["n_parameters"] == fused["n_parameters"]


@pytest.mark.slow
def test_measurements_are_recorded_at_every_evaluation(default_params):
    r = train_cell(tiny(default_params, model__name="quadratic_mlp"), CELL)
    c = r["curves"]
    n = len(c["epoch"])
    for key in ("param_norm", "subnetwork_fraction", "ipr"):
        assert len(c[key]) == n and all(v is not None and math.isfinite(v) for v in c[key]), key
    assert all(1 / 11 - 1e-9 <= v <= 1 for v in c["ipr"])
    assert all(0 < v <= 1 for v in c["subnetwork_fraction"])


def test_ipr_of_known_spectra():
    p = 13
    k = torch.arange(p, dtype=torch.float64)
    one_frequency = torch.cos(2 * math.pi * 3 * k / p)[:, None]  # power at +-3 only
    delta = torch.zeros(p, 1, dtype=torch.float64)
    delta[4] = 1.0  # flat spectrum
    assert ipr([one_frequency]) == pytest.approx(0.5)
    assert ipr([delta]) == pytest.approx(1 / p)
    assert ipr([torch.cat([one_frequency, delta], 1)]) == pytest.approx((0.5 + 1 / p) / 2)


def test_subnetwork_fraction_finds_the_few_neurons_that_carry_the_predictions():
    # 3 of 40 neurons decide every prediction; the other 37 add small noise to the logits
    g = torch.Generator().manual_seed(0)
    h = torch.rand(500, 40, generator=g)
    h[:, :3] = torch.nn.functional.one_hot(torch.arange(500) % 3, 3)  # input i excites neuron i % 3
    w = 1e-3 * torch.randn(7, 40, generator=g)
    w[:, :3] = 5 * torch.eye(7, 3)  # ... which votes for class i % 3 with a margin of 5
    assert subnetwork_fraction(h, w, torch.zeros(7)) == 3 / 40
    # ... whereas the old measure (mean |activation| above 1 % of the largest) called all 40 active
    assert float((h.abs().mean(0) > 0.01 * h.abs().mean(0).max()).double().mean()) == 1.0


def test_subnetwork_fraction_is_one_when_every_neuron_is_needed():
    # input i excites neuron i only, which votes for class i; without it the bias picks class m
    m = 12
    w = torch.zeros(m + 1, m)
    w[torch.arange(m), torch.arange(m)] = torch.arange(1.0, m + 1)
    bias = torch.zeros(m + 1)
    bias[m] = 0.5
    assert subnetwork_fraction(torch.eye(m), w, bias) == 1.0
    assert subnetwork_fraction(torch.eye(m)[:4], w, bias) == 4 / m  # only inputs 0-3: neurons 0-3
    assert math.isnan(subnetwork_fraction(torch.full((3, m), float("nan")), w, bias))


@pytest.mark.parametrize("name", ["embed_concat_mlp", "lstm", "quadratic_mlp"])
def test_readout_is_the_map_from_the_last_hidden_layer_to_the_logits(default_params, name):
    model = build(default_params, p=11, width=8, name=name, depth=1)
    x = torch.cartesian_prod(torch.arange(11), torch.arange(11))
    logits, h = model.features(x)
    weight, bias, scale = model.readout()
    expect = scale * h @ weight.t() + (0 if bias is None else bias)
    assert torch.allclose(logits, expect, atol=1e-5)


def test_parameter_norm_is_the_l2_norm_of_every_parameter(default_params):
    # a vanishing learning rate: the recorded norm is the initial weights' norm
    q = tiny(default_params, model__name="quadratic_mlp", training__optimizer="gd", training__learning_rate=1e-12,
             training__max_epochs=10, training__eval_every_epochs=10)
    r = train_cell(q, CELL)
    model = build(q)
    assert isinstance(model, QuadraticMLP)
    initial = float(torch.sqrt(sum((w.detach() ** 2).sum() for w in model.parameters())))
    assert r["curves"]["param_norm"] == pytest.approx([initial], rel=1e-6)


def test_transformer_reads_out_at_the_last_position(default_params):
    q = tiny(default_params, model__name="transformer", model__depth=2)
    model = build(q)
    assert isinstance(model, Transformer)
    x = torch.tensor([[1, 2], [1, 3]])
    # causal attention: the first position cannot see the second, so only a read-out at the
    # last position depends on b
    a_only = model.blocks[0](model.tokens(x) + model.positions.weight[:2], None)[0][:, 0]
    assert torch.allclose(a_only[0], a_only[1])
    assert not torch.allclose(model(x)[0], model(x)[1])


def test_grokking_step_is_the_first_step_at_the_threshold():
    curves = {"epoch": [1, 2, 3], "step": [10, 20, 30], "test_acc": [0.5, 0.995, 1.0]}
    assert first_step_at(curves, 0.99) == 20
    assert first_step_at(curves, 0.999) == 30
    assert first_step_at(curves, 1.01) is None


@pytest.mark.slow
def test_a_swept_setting_is_resolved_per_cell(default_params):
    q = tiny(default_params)
    q["sweep"] = {"weight_decay": [0.0], "train_fraction": [0.8], "width": [32], "seed": [0],
                  "model.name": ["embed_concat_mlp", "lstm"], "training.batch_size": ["full", 32]}
    grid = cells(q["sweep"])
    assert len(grid) == 4 and len({c.relpath for c in grid}) == 4
    assert grid[1].relpath == "model_name=embed_concat_mlp/training_batch_size=32/wd=0/frac=0.8/width=32/seed=0"
    s = resolve_settings(q, grid[3])
    assert s["model"]["name"] == "lstm" and s["training"]["batch_size"] == 32
    results = [train_cell(q, c) for c in grid]
    assert [r["steps_per_epoch"] for r in results] == [1, 3, 1, 3]
    assert len({r["n_parameters"] for r in results}) == 2


def test_the_s2_study_builds_s2s_network():
    """S2's code: Linear(256, 256) + ReLU, Linear(256, 256) + ReLU, Linear(256, 97) for its
    "depth 3" (it counts Linear layers); model.depth counts hidden layers, so the study says 2."""
    from grokmap.settings import load_settings

    from ..conftest import ROOT, SCHEMAS

    params = load_settings(ROOT / "studies" / "s2_fraction_scan.yaml", ROOT / "config.yaml", SCHEMAS).params
    width = params["sweep"]["width"][0]
    model = build(params, width=width)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 256), (256, 256), (256, 97)]


def test_lr_decay_factor_is_exponential_per_completed_epoch():
    from grokmap.training.schedule import lr_factor

    assert [lr_factor(s, 1, 0.5) for s in (1, 2, 3)] == [1.0, 0.5, 0.25]
    assert [lr_factor(s, 3, 0.5) for s in (1, 3, 4, 7)] == [1.0, 1.0, 0.5, 0.25]  # 3 steps per epoch
    assert lr_factor(10, 1, None) == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("path", ["fused", "generic"])
def test_lr_decay_on_the_s0_paths(default_params, float64, path):
    """Both S0 paths equal an explicit torch.optim.AdamW + ExponentialLR loop, and a decay
    of 1e-9 freezes the weights after the first step (later steps take ~zero-size steps)."""
    q = tiny(default_params, training__max_epochs=30, training__eval_every_epochs=10, training__lr_decay=0.9)
    run = _train_fused if path == "fused" else train_generic
    if path == "fused":
        assert uses_fused_path(q)
    got = run(q, CELL)
    tr = q["training"]
    (x, y), (tx, ty) = split("modular_addition", 11, CELL.train_fraction, CELL.seed)
    model = build(q, width=CELL.width, seed=CELL.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=tr["learning_rate"], betas=tuple(tr["betas"]), eps=tr["eps"],
                            weight_decay=CELL.weight_decay, foreach=False)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    losses = []
    for epoch in range(1, 31):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
        if epoch % 10 == 0:
            with torch.no_grad():
                losses.append(float(torch.nn.functional.cross_entropy(model(x), y)))
    assert got["curves"]["train_loss"] == pytest.approx(losses, rel=1e-6)
    frozen = run(tiny(default_params, training__max_epochs=30, training__eval_every_epochs=10,
                      training__lr_decay=1e-9), CELL)["curves"]["param_norm"]
    assert frozen[0] == pytest.approx(frozen[-1], rel=1e-6)
    moving = run(tiny(default_params, training__max_epochs=30, training__eval_every_epochs=10), CELL)
    assert moving["curves"]["param_norm"][0] != pytest.approx(moving["curves"]["param_norm"][-1], rel=1e-6)


def test_s4_exact_solution_is_one_cosine_per_neuron_and_adds_mod_p():
    """grokmap.analysis.fourier: S4's analytic weights. Each first-layer neuron is one cosine,
    so its IPR_2 is exactly 1/2; through the model's own forward pass (QuadraticMLP) it adds
    mod p once the width averages out the other terms, and not at a tiny width."""
    import torch

    from grokmap.analysis.fourier import exact_solution, solution_accuracy
    from grokmap.training.models import QuadraticMLP, ipr

    p = 31
    w1, w2 = exact_solution(p, 300, seed=0)
    model = QuadraticMLP(p, 300, 2).double()
    with torch.no_grad():
        model.w1.copy_(w1)
        model.w2.copy_(w2)
    assert abs(ipr(model.operand_maps()) - 0.5) < 1e-12
    x = torch.cartesian_prod(torch.arange(p), torch.arange(p))
    logits, _ = model.features(x)
    model_acc = float((logits.argmax(1) == x.sum(1) % p).double().mean())
    assert model_acc == solution_accuracy(w1, w2, p) == 1.0
    assert solution_accuracy(*exact_solution(p, 4, seed=0), p) < 0.5
    assert exact_solution(p, 8, seed=1)[0].equal(exact_solution(p, 8, seed=1)[0])


def test_s4_figure3_phases_of_the_analytic_solution_and_of_noise():
    """fourier.neuron_phases: the analytic solution has phi1 + phi2 - phi3 = 0 at every neuron
    (mean resultant 1, every neuron a pure cosine); random weights have no phase relation."""
    import torch

    from grokmap.analysis.fourier import exact_solution, neuron_phases

    p = 31
    w1, w2 = exact_solution(p, 200, seed=3)
    r = neuron_phases(w1, w2, p)
    assert r["resultant"] > 1 - 1e-12 and float(r["delta"].abs().max()) < 1e-9
    assert float(r["power_share"].min()) > 1 - 1e-9
    # a neuron at frequency sigma > p/2 is the same cosine at p - sigma with its phases negated
    assert bool((r["sigma"] <= (p - 1) // 2).all())
    g = torch.Generator().manual_seed(0)
    noise = neuron_phases(torch.randn(200, 2 * p, generator=g, dtype=torch.float64),
                          torch.randn(p, 200, generator=g, dtype=torch.float64), p)
    assert noise["resultant"] < 0.25 and float(noise["power_share"].median()) < 0.3
