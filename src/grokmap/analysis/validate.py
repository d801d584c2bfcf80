"""The results validator: the last rule of the DAG, written independently of the code it checks.

It imports nothing from aggregation, classification or the curve helpers. From the raw
per-cell records (curves, and the per-step accuracy log where there is one) it re-derives,
with its own short code, every number that aggregation published - each cell's first
threshold crossings, phase, gap and grokking step, every seed group's vote (ties included),
the phase counts, the fractions of metrics.json and the metadata counts - and compares them
with phases.json, metrics.json and metadata.json. It also checks each record against itself:
final values, first crossings at the early-stop accuracy and the stop rule against its own
curves, and the accuracy log against the evaluated test accuracy, so a record edited in one
place is caught. Any disagreement fails the workflow.
"""
from __future__ import annotations

import json
import math
from collections import Counter

from ..training.grid import Cell, resolve_settings
from .axes import cell_from_row, group_axes, voters

__all__ = ["validate_outputs"]

_PHASES = ("confusion", "memorization", "grokking", "comprehension")


def _crossings(points, threshold: float):
    """First x whose value >= threshold in a list of (x, value) pairs, else None."""
    return next((x for x, v in points if v >= threshold), None)


def _log_points(log: dict, split: str):
    """(step, accuracy) at every logged step of a run-length encoded accuracy log."""
    n, every, step = log[f"n_{split}"], log["every"], 0
    for correct, count in log[split]:
        for _ in range(count):
            step += every
            yield step, correct / n


def _first_log_step(log: dict, split: str, threshold: float):
    n, every, step = log[f"n_{split}"], log["every"], 0
    for correct, count in log[split]:  # a run's first step is the only candidate in it
        if correct / n >= threshold:
            return step + every
        step += every * count
    return None


def _epoch(step, per_epoch: int):
    if step is None:
        return None
    return step // per_epoch if step % per_epoch == 0 else round(step / per_epoch, 4)


def _derive(record: dict, ph: dict) -> dict:
    """Everything aggregation publishes about one cell, re-derived from its record."""
    curves, thr = record["curves"], ph["accuracy_threshold"]
    steps = curves.get("step") or curves["epoch"]
    per_epoch = record.get("steps_per_epoch", 1)
    log = record.get("accuracy_log")
    if log is not None:
        first_train, first_test = (_first_log_step(log, s, thr) for s in ("train", "test"))
        grok = _first_log_step(log, "test", ph["grokking_step_accuracy"])
        train_epoch, test_epoch = _epoch(first_train, per_epoch), _epoch(first_test, per_epoch)
    else:
        first_train = _crossings(zip(steps, curves["train_acc"]), thr)
        first_test = _crossings(zip(steps, curves["test_acc"]), thr)
        grok = _crossings(zip(steps, curves["test_acc"]), ph["grokking_step_accuracy"])
        train_epoch = _crossings(zip(curves["epoch"], curves["train_acc"]), thr)
        test_epoch = _crossings(zip(curves["epoch"], curves["test_acc"]), thr)
    final_ok = not ph["require_final_accuracy"]
    gap = None
    if train_epoch is None or not (final_ok or curves["train_acc"][-1] >= thr):
        phase = "confusion"
    elif test_epoch is None or not (final_ok or curves["test_acc"][-1] >= thr):
        phase = "memorization"
    else:
        gap = test_epoch - train_epoch
        phase = "grokking" if gap > ph["grokking_gap_epochs"] else "comprehension"
    # undecided at budget: the budget ran out (no early stop, finite loss) while the split the
    # phase waits on (train for confusion, test for memorization) was still rising by at least
    # the minimum gain over the window's last share of the epochs run
    gain = None
    waits_on = {"confusion": "train_acc", "memorization": "test_acc"}.get(phase)
    if waits_on and not record.get("stopped_early") and not record["non_finite_loss"]:
        values = curves[waits_on]
        cut = curves["epoch"][-1] * (1 - ph["undecided_window_share"])
        at_cut = values[0]
        for e, v in zip(curves["epoch"], values):
            if e <= cut:
                at_cut = v
        gain = values[-1] - at_cut
    last = {k: (curves.get(k) or [None])[-1] for k in ("param_norm", "subnetwork_fraction", "ipr", "softmax_collapse")}
    return {"phase": phase, "gap_epochs": gap, "first_train_epoch": train_epoch, "first_test_epoch": test_epoch,
            "first_train_step": first_train, "first_test_step": first_test, "grokking_step": grok,
            "final_train_acc": curves["train_acc"][-1], "final_test_acc": curves["test_acc"][-1],
            "initial_ipr": (curves.get("ipr") or [None])[0], "final_ipr": last["ipr"],
            "final_param_norm": last["param_norm"], "final_subnetwork_fraction": last["subnetwork_fraction"],
            "final_softmax_collapse": last["softmax_collapse"],
            "max_softmax_collapse": max((v for v in curves.get("softmax_collapse") or [] if v is not None), default=None),
            "epochs_run": curves["epoch"][-1], "steps_run": steps[-1],
            "non_finite_loss": bool(record["non_finite_loss"]),
            "undecided": gain is not None and gain >= ph["undecided_min_gain"], "budget_gain": gain,
            "kernel": record.get("kernel"),
            "cpu_kind": record["machine"].get("kind") if isinstance(record.get("machine"), dict) else None}


