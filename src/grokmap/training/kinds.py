"""One record per model kind (``params.yaml`` ``model.name``): everything the rest of the
package needs to know about a model, in one place, and no torch here (the settings check and
the workflow's planning read these records at parse time).

A :class:`ModelKind` holds

* ``build``: the network of a :class:`grokmap.training.spec.CellSpec` (imports torch when called;
  :func:`grokmap.training.models.build_model` seeds and casts it);
* ``check``: the kind's own settings rules, called by the settings check with the resolved
  settings, the sweep and a ``refuse(key, value, allowed)`` that raises;
* ``multiply_adds``: multiply-adds of one forward pass for one example (weights only, good to a
  factor ~2), from which memory estimates, cluster wall-time limits and the run's efficiency are
  computed;
* ``engine``: which engine trains a cell of this kind (:mod:`grokmap.training.engines`);
* ``tasks``: the tasks it trains (S3's tasks train only ``s3_mlp``, which trains only those).

Adding a model kind: its network (an ``nn.Module`` mapping operands to ``(logits, hidden)``, see
:mod:`grokmap.training.models`), its record below in :data:`KINDS`, and its name in
``workflow/schemas/params.schema.yaml``'s ``model.name`` (a test checks the two lists agree).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .tasks import S3_TASKS, TASKS

__all__ = ["ModelKind", "KINDS", "kind", "engine_name", "multiply_adds", "check_pairing"]

Refuse = Callable[[str, object, str], None]


@dataclass(frozen=True)
class ModelKind:
    name: str
    build: Callable  # (spec) -> nn.Module, unseeded, in torch's default dtype
    check: Callable  # (resolved params, sweep, refuse) -> None
    multiply_adds: Callable  # (model dict, task dict, width) -> int
    engine: Callable = lambda spec: "generic"  # (spec) -> engine name
    tasks: tuple = tuple(TASKS)
    stacked: bool = False  # its cells train stacked, so a sweep may not mix it with other kinds


def kind(name: str) -> ModelKind:
    """The record of a model kind; a clear error for an unknown name."""
    if name not in KINDS:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(map(repr, KINDS))}")
    return KINDS[name]


def engine_name(spec) -> str:
    """The engine that trains a cell (its model kind decides)."""
    return kind(spec.model.name).engine(spec)


def check_pairing(params: dict, refuse: Refuse) -> None:
    """The task must be one the model kind trains: a kind made for some tasks only (s3_mlp) is
    refused other tasks; a task only some kinds train is refused other kinds."""
    md, name = params["model"]["name"], params["task"]["name"]
    if name in kind(md).tasks:
        return
    if set(kind(md).tasks) != set(TASKS):  # a kind made for other tasks than the modular ones
        refuse("task.name", name, f"one of {', '.join(kind(md).tasks)} with model '{md}'")
    trainers = [k.name for k in KINDS.values() if name in k.tasks]
    refuse("model.name", md, f"{' or '.join(repr(t) for t in trainers)} with task '{name}' "
           f"(task {name} trains only {', '.join(trainers)})")


def multiply_adds(model: dict, task: dict, width: int) -> int:
    """Multiply-adds of one forward pass for one example of a cell (its kind's estimate)."""
    return kind(model["name"]).multiply_adds(model, task, width)


# --- the settings rules every kind but s3_mlp shares ---------------------------------------------------

def _modular_rules(params: dict, sweep: dict, refuse: Refuse) -> None:
    tr, md, name = params["training"], params["model"], params["task"]["name"]
    if md["activation"] not in ("relu", "gelu"):
        refuse("model.activation", md["activation"],
               f"relu or gelu with model '{md['name']}' (tanh and leaky_relu: s3_mlp only)")
    for key in ("encoder_learning_rate", "encoder_weight_decay", "accuracy_every_steps"):
        if tr[key] is not None:
            refuse(f"training.{key}", tr[key], f"null with model '{md['name']}' (s3_mlp only)")
    if md["init_scale"] != 1:
        refuse("model.init_scale", md["init_scale"], f"1 with model '{md['name']}' (s3_mlp only)")
    k = params["task"]["operands"]
    if k > 2 and not TASKS[name].k_ary:
        refuse("task.operands", k, f"2 with task '{name}' (only modular_addition has K-ary sums)")


# --- embed_concat_mlp (S0, S1, S2) ---------------------------------------------------------------------

def _build_embed_concat(spec):
    from .models import EmbedConcatMLP

    m = spec.model
    return EmbedConcatMLP(spec.task.modulus, m.embedding_dim, spec.cell.width, m.depth, m.activation,
                          spec.task.operands)


def _embed_concat_engine(spec) -> str:
    """S0's one-hidden-layer ReLU network with AdamW on full batches: the fused engine (its
    forward and backward written out by hand), except where the fused step has no path:
    StableMax or a separate loss precision in the compiled bfloat16 graph."""
    md, tr = spec.model, spec.training
    plain_loss = tr.loss == "cross_entropy" and tr.softmax_precision is None
    fused = (md.depth == 1 and md.activation == "relu" and md.dropout == 0 and spec.task.operands == 2
             and tr.optimizer == "adamw" and tr.full_batch and tr.embedding_noise == 0
             and (plain_loss or (tr.loss in ("cross_entropy", "stablemax_cross_entropy")
                                 and tr.precision != "bfloat16")))
    return "fused" if fused else "generic"


def _embed_concat_macs(model: dict, task: dict, width: int) -> int:
    k, p = task["operands"], task["modulus"]
    return k * model["embedding_dim"] * width + (model["depth"] - 1) * width * width + width * p


# --- transformer (S1) ----------------------------------------------------------------------------------

def _build_transformer(spec):
    from .models import Transformer

    m = spec.model
    return Transformer(spec.task.modulus, spec.cell.width, m.depth, m.heads, m.activation, spec.task.operands)


def _transformer_rules(params: dict, sweep: dict, refuse: Refuse) -> None:
    _modular_rules(params, sweep, refuse)
    heads = params["model"]["heads"]
    for width in sweep["width"]:
        if width % heads:
            refuse("sweep.width", width, f"a multiple of model.heads ({heads}) with model 'transformer'")


def _transformer_macs(model: dict, task: dict, width: int) -> int:
    # per token: qkv, projection, 4x feed-forward; the read-out once
    return task["operands"] * model["depth"] * 12 * width * width + width * task["modulus"]


# --- lstm (S1) -----------------------------------------------------------------------------------------

def _build_lstm(spec):
    from .models import LSTMNet

    return LSTMNet(spec.task.modulus, spec.model.embedding_dim, spec.cell.width, spec.model.depth)


def _lstm_macs(model: dict, task: dict, width: int) -> int:
    d, depth = model["embedding_dim"], model["depth"]
    return task["operands"] * 4 * width * ((d + width) + (depth - 1) * 2 * width) + width * task["modulus"]


# --- quadratic_mlp (S4) --------------------------------------------------------------------------------

def _build_quadratic(spec):
    from .models import QuadraticMLP

    return QuadraticMLP(spec.task.modulus, spec.cell.width, spec.task.operands)


def _quadratic_rules(params: dict, sweep: dict, refuse: Refuse) -> None:
    _modular_rules(params, sweep, refuse)
    if params["model"]["depth"] != 1:
        refuse("model.depth", params["model"]["depth"], "1 with model 'quadratic_mlp' (S4's two-layer network)")


def _quadratic_macs(model: dict, task: dict, width: int) -> int:
    return task["operands"] * width + width * task["modulus"]  # the first layer is a gather of K columns


# --- s3_mlp (S3) ---------------------------------------------------------------------------------------

def _build_s3(spec):
    from .models import EncoderDecoderMLP

    m, tk = spec.model, spec.task
    return EncoderDecoderMLP(tk.name == "toy_addition", spec.cell.width, spec.out_dim, m.activation,
                             m.init_scale, tk.modulus)


def _s3_rules(params: dict, sweep: dict, refuse: Refuse) -> None:
    tr, md, tk = params["training"], params["model"], params["task"]
    if tr["optimizer"] != "adamw":
        refuse("training.optimizer", tr["optimizer"], "adamw with model 's3_mlp' (S3)")
    if tr["softmax_precision"] is not None:
        refuse("training.softmax_precision", tr["softmax_precision"],
               "null with model 's3_mlp' (its stacked cells take the loss in their working precision)")
    if md["depth"] != 2:
        refuse("model.depth", md["depth"], "2 with model 's3_mlp' (S3's two hidden layers)")
    if tk["operands"] != 2:
        refuse("task.operands", tk["operands"], f"2 with task '{tk['name']}'")
    if tr["embedding_noise"] or md["dropout"]:
        refuse("training.embedding_noise" if tr["embedding_noise"] else "model.dropout",
               tr["embedding_noise"] or md["dropout"], "0 with model 's3_mlp'")


def _s3_macs(model: dict, task: dict, width: int) -> int:
    # toy_addition: a 1-d input and 2p - 1 classes; digits: 64 pixels and 10 classes
    digits = task["name"] == "digits"
    return (64 if digits else 1) * width + width * width + width * (10 if digits else 2 * task["modulus"] - 1)


KINDS: dict[str, ModelKind] = {k.name: k for k in (
    ModelKind("embed_concat_mlp", _build_embed_concat, _modular_rules, _embed_concat_macs, _embed_concat_engine),
    ModelKind("transformer", _build_transformer, _transformer_rules, _transformer_macs),
    ModelKind("lstm", _build_lstm, _modular_rules, _lstm_macs),
    ModelKind("quadratic_mlp", _build_quadratic, _quadratic_rules, _quadratic_macs),
    ModelKind("s3_mlp", _build_s3, _s3_rules, _s3_macs, lambda spec: "stacked", S3_TASKS, stacked=True),
)}
