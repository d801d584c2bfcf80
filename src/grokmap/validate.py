"""The results validator (S0's, stronger): the last rule of the DAG.

It re-derives everything it can from the per-cell records and fails the workflow when the
aggregated outputs disagree with them: full grid coverage, no duplicates, phases and gaps
re-derived from the curves, counts, summary metrics and metadata.
"""
from __future__ import annotations

from collections import Counter

from .aggregate import classify_sweep, summary_metrics
from .grid import Cell, cell_from_row

__all__ = ["validate_outputs"]


def validate_outputs(grid: list[Cell], records: dict, phases: dict, metrics: dict,
                     metadata: dict, params: dict) -> list[dict]:
    """Run every check; return [{check, ok, detail}]. ``records`` are already format-checked."""
    checks = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    sweep = params["sweep"]
    listed = [cell_from_row(row, sweep) for row in phases["cells"]]
    dups = [c for c, k in Counter(listed).items() if k > 1]
    check("no duplicate cells", not dups, f"duplicates: {[c.relpath for c in dups]}" if dups else "")
    missing, extra = set(grid) - set(listed), set(listed) - set(grid)
    check("full grid coverage", not missing and not extra,
          f"missing {sorted(c.relpath for c in missing)}; not in grid {sorted(c.relpath for c in extra)}"
          if missing or extra else f"{len(grid)} cells")
    check("cell count", phases["n_cells"] == len(grid) == metadata["n_cells"],
          f"phases {phases['n_cells']}, grid {len(grid)}, metadata {metadata['n_cells']}")
    again = classify_sweep(records, params["phases"], params["sweep"])
    derived = ("phase", "gap_epochs", "grokking_step")
    mine = {cell_from_row(r, sweep): tuple(r[k] for k in derived) for r in again["cells"]}
    theirs = {cell_from_row(r, sweep): tuple(r.get(k) for k in derived) for r in phases["cells"]}
    wrong = [c.relpath for c in mine if theirs.get(c) != mine[c]]
    check("phases, gaps and grokking steps re-derived from metrics agree", not wrong,
          f"disagree at {wrong[:5]}")
    recount = dict(Counter(r["phase"] for r in phases["cells"]))
    check("phase counts agree", all(phases["counts"][p] == recount.get(p, 0) for p in phases["counts"])
          and again["counts"] == phases["counts"], f"{phases['counts']} vs {recount}")
    check("group majorities agree", again["groups"] == phases["groups"])
    check("settings recorded", phases["settings"] == {"phases": params["phases"], "sweep": params["sweep"]}
          and metadata["params"] == params)
    check("summary metrics agree", summary_metrics(again) == metrics)
    check("metadata counts agree", metadata["counts"] == phases["counts"])
    return checks