def _spelled(v) -> str:
    """A sweep value as a path spells it (integers and floats alike: 1.0 -> "1", 1e-05 -> "1e-05")."""
    if not isinstance(v, float):
        return str(v)
    text = repr(v)
    return text[:-2] if text.endswith(".0") else text


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _self_consistent(record: dict, training: dict) -> list[str]:
    """Where a record disagrees with itself (fields written at training time vs its curves)."""
    curves, bad = record["curves"], []
    steps = curves.get("step") or curves["epoch"]
    for k in ("train_acc", "test_acc", "train_loss", "test_loss"):
        if not _same(record["final"][k], curves[k][-1]):
            bad.append(f"final {k}")
    stop_acc = training["early_stop_accuracy"]
    for split in ("train", "test"):
        mine = _crossings(zip(curves["epoch"], curves[f"{split}_acc"]), stop_acc)
        if record["first_epoch_at_early_stop_accuracy"][split] != mine:
            bad.append(f"first epoch at the early-stop accuracy ({split})")
    if record.get("steps_run", steps[-1]) != steps[-1]:
        bad.append("steps_run")
    log = record.get("accuracy_log")
    if log is not None:
        tests = dict(_log_points(log, "test"))
        logged = sum(c for _, c in log["train"])
        if logged != sum(c for _, c in log["test"]) or logged * log["every"] > steps[-1] or \
                steps[-1] - logged * log["every"] >= log["every"]:
            bad.append("accuracy log length")
        for s, acc in zip(steps, curves["test_acc"]):
            if s in tests and abs(tests[s] - acc) > 1e-12:
                bad.append(f"accuracy log vs test accuracy at step {s}")
                break
    # softmax collapse: a count of training examples over n_train, never more than the correctly
    # classified share (a loss of exactly 0 needs the correct class's probability to be 1); None
    # only where the loss has no softmax or the engine does not measure it (s3_mlp's stacks)
    n_train = record.get("n_train")
    for train_acc, share in zip(curves["train_acc"], curves.get("softmax_collapse") or []):
        if share is None:
            continue
        if not (0 <= share <= train_acc + 1e-12) or (n_train and abs(share * n_train - round(share * n_train)) > 1e-6):
            bad.append(f"softmax collapse {share!r} against train accuracy {train_acc!r} and {n_train} examples")
            break
    if record["stopped_early"] and not _stop_rule_met(record, training):
        bad.append("stopped early without meeting the stop rule")
    finite = all(isinstance(v, (int, float)) and math.isfinite(v)
                 for k in ("train_loss", "test_loss") for v in curves[k])
    if bool(record["non_finite_loss"]) == finite:
        bad.append("non_finite_loss against the losses it recorded")
    return bad


def _kernels_allowed(settings: dict) -> set:
    """The kernels the training code may compute a cell with, from its settings alone: S3's model
    trains stacked; S0's kind (one ReLU layer of the embed-concat MLP, two operands, full-batch
    AdamW on cross-entropy, no dropout or noise) on the fused step, whose float32 tail is the C
    pass or, without a compiler, torch's, whose float64 keeps torch's tail and whose bfloat16 is
    the compiled graph; StableMax or a separate loss precision (not in bfloat16) on the fused
    step's hand-written loss tail; everything else on the generic autograd step."""
    md, tr, tk = settings["model"], settings["training"], settings["task"]
    if md["name"] == "s3_mlp":
        return {"stacked/torch"}
    plain = tr["loss"] == "cross_entropy" and tr.get("softmax_precision") is None
    fused = (md["name"] == "embed_concat_mlp" and md["depth"] == 1 and md["activation"] == "relu"
             and not md["dropout"] and tk["operands"] == 2 and tr["optimizer"] == "adamw"
             and tr["batch_size"] == "full" and not tr["embedding_noise"])
    if not fused or not (plain or (tr["loss"] in ("cross_entropy", "stablemax_cross_entropy")
                                   and tr["precision"] != "bfloat16")):
        return {"generic/torch"}
    if not plain:  # StableMax or a separate loss precision: the hand-written loss tail
        return {"fused/loss_tail"}
    return {"float32": {"fused/c_tail", "fused/torch_tail"}, "float64": {"fused/torch_tail"},
            "bfloat16": {"fused/compiled"}}[tr["precision"]]


