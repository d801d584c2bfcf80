"""Rules across keys of params.yaml (with config.yaml's limits): what the schema alone cannot
say. The model kinds' own rules are their records' (:mod:`grokmap.training.kinds`); what a cell
needs against the machine is :mod:`.limits`; the results directory is :mod:`.results_dir`.
"""
from __future__ import annotations

import itertools
from typing import Mapping

from ..lattice import RefineError, lattice, refine_axes
from ..training.grid import WORD, extra_axes, spell, with_values
from ..training.kinds import check_pairing, kind
from ..training.tasks import TASKS, is_prime, task_size
from .documents import SettingsError, coerce, validate_document
from .limits import check_limits, sweep_cells

__all__ = ["check_extra_axes", "check_semantics", "check_task_and_model"]


_MAX_EXAMPLES = 10_000_000  # a K-ary task's p**K tuples must fit in memory with room to spare


def check_task_and_model(params: dict, sweep: dict, label: str) -> None:
    """Cross-key rules of one resolved set of task/model/training settings: the training rules,
    the task's, and the model kind's own (:mod:`grokmap.training.kinds`)."""
    tr, tk, md = params["training"], params["task"], params["model"]
    p, name, k = tk["modulus"], tk["name"], tk["operands"]

    def refuse(key, value, allowed):
        raise SettingsError(f"{label}: '{key}' = {value!r} is not allowed; allowed: {allowed}")

    if tr["early_stop_rule"] == "each_reached" and tr["early_stop_evals"] != 1:
        refuse("training.early_stop_evals", tr["early_stop_evals"],
               "1 with training.early_stop_rule 'each_reached' (each split needs to reach it once)")
    if tr["eval_every_epochs"] > tr["max_epochs"]:
        refuse("training.eval_every_epochs", tr["eval_every_epochs"],
               f"at most training.max_epochs ({tr['max_epochs']})")
    check_pairing(params, refuse)
    kind(md["name"]).check(params, sweep, refuse)
    if name in TASKS and TASKS[name].prime_modulus and not is_prime(p):
        refuse("task.modulus", p, f"a prime with task '{name}' (every nonzero b needs an inverse mod p)")
    n = task_size(p, name, k)
    if n > _MAX_EXAMPLES:
        refuse("task.operands", k, f"a task of at most {_MAX_EXAMPLES:,} examples "
               f"({name} with p={p} and K={k} has {n:,})")
    if tr["optimizer"] == "gd" and tr["batch_size"] != "full":
        refuse("training.batch_size", tr["batch_size"], "'full' with optimizer 'gd' "
               "(plain gradient descent; use sgd for minibatches)")
    for frac in sweep["train_fraction"]:
        n_train = int(n * frac)
        if n_train < 1 or n_train > n - 1:
            raise SettingsError(
                f"{label}: 'sweep.train_fraction' value {frac} leaves {n_train} train and "
                f"{n - n_train} test examples of {n} for {name} with p={p}; allowed: a fraction "
                f"giving at least one of each, between {1 / n:.6g} and {(n - 1) / n:.6g}")


def check_extra_axes(params: dict, schema: Mapping, label: str) -> dict:
    """Validate and coerce the sweep's extra axes (``section.key: [values]``): each must
    name a scalar setting, and each value must be allowed for that setting."""
    sweep = params["sweep"]
    for section in ("task", "model", "training"):  # nested spelling -> dotted keys
        for name, values in (sweep.pop(section, None) or {}).items():
            key = f"{section}.{name}"
            if key in sweep:
                raise SettingsError(f"{label}: sweep axis '{key}' is given twice (as 'sweep.{key}' and "
                                    f"nested under 'sweep.{section}'); allowed: one of the two")
            sweep[key] = values
    sections = schema["properties"]
    for key in extra_axes(sweep):
        section, name = key.split(".", 1)
        prop = sections[section]["properties"].get(name)
        if prop is None or prop.get("type") == "array":
            scalars = sorted(f"{sec}.{k}" for sec in ("task", "model", "training")
                             for k, v in sections[sec]["properties"].items() if v.get("type") != "array")
            raise SettingsError(f"{label}: sweep axis 'sweep.{key}' is not allowed; allowed: a scalar "
                                f"setting of task, model or training: {', '.join(scalars)}")
        values = [coerce(v, prop) for v in sweep[key]]
        for value in values:
            validate_document(with_values(params, [(key, value)]), schema, f"{label} (value {value!r} of sweep axis 'sweep.{key}')")
            if isinstance(value, str) and not WORD.match(value):
                raise SettingsError(f"{label}: 'sweep.{key}' value {value!r} cannot name a directory; "
                                    f"allowed: letters, digits and _ . + -")
        spelled = [spell(v) for v in values]
        if len(set(spelled)) != len(spelled):
            raise SettingsError(f"{label}: 'sweep.{key}' has repeated values {values}; allowed: a list "
                                f"without repeated values (0.1, 1e-1 and 0.10 are the same value)")
        sweep[key] = values
    return params


