"""Load, coerce and validate params.yaml (what to compute) and config.yaml (how to run).

Every problem is reported as one :class:`SettingsError` whose message names the file,
the key, the bad value and what is allowed, before any work starts. Values are coerced
only where the schema asks for a number, so ``1e-1`` (a string to YAML 1.1),
``"0.10"`` from ``snakemake --config`` and ``0.1`` all become the same float.
"""
from __future__ import annotations

import copy
import itertools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from .training.grid import WORD, extra_axes, spell, with_values
from .training.tasks import S3_TASKS, TASKS, is_prime, task_size

__all__ = ["SettingsError", "Settings", "load_settings", "load_yaml", "validate_document", "RESULTS_MARKER",
           "check_results_dir", "mark_results_dir"]


class SettingsError(ValueError):
    """Invalid params.yaml / config.yaml content; the message is meant for the user."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads YAML 1.2 floats such as ``1e-3`` as numbers, not strings."""


_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))

# What a settings file may expand to once YAML aliases are followed (a few aliases nested in a
# small file can stand for billions of values; the largest study has a few hundred).
MAX_YAML_NODES = 100_000
MAX_SETTINGS_BYTES = 1_000_000


def _expanded_size(node: yaml.Node, memo: dict) -> int:
    """Nodes the document stands for with every alias expanded (memoised per node object, so
    shared nodes cost one visit; the result is capped just past the limit)."""
    key = id(node)
    if key not in memo:
        memo[key] = MAX_YAML_NODES + 1  # a cycle counts as too large
        if isinstance(node, yaml.MappingNode):
            size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(_expanded_size(v, memo) for v in node.value)
        else:
            size = 1
        memo[key] = min(size, MAX_YAML_NODES + 1)
    return memo[key]


def _refuse_duplicate_keys(node: yaml.Node, path: Path, seen: set) -> None:
    """A key given twice in one mapping (Snakemake's loader keeps the last, DVC refuses the file)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: dict = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value != "<<":
                if k.value in keys:
                    raise SettingsError(
                        f"{path}: key '{k.value}' is given twice in one mapping (lines {keys[k.value] + 1} and "
                        f"{k.start_mark.line + 1}); allowed: each key once")
                keys[k.value] = k.start_mark.line
            _refuse_duplicate_keys(v, path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            _refuse_duplicate_keys(v, path, seen)


def load_yaml(path: str | os.PathLike) -> Any:
    """Parse a YAML file, turning syntax errors into a SettingsError with the line. Refused
    before anything is built: non-UTF-8 or binary files, keys given twice, and documents
    whose aliases expand past MAX_YAML_NODES values."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise SettingsError(f"{path}: is a directory; allowed: a YAML file") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot be read ({exc.strerror}); allowed: a readable YAML file") from None
    if len(data) > MAX_SETTINGS_BYTES:
        raise SettingsError(f"{path}: {len(data):,} bytes; allowed: a settings file of at most "
                            f"{MAX_SETTINGS_BYTES:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); "
                            f"allowed: a UTF-8 YAML file") from None
    if "\x00" in text:
        raise SettingsError(f"{path}: contains NUL bytes (a binary file?); allowed: a UTF-8 YAML file")
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_YAML_NODES:
            raise SettingsError(f"{path}: its YAML aliases expand to more than {MAX_YAML_NODES:,} values; "
                                f"allowed: a settings file of at most {MAX_YAML_NODES:,} values once expanded")
        _refuse_duplicate_keys(node, path, set())
        return yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise SettingsError(f"{path}: nested too deeply; allowed: a settings file of ordinary depth") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SettingsError(f"{path}: YAML syntax error{where}: {problem}") from None


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _coerce(value: Any, schema: Mapping) -> Any:
    """Turn numeric strings into numbers where the schema wants a number (recursively)."""
    kind = schema.get("type")
    if "anyOf" in schema:
        for alternative in schema["anyOf"]:
            coerced = _coerce(value, alternative)
            if coerced is not value:
                return coerced
        return value
    if isinstance(value, dict) and "properties" in schema:
        return {k: _coerce(v, schema["properties"].get(k, {})) for k, v in value.items()}
    if isinstance(value, list) and "items" in schema:
        return [_coerce(v, schema["items"]) for v in value]
    if isinstance(value, str) and kind in ("number", "integer"):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return value
        if kind == "integer" and number.is_integer() and re.fullmatch(r"[-+]?\d+", text):
            return int(text)
        return number if kind == "number" else value
    if kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # 1 and 1.0 are one value, one cell, one path
    return value