def _stop_rule_met(record: dict, training: dict) -> bool:
    acc, rule = training["early_stop_accuracy"], training["early_stop_rule"]
    log, curves = record.get("accuracy_log"), record["curves"]
    if log is not None:
        train = [a for _, a in _log_points(log, "train")]
        test = [a for _, a in _log_points(log, "test")]
    else:
        train, test = curves["train_acc"], curves["test_acc"]
    if rule == "each_reached":
        return max(train) >= acc and max(test) >= acc
    if rule == "none":
        return False
    need = training["early_stop_evals"]
    return len(train) >= need and all(a >= acc and b >= acc for a, b in zip(train[-need:], test[-need:]))


def _vote(phases: list[str]) -> tuple[str, float, list[str]]:
    counts = Counter(phases)
    top = max(counts.values())
    tied = [p for p in _PHASES if counts[p] == top]
    return ("tie" if len(tied) > 1 else tied[0]), top / len(phases), (tied if len(tied) > 1 else [])


def _check_refinement(check, grid, listed: list[Cell], phases: dict, params: dict) -> None:
    """Adaptive refinement: every cell's round is the one its round file gave it, the counts
    per round add up, and every point of the finest lattice is drawn with the right trained
    point - re-derived here from the rule's words: the point trained in the latest round whose
    box (its round's spacing, centred on it) holds the lattice point, then the nearest, then
    the lowest."""
    ref, rounds_wanted = phases.get("refine"), params["refine"]["rounds"]
    given = grid if isinstance(grid, dict) else {}
    wrong = [c.relpath for row, c in zip(phases["cells"], listed) if row.get("round") != given.get(c)]
    check("refinement rounds of the cells", ref is not None and not wrong, f"wrong at {wrong[:3]}")
    if ref is None:
        return
    per = Counter(given.values())
    check("cells per refinement round", ref["cells_per_round"] == [per.get(r, 0) for r in range(rounds_wanted + 1)],
          f"published {ref['cells_per_round']}, round files {dict(per)}")
    names = ref["coverage"]["axes"]
    refined = list(ref["axes"])
    index = {a: {repr(float(v)): i for i, v in enumerate(ref["axes"][a]["lattice"])} for a in refined}
    panel_names = [a for a in names if a not in refined]
    shared = group_axes(params["sweep"], voters(params["phases"]))
    round_of = {}
    for row in phases["cells"]:
        key = tuple(row[a] for a in shared)
        round_of[key] = min(row["round"], round_of.get(key, row["round"]))
    trained = {}
    for gi, g in enumerate(phases["groups"]):
        panel = tuple(g[a] for a in panel_names)
        at = tuple(index[a].get(repr(float(g[a]))) for a in refined)
        trained.setdefault(panel, []).append((at, round_of[tuple(g[a] for a in shared)], gi))
    bad = []
    for point in ref["coverage"]["points"]:
        values = dict(zip(names, point[:-1]))
        panel = tuple(values[a] for a in panel_names)
        at = tuple(index[a][repr(float(values[a]))] for a in refined)
        best = None
        for q, r, gi in trained.get(panel, []):
            half = 2 ** (rounds_wanted - r) / 2  # in finest-lattice steps
            if None not in q and max(abs(x - y) for x, y in zip(at, q)) <= half:
                key = (-r, sum((x - y) ** 2 for x, y in zip(at, q)), q)
                if best is None or key < best[0]:
                    best = (key, gi)
        if best is None or best[1] != point[-1]:
            bad.append(values)
    check("refined map: each lattice point drawn with the cell covering it", not bad, f"wrong at {bad[:3]}")


def _check_csv(check, text: str, listed: list[Cell], derived: dict, rounds: dict) -> None:
    """phases.csv: one row per cell in phases.json's order, every column as the record gives it."""
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(text)))
    wrong = []
    for row, cell in zip(rows, listed):
        want = {**cell.as_dict(), **derived.get(cell, {}), "round": rounds.get(cell, 0)}
        for column, got in row.items():
            value = want.get(column)
            if column not in want or got != ("" if value is None else str(value)):
                wrong.append(f"{cell.relpath}: {column}")
                break
    check("phases.csv re-derived from the records", len(rows) == len(listed) and not wrong,
          f"{len(rows)} rows for {len(listed)} cells; wrong at {wrong[:3]}")