def _check_layout(params: dict, label: str) -> None:
    """phases.diagram_columns and phases.majority_over must name sweep axes that fit together."""
    ph, extras = params["phases"], extra_axes(params["sweep"])
    axes = ["train_fraction", "width", "seed"] + extras
    if ph["diagram_columns"] not in axes:
        raise SettingsError(f"{label}: 'phases.diagram_columns' = {ph['diagram_columns']!r} is not allowed; "
                            f"allowed: one of the sweep axes {', '.join(axes)}")
    for name in ph["majority_over"]:
        if name not in axes or name == ph["diagram_columns"]:
            raise SettingsError(f"{label}: 'phases.majority_over' entry {name!r} is not allowed; allowed: "
                                f"sweep axes other than weight_decay and the diagram columns "
                                f"({', '.join(a for a in axes if a != ph['diagram_columns'])})")


def _check_extension(resolved: dict, sweep: dict, n_cells: int, run: dict, label: str, r_label: str) -> None:
    """``extend:`` for one combination of the extra axes: a continued cell must train on as one
    longer run would (one cell at a time, its budget in whole evaluation intervals, no step cap),
    the longest budget must pass the per-cell limits, and the most extension can train (every
    cell continued every round) is bounded like the grid (config.yaml max_sweep_cells)."""
    ext = resolved["extend"]
    if not ext["rounds"]:
        return
    tr, md = resolved["training"], resolved["model"]
    why = None
    if kind(md["name"]).stacked:
        why = f"model {md['name']} trains its cells stacked, and a stacked cell keeps no state to continue from"
    elif tr["max_steps"] is not None:
        why = f"training.max_steps = {tr['max_steps']} caps the budget in steps, so a longer budget is not a multiple of it"
    elif tr["max_epochs"] % tr["eval_every_epochs"]:
        why = (f"training.max_epochs = {tr['max_epochs']} is not a multiple of eval_every_epochs = "
               f"{tr['eval_every_epochs']}, so a longer run would not be evaluated where this one ended")
    if why:
        raise SettingsError(f"{label}: 'extend.rounds' = {ext['rounds']}: {why}; allowed: 0 here")
    longest = ext["factor"] ** ext["rounds"]
    check_limits({**resolved, "training": {**tr, "max_epochs": tr["max_epochs"] * longest}}, sweep, run,
                  f"{label} (the longest extended budget, {longest} x training.max_epochs)", r_label)
    worst = n_cells * (longest - 1)
    if worst > run["max_sweep_cells"]:
        raise SettingsError(f"{label}: 'extend.rounds' = {ext['rounds']} with factor {ext['factor']} can train up to "
                            f"{worst:,} more cell budgets ({n_cells:,} cells, each continued to {longest} x its "
                            f"budget); allowed: at most {run['max_sweep_cells']:,} (config.yaml max_sweep_cells; use "
                            f"fewer rounds or a smaller factor)")


