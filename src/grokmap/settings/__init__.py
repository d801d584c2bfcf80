"""Load, coerce and validate params.yaml (what to compute) and config.yaml (how to run).

The bottom of the house above :mod:`grokmap.training`: nothing here imports from
:mod:`grokmap.analysis` or :mod:`grokmap.jobs`. Four concerns, four modules, composed by
:func:`load_settings`:

* :mod:`.documents`: YAML read safely, numbers coerced, the JSON schema applied;
* :mod:`.rules`: rules across keys (the model kinds' own rules are in :mod:`grokmap.training.kinds`);
* :mod:`.limits`: what a cell needs (steps, evaluations, memory) against the limits;
* :mod:`.results_dir`: a results directory the workflow may own and write.

Every problem is reported as one :class:`SettingsError` whose message names the file, the key,
the bad value and what is allowed, before any work starts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .documents import SettingsError, load_yaml, merge, validate_document
from .results_dir import RESULTS_MARKER, check_results_dir, check_writable, longest_cell_path, mark_results_dir
from .rules import check_extra_axes, check_semantics

__all__ = ["SettingsError", "Settings", "load_settings", "load_yaml", "validate_document", "RESULTS_MARKER",
           "check_results_dir", "mark_results_dir"]


@dataclass(frozen=True)
class Settings:
    """Validated settings: ``params`` (what to compute) and ``run`` (how to run)."""

    params: dict
    run: dict


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
        run = validate_document(merge(run, r_over), config_schema, r_label)
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
        params = validate_document(merge(params, p_over), params_schema, p_label)
    params = check_extra_axes(params, params_schema, p_label)
    check_semantics(params, run, p_label, r_label, params_schema)
    check_results_dir(run["results_dir"], r_label, longest_cell_path(params["sweep"]))
    check_writable(run["results_dir"], r_label)
    return Settings(params=params, run=run)