def _check_rounds(check, grid: dict, derived: dict, params: dict, lattices: dict, listed_files: dict) -> None:
    """Each refinement round's list re-derived from the records, by the rule's words: at round r
    the spacing is half of round r-1's; wherever two trained points, neighbours along one refined
    axis at round r-1's spacing, have different majority phases (a tie is a label of its own),
    the midpoint is added, with its neighbours at the new spacing along every other refined axis;
    every point is trained for every voter. ``lattices`` are the published finest lattices, each
    checked to hold the grid's values at the grid's positions."""
    rounds = params["refine"]["rounds"]
    sweep, vote = params["sweep"], voters(params["phases"])
    names = sorted(params["refine"]["axes"])
    scale = 2 ** rounds
    index = {}
    for a in names:
        values, base = lattices.get(a, []), sorted(sweep[a])
        ok = (len(values) == (len(base) - 1) * scale + 1 and all(x < y for x, y in zip(values, values[1:]))
              and all(values[k * scale] == v for k, v in enumerate(base)))
        check(f"refinement lattice of {a} holds the grid's values", ok, f"{values[:5]}...")
        if not ok:
            return
        index[a] = {_spelled(v): i for i, v in enumerate(values)}
    shared = group_axes(sweep, vote)
    panel_names = [a for a in shared if a not in names]
    bad = []
    for r in range(1, rounds + 1):
        labels: dict[tuple, dict] = {}
        for cell, rr in grid.items():
            if rr < r:
                row = cell.as_dict()
                key = tuple(row[a] for a in shared)
                labels.setdefault(key, []).append(derived[cell]["phase"])
        points: dict[tuple, dict] = {}
        for key, votes in labels.items():
            row = dict(zip(shared, key))
            at = tuple(index[a].get(_spelled(row[a])) for a in names)
            points.setdefault(tuple(row[a] for a in panel_names), {})[at] = _vote(votes)[0]
        h, half = 2 ** (rounds - r + 1), 2 ** (rounds - r)
        top = [(len(sorted(sweep[a])) - 1) * scale for a in names]
        want = set()
        for panel, known in points.items():
            new = set()
            for p, label in known.items():
                for i in range(len(names)):
                    q = p[:i] + (p[i] + h,) + p[i + 1:]
                    if q not in known or known[q] == label:
                        continue
                    m = p[:i] + (p[i] + half,) + p[i + 1:]
                    new.add(m)
                    for j in range(len(names)):
                        for step in ((-half, half) if j != i else ()):
                            if 0 <= m[j] + step <= top[j]:
                                new.add(m[:j] + (m[j] + step,) + m[j + 1:])
            for m in new - set(known):
                want.add((panel, m))
        cells_now = set()
        for cell, rr in grid.items():
            if rr == r:
                row = cell.as_dict()
                cells_now.add((tuple(row[a] for a in panel_names), tuple(index[a].get(_spelled(row[a])) for a in names)))
        voters_n = math.prod(len(sweep[v]) for v in vote)
        n_listed = sum(1 for rr in grid.values() if rr == r)
        if cells_now != want or n_listed != len(want) * voters_n:
            bad.append(f"round {r}: {listed_files.get(r, '?')} lists {n_listed} cells, the rule gives "
                       f"{len(want) * voters_n} (delete the round files and rerun to derive them again)")
    check("refinement rounds re-derived from the records", not bad, "; ".join(bad[:3]))


def _check_refine_summary(check, summary: dict | None, phases: dict) -> None:
    """refined/summary.json is phases.json's refinement section without the coverage, and its
    boundary counts follow from the (checked) coverage: neighbouring lattice points whose
    covering cells' groups have different majority phases, resolved where both are trained."""
    ref = phases.get("refine") or {}
    want = {k: v for k, v in ref.items() if k != "coverage"} if ref else None
    check("refinement summary (refined/summary.json)", summary is None or not ref or summary == want,
          "differs from phases.json's refine section")
    if not ref:
        return
    names = ref["coverage"]["axes"]
    refined = list(ref["axes"])
    steps = {a: {_spelled(v): i for i, v in enumerate(ref["axes"][a]["lattice"])} for a in refined}
    panel = [a for a in names if a not in refined]
    at = {}
    for point in ref["coverage"]["points"]:
        values = dict(zip(names, point[:-1]))
        at[(tuple(values[a] for a in panel), tuple(steps[a][_spelled(values[a])] for a in refined))] = point[-1]
    groups, trained = phases["groups"], {}
    for gi, g in enumerate(groups):
        trained[gi] = (tuple(g[a] for a in panel), tuple(steps[a].get(_spelled(g[a])) for a in refined))
    trained_at = set(trained.values())
    pairs = resolved = 0
    for (pan, pos), gi in at.items():
        for i in range(len(refined)):
            nxt = (pan, pos[:i] + (pos[i] + 1,) + pos[i + 1:])
            if nxt in at and groups[at[nxt]]["phase"] != groups[gi]["phase"]:
                pairs += 1
                resolved += (pan, pos) in trained_at and nxt in trained_at
    check("refinement boundary pairs re-derived", (ref["boundary_pairs"], ref["boundary_pairs_resolved"],
                                                   ref["lattice_points"]) == (pairs, resolved, len(at)),
          f"published {ref['boundary_pairs']}/{ref['boundary_pairs_resolved']}/{ref['lattice_points']}, "
          f"re-derived {pairs}/{resolved}/{len(at)}")


