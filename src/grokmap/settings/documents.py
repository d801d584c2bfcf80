"""Settings files as documents: YAML read safely, numbers coerced where the schema asks for
one, the JSON schema applied, overrides merged. Knows nothing of what the keys mean.

Every problem is one :class:`SettingsError` whose message names the file, the key, the bad
value and what is allowed. Values are coerced only where the schema asks for a number, so
``1e-1`` (a string to YAML 1.1), ``"0.10"`` from ``snakemake --config`` and ``0.1`` all become
the same float.
"""
from __future__ import annotations

import copy
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

__all__ = ["SettingsError", "load_yaml", "validate_document", "coerce", "merge", "key_text"]


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


def key_text(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def coerce(value: Any, schema: Mapping) -> Any:
    """Turn numeric strings into numbers where the schema wants a number (recursively)."""
    kind = schema.get("type")
    if "anyOf" in schema:
        for alternative in schema["anyOf"]:
            coerced = coerce(value, alternative)
            if coerced is not value:
                return coerced
        return value
    if isinstance(value, dict) and "properties" in schema:
        return {k: coerce(v, schema["properties"].get(k, {})) for k, v in value.items()}
    if isinstance(value, list) and "items" in schema:
        return [coerce(v, schema["items"]) for v in value]
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
        where = key_text(error.absolute_path)
        scope = "top level" if where == "(top level)" else f"'{where}'"
        return (f"{label}: unknown key {', '.join(repr(e) for e in extra)} in {scope}; "
                f"allowed keys: {', '.join(known)}")
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        where = key_text(list(error.absolute_path) + [missing[0]]) if missing else key_text(error.absolute_path)
        return f"{label}: missing key '{where}'; required: {', '.join(error.validator_value)}"
    if error.validator == "uniqueItems":
        seen, dups = [], []
        for x in error.instance:
            (dups if x in seen else seen).append(x)
        return (f"{label}: '{key_text(error.absolute_path)}' has repeated value(s) {dups}; "
                f"allowed: {_allowed(error)}")
    return (f"{label}: '{key_text(error.absolute_path)}' = {error.instance!r} is not allowed; "
            f"allowed: {_allowed(error)}")


def _refuse_non_finite(value: Any, path: list, label: str) -> None:
    """NaN and infinities are no setting's value: NaN compares false with everything, so a NaN
    threshold or gap silently changes every phase."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingsError(f"{label}: '{key_text(path)}' = {value!r} is not allowed; allowed: a finite number")
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
    doc = coerce(doc, schema)
    _refuse_non_finite(doc, [], label)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        # The shallowest error first: an unknown top-level key explains deeper noise.
        raise SettingsError(_describe(errors[0], label))
    return doc


def merge(base: dict, override: Mapping) -> dict:
    """``base`` with ``override``'s keys put in place, mappings merged key by key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