def _alternative(schema: Mapping) -> str:
    if "const" in schema:
        return repr(schema["const"])
    if schema.get("type") == "null":
        return "null"
    bounds = [f"{op} {schema[name]}" for name, op in (("minimum", ">="), ("maximum", "<="))
              if name in schema]
    return f"a value of type {schema.get('type')}" + (" " + " and ".join(bounds) if bounds else "")


def _allowed(error: jsonschema.ValidationError) -> str:
    v, s = error.validator, error.validator_value
    schema = error.schema
    if v == "anyOf":
        return " or ".join(_alternative(alt) for alt in s)
    if v == "enum":
        return "one of " + ", ".join(repr(x) for x in s)
    if v == "type":
        return f"a value of type {s}"
    bounds = []
    for name, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                     ("exclusiveMaximum", "<")):
        if name in schema:
            bounds.append(f"{op} {schema[name]}")
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        return "a number " + " and ".join(bounds)
    if v == "minItems":
        return f"a list with at least {s} value(s)"
    if v == "maxItems":
        return f"a list with at most {s} value(s)"
    if v == "uniqueItems":
        return "a list without repeated values (0.1, 1e-1 and 0.10 are the same value)"
    if v == "minLength":
        return "a non-empty string"
    if v == "contains" and isinstance(s, dict) and "const" in s:
        return f"a list that includes {s['const']!r}"
    if v == "required":
        return "these keys: " + ", ".join(s)
    return f"{v}: {s}"


def _describe(error: jsonschema.ValidationError, label: str) -> str:
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        where = _key(error.absolute_path)
        scope = "top level" if where == "(top level)" else f"'{where}'"
        return (f"{label}: unknown key {', '.join(repr(e) for e in extra)} in {scope}; "
                f"allowed keys: {', '.join(known)}")
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        where = _key(list(error.absolute_path) + [missing[0]]) if missing else _key(error.absolute_path)
        return f"{label}: missing key '{where}'; required: {', '.join(error.validator_value)}"
    if error.validator == "uniqueItems":
        seen, dups = [], []
        for x in error.instance:
            (dups if x in seen else seen).append(x)
        return (f"{label}: '{_key(error.absolute_path)}' has repeated value(s) {dups}; "
                f"allowed: {_allowed(error)}")
    return (f"{label}: '{_key(error.absolute_path)}' = {error.instance!r} is not allowed; "
            f"allowed: {_allowed(error)}")


def _refuse_non_finite(value: Any, path: list, label: str) -> None:
    """NaN and infinities are no setting's value: NaN compares false with everything, so a NaN
    threshold or gap silently changes every phase."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingsError(f"{label}: '{_key(path)}' = {value!r} is not allowed; allowed: a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_non_finite(v, path + [k], label)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_non_finite(v, path + [i], label)


def validate_document(doc: Any, schema: Mapping, label: str) -> Any:
    """Coerce numbers, then validate; raise SettingsError naming the first problem."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise SettingsError(f"{label}: expected a mapping of keys at the top level, got {doc!r}")
    doc = _coerce(doc, schema)
    _refuse_non_finite(doc, [], label)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        # The shallowest error first: an unknown top-level key explains deeper noise.
        raise SettingsError(_describe(errors[0], label))
    return doc


def _merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class Settings:
    """Validated settings: ``params`` (what to compute) and ``run`` (how to run)."""

    params: dict
    run: dict


_MAX_EXAMPLES = 10_000_000  # a K-ary task's p**K tuples must fit in memory with room to spare