def _check_extension(check, records: dict, params: dict, rounds: dict) -> tuple[dict, dict]:
    """Extension rounds, re-derived from the records at the budget: round r must list exactly the
    cells undecided after round r - 1 (by :func:`_derive`), and each continued record must be that
    cell's record of round r - 1 continued: the same curves, bit for bit, up to where that one
    ended, from the state that one names, at factor ** r times the cell's budget. Returns each
    cell's longest record and its budget multiple."""
    factor, wanted = params["extend"]["factor"], params["extend"]["rounds"]
    current, multiple = dict(records), {c: 1 for c in records}
    by_path = {c.relpath: c for c in records}
    bad = []
    for r in range(1, wanted + 1):
        given = rounds.get(r)
        if given is None:
            bad.append(f"round {r}: no list")
            break
        doc, continued = given["doc"], given["records"]
        want = sorted(c.relpath for c, rec in current.items() if _derive(rec, params["phases"])["undecided"])
        listed = doc.get("cells") if isinstance(doc, dict) else None
        if not isinstance(listed, list) or sorted(listed) != want or doc.get("round") != r:
            bad.append(f"round {r}: {given['path']} lists {len(listed or [])} cells, the rule gives {len(want)} "
                       f"(delete the round files and rerun to derive them again)")
            continue
        for rel in listed:
            cell, rec = by_path[rel], continued.get(rel)
            before = current[cell]
            n = len(before["curves"]["epoch"])
            ok = (isinstance(rec, dict) and all(rec["curves"].get(k, [])[:n] == v for k, v in before["curves"].items())
                  and len(rec["curves"]["epoch"]) > n
                  and (rec.get("extended_from") or {}).get("multiple") == factor ** r
                  and (rec.get("extended_from") or {}).get("state_sha256") == (before.get("state") or {}).get("sha256")
                  # it ran to factor ** r times the cell's budget, or stopped before (early stop, non-finite loss)
                  and (rec["epochs_run"] == records[cell]["epochs_run"] * factor ** r
                       or (records[cell]["epochs_run"] * factor ** (r - 1) < rec["epochs_run"]
                           < records[cell]["epochs_run"] * factor ** r
                           and (rec.get("stopped_early") or rec.get("non_finite_loss")))))
            if not ok:
                bad.append(f"round {r}: {rel} is not its earlier record continued to {factor ** r} x the budget")
                continue
            current[cell], multiple[cell] = rec, factor ** r
    check("extension rounds re-derived from the records (lists, continued curves bit for bit)", not bad,
          "; ".join(bad[:3]))
    return current, multiple


def _explorer_doc(html: str) -> dict | None:
    """The data the explorer page draws: the JSON object assigned to ``DOC`` in its script."""
    for line in html.splitlines():
        if line.startswith("const DOC = ") and line.endswith(";"):
            try:
                return json.loads(line[len("const DOC = "):-1])
            except ValueError:
                return None
    return None


def _near4(shown, value) -> bool:
    """``shown`` is ``value`` to 4 significant digits (None for a missing or non-finite value)."""
    if value is None or not math.isfinite(value):
        return shown is None
    return isinstance(shown, (int, float)) and abs(shown - value) <= 5e-4 * abs(value) + 1e-300


