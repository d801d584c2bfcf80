"""Aggregate a sweep: classify every cell, majority over seeds, counts, summary metrics."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..training.curves import first_epoch_at, first_logged_step
from .records import CellRecordError, check_record
from ..training.grid import AXES, Cell, axis_name, cell_from_wildcards, extra_axes, spell
from ..training.grid import cells as cells_of_grid
from .axes import group_axes, short_label, voters
from ..io import read_json
from .phases import PHASES, budget_gain, classify_record

__all__ = ["TIE", "REFINED", "cell_path", "aggregation_settings", "aggregation_stamp", "round_settings", "round_key", "round_file", "read_round", "sweep_cells", "load_records", "classify_sweep", "grokking_steps_csv",
           "summary_metrics", "phases_csv", "reproduction_csv"]

TIE = "tie"  # a seed group whose top phases have equal votes (its ``tied_phases`` say which)

CSV_FIELDS = ("weight_decay", "train_fraction", "width", "seed", "phase", "gap_epochs",
              "first_train_epoch", "first_test_epoch", "first_train_step", "first_test_step", "grokking_step", "final_train_acc",
              "final_test_acc", "initial_ipr", "final_ipr", "final_param_norm",
              "final_subnetwork_fraction", "final_softmax_collapse", "max_softmax_collapse", "epochs_run", "steps_run",
              "non_finite_loss", "undecided", "budget_gain", "kernel", "cpu_kind")


# with extension rounds (extend:), each cell's budget multiple and its label and flag at its own budget
EXTEND_FIELDS = ("budget_multiple", "phase_at_budget", "undecided_at_budget")

REFINED = "refined"  # <results>/refined: the refinement rounds' lists and their cells (analysis.refine)


def cell_path(results_dir: str | Path, cell: Cell, round_: int = 0, multiple: int = 1) -> Path:
    """A cell's record: ``cells/<path>`` for the grid's cells, ``refined/cells/<path>`` for the
    cells a refinement round added, ``extended/x<multiple>/cells/<path>`` for a cell an extension
    round continued to ``multiple`` times its budget (:mod:`.extend`)."""
    if multiple > 1:
        return Path(results_dir) / f"extended/x{int(multiple)}/cells" / cell.relpath / "metrics.json"
    root = Path(results_dir) / ("cells" if not round_ else f"{REFINED}/cells")
    return root / cell.relpath / "metrics.json"


def aggregation_settings(params: Mapping) -> dict:
    """What the aggregated outputs are built from besides the records: the phases and the sweep,
    and refine/extend when they have rounds (phases.json's ``settings``, the same mapping)."""
    return {"phases": params["phases"], "sweep": params["sweep"],
            **({"refine": params["refine"]} if params["refine"]["rounds"] else {}),
            **({"extend": params["extend"]} if params["extend"]["rounds"] else {})}


def aggregation_stamp(results_dir: str | Path, params: Mapping) -> Path:
    """The aggregation's settings stamp, named by the hash of :func:`aggregation_settings`: under
    other settings its file is missing, so aggregation reruns whatever the workflow engine
    remembers of earlier runs (results copied elsewhere, or restored without .snakemake/)."""
    digest = hashlib.sha256(json.dumps(aggregation_settings(params), sort_keys=True).encode()).hexdigest()[:16]
    return Path(results_dir) / f".grokmap-aggregation-{digest}.json"


def round_settings(params: Mapping, r: int) -> str:
    """What round ``r``'s list is derived from besides the records: params.yaml with
    refine.rounds = r (so growing refine.rounds never re-derives a finished round), as JSON."""
    return json.dumps({**params, "refine": {**params["refine"], "rounds": int(r)}}, sort_keys=True)


def round_key(params: Mapping, r: int) -> str:
    return hashlib.sha256(round_settings(params, r).encode()).hexdigest()[:16]


def round_file(results_dir: str | Path, r: int, params: Mapping) -> Path:
    """The list of the cells refinement round ``r`` (1, 2, ...) added, named by the settings it is
    derived from (:func:`round_key`): under other settings the name is another, so the round is
    derived again whatever the workflow engine remembers (or has forgotten) of earlier runs."""
    return Path(results_dir) / REFINED / f"round-{r}-{round_key(params, r)}.json"


def read_round(path: str | Path, params: Mapping, r: int) -> list[Cell]:
    """The cells a round list names, checked before any of them trains or is counted: the file is
    round ``r``'s list under these settings, and every cell lies on the refinement lattice (its
    refined axes) and in the sweep (its other axes), so a hand-edited list can never make the
    workflow train a cell the settings would refuse."""
    from .refine import lattice, refine_axes

    doc = read_json(path)
    if not isinstance(doc, dict) or doc.get("round") != r or \
            (doc.get("derived_from") or {}).get("settings_key") != round_key(params, r):
        raise CellRecordError(f"{path}: not refinement round {r}'s list under these settings; delete it and "
                              f"rerun to derive it again")
    sweep, rounds = params["sweep"], params["refine"]["rounds"]
    allowed = {axis_name(k): {spell(v) for v in vals} for k, vals in sweep.items()}
    for axis in refine_axes(params):
        allowed[axis_name(axis.name)] = {spell(v) for v in lattice(axis, rounds)}
    allowed.update({short: allowed.pop(name) for name, short, _ in AXES if name in allowed})
    out = []
    for rel in doc.get("cells", []):
        parts = dict(part.split("=", 1) for part in str(rel).split("/") if "=" in part)
        if set(parts) != set(allowed) or any(v not in allowed[k] for k, v in parts.items()):
            raise CellRecordError(f"{path}: lists {rel!r}, which is not a point of the refinement lattice of "
                                  f"these settings; delete the file and rerun to derive it again")
        out.append(cell_from_wildcards(parts))  # typed from the text: a refined extra axis holds values beyond the sweep
    return out


def sweep_cells(params: dict, results_dir: str | Path) -> dict[Cell, int]:
    """Every cell of the sweep -> the round that added it: the grid's (0), then those of
    refinement rounds 1..refine.rounds as their round files list them (never a glob: a cell
    that an earlier derivation needed and this one does not is not counted)."""
    out = {c: 0 for c in cells_of_grid(params["sweep"])}
    for r in range(1, params["refine"]["rounds"] + 1):
        path = round_file(results_dir, r, params)
        try:
            listed = read_round(path, params, r)
        except FileNotFoundError:
            raise CellRecordError(f"{path}: missing; run the workflow to derive refinement round {r}") from None
        for cell in listed:
            out.setdefault(cell, r)
    return out


def load_records(results_dir, cells: Iterable[Cell] | Mapping[Cell, int], settings: dict,
                 fingerprint: str | None = None, multiples: Mapping[Cell, int] | None = None) -> dict[Cell, dict]:
    """Read and check the record of every cell of the current grid (never a glob); ``cells``
    may map each cell to the refinement round that added it (:func:`sweep_cells`), and
    ``multiples`` each continued cell to the budget multiple of its longest record
    (:func:`grokmap.analysis.extend.extended_cells`), which is then the one read."""
    out = {}
    rounds = cells if isinstance(cells, Mapping) else {}
    multiples = multiples or {}
    for cell in cells:
        path = cell_path(results_dir, cell, rounds.get(cell, 0), multiples.get(cell, 1))
        try:
            record = read_json(path)
        except FileNotFoundError:
            raise CellRecordError(f"{path}: missing") from None
        except ValueError as exc:
            raise CellRecordError(f"{path}: not valid JSON ({exc})") from None
        check_record(record, cell, settings, fingerprint, str(path))
        if multiples.get(cell, 1) > 1 and (record.get("extended_from") or {}).get("multiple") != multiples[cell]:
            raise CellRecordError(f"{path}: not this cell continued to {multiples[cell]} times its budget; delete it "
                                  f"and rerun to continue the cell again")
        out[cell] = record
    return out


def _majority(phases: list[str]) -> tuple[str, float, list[str]]:
    """Majority phase, its share of the votes, and the phases tied for the most votes (in
    PHASES order; more than one only for a tie). A tie is reported as :data:`TIE`, never
    resolved in favour of one phase."""
    counts = Counter(phases)
    top = max(counts.values())
    tied = [ph for ph in PHASES if counts[ph] == top]
    return (tied[0] if len(tied) == 1 else TIE), top / len(phases), tied


def wilson_interval(k: int, n: int, z: float = 1.959964) -> list[float]:
    """The 95 % Wilson score interval of a share k / n (it stays inside [0, 1] and is honest
    for the few voters a group has: 1 of 1 gives [0.21, 1], not [1, 1])."""
    if n == 0:
        return [0.0, 1.0]
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def first_step_at(curves: dict, threshold: float):
    """First evaluated optimizer step with test accuracy >= threshold (S2's grokking step), or None."""
    return first_epoch_at(curves.get("step") or curves["epoch"], curves["test_acc"], threshold)


def _measure(curves: dict, name: str, at: int):
    values = curves.get(name) or [None]
    return values[at]


def _cell_phase(rec: dict, phase_params: dict) -> dict:
    """A record's phase, the epochs it rests on, and whether its budget decided it."""
    c = classify_record(rec, phase_params["accuracy_threshold"], phase_params["grokking_gap_epochs"],
                        phase_params["require_final_accuracy"])
    gain = budget_gain(rec, c["phase"], phase_params["undecided_window_share"])
    c["undecided"] = gain is not None and gain >= phase_params["undecided_min_gain"]
    c["budget_gain"] = gain
    return c


def classify_sweep(records: dict[Cell, dict], phase_params: dict, sweep: dict,
                   refine: dict | None = None, rounds: Mapping[Cell, int] | None = None,
                   extend: dict | None = None, at_budget: Mapping[Cell, dict] | None = None,
                   multiples: Mapping[Cell, int] | None = None) -> dict:
    """The content of phases.json: per cell, per seed group (every axis but the seed),
    counts, settings. Cells and groups keep the grid's order (``records``' order).

    With refinement (``refine`` = params.yaml's section with rounds > 0, ``rounds`` each
    cell's round), every cell row also names its round and phases.json gains ``refine``:
    cells per round, the finest lattice, the resolution reached and which trained point
    covers each lattice point (analysis.refine).

    With extension rounds (``extend`` = params.yaml's section with rounds > 0), ``records`` hold
    each continued cell's longest record, ``multiples`` its budget multiple and ``at_budget`` its
    record at the cells' own budget; every row then also names its ``budget_multiple`` and its
    ``phase_at_budget``, and phases.json gains ``extend``: cells per round and what changed."""
    rows = []
    multiples = multiples or {}
    for cell, rec in records.items():
        curves = rec["curves"]
        c = _cell_phase(rec, phase_params)
        if extend:
            first = _cell_phase(at_budget[cell], phase_params) if cell in multiples else c
            c.update(budget_multiple=multiples.get(cell, 1), phase_at_budget=first["phase"],
                     undecided_at_budget=first["undecided"])
        log = rec.get("accuracy_log")
        rows.append({**cell.as_dict(), **({"round": rounds[cell]} if refine else {}), **c,
                     "grokking_step": (first_step_at(curves, phase_params["grokking_step_accuracy"]) if log is None
                                       else first_logged_step(log, "test", phase_params["grokking_step_accuracy"])),
                     "final_train_acc": rec["final"]["train_acc"],
                     "final_test_acc": rec["final"]["test_acc"],
                     "initial_ipr": _measure(curves, "ipr", 0),
                     "final_ipr": _measure(curves, "ipr", -1),
                     "final_param_norm": _measure(curves, "param_norm", -1),
                     "final_subnetwork_fraction": _measure(curves, "subnetwork_fraction", -1),
                     # softmax collapse: the share of training examples whose loss is exactly 0
                     "final_softmax_collapse": _measure(curves, "softmax_collapse", -1),
                     "max_softmax_collapse": max((v for v in curves.get("softmax_collapse") or [] if v is not None),
                                                 default=None),
                     "epochs_run": rec["epochs_run"],
                     "steps_run": rec.get("steps_run", rec["epochs_run"]),
                     "non_finite_loss": rec["non_finite_loss"],
                     # provenance: what computed the record, and on which CPU kind (None: not recorded)
                     "kernel": rec.get("kernel"), "cpu_kind": (rec.get("machine") or {}).get("kind")})
    vote = voters(phase_params)
    shared = group_axes(sweep, vote)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in shared), []).append(row)
    group_rows = []
    for key, members in groups.items():
        phase, agreement, tied = _majority([m["phase"] for m in members])
        votes = Counter(m["phase"] for m in members)
        ranked = sorted(votes.values(), reverse=True) + [0]
        generalising = votes["grokking"] + votes["comprehension"]
        gaps = [m["gap_epochs"] for m in members if m["phase"] == phase and m["gap_epochs"] is not None]
        steps = [m["grokking_step"] for m in members if m["grokking_step"] is not None]
        group_rows.append({**dict(zip(shared, key)),
                           "phase": phase, "agreement": agreement, "n_seeds": len(members),
                           "tied_phases": tied if phase == TIE else [],
                           "seed_phases": {"/".join(spell(m[a]) for a in vote): m["phase"] for m in members},
                           "mean_gap_epochs": sum(gaps) / len(gaps) if gaps else None,
                           "grokking_steps": steps,
                           # the label rests on a cell the budget did not decide (a voter of the
                           # majority phase, or any voter of a tie)
                           "undecided": any(m["undecided"] for m in members if phase in (TIE, m["phase"])),
                           # how sure the voters are: the split, the share that generalises with its 95 %
                           # Wilson interval, and whether one vote moved elsewhere would change the label
                           "votes": {ph: votes[ph] for ph in PHASES if votes[ph]},
                           "generalising_share": generalising / len(members),
                           "generalising_interval": wilson_interval(generalising, len(members)),
                           "flips_with_one_vote": len(members) > 1 and ranked[0] - ranked[1] <= 1})
    counts = Counter(r["phase"] for r in rows)
    out = {
        "settings": {"phases": phase_params, "sweep": sweep, **({"refine": refine} if refine else {})},
        "n_cells": len(rows),
        "counts": {ph: counts.get(ph, 0) for ph in PHASES},
        "group_counts": {ph: sum(g["phase"] == ph for g in group_rows) for ph in (*PHASES, TIE)},
        "non_finite_cells": sum(bool(r["non_finite_loss"]) for r in rows),
        "undecided_cells": sum(r["undecided"] for r in rows),
        "fragile_groups": sum(g["flips_with_one_vote"] for g in group_rows),
        "cells": rows,
        "groups": group_rows,
    }
    if extend:
        done = sorted(set(multiples.values()))
        out["settings"]["extend"] = extend
        out["extend"] = {
            "rounds": extend["rounds"], "factor": extend["factor"],
            # cells continued to each multiple of the budget (round r: factor ** r)
            "cells_per_round": [sum(m >= extend["factor"] ** r for m in multiples.values())
                                for r in range(1, extend["rounds"] + 1)],
            "undecided_at_budget": sum(r["undecided_at_budget"] for r in rows),
            "changed_phase": sum(r["phase"] != r["phase_at_budget"] for r in rows),
            "counts_at_budget": {ph: sum(r["phase_at_budget"] == ph for r in rows) for ph in PHASES},
            "multiples_run": done,
        }
    if refine:
        from .refine import refinement_summary

        out["refine"] = refinement_summary({"phases": phase_params, "sweep": sweep, "refine": refine}, out)
    return out


