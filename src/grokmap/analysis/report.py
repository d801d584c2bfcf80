"""The markdown report, the sweep metadata, and the choice of representative cells."""
from __future__ import annotations

import os
import statistics
import subprocess
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from .aggregate import TIE, axis_effects
from ..training.grid import Cell, extra_axes, spell
from .axes import cell_from_row, group_axes, short_label, voters
from ..io import package_versions
from .phases import PHASES

__all__ = ["representatives", "build_metadata", "render_report"]


def representatives(phases: dict) -> dict[str, Cell]:
    """One cell per phase that occurred, chosen to show its phase clearly: preferring a cell
    that is decided at its budget and whose voters all agree, then the plainest case of the
    phase (grokking: test accuracy ended >= 0.99, then the largest gap; comprehension: the
    highest final test accuracy; memorization: the lowest final test accuracy; confusion:
    the lowest final train accuracy); ties go to the first in grid order."""
    groups = phases["groups"]
    lay_key = _vote_key(phases)
    unanimous = {lay_key(g) for g in groups if g.get("agreement", 1.0) == 1.0}

    def rank(row) -> tuple:
        clear = (not row.get("undecided"), lay_key(row) in unanimous)
        phase = row["phase"]
        if phase == "grokking":
            return (*clear, row["final_test_acc"] >= 0.99, row["gap_epochs"] or 0)
        if phase == "comprehension":
            return (*clear, row["final_test_acc"])
        if phase == "memorization":
            return (*clear, row["final_train_acc"] >= 0.99, -row["final_test_acc"])
        return (*clear, -row["final_train_acc"])

    picks: dict[str, dict] = {}
    for row in phases["cells"]:
        best = picks.get(row["phase"])
        if best is None or rank(row) > rank(best):
            picks[row["phase"]] = row
    sweep = phases["settings"]["sweep"]
    return {ph: cell_from_row(r, sweep) for ph, r in picks.items()}


def _vote_key(phases: dict) -> Callable[[dict], tuple]:
    """A cell's or group's diagram point: its settings without the voting axes (e.g. the seed)."""
    shared = group_axes(phases["settings"]["sweep"], voters(phases["settings"]["phases"]))
    return lambda row: tuple(repr(row[k]) for k in shared)


def _group_label(group: dict, phases: dict) -> str:
    """A seed group's settings, e.g. 'weight_decay=8 learning_rate=0.000316'."""
    shared = group_axes(phases["settings"]["sweep"], voters(phases["settings"]["phases"]))
    return " ".join(f"{short_label(k) if '.' in k else k}={spell(group[k])}" for k in shared)


def _refinement(phases: dict) -> list[str]:
    """The refinement's section: cells per round, share of the finest lattice trained, the
    resolution reached and how much of the boundary it resolves (analysis.refine)."""
    ref = phases.get("refine")
    if not ref:
        return []
    axes = ", ".join(f"{short_label(a) if '.' in a else a} ({v['spacing']})" for a, v in ref["axes"].items())
    per = ref["cells_per_round"]
    full = ref["lattice_points"] * ref["voters_per_point"]
    out = ["", "## Adaptive refinement", "",
           f"{ref['rounds']} round(s) on {axes}: each round adds the midpoints between neighbouring "
           "points whose majority phases differ (docs/refinement.md). Every diagram draws the finest "
           "lattice, each point with the phase of the trained cell that covers it.", "",
           _table(["round", "cells added"], [[str(r) if r else "0 (the grid)", n] for r, n in enumerate(per)]), "",
           f"{sum(per)} cells trained, {sum(per) / full:.1%} of the {full} a full grid at the finest "
           f"lattice ({ref['lattice_points']} points x {ref['voters_per_point']} voters) would train.", "",
           "Resolution reached: " + "; ".join(f"{short_label(a) if '.' in a else a} {v}"
                                              for a, v in ref["resolution"].items()) + "."]
    if ref["boundary_pairs"]:
        out += ["", f"Boundary: {ref['boundary_pairs']} pairs of neighbouring lattice points differ in phase; "
                f"{ref['boundary_pairs_resolved']} ({ref['boundary_pairs_resolved'] / ref['boundary_pairs']:.0%}) "
                "are both trained cells, i.e. resolved at the finest spacing."]
    return out