def _check_task_and_model(params: dict, sweep: dict, label: str) -> None:
    """Cross-key rules of one resolved set of task/model/training settings."""
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
    s3 = md["name"] == "s3_mlp"
    if s3 != (name in S3_TASKS):
        if s3:
            refuse("task.name", name, f"one of {', '.join(S3_TASKS)} with model 's3_mlp'")
        refuse("model.name", md["name"], f"'s3_mlp' with task '{name}' (S3's tasks train only s3_mlp)")
    if not s3:
        if md["activation"] not in ("relu", "gelu"):
            refuse("model.activation", md["activation"],
                   f"relu or gelu with model '{md['name']}' (tanh and leaky_relu: s3_mlp only)")
        for key in ("encoder_learning_rate", "encoder_weight_decay", "accuracy_every_steps"):
            if tr[key] is not None:
                refuse(f"training.{key}", tr[key], f"null with model '{md['name']}' (s3_mlp only)")
        if md["init_scale"] != 1:
            refuse("model.init_scale", md["init_scale"], f"1 with model '{md['name']}' (s3_mlp only)")
    else:
        if tr["optimizer"] != "adamw":
            refuse("training.optimizer", tr["optimizer"], "adamw with model 's3_mlp' (S3)")
        if tr["softmax_precision"] is not None:
            refuse("training.softmax_precision", tr["softmax_precision"],
                   "null with model 's3_mlp' (its stacked cells take the loss in their working precision)")
        if md["depth"] != 2:
            refuse("model.depth", md["depth"], "2 with model 's3_mlp' (S3's two hidden layers)")
        if k != 2:
            refuse("task.operands", k, f"2 with task '{name}'")
        if tr["embedding_noise"] or md["dropout"]:
            refuse("training.embedding_noise" if tr["embedding_noise"] else "model.dropout",
                   tr["embedding_noise"] or md["dropout"], "0 with model 's3_mlp'")
    if k > 2 and not s3 and not TASKS[name].k_ary:
        refuse("task.operands", k, f"2 with task '{name}' (only modular_addition has K-ary sums)")
    if not s3 and TASKS[name].prime_modulus and not is_prime(p):
        refuse("task.modulus", p, f"a prime with task '{name}' (every nonzero b needs an inverse mod p)")
    n = task_size(p, name, k)
    if n > _MAX_EXAMPLES:
        refuse("task.operands", k, f"a task of at most {_MAX_EXAMPLES:,} examples "
               f"({name} with p={p} and K={k} has {n:,})")
    if md["name"] == "quadratic_mlp" and md["depth"] != 1:
        refuse("model.depth", md["depth"], "1 with model 'quadratic_mlp' (S4's two-layer network)")
    if md["name"] == "transformer":
        for width in sweep["width"]:
            if width % md["heads"]:
                refuse("sweep.width", width, f"a multiple of model.heads ({md['heads']}) "
                       f"with model 'transformer'")
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


def _check_extra_axes(params: dict, schema: Mapping, label: str) -> dict:
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
        values = [_coerce(v, prop) for v in sweep[key]]
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