def _refinement_lattice(params: dict, run: dict, label: str, schema: Mapping) -> dict:
    """The sweep with every refined axis at its finest lattice (``refine.rounds`` rounds): each
    value checked like a grid value (schema, distinct and increasing once rounded to
    ``refine.digits``), and the lattice's size (the most cells refinement can ever train, voters
    included) against ``max_sweep_cells``. Without refinement, the sweep itself."""
    try:
        axes = refine_axes(params)
    except RefineError as exc:
        raise SettingsError(f"{label}: {exc}") from None
    out = dict(params["sweep"])
    rounds = params["refine"]["rounds"]
    for axis in axes:
        values = lattice(axis, rounds)
        spelled = [spell(v) for v in values]
        if len(set(spelled)) != len(values) or any(b <= a for a, b in zip(values, values[1:])):
            bad = next((a, b) for a, b in zip(values, values[1:]) if b <= a or spell(a) == spell(b))
            raise SettingsError(f"{label}: 'refine.digits' = {params['refine']['digits']} rounds two lattice values "
                                f"of {axis.name} to {spell(bad[0])} and {spell(bad[1])} after {rounds} round(s); "
                                f"allowed: more digits, or fewer rounds")
        if "." in axis.name:  # an extra axis: each refined value must be one the setting allows
            section, name = axis.name.split(".", 1)
            for value in values:
                if value not in params["sweep"][axis.name]:
                    doc = with_values(params, [(axis.name, value)])
                    try:
                        validate_document(doc, schema, label)
                    except SettingsError:
                        raise SettingsError(f"{label}: 'refine.axes.{axis.name}' would train {axis.name} = "
                                            f"{value!r}, which the schema refuses; allowed: an axis whose every "
                                            f"refined value is a valid {name}") from None
        out[axis.name] = values
    if axes:
        worst = sweep_cells(out)
        if worst > run["max_sweep_cells"]:
            sizes = " x ".join(f"{len(v)} {k}" for k, v in out.items())
            raise SettingsError(f"{label}: 'refine.rounds' = {rounds} can train up to {worst:,} cells (the finest "
                                f"lattice: {sizes}); allowed: at most {run['max_sweep_cells']:,} (config.yaml "
                                f"max_sweep_cells; use fewer rounds or refined axes)")
    return out


def check_semantics(params: dict, run: dict, p_label: str, r_label: str, schema: Mapping) -> None:
    """Every rule across keys, for every combination of the extra axes and every value refinement
    can train, and the limits each combination needs."""
    sweep = params["sweep"]
    extras = extra_axes(sweep)
    n_cells = sweep_cells(sweep)
    if n_cells > run["max_sweep_cells"]:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in sweep.items())
        raise SettingsError(f"{p_label}: 'sweep' has {n_cells:,} cells ({sizes}); allowed: at most "
                            f"{run['max_sweep_cells']:,} (config.yaml max_sweep_cells; raise it for a cluster)")
    _check_layout(params, p_label)
    # With refinement, every value a round may train (the finest lattice) passes the checks a grid
    # value passes, now, before any work: a refined cell never trains what the grid would refuse.
    checked = _refinement_lattice(params, run, p_label, schema)
    refined = [k for k in checked if checked[k] != sweep[k]]
    models = {m for combo in itertools.product(*(checked[k] for k in extras))
              for m in [with_values(params, zip(extras, combo))["model"]["name"]]}
    stacked = sorted(m for m in models if kind(m).stacked)
    if stacked and len(models) > 1:
        raise SettingsError(f"{p_label}: 'sweep.model.name' mixes {stacked[0]} with {sorted(models - {stacked[0]})}; "
                            f"allowed: {stacked[0]} alone (its cells train stacked) or the other models")
    for combo in itertools.product(*(checked[k] for k in extras)):
        resolved = with_values(params, zip(extras, combo))
        where = p_label + (" (sweep " + ", ".join(f"{k}={v!r}" for k, v in zip(extras, combo)) + ")"
                           if extras else "") + (f" (with the values refinement can train on refine.axes "
                                                 f"{', '.join(refined)})" if refined else "")
        check_task_and_model(resolved, checked, where)
        check_limits(resolved, checked, run, where, r_label)
        _check_extension(resolved, checked, sweep_cells(checked), run, where, r_label)