def _check_explorer(check, html: str, listed: list[Cell], derived: dict, records: dict, group_phase: dict) -> None:
    """Every number the explorer draws, against the records: headline counts, each diagram
    point's phase, accuracies and steps, and each curve point (the record's value at that step
    to 4 significant digits). ``group_phase``: phases.json's group index -> the re-derived vote."""
    doc = _explorer_doc(html)
    if doc is None:
        check("explorer (explorer.html) readable", False, "no DOC object in the page")
        return
    counts = Counter(d["phase"] for d in derived.values())
    info = doc.get("info", {})
    want = {"n_cells": len(derived), "counts": {p: counts.get(p, 0) for p in _PHASES},
            "undecided": sum(d["undecided"] for d in derived.values())}
    got = {k: info.get(k) for k in want}
    check("explorer headline (cells, phase counts, undecided)", got == want, f"page {got}, re-derived {want}")
    by_rel = {c.relpath: c for c in listed}
    depth = len(listed[0].relpath.split("/")) if listed else 0
    bad_points, bad_curves, n_points = [], [], 0
    first_item = {}  # each group's first diagram point (refinement can draw a group at several)
    for item in doc.get("groups", []):
        g = item.get("g")
        first_item.setdefault(g, item)
        if g not in group_phase or item.get("phase") != group_phase[g]:
            bad_points.append(f"point {g}: {item.get('phase')} (re-derived {group_phase.get(g)})")
    for g, series in enumerate(doc.get("curves", [])):
        cells = []
        for one in series:
            rel = "/".join(str(one.get("file", "")).split("/")[:-1][-depth:]) if depth else ""
            cell = by_rel.get(rel)
            if cell is None or cell not in records:
                bad_curves.append(f"group {g}: link {one.get('file')!r} names no cell of the sweep")
                continue
            cells.append(cell)
            d, curves = derived[cell], records[cell]["curves"]
            if one.get("phase") != d["phase"]:
                bad_curves.append(f"{rel}: phase {one.get('phase')} (re-derived {d['phase']})")
            steps = curves.get("step") or curves["epoch"]
            at = {int(s): i for i, s in enumerate(steps)}
            for key in ("train_acc", "test_acc", "train_loss", "test_loss", "param_norm", "ipr", "softmax_collapse"):
                shown = one.get(key)
                if shown is None:
                    continue
                for s, v in zip(one.get("step", []), shown):
                    n_points += 1
                    i = at.get(s)
                    if i is None or key not in curves or not _near4(v, curves[key][i]):
                        bad_curves.append(f"{rel}: {key} at step {s}")
                        break
        if cells:  # the point's text, from the same voters
            item = first_item.get(g)
            if item is not None:
                acc = ", ".join(f"{derived[c]['final_train_acc']:.3f} / {derived[c]['final_test_acc']:.3f}" for c in cells)
                grok = ", ".join("–" if derived[c]["grokking_step"] is None else f"{derived[c]['grokking_step']:,}"
                                 for c in cells)
                if item.get("final train / test accuracy") != acc or item.get("grokking step") != grok:
                    bad_points.append(f"point {g}: accuracies or grokking steps")
    check("explorer points (phase, accuracies, grokking steps) re-derived", not bad_points, "; ".join(bad_points[:5]))
    check("explorer curves re-derived from the records", not bad_curves,
          "; ".join(bad_curves[:5]) if bad_curves else f"{n_points} points")