def _git_revision(cwd: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _tally(values: list) -> dict:
    """How many records name each value (None: a record made before the field existed)."""
    out: dict = {}
    for v in values:
        key = "not recorded" if v is None else str(v)
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def build_metadata(params: dict, phases: dict, cell_seconds: list[float], machines: list | None = None,
                   kernels: list | None = None, efficiency: dict | None = None) -> dict:
    """Run facts; ``machines`` and ``kernels`` are the cell records' own (cells of one sweep may
    have been trained on other machines, e.g. on a cluster); ``efficiency``: cell-steps per
    second and the share of the aggregating machine's matrix-product peak."""
    return {
        **({"efficiency": efficiency} if efficiency is not None else {}),
        "cpu_kinds": _tally([m.get("kind") if isinstance(m, dict) else None for m in machines or []]),
        "kernels": _tally(kernels or []),
        "params": params,
        "n_cells": phases["n_cells"],
        "counts": phases["counts"],
        "versions": package_versions(),
        "git_revision": _git_revision(),
        "training_seconds_total": sum(cell_seconds),
        "training_seconds_max_cell": max(cell_seconds, default=0.0),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
    }


def _efficiency_line(eff: dict | None) -> list[str]:
    if not eff or not eff.get("cell_steps_per_second"):
        return []
    return [f"- efficiency: {eff['cell_steps']:,} cell-steps in {eff['train_seconds']:.1f} s of training, "
            f"{eff['cell_steps_per_second']:,.0f} per second; the matrix products (estimated, weights only) "
            f"ran at ~{eff['achieved_gflops']:.1f} GFLOP/s, {eff['matmul_peak_share']:.0%} of this machine's "
            f"single-thread sgemm rate ({eff['sgemm_peak_gflops']:.0f} GFLOP/s, timed at aggregation; "
            f"read low when other work shares the cores)"]


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _setting(s: dict, extras: list[str], section: str, name: str) -> str:
    key = f"{section}.{name}"
    if key in extras:
        return "swept (" + ", ".join(spell(v) for v in s["sweep"][key]) + ")"
    return spell(s[section][name])


def _mean_std(values: list) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return f"{mean:.0f} ± {statistics.pstdev(values):.0f}" if len(values) > 1 else f"{mean:.0f}"


def _grokking_steps(phases: dict) -> list[str]:
    """S2's table: grokking step (mean ± std over seeds that reached it) per group."""
    sweep = phases["settings"]["sweep"]
    shared = group_axes(sweep, voters(phases["settings"]["phases"]))
    names = [short_label(k) if "." in k else k.replace("_", " ") for k in shared]
    rows = [[spell(g[k]) for k in shared] + [_mean_std(g["grokking_steps"]),
                                             f"{len(g['grokking_steps'])}/{g['n_seeds']}"]
            for g in phases["groups"]]
    thr = spell(phases["settings"]["phases"]["grokking_step_accuracy"])
    return ["## Grokking step", "",
            f"First evaluated optimizer step with test accuracy >= {thr} (S2), over the seeds "
            "that reached it.", "",
            _table(names + ["grokking step", "seeds reached"], rows), ""]


def _measurements(phases: dict) -> list[str]:
    """Mean of the logged measurements at the first and last evaluation, per phase."""
    rows = []
    for ph in PHASES:
        members = [r for r in phases["cells"] if r["phase"] == ph and r.get("final_param_norm") is not None]
        if not members:
            continue

        def mean(key, digits):  # "-" where a model does not log it (S3's model: the norm only)
            vals = [r[key] for r in members if r.get(key) is not None]
            return f"{sum(vals) / len(vals):.{digits}f}" if vals else "-"

        rows.append([ph, len(members), mean("initial_ipr", 3), mean("final_ipr", 3),
                     mean("final_param_norm", 1), mean("final_subnetwork_fraction", 2)])
    if not rows:
        return []
    return ["## Measurements", "",
            "Means over the cells of each phase: Fourier IPR (r = 2) of the first layer at the first "
            "and last evaluation (S4; 1/p is a flat spectrum, 1/2 a single frequency), parameter L2 "
            "norm and S1's sparsity (share of the last hidden layer's neurons the smallest sub-network "
            "reproducing the training predictions needs; - where the readout is not linear) at the last "
            "evaluation (S1).", "",
            _table(["phase", "cells", "IPR first", "IPR last", "param norm", "sub-network share"], rows), ""]


def _seed_uncertainty(phases: dict) -> list[str]:
    """With several voters: each group's split and the share that generalises (95 % Wilson
    interval), and the groups whose label one vote would change."""
    groups = phases["groups"]
    if max((g["n_seeds"] for g in groups), default=1) < 2:
        return []
    vote = voters(phases["settings"]["phases"])
    shared = group_axes(phases["settings"]["sweep"], vote)
    names = [short_label(k) if "." in k else k.replace("_", " ") for k in shared]
    fragile = [g for g in groups if g["flips_with_one_vote"]]
    rows = [[spell(g[k]) for k in shared] + [g["phase"], ", ".join(f"{v} {p}" for p, v in g["votes"].items()),
                                             f"{g['generalising_share']:.2f} [{g['generalising_interval'][0]:.2f}, "
                                             f"{g['generalising_interval'][1]:.2f}]"]
            for g in fragile]
    out = ["", "## How sure the voters are", "",
           f"Each point's label is the majority of its {' x '.join(vote)} voters; the share that generalises is "
           f"given with its 95 % Wilson interval (`phases.json` groups: `votes`, `generalising_share`, "
           f"`generalising_interval`). **{len(fragile)} of {len(groups)} points would change label if one vote "
           "moved** (drawn lighter in the phase diagram):"]
    if rows:
        out += ["", _table(names + ["phase", "votes", "generalising share [95 % interval]"], rows)]
    return out


def _gap_resolution(phases: dict, metadata: dict) -> list[str]:
    """How the evaluation interval quantises the grokking gap (issue 29)."""
    ph, tr = phases["settings"]["phases"], metadata["params"]["training"]
    every, gap = tr["eval_every_epochs"], ph["grokking_gap_epochs"]
    on_rule = [r for r in phases["cells"] if r["gap_epochs"] is not None and r["gap_epochs"] == gap]
    return ["", f"Resolution of the gap rule: accuracy is evaluated every {spell(every)} epochs, so first epochs "
            f"and gaps are multiples of {spell(every)}, and the rule (grokking when the gap exceeds "
            f"{spell(gap)} epochs) separates gaps of at most {spell(gap)} from gaps of at least "
            f"{spell(gap + every)}. {len(on_rule)} cell(s) sit exactly on the rule (gap = {spell(gap)}: "
            f"comprehension). A finer `training.eval_every_epochs` (e.g. 10) resolves the gap more finely; it "
            "retrains every cell."]


def _undecided(phases: dict) -> list[str]:
    """How many labels the budget, not the training, decided (phases.undecided_*)."""
    ph = phases["settings"]["phases"]
    n, k = phases["n_cells"], phases["undecided_cells"]
    share, gain = ph["undecided_window_share"], ph["undecided_min_gain"]
    where = " (after extension, at their longest budget)" if phases.get("extend") else ""
    return ["", f"**{k} of {n} cells are undecided at budget**{where}: they trained their whole budget and the "
            f"split their phase waits on (train for confusion, test for memorization) ended below "
            f"{spell(ph['accuracy_threshold'])} but was still rising, by at least {gain * 100:g} points of accuracy over the last "
            f"{share:.0%} of the epochs run. Their label is kept (so counts compare with the seeds') and "
            "marked in the diagrams and the explorer; a longer budget may change it."]


def _extension(phases: dict) -> list[str]:
    """Extension rounds (params.yaml extend:): what the longer budgets decided."""
    ext = phases.get("extend")
    if not ext:
        return []
    n, f = phases["n_cells"], ext["factor"]
    per = ", ".join(f"round {r}: {k} cell(s) to {f ** r} x" for r, k in enumerate(ext["cells_per_round"], 1))
    changed = [r for r in phases["cells"] if r["phase"] != r["phase_at_budget"]]
    sweep = phases["settings"]["sweep"]
    out = ["", "## Extension rounds", "",
           f"{ext['undecided_at_budget']} of {n} cells were undecided at their own budget. Each round continued the "
           f"cells still undecided from their saved final state, the curves those of one uninterrupted run of the "
           f"longer budget (docs/extension.md): {per or 'none continued'} the budget. After "
           f"{ext['rounds']} round(s), {phases['undecided_cells']} cell(s) are still undecided and "
           f"{len(changed)} changed phase. The counts above and every diagram use each cell's longest record.", "",
           _table(["phase", "at the budget", "after extension"],
                  [[ph, ext["counts_at_budget"][ph], phases["counts"][ph]] for ph in PHASES])]
    if changed:
        out += ["", "Changed: " + "; ".join(f"{cell_from_row(r, sweep).relpath} {r['phase_at_budget']} -> "
                                            f"{r['phase']} (x{r['budget_multiple']})" for r in changed)]
    return out


def render_report(phases: dict, metadata: dict, figures: dict[str, str], explorer: str | None = None) -> str:
    """Markdown text of results/report.md; ``figures`` maps a title to a path relative to it,
    ``explorer`` is the interactive explorer's path relative to it."""
    n = phases["n_cells"]
    s = metadata["params"]
    thr = s["phases"]
    extras = extra_axes(s["sweep"])
    st = lambda section, name: _setting(s, extras, section, name)  # noqa: E731
    out = ["# Grokking phase diagram", "",
           f"{n} cells: task {st('task', 'name')} (K = {st('task', 'operands')}) with p = "
           f"{st('task', 'modulus')}, model {st('model', 'name')}"
           + ("" if st("model", "name") == "quadratic_mlp"  # S4's network has neither
              else f" (depth {st('model', 'depth')}, {st('model', 'activation')})")
           + f", optimizer {st('training', 'optimizer')} with lr "
           f"{st('training', 'learning_rate')}, loss {st('training', 'loss')}, batch "
           f"{st('training', 'batch_size')}, up to {st('training', 'max_epochs')} epochs"
           + ("" if s["training"]["max_steps"] is None and "training.max_steps" not in extras
              else f" or {st('training', 'max_steps')} steps")
           + ", evaluated every "
           f"{st('training', 'eval_every_epochs')}"
           + ("" if s["training"]["accuracy_every_steps"] is None
              else " (accuracy every step)" if s["training"]["accuracy_every_steps"] == 1
              else f" (accuracy every {st('training', 'accuracy_every_steps')} steps)")
           + ". A split has reached when its accuracy is "
           f">= {spell(thr['accuracy_threshold'])}; grokking means test reached more than "
           f"{spell(thr['grokking_gap_epochs'])} epochs after train."
           + ("".join(f" Swept: {k} ({', '.join(spell(v) for v in s['sweep'][k])})." for k in extras)),
           "",
           "## Phase distribution", "",
           _table(["phase", "cells", "share", "undecided at budget"],
                  [[ph, phases["counts"][ph], f"{phases['counts'][ph] / n:.0%}" if n else "-",
                    sum(r["undecided"] for r in phases["cells"] if r["phase"] == ph)]
                   for ph in PHASES])]
    out += _undecided(phases) + _gap_resolution(phases, metadata) + _seed_uncertainty(phases)
    if explorer:
        out += ["", f"**[Open the interactive explorer]({explorer})** (one self-contained page, works "
                "offline): every panel's phase diagram; hover a point for its settings and first-threshold "
                "steps, click it for its accuracy, loss, parameter-norm and IPR curves."]
    out += _refinement(phases)
    out += _extension(phases)
    if phases["non_finite_cells"]:
        bad = [r for r in phases["cells"] if r["non_finite_loss"]]
        out += ["", f"**{len(bad)} cell(s) stopped on a non-finite loss** (NaN/inf): "
                + ", ".join(cell_from_row(r, s["sweep"]).relpath for r in bad)]
    out += ["", "## Effect of each axis", ""]
    for axis, per in axis_effects(phases).items():
        axis = short_label(axis) if "." in axis else axis
        out += [f"### {axis}", "", _table([axis, *PHASES],
                                         [[spell(v), *(c[ph] for ph in PHASES)] for v, c in per.items()]), ""]
    if any(g["n_seeds"] > 1 for g in phases["groups"]):
        agree = [g["agreement"] for g in phases["groups"]]
        out += ["## Agreement across seeds", "",
                f"Mean agreement with the majority phase: {sum(agree) / len(agree):.0%}; "
                f"{sum(a == 1 for a in agree)} of {len(agree)} points agree fully.", ""]
        ties = [g for g in phases["groups"] if g["phase"] == TIE]
        if ties:
            out += [f"{len(ties)} point(s) have no majority: their voters tie (hatched in the diagrams; "
                    "counted as neither phase): "
                    + "; ".join(f"{_group_label(g, phases)} ({' = '.join(g['tied_phases'])})" for g in ties), ""]
    out += _grokking_steps(phases)
    out += _measurements(phases)
    out += ["## Figures", ""]
    out += [f"![{title}]({path})\n" for title, path in figures.items()]
    out += ["## Per-cell results", "",
            _table([short_label(k) for k in extras]
                   + ["weight decay", "train fraction", "width", "seed", "phase", "undecided", "gap (epochs)",
                      "first train", "first test", "grokking step", "final train acc",
                      "final test acc", "epochs run"] + (["at the budget"] if "extend" in phases else []),
                   [[spell(r[k]) for k in extras]
                    + [spell(r["weight_decay"]), spell(r["train_fraction"]), r["width"], r["seed"],
                       r["phase"], "yes" if r["undecided"] else "-", _fmt(r["gap_epochs"]), _fmt(r["first_train_epoch"]),
                       _fmt(r["first_test_epoch"]), _fmt(r.get("grokking_step")),
                       _fmt(r["final_train_acc"]), _fmt(r["final_test_acc"]), r["epochs_run"]]
                    + ([r["phase_at_budget"] + ("" if r["budget_multiple"] == 1 else " (undecided)")]
                       if "extend" in phases else [])
                    for r in phases["cells"]]),
            "", "## Metadata", "",
            f"- versions: " + ", ".join(f"{k} {v}" for k, v in metadata["versions"].items()),
            f"- git revision: {metadata['git_revision'] or 'unknown'}",
            "- cells per CPU kind (bit for bit only within one kind, docs/reproducibility.md): "
            + "; ".join(f"{k}: {n}" for k, n in metadata.get("cpu_kinds", {}).items()),
            "- cells per kernel: " + ", ".join(f"{k}: {n}" for k, n in metadata.get("kernels", {}).items()),
            f"- training time summed over cells: {metadata['training_seconds_total']:.1f} s "
            f"(slowest cell {metadata['training_seconds_max_cell']:.1f} s)",
            *_efficiency_line(metadata.get("efficiency")),
            f"- created: {metadata['created_utc']}", ""]
    return "\n".join(out)