def _check_limits(resolved: dict, sweep: dict, run: dict, label: str, r_label: str) -> None:
    """What one combination of the extra axes needs per cell, against the limits (limits.py)."""
    from .limits import MAX_EVALUATIONS, MAX_STEPS, cell_budget, cell_memory_mb, machine_memory_mb

    tr, tk = resolved["training"], resolved["task"]
    n = task_size(tk["modulus"], tk["name"], tk["operands"])
    n_train = max(1, int(n * max(sweep["train_fraction"])))
    steps, evaluations = cell_budget(tr, n_train)
    if steps > MAX_STEPS:
        raise SettingsError(f"{label}: 'training.max_epochs' = {tr['max_epochs']} gives {steps:,} optimizer steps "
                            f"per cell; allowed: at most {MAX_STEPS:,} (set training.max_steps to cap them)")
    if evaluations > MAX_EVALUATIONS:
        raise SettingsError(f"{label}: 'training.eval_every_epochs' = {tr['eval_every_epochs']} with max_epochs "
                            f"{tr['max_epochs']} gives {evaluations:,} evaluations per cell; allowed: at most "
                            f"{MAX_EVALUATIONS:,} (evaluate less often)")
    limit = run["memory_limit_mb"]
    if limit == "auto":
        limit = machine_memory_mb()
        limit_text = f"this machine's {limit:,} MB (config.yaml memory_limit_mb: auto; set a number for a cluster)"
    else:
        limit_text = f"memory_limit_mb = {limit:,} MB (config.yaml)"
    width = max(sweep["width"])
    need = cell_memory_mb(resolved, width, max(sweep["train_fraction"]))
    if limit and need > limit:
        raise SettingsError(f"{label}: 'sweep.width' = {width} needs about {need:,.0f} MB per cell (model "
                            f"{resolved['model']['name']}, task {tk['name']} with p={tk['modulus']}); allowed: "
                            f"at most {limit_text}")


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
    if md["name"] == "s3_mlp":
        why = "model s3_mlp trains its cells stacked, and a stacked cell keeps no state to continue from"
    elif tr["max_steps"] is not None:
        why = f"training.max_steps = {tr['max_steps']} caps the budget in steps, so a longer budget is not a multiple of it"
    elif tr["max_epochs"] % tr["eval_every_epochs"]:
        why = (f"training.max_epochs = {tr['max_epochs']} is not a multiple of eval_every_epochs = "
               f"{tr['eval_every_epochs']}, so a longer run would not be evaluated where this one ended")
    if why:
        raise SettingsError(f"{label}: 'extend.rounds' = {ext['rounds']}: {why}; allowed: 0 here")
    longest = ext["factor"] ** ext["rounds"]
    _check_limits({**resolved, "training": {**tr, "max_epochs": tr["max_epochs"] * longest}}, sweep, run,
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
    from .analysis.refine import RefineError, lattice, refine_axes
    from .limits import sweep_cells

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


def _check_semantics(params: dict, run: dict, p_label: str, r_label: str, schema: Mapping) -> None:
    sweep = params["sweep"]
    extras = extra_axes(sweep)
    from .limits import sweep_cells

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
    if "s3_mlp" in models and len(models) > 1:
        raise SettingsError(f"{p_label}: 'sweep.model.name' mixes s3_mlp with {sorted(models - {'s3_mlp'})}; "
                            f"allowed: s3_mlp alone (its cells train stacked) or the other models")
    for combo in itertools.product(*(checked[k] for k in extras)):
        resolved = with_values(params, zip(extras, combo))
        where = p_label + (" (sweep " + ", ".join(f"{k}={v!r}" for k, v in zip(extras, combo)) + ")"
                           if extras else "") + (f" (with the values refinement can train on refine.axes "
                                                 f"{', '.join(refined)})" if refined else "")
        _check_task_and_model(resolved, checked, where)
        _check_limits(resolved, checked, run, where, r_label)
        _check_extension(resolved, checked, sweep_cells(checked), run, where, r_label)
    check_results_dir(run["results_dir"], r_label, _longest_cell_path(sweep))
    results = Path(run["results_dir"])
    probe = results
    while not probe.exists():
        probe = probe.parent if probe.parent != probe else probe
        if probe == probe.parent:
            break
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise SettingsError(
            f"{r_label}: 'results_dir' = {run['results_dir']!r} cannot be written "
            f"({probe} is not a writable directory); allowed: a writable directory path")


RESULTS_MARKER = ".grokmap-results"  # written into every results directory the workflow uses
# What the workflow writes at the top of a results directory: a directory holding only these
# (made before the marker existed) is taken as the workflow's too.
_RESULT_ENTRIES = {"cells", "refined", "extended", "logs", "figures", "phases.json", "phases.csv", "metrics.json", "validation.json",
                   "metadata.json", "report.md", "explorer.html", RESULTS_MARKER}
_TEMP_FILE = re.compile(r"^\..+\.tmp$")  # an atomic write's temporary file, left by a kill
_NAME_MAX, _PATH_MAX = 255, 4000  # bytes per path component; a whole path, with room to spare


def _longest_cell_path(sweep: dict) -> str:
    """The longest path below results_dir that a cell of this sweep writes."""
    from .training.grid import AXES, axis_name

    parts = [f"{axis_name(k)}={max((spell(v) for v in sweep[k]), key=len)}" for k in extra_axes(sweep)]
    parts += [f"{short}={max((spell(typ(v)) for v in sweep[name]), key=len)}" for name, short, typ in AXES]
    return "cells/" + "/".join(parts) + "/fingerprint-0123456789abcdef.json"


def check_results_dir(results_dir: str, label: str, longest_rel: str = "") -> None:
    """Refuse a results directory the workflow cannot own: braces (Snakemake reads them as
    wildcards), paths too long for the file system, and an existing directory with files the
    workflow did not write (e.g. '/', a home or system directory). A directory is the
    workflow's when it holds RESULTS_MARKER, or only names the workflow writes, or nothing."""
    def refuse(why: str, allowed: str):
        raise SettingsError(f"{label}: 'results_dir' = {results_dir!r} {why}; allowed: {allowed}")

    if not results_dir.strip():
        refuse("is empty", "a directory path")
    if "{" in results_dir or "}" in results_dir:
        refuse("contains '{' or '}' (Snakemake reads them as wildcards)", "a path without braces")
    full = os.path.join(results_dir, longest_rel)
    for part in Path(full).parts:
        if len(os.fsencode(part)) > _NAME_MAX:
            refuse(f"makes a path component of {len(os.fsencode(part))} bytes ({part[:40]}...)",
                   f"components of at most {_NAME_MAX} bytes")
    if len(os.fsencode(os.path.abspath(full))) > _PATH_MAX:
        refuse(f"makes cell paths of {len(os.fsencode(os.path.abspath(full)))} bytes",
               f"a shorter path (cell paths of at most {_PATH_MAX} bytes)")
    path = Path(os.path.abspath(results_dir))  # 'results/../..' is the directory two levels up
    if path.is_dir():
        try:
            foreign = _foreign_entries(path)
        except OSError as exc:
            refuse(f"cannot be listed ({exc.strerror})", "a readable directory")
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            refuse(f"already holds files the workflow did not write ({shown})",
                   f"a new or empty directory, or one the workflow made (it holds {RESULTS_MARKER})")


def _ours(entry: str) -> bool:
    return entry in _RESULT_ENTRIES or entry.startswith(".grokmap") or bool(_TEMP_FILE.match(entry))


def _is_results_tree(path: Path, depth: int) -> bool:
    """Whether a sub-directory holds only results directories (or is one)."""
    if (path / RESULTS_MARKER).exists():
        return True
    if depth <= 0 or path.is_symlink():
        return False
    try:
        return not _foreign_entries(path, depth)
    except OSError:
        return False


def _holds_cell_records(path: Path, budget: int = 5000) -> bool:
    """Whether ``cells/`` below ``path`` holds a finished cell (a fingerprint file), looking at
    no more than ``budget`` entries."""
    seen = 0
    for _, dirs, files in os.walk(path / "cells"):
        if any(f.startswith("fingerprint-") and f.endswith(".json") for f in files):
            return True
        seen += len(dirs) + len(files)
        if seen > budget:
            break
    return False


def _foreign_entries(path: Path, depth: int = 3) -> list[str]:
    """Entries of ``path`` the workflow did not write: none if it holds RESULTS_MARKER; else
    every name other than sub-directories that hold only results directories (e.g. results/
    holding the studies' results/<study>/), to ``depth`` levels, and the workflow's own names
    when its cell records are there too (a results directory restored by ``dvc checkout``,
    which does not track the marker). A report.md, metrics.json or figures/ with no cell records
    beside them are someone's own files, not the workflow's."""
    if (path / RESULTS_MARKER).exists():
        return []
    entries = sorted(os.listdir(path))
    subtree = {e for e in entries if (path / e).is_dir() and _is_results_tree(path / e, depth - 1)}
    ours = {e for e in entries if _ours(e)} if _holds_cell_records(path) else \
        {e for e in entries if e.startswith(".grokmap") or _TEMP_FILE.match(e)}
    return [e for e in entries if e not in subtree and e not in ours]


def mark_results_dir(results_dir: str | os.PathLike) -> None:
    """Make the directory and mark it as the workflow's (called when a real run starts)."""
    path = Path(results_dir)
    path.mkdir(parents=True, exist_ok=True)
    marker = path / RESULTS_MARKER
    if not marker.exists():
        marker.write_text("This directory is written by the grokmap workflow (README.md of the grokmap project, 'How it works').\n")


def load_settings(params_path: str | os.PathLike | None, config_path: str | os.PathLike,
                  schema_dir: str | os.PathLike, overrides: Mapping | None = None) -> Settings:
    """Read both files, apply overrides (e.g. ``snakemake --config``), validate everything.
    With ``params_path`` None, the parameter file is config.yaml's ``params_file`` (after
    overrides, so ``--config params_file=studies/<name>.yaml`` selects a study)."""
    schema_dir = Path(schema_dir)
    params_schema = load_yaml(schema_dir / "params.schema.yaml")
    config_schema = load_yaml(schema_dir / "config.schema.yaml")
    run = validate_document(load_yaml(config_path), config_schema, str(config_path))
    overrides = dict(overrides or {})
    p_keys, r_keys = set(params_schema["properties"]), set(config_schema["properties"])
    unknown = sorted(set(overrides) - p_keys - r_keys)
    if unknown:
        raise SettingsError(
            f"--config: unknown key {', '.join(repr(u) for u in unknown)}; allowed keys: "
            f"{', '.join(sorted(p_keys | r_keys))}")
    p_over = {k: v for k, v in overrides.items() if k in p_keys}
    r_over = {k: v for k, v in overrides.items() if k in r_keys}
    r_label = str(config_path)
    if r_over:
        r_label += " with --config overrides"
        run = validate_document(_merge(run, r_over), config_schema, r_label)
    if params_path is None:
        params_path = run["params_file"]
        if not Path(params_path).is_file():
            studies = sorted(str(p) for p in Path(config_path).parent.glob("studies/**/*.yaml"))
            raise SettingsError(f"{r_label}: 'params_file' = {params_path!r} is not a file; allowed: "
                                f"params.yaml or a study file ({', '.join(studies) or 'none found'})")
    params = validate_document(load_yaml(params_path), params_schema, str(params_path))
    p_label = str(params_path)
    if p_over:
        p_label += " with --config overrides"
        params = validate_document(_merge(params, p_over), params_schema, p_label)
    params = _check_extra_axes(params, params_schema, p_label)
    _check_semantics(params, run, p_label, r_label, params_schema)
    return Settings(params=params, run=run)
