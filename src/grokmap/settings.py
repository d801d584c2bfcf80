"""Load, coerce and validate params.yaml (what to compute) and config.yaml (how to run).

Every problem is reported as one :class:`SettingsError` whose message names the file,
the key, the bad value and what is allowed, before any work starts. Values are coerced
only where the schema asks for a number, so ``1e-1`` (a string to YAML 1.1),
``"0.10"`` from ``snakemake --config`` and ``0.1`` all become the same float.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from .tasks import TASKS, is_prime, task_size

__all__ = ["SettingsError", "Settings", "load_settings", "load_yaml", "validate_document"]


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


def load_yaml(path: str | os.PathLike) -> Any:
    """Parse a YAML file, turning syntax errors into a SettingsError with the line."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SettingsError(f"{path}: file not found") from None
    try:
        return yaml.load(text, Loader=_Loader)
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


def _allowed(error: jsonschema.ValidationError) -> str:
    v, s = error.validator, error.validator_value
    schema = error.schema
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


def validate_document(doc: Any, schema: Mapping, label: str) -> Any:
    """Coerce numbers, then validate; raise SettingsError naming the first problem."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise SettingsError(f"{label}: expected a mapping of keys at the top level, got {doc!r}")
    doc = _coerce(doc, schema)
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


def _check_semantics(params: dict, run: dict, p_label: str, r_label: str) -> None:
    tr, p = params["training"], params["task"]["modulus"]
    if tr["eval_every_epochs"] > tr["max_epochs"]:
        raise SettingsError(
            f"{p_label}: 'training.eval_every_epochs' = {tr['eval_every_epochs']} is not allowed; "
            f"allowed: at most training.max_epochs ({tr['max_epochs']})")
    task = params["task"]["name"]
    if TASKS[task].prime_modulus and not is_prime(p):
        raise SettingsError(
            f"{p_label}: 'task.modulus' = {p} is not allowed with task '{task}'; "
            f"allowed: a prime (every nonzero b needs an inverse mod p)")
    n = task_size(p, task)
    for frac in params["sweep"]["train_fraction"]:
        n_train = int(n * frac)
        if n_train < 1 or n_train > n - 1:
            raise SettingsError(
                f"{p_label}: 'sweep.train_fraction' value {frac} leaves {n_train} train and "
                f"{n - n_train} test examples of {n} pairs for {task} with p={p}; allowed: a fraction "
                f"giving at least one of each, between {1 / n:.6g} and {(n - 1) / n:.6g}")
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


def load_settings(params_path: str | os.PathLike, config_path: str | os.PathLike,
                  schema_dir: str | os.PathLike, overrides: Mapping | None = None) -> Settings:
    """Read both files, apply overrides (e.g. ``snakemake --config``), validate everything."""
    schema_dir = Path(schema_dir)
    params_schema = load_yaml(schema_dir / "params.schema.yaml")
    config_schema = load_yaml(schema_dir / "config.schema.yaml")
    params = load_yaml(params_path)
    run = load_yaml(config_path)
    params = validate_document(params, params_schema, str(params_path))
    run = validate_document(run, config_schema, str(config_path))
    overrides = dict(overrides or {})
    p_keys, r_keys = set(params_schema["properties"]), set(config_schema["properties"])
    unknown = sorted(set(overrides) - p_keys - r_keys)
    if unknown:
        raise SettingsError(
            f"--config: unknown key {', '.join(repr(u) for u in unknown)}; allowed keys: "
            f"{', '.join(sorted(p_keys | r_keys))}")
    p_over = {k: v for k, v in overrides.items() if k in p_keys}
    r_over = {k: v for k, v in overrides.items() if k in r_keys}
    p_label, r_label = str(params_path), str(config_path)
    if p_over:
        p_label += " with --config overrides"
        params = validate_document(_merge(params, p_over), params_schema, p_label)
    if r_over:
        r_label += " with --config overrides"
        run = validate_document(_merge(run, r_over), config_schema, r_label)
    _check_semantics(params, run, p_label, r_label)
    return Settings(params=params, run=run)