def validate_outputs(grid: list[Cell], records: dict, phases: dict, metrics: dict,
                     metadata: dict, params: dict, files: dict | None = None) -> list[dict]:
    """Run every check; return [{check, ok, detail}]. ``records`` are already format-checked.
    ``grid`` may map each cell to the refinement round that added it. ``files``: the other
    published files, each checked when given: ``phases.csv`` and ``explorer.html`` (text), ``refined/summary.json``
    and ``round files`` ({round: path}). With extension rounds, ``records`` are the records at
    the cells' own budget and ``files["extension"]`` gives each round's list and the records it
    names ({round: {"path", "doc", "records": {cell path: record}}}): the longest records are
    re-derived from them here."""
    files = files or {}
    checks = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    sweep, ph = params["sweep"], params["phases"]
    listed = [cell_from_row(row, sweep) for row in phases["cells"]]
    dups = [c for c, k in Counter(listed).items() if k > 1]
    check("no duplicate cells", not dups, f"duplicates: {[c.relpath for c in dups]}" if dups else "")
    missing, extra = set(grid) - set(listed), set(listed) - set(grid)
    check("full grid coverage", not missing and not extra,
          f"missing {sorted(c.relpath for c in missing)}; not in grid {sorted(c.relpath for c in extra)}"
          if missing or extra else f"{len(grid)} cells")
    check("cell count", phases["n_cells"] == len(grid) == metadata["n_cells"],
          f"phases {phases['n_cells']}, grid {len(grid)}, metadata {metadata['n_cells']}")

    extend = params["extend"]["rounds"]
    if extend:
        at_budget = {c: _derive(rec, ph) for c, rec in records.items()}
        records, multiple = _check_extension(check, records, params, files.get("extension", {}))
    derived = {c: _derive(rec, ph) for c, rec in records.items()}
    if extend:
        for c, d in derived.items():
            d.update(budget_multiple=multiple[c], phase_at_budget=at_budget[c]["phase"],
                     undecided_at_budget=at_budget[c]["undecided"])
        ext = phases.get("extend") or {}
        want_ext = {"rounds": extend, "factor": params["extend"]["factor"],
                    "cells_per_round": [sum(m >= params["extend"]["factor"] ** r for m in multiple.values())
                                        for r in range(1, extend + 1)],
                    "undecided_at_budget": sum(d["undecided"] for d in at_budget.values()),
                    "changed_phase": sum(derived[c]["phase"] != at_budget[c]["phase"] for c in derived),
                    "counts_at_budget": {p: sum(d["phase"] == p for d in at_budget.values()) for p in _PHASES},
                    "multiples_run": sorted(set(multiple[c] for c in multiple if multiple[c] > 1))}
        check("extension summary (phases.json extend)", ext == want_ext, f"published {ext}, re-derived {want_ext}")
    inconsistent = {c.relpath: bad for c, rec in records.items()
                    if (bad := _self_consistent(rec, resolve_settings(params, c)["training"]))}
    check("every record agrees with itself", not inconsistent, f"{dict(list(inconsistent.items())[:3])}")
    kernels = {c.relpath: rec.get("kernel") for c, rec in records.items()
               if rec.get("kernel") not in _kernels_allowed(resolve_settings(params, c))}
    check("every record names a kernel its settings allow", not kernels, f"{dict(list(kernels.items())[:3])}")
    unnamed = [c.relpath for c, rec in records.items() if not (rec.get("machine") or {}).get("kind")]
    check("every record names the CPU kind it was made on", not unnamed, f"{unnamed[:3]}")
    wrong = []
    for row, cell in zip(phases["cells"], listed):
        mine = derived.get(cell)
        if mine is None:
            continue
        keys = [k for k in mine if not _same(row.get(k), mine[k])]
        if keys:
            wrong.append(f"{cell.relpath}: {', '.join(keys)}")
    check("every published cell number re-derived from its record", not wrong, "; ".join(wrong[:5]))

    counts = Counter(d["phase"] for d in derived.values())
    check("phase counts", phases["counts"] == {p: counts.get(p, 0) for p in _PHASES},
          f"published {phases['counts']}, re-derived {dict(counts)}")
    vote_axes = voters(ph)
    shared = group_axes(sweep, vote_axes)
    groups: dict[tuple, list] = {}
    members_of: dict[tuple, list] = {}
    for cell in grid:
        row = cell.as_dict()
        groups.setdefault(tuple(row[k] for k in shared), []).append(derived[cell]["phase"])
        members_of.setdefault(tuple(row[k] for k in shared), []).append((row, derived[cell]))
    published = {tuple(g[k] for k in shared): g for g in phases["groups"]}
    bad_groups = []
    for key, members in groups.items():
        phase, agreement, tied = _vote(members)
        g = published.get(key)
        if g is None or (g["phase"], g["n_seeds"], g.get("tied_phases", [])) != (phase, len(members), tied) \
                or abs(g["agreement"] - agreement) > 1e-12:
            bad_groups.append(str(key))
            continue
        rows = members_of[key]
        gaps = [d["gap_epochs"] for _, d in rows if d["phase"] == phase and d["gap_epochs"] is not None]
        voter_phases = {"/".join(_spelled(r[a]) for a in vote_axes): d["phase"] for r, d in rows}
        undecided = any(d["undecided"] for _, d in rows if phase in ("tie", d["phase"]))
        tally = Counter(d["phase"] for _, d in rows)
        k, n = tally["grokking"] + tally["comprehension"], len(rows)
        # 95 % Wilson score interval, written out: centre and half-width of the score test's bounds
        z = 1.959964
        centre = (k / n + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt((k / n) * (1 - k / n) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        top = sorted(tally.values(), reverse=True)
        flips = n > 1 and top[0] - (top[1] if len(top) > 1 else 0) <= 1
        if (g.get("votes") != {p: tally[p] for p in _PHASES if tally[p]} or g.get("generalising_share") != k / n
                or g.get("generalising_interval") != [max(0.0, centre - half), min(1.0, centre + half)]
                or g.get("flips_with_one_vote") is not flips):
            bad_groups.append(f"{key} (votes, generalising share and interval, or one-vote flip)")
            continue
        if (g.get("seed_phases") != voter_phases or g.get("undecided") is not undecided
                or g.get("grokking_steps") != [d["grokking_step"] for _, d in rows if d["grokking_step"] is not None]
                or not _same(g.get("mean_gap_epochs"), sum(gaps) / len(gaps) if gaps else None)):
            bad_groups.append(f"{key} (seed phases, grokking steps, mean gap or undecided)")
    check("seed-group votes (ties reported as ties)", not bad_groups and len(published) == len(groups),
          f"disagree at {bad_groups[:5]}")
    group_counts = Counter(_vote(m)[0] for m in groups.values())
    check("group counts", phases.get("group_counts") == {p: group_counts.get(p, 0) for p in (*_PHASES, "tie")})
    if "explorer.html" in files:
        index = {tuple(g[k] for k in shared): i for i, g in enumerate(phases["groups"])}
        _check_explorer(check, files["explorer.html"], listed, derived, records,
                        {index[key]: _vote(m)[0] for key, m in groups.items() if key in index})
    n = len(derived)
    non_finite = sum(d["non_finite_loss"] for d in derived.values())
    generalizing = counts.get("grokking", 0) + counts.get("comprehension", 0)
    agreements = [_vote(m)[1] for m in groups.values()]
    want = {"n_cells": n, "phase_counts": {p: counts.get(p, 0) for p in _PHASES},
            "grokking_fraction": counts.get("grokking", 0) / n if n else 0.0,
            "generalizing_fraction": generalizing / n if n else 0.0,
            "seed_agreement_mean": sum(agreements) / len(agreements) if agreements else 0.0,
            "non_finite_cells": non_finite, "tied_groups": group_counts.get("tie", 0),
            "undecided_cells": sum(d["undecided"] for d in derived.values())}
    off = [k for k, v in want.items()
           if not (metrics.get(k) == v if isinstance(v, dict) else
                   isinstance(metrics.get(k), (int, float)) and math.isclose(metrics[k], v, rel_tol=0, abs_tol=1e-12))]
    check("summary metrics (metrics.json)", not off and set(metrics) == set(want), f"disagree: {off}")
    check("non-finite cells", phases["non_finite_cells"] == non_finite)
    fragile = sum(1 for g in phases["groups"] if g.get("flips_with_one_vote"))
    check("groups a single vote would flip", phases.get("fragile_groups") == fragile)
    check("cells undecided at budget", phases.get("undecided_cells") == want["undecided_cells"],
          f"published {phases.get('undecided_cells')}, re-derived {want['undecided_cells']}")
    rounds_of = grid if isinstance(grid, dict) else {}
    if "phases.csv" in files:
        _check_csv(check, files["phases.csv"], listed, derived, rounds_of)
    if "figures/grokking_steps.csv" in files:  # what dvc plots draws: only the cells that grokked
        import csv as _csv
        import io as _io

        got = [(r["seed"], r["phase"], r["grokking_step"]) for r in _csv.DictReader(_io.StringIO(files["figures/grokking_steps.csv"]))]
        want = [(str(c.seed), derived[c]["phase"], str(derived[c]["grokking_step"])) for c in listed
                if c in derived and derived[c]["grokking_step"] is not None]
        check("grokking steps for dvc plots (figures/grokking_steps.csv)", got == want,
              f"{len(got)} rows, {len(want)} cells grokked")
    if params["refine"]["rounds"]:
        _check_refinement(check, grid, listed, phases, params)
        if phases.get("refine"):
            _check_rounds(check, rounds_of, derived, params,
                          {a: v["lattice"] for a, v in phases["refine"]["axes"].items()}, files.get("round files", {}))
            _check_refine_summary(check, files.get("refined/summary.json"), phases)
    if "extended/summary.json" in files:
        check("extension summary (extended/summary.json)",
              files["extended/summary.json"] == (phases.get("extend") or {"rounds": 0}), "differs from phases.json's extend")
    recorded = {"phases": ph, "sweep": sweep, **({"refine": params["refine"]} if params["refine"]["rounds"] else {}),
                **({"extend": params["extend"]} if extend else {})}
    check("settings recorded", phases["settings"] == recorded and metadata["params"] == params)
    check("metadata counts agree", metadata["counts"] == {p: counts.get(p, 0) for p in _PHASES})
    eff = metadata.get("efficiency")
    if eff is not None:  # cell-steps per second re-derived from the records; the share from its parts
        steps = sum(int(r.get("steps_run") or (r["curves"].get("step") or r["curves"]["epoch"])[-1])
                    for r in records.values())
        seconds = sum(float(r["train_seconds"]) for r in records.values())
        rate = steps / seconds if seconds > 0 else None
        share_ok = (eff["achieved_gflops"] is None or
                    math.isclose(eff["matmul_peak_share"], eff["achieved_gflops"] / eff["sgemm_peak_gflops"], rel_tol=1e-9)
                    and math.isclose(eff["achieved_gflops"], eff["estimated_gflop"] / seconds, rel_tol=1e-9))
        check("efficiency (metadata.json) re-derived from the records",
              eff["cell_steps"] == steps and math.isclose(eff["train_seconds"], seconds, rel_tol=1e-9)
              and (rate is None) == (eff["cell_steps_per_second"] is None)
              and (rate is None or math.isclose(eff["cell_steps_per_second"], rate, rel_tol=1e-9)) and share_ok,
              f"{steps} steps in {seconds:.3f} s; metadata says {eff['cell_steps']} in {eff['train_seconds']:.3f} s")
    return checks
