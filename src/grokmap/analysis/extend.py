"""Extension rounds along the budget (params.yaml ``extend:``, docs/extension.md; no torch).

A cell is *undecided at budget* when the split that decides its non-generalising phase was
still rising when training stopped (:func:`grokmap.analysis.phases.budget_gain`). Round r
(1, 2, ...) continues every cell still undecided after round r - 1 from its saved final state
to ``factor ** r`` times its budget: the grid's and refinement's cells are round 0, and a
continued cell's record replaces the shorter one in every count, diagram and table (which
keep the label it had at the budget as ``phase_at_budget``).

Round r's list (``extended/round-<r>-<key>.json``) is named by the settings it is derived
from with ``extend.rounds`` set to r, so growing ``extend.rounds`` keeps every finished round;
a continued cell lives in ``extended/x<multiple>/cells/<path>/`` (its budget multiple in the
path), so another factor continues into other directories and never reuses a record of
another budget.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Mapping

from ..io import read_json
from ..training.grid import Cell
from .records import CellRecordError

__all__ = ["EXTENDED", "extend_rounds", "multiple", "extension_settings", "extension_key", "extension_file",
           "read_extension", "extended_cells", "undecided_cells"]

EXTENDED = "extended"  # <results>/extended: the rounds' lists and the continued cells


def extend_rounds(params: Mapping) -> int:
    return int(params["extend"]["rounds"])


def multiple(params: Mapping, r: int) -> int:
    """Round r's budget as a multiple of the cells' own: factor ** r (1 for round 0)."""
    return int(params["extend"]["factor"]) ** int(r)


def extension_settings(params: Mapping, r: int) -> str:
    """What round r's list is derived from besides the records: params.yaml with extend.rounds = r
    (so growing extend.rounds never re-derives a finished round), as JSON."""
    return json.dumps({**params, "extend": {**params["extend"], "rounds": int(r)}}, sort_keys=True)


def extension_key(params: Mapping, r: int) -> str:
    return hashlib.sha256(extension_settings(params, r).encode()).hexdigest()[:16]


def extension_file(results_dir: str | Path, r: int, params: Mapping) -> Path:
    """Round r's list of the cells it continues, named by the settings it is derived from."""
    return Path(results_dir) / EXTENDED / f"round-{r}-{extension_key(params, r)}.json"


def read_extension(path: str | Path, params: Mapping, r: int, known: Iterable[Cell]) -> list[Cell]:
    """The cells round r's list continues, checked before any of them trains or is counted: the
    file is round r's list under these settings, and every cell it names is a cell of the sweep
    (grid or refinement), so a hand-edited list can never make the workflow train another cell."""
    doc = read_json(path)
    if not isinstance(doc, dict) or doc.get("round") != r or doc.get("multiple") != multiple(params, r) or \
            (doc.get("derived_from") or {}).get("settings_key") != extension_key(params, r):
        raise CellRecordError(f"{path}: not extension round {r}'s list under these settings; delete it and rerun "
                              f"to derive it again")
    by_path = {c.relpath: c for c in known}
    listed = doc.get("cells")
    if not isinstance(listed, list):
        raise CellRecordError(f"{path}: 'cells' is not a list; delete the file and rerun to derive it again")
    out = []
    for rel in listed:
        if rel not in by_path:
            raise CellRecordError(f"{path}: lists {rel!r}, which is not a cell of this sweep; delete the file and "
                                  f"rerun to derive it again")
        out.append(by_path[rel])
    if len(set(out)) != len(out):
        raise CellRecordError(f"{path}: lists a cell twice; delete the file and rerun to derive it again")
    return out


def extended_cells(params: Mapping, results_dir: str | Path, known: Iterable[Cell],
                   upto: int | None = None) -> dict[Cell, int]:
    """Each continued cell -> the budget multiple of its longest record, over rounds 1..``upto``
    (default ``extend.rounds``) as their lists name them (never a glob). A cell a round lists
    must have been in the round before (a later round only continues what an earlier one did)."""
    known = list(known)
    out: dict[Cell, int] = {}
    for r in range(1, (extend_rounds(params) if upto is None else upto) + 1):
        path = extension_file(results_dir, r, params)
        try:
            listed = read_extension(path, params, r, known)
        except FileNotFoundError:
            raise CellRecordError(f"{path}: missing; run the workflow to derive extension round {r}") from None
        stray = [c.relpath for c in listed if r > 1 and out.get(c) != multiple(params, r - 1)]
        if stray:
            raise CellRecordError(f"{path}: continues {stray[0]}, which round {r - 1} did not; delete the file and "
                                  f"rerun to derive it again")
        for cell in listed:
            out[cell] = multiple(params, r)
    return out


def undecided_cells(phases: Mapping) -> list[str]:
    """The cells an extension round continues: undecided at their budget (a phases.json)."""
    return [row_path(row, phases["settings"]["sweep"]) for row in phases["cells"] if row["undecided"]]


def row_path(row: Mapping, sweep: Mapping) -> str:
    from .axes import cell_from_row

    return cell_from_row(row, sweep).relpath