def summary_metrics(phases: dict) -> dict:
    """Small flat numbers for `dvc metrics show/diff`."""
    n = phases["n_cells"]
    counts = phases["counts"]
    groups = phases["groups"]
    return {
        "n_cells": n,
        "phase_counts": counts,
        "grokking_fraction": counts["grokking"] / n if n else 0.0,
        "generalizing_fraction": (counts["grokking"] + counts["comprehension"]) / n if n else 0.0,
        "seed_agreement_mean": sum(g["agreement"] for g in groups) / len(groups) if groups else 0.0,
        "tied_groups": phases["group_counts"][TIE],
        "non_finite_cells": phases["non_finite_cells"],
        "undecided_cells": phases["undecided_cells"],
    }


def phases_csv(phases: dict) -> str:
    """One row per cell; the extra axes (if any) come first, by their dotted names."""
    fields = extra_axes(phases["settings"]["sweep"]) + list(CSV_FIELDS) + (["round"] if "refine" in phases else []) \
        + (list(EXTEND_FIELDS) if "extend" in phases else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in phases["cells"]:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    return buf.getvalue()


def grokking_steps_csv(phases: dict) -> str:
    """The cells that reached ``phases.grokking_step_accuracy`` on test, with the step: what
    ``dvc plots`` draws (a cell that never did has no row, rather than a step of 0)."""
    sweep = phases["settings"]["sweep"]
    fields = extra_axes(sweep) + [name for name, _, _ in AXES] + ["phase", "grokking_step"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in phases["cells"]:
        if row.get("grokking_step") is not None:
            writer.writerow({k: row[k] for k in fields})
    return buf.getvalue()


def axis_effects(phases: dict) -> dict:
    """For each sweep axis and value: phase counts over all cells with that value."""
    out = {}
    extras = extra_axes(phases["settings"]["sweep"])
    for name in extras + [name for name, _, _ in AXES]:
        per = {}
        for row in phases["cells"]:
            per.setdefault(row[name], Counter())[row["phase"]] += 1
        items = per.items() if name in extras else sorted(per.items())  # extras: as listed
        out[name] = {v: {ph: c.get(ph, 0) for ph in PHASES} for v, c in items}
    return out


def read_phases(results_dir: str | Path) -> dict:
    """``phases.json`` of a results directory the workflow finished; FileNotFoundError saying
    what to run when it is missing."""
    path = Path(results_dir) / "phases.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; run the workflow for {results_dir} first")
    return read_json(path)


def reproduction_csv(phases: dict, extra: Sequence[str] = ()) -> str:
    """A reproduction record's per-cell table (docs/reproductions/): one column per swept axis
    with more than one value (short names: ``training.learning_rate`` -> ``learning_rate``),
    then the phase, the first steps at the threshold, the ``extra`` phases.csv columns
    (e.g. ``grokking_step``), values as in phases.csv, and last the CPU kind each cell was
    trained on (bit-identity holds only within one; empty for a record that names none)."""
    sweep = phases["settings"]["sweep"]
    axes = [k for k in extra_axes(sweep) + [name for name, _, _ in AXES] if len(sweep[k]) > 1]
    names = [short_label(k) if "." in k else k for k in axes]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    allowed = CSV_FIELDS + (EXTEND_FIELDS if "extend" in phases else ())
    unknown = [k for k in extra if k not in allowed]
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    measured = ("first_train_step", "first_test_step", *(k for k in extra if k != "cpu_kind"), "cpu_kind")
    writer.writerow(names + ["phase", *measured])
    for row in phases["cells"]:
        writer.writerow([row[k] for k in axes] + [row["phase"]] + ["" if row.get(k) is None else row[k]
                                                                   for k in measured])
    return buf.getvalue()
