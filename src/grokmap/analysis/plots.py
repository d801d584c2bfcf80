"""Figures: discrete phase diagrams, S3-style smooth diagrams, training curves with the
logged measurements, and S2's grokking step against the train fraction.

Diagrams are weight decay (rows) x ``phases.diagram_columns`` (S0: train fraction; S3: learning
rate), with one panel per combination of the other axes that do not vote for the majority
(``phases.majority_over``), e.g. one per width or per optimizer."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize  # noqa: E402

from ..training.grid import spell  # noqa: E402
from .axes import DiagramLayout, axis_label  # noqa: E402
from .aggregate import TIE  # noqa: E402
from .phases import PHASE_COLORS, PHASES, SPLIT_COLORS  # noqa: E402

__all__ = ["PHASE_COLORS", "plot_phase_diagram", "plot_seed_diagrams", "plot_smooth_diagram", "plot_curves",
           "plot_refinement_comparison",
           "plot_grokking_step"]



class _Layout(DiagramLayout):
    """:class:`DiagramLayout` on a matplotlib axis: integer positions, tick labels."""

    def label(self, ax, title: str) -> None:
        ticks = [spell(c) for c in self.cols]
        ax.set_xticks(range(len(ticks)), ticks, rotation=90 if len(ticks) > 6 else 0,
                      fontsize=6 if len(ticks) > 10 else 8)
        ax.set_yticks(range(len(self.wds)), [spell(w) for w in self.wds], fontsize=6 if len(self.wds) > 10 else 8)
        ax.set_xlabel(axis_label(self.col))
        ax.set_ylabel("weight decay")
        ax.set_title(title, fontsize=9)

    def grid(self) -> np.ndarray:
        return np.full((len(self.wds), len(self.cols)), np.nan)

    def cells(self):
        """(row index, column index, weight decay, column value) of every point of a panel."""
        for i, wd in enumerate(self.wds):
            for j, c in enumerate(self.cols):
                yield i, j, wd, c


LEGEND_INCHES = 2.6  # the right-hand strip that holds the legend, whatever the number of panels


def _right(fig) -> float:
    """Where the panels end: the legend keeps its strip on the right."""
    return 1 - LEGEND_INCHES / fig.get_figwidth()


def _panels(n: int, size=(3.6, 3.8), columns: int = 4):
    cols = min(n, columns)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(8.0, size[0] * cols + LEGEND_INCHES), size[1] * rows + 0.6),
                             squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


_PHASE_CMAP = ListedColormap([PHASE_COLORS[p] for p in PHASES])
_PHASE_NORM = BoundaryNorm(np.arange(len(PHASES) + 1) - 0.5, len(PHASES))


TIE_STYLE = {"facecolor": "#e6e6e6", "edgecolor": "#555555", "hatch": "///", "linewidth": 0.0}


def _tie_patch(i: int, j: int):
    """A hatched square over a diagram point whose voters tie (no majority phase)."""
    return plt.Rectangle((j - 0.5, i - 0.5), 1, 1, **TIE_STYLE)


WEAK_STYLE = {"facecolor": "#ffffff", "alpha": 0.45, "linewidth": 0.0, "zorder": 2}
UNDECIDED_STYLE = {"marker": "^", "s": 26, "facecolor": "white", "edgecolor": "black", "linewidth": 0.7, "zorder": 3}


def _undecided_mark(ax, i: int, j: int) -> None:
    """A small white triangle in a point's upper right corner: the budget ended while the split
    its phase waits on was still rising (phases.undecided_*)."""
    ax.scatter([j + 0.3], [i + 0.3], **UNDECIDED_STYLE)


def _phase_legend(fig, tie: bool = False, undecided: bool = False, weak: bool = False) -> None:
    handles = [plt.Rectangle((0, 0), 1, 1, color=PHASE_COLORS[p]) for p in PHASES]
    labels = list(PHASES)
    if tie:
        handles.append(plt.Rectangle((0, 0), 1, 1, **TIE_STYLE))
        labels.append("tie (no majority)")
    if undecided:
        style = {k: v for k, v in UNDECIDED_STYLE.items() if k not in ("s", "zorder")}
        handles.append(plt.Line2D([], [], linestyle="none", markersize=6, markerfacecolor="white",
                                  markeredgecolor="black", marker=style["marker"]))
        labels.append("undecided at budget\n(still rising)")
    if weak:
        handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="#9d9d9d", edgecolor="none"))
        labels.append("lighter: one vote\nwould change it")
    fig.legend(handles, labels, loc="center right", frameon=False)


def plot_phase_diagram(phases: dict, path: str | Path) -> None:
    """Majority phase over the voting axes (seeds): one panel per combination of the other axes."""
    lay = _Layout(phases)
    index = {lay.key(row): g for row, g in lay.points(phases)}
    fig, axes = _panels(len(lay.panels), columns=lay.columns)
    for ax, panel in zip(axes, lay.panels):
        grid = lay.grid()
        for i, j, wd, c in lay.cells():
            g = index.get((panel, wd, c))
            if g is None:
                continue
            if g["phase"] == TIE:
                ax.add_patch(_tie_patch(i, j))
            else:
                grid[i, j] = PHASES.index(g["phase"])
            if g["n_seeds"] > 1 and len(lay.cols) <= 8:
                ax.text(j, i, f"{g['agreement']:.0%}", ha="center", va="center", fontsize=7, color="white")
            if g.get("undecided"):
                _undecided_mark(ax, i, j)
            if g.get("flips_with_one_vote") and g["phase"] != TIE:  # a weak majority: drawn lighter
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, **WEAK_STYLE))
        ax.imshow(grid, cmap=_PHASE_CMAP, norm=_PHASE_NORM, origin="lower", aspect="auto")
        lay.label(ax, lay.title(panel))
    _phase_legend(fig, tie=any(g["phase"] == TIE for g in phases["groups"]),
                  undecided=any(g.get("undecided") for g in phases["groups"]),
                  weak=any(g.get("flips_with_one_vote") and g["phase"] != TIE for g in phases["groups"]))
    n_seeds = max((g["n_seeds"] for g in phases["groups"]), default=1)
    vote = " x ".join(axis_label(a) + "s" for a in lay.vote)
    fig.suptitle("Phase diagram" + (f"\n(majority of {n_seeds} cells over {vote}"
                                    + ("; text = agreement)" if len(lay.cols) <= 8 else ")")
                                    if n_seeds > 1 else ""), fontsize=10)
    fig.tight_layout(rect=(0, 0, _right(fig), 0.93))
    fig.savefig(path)  # dpi: rcParams["savefig.dpi"] (config.yaml plots.dpi)
    plt.close(fig)


def plot_seed_diagrams(phases: dict, path: str | Path) -> None:
    """S3 Appendix A: one diagram per combination of the voting axes (e.g. data seed x model
    seed), each cell's own phase, beside the majority diagram."""
    lay = _Layout(phases)
    combos = []
    for r in phases["cells"]:
        combo = tuple(r[a] for a in lay.vote)
        if combo not in combos:
            combos.append(combo)
    cell_of = {(tuple(r[a] for a in lay.vote),) + lay.key(r): r for r in phases["cells"]}
    index = {(combo,) + lay.key(row): cell_of.get((combo,) + lay.key(g))
             for row, g in lay.points(phases) for combo in combos}
    panels = [(combo, panel) for panel in lay.panels for combo in combos]
    fig, axes = _panels(len(panels), size=(3.2, 3.4), columns=max(3, min(len(combos), 5)))
    for ax, (combo, panel) in zip(axes, panels):
        grid = lay.grid()
        for i, j, wd, c in lay.cells():
            r = index.get((combo, panel, wd, c))
            if r is not None:
                grid[i, j] = PHASES.index(r["phase"])
                if r.get("undecided"):
                    _undecided_mark(ax, i, j)
        ax.imshow(grid, cmap=_PHASE_CMAP, norm=_PHASE_NORM, origin="lower", aspect="auto")
        lay.label(ax, lay.title(panel, " ".join(f"{axis_label(a)}={spell(v)}" for a, v in zip(lay.vote, combo))))
    _phase_legend(fig, undecided=any(r.get("undecided") for r in phases["cells"]))
    fig.suptitle(f"Phase diagram of each {' x '.join(axis_label(a) for a in lay.vote)}", fontsize=10)
    fig.tight_layout(rect=(0, 0, _right(fig), 0.95))
    fig.savefig(path)  # dpi: rcParams["savefig.dpi"] (config.yaml plots.dpi)
    plt.close(fig)


def smooth_values(phases: dict) -> dict:
    """Per group (its :class:`_Layout` key): (kind, value) for the smooth diagram (S3, 4.2).

    generalizing (grokking/comprehension): log10(1 + max(0, T_test - T_train));
    memorization: log10(T_train); confusion: None (drawn darkest); a tie: None (hatched).
    Values are means over the voting cells that share the group's majority phase.
    """
    lay = _Layout(phases)
    by_group: dict[tuple, list] = {}
    for row in phases["cells"]:
        by_group.setdefault(lay.key(row), []).append(row)
    out = {}
    for g in phases["groups"]:
        key = lay.key(g)
        members = [r for r in by_group[key] if r["phase"] == g["phase"]]
        if g["phase"] in ("grokking", "comprehension"):
            vals = [math.log10(1 + max(0, r["first_test_epoch"] - r["first_train_epoch"])) for r in members]
            out[key] = ("generalizing", float(np.mean(vals)))
        elif g["phase"] == "memorization":
            out[key] = ("memorization", float(np.mean([math.log10(r["first_train_epoch"]) for r in members])))
        else:
            out[key] = (g["phase"], None)  # confusion or tie
    return out


def plot_smooth_diagram(phases: dict, path: str | Path, max_epochs: int) -> None:
    """S3's smooth phase diagram with one colour bar per shaded region; the scales run up to
    ``phases.smooth_scale_max`` (S3's C) or else log10(1 + max_epochs)."""
    lay = _Layout(phases)
    values = smooth_values(phases)
    at = {lay.key(row): lay.key(g) for row, g in lay.points(phases)}  # drawn point -> its group
    gap = phases["settings"]["phases"]["grokking_gap_epochs"]
    top = phases["settings"]["phases"]["smooth_scale_max"] or math.log10(1 + max_epochs)
    gen_norm, mem_norm = Normalize(0, top), Normalize(0, top)
    gen_cmap, mem_cmap = plt.get_cmap("YlGn_r"), plt.get_cmap("Reds")
    fig, axes = _panels(len(lay.panels), columns=lay.columns)
    for ax, panel in zip(axes, lay.panels):
        rgba = np.ones((len(lay.wds), len(lay.cols), 4))
        for i, j, wd, c in lay.cells():
            kind_value = values.get(at.get((panel, wd, c)))
            if kind_value is None:
                continue
            kind, v = kind_value
            if kind == "generalizing":
                rgba[i, j] = gen_cmap(gen_norm(v))
                if v > math.log10(1 + gap):
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                               edgecolor="black", linewidth=1.2))
            elif kind == "memorization":
                rgba[i, j] = mem_cmap(mem_norm(v))
            elif kind == TIE:
                ax.add_patch(_tie_patch(i, j))
            else:
                rgba[i, j] = (0.05, 0.05, 0.05, 1.0)
        ax.imshow(rgba, origin="lower", aspect="auto")
        lay.label(ax, lay.title(panel))
    fig.tight_layout(rect=(0, 0, _right(fig), 0.92))
    cax1 = fig.add_axes((0.82, 0.15, 0.02, 0.7))
    cb1 = fig.colorbar(plt.cm.ScalarMappable(gen_norm, gen_cmap), cax=cax1)
    cb1.set_label("log10(1 + max(0, T_test - T_train))", fontsize=7)
    cb1.ax.set_title("general-\nizing", fontsize=7)
    cb1.ax.axhline(math.log10(1 + gap), color="black", linewidth=2)
    cax2 = fig.add_axes((0.91, 0.15, 0.02, 0.7))
    cb2 = fig.colorbar(plt.cm.ScalarMappable(mem_norm, mem_cmap), cax=cax2)
    cb2.set_label("log10(T_train); confusion is black", fontsize=7)
    cb2.ax.set_title("memor-\nization", fontsize=7)
    fig.suptitle(f"Smooth phase diagram (S3)\noutlined squares and the bar's black line mark "
                 f"the grokking gap (> {spell(gap)} epochs)", fontsize=9)
    fig.savefig(path)  # dpi: rcParams["savefig.dpi"] (config.yaml plots.dpi)
    plt.close(fig)


_MEASURES = (("param_norm", "parameter L2 norm (S1)", "#555555"),
             ("subnetwork_fraction", "sparsity: sub-network share (S1)", "#33a02c"),
             ("ipr", "Fourier IPR r=2 (S4)", "#b15928"))


def plot_curves(examples: dict, path: str | Path, threshold: float, loss_name: str = "cross-entropy") -> None:
    """One column per phase that occurred (its representative cell): accuracy, loss, and
    the logged measurements (parameter norm; S1's sparsity and IPR) on the same steps; a
    measurement row appears only when some example logged it (no empty panels)."""
    names = [p for p in PHASES if p in examples]
    cols = max(1, len(names))

    def logged(keys) -> bool:
        return any(all(v is not None for v in examples[ph][1].get(k) or [None]) for ph in names for k in keys)

    measure_rows = [row for row in (("parameter L2 norm", None, _MEASURES[:1]), ("fraction / IPR", (-0.02, 1.02), _MEASURES[1:]))
                    if logged([m[0] for m in row[2]])]
    n_rows = 2 + len(measure_rows)
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.8 * cols, 2.6 * n_rows + 0.1), squeeze=False, sharex="col")
    for col, phase in enumerate(names):
        label, curves = examples[phase]
        x = curves.get("step") or curves["epoch"]
        acc, loss = axes[0][col], axes[1][col]
        acc.plot(x, curves["train_acc"], label="train", color=SPLIT_COLORS["train"])
        acc.plot(x, curves["test_acc"], label="test", color=SPLIT_COLORS["test"])
        acc.set_xlim(0, x[-1])  # the axis ends where the cell's training did
        acc.axhline(threshold, color="grey", linestyle=":", linewidth=1)
        acc.set_ylim(-0.02, 1.02)
        acc.set_title(f"{phase}\n{label}", fontsize=7, color=PHASE_COLORS[phase])
        acc.set_ylabel("accuracy")
        acc.legend(fontsize=7)
        loss.semilogy(x, curves["train_loss"], color=SPLIT_COLORS["train"])
        loss.semilogy(x, curves["test_loss"], color=SPLIT_COLORS["test"])
        loss.set_ylabel(loss_name)
        for r, (ylabel, ylim, measures) in enumerate(measure_rows, start=2):
            ax = axes[r][col]
            for key, name, color in measures:
                values = curves.get(key)
                if values and all(v is not None for v in values):
                    ax.plot(x, values, color=color, label=name)
            ax.set_ylabel(ylabel)
            if ylim:
                ax.set_ylim(*ylim)
            if len(measures) > 1 and ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6)
        axes[-1][col].set_xlabel("optimizer step")
    fig.tight_layout()
    fig.savefig(path)  # dpi: rcParams["savefig.dpi"] (config.yaml plots.dpi)
    plt.close(fig)


def plot_grokking_step(phases: dict, path: str | Path) -> None:
    """S2: grokking step (first step with test accuracy >= phases.grokking_step_accuracy)
    against the diagram's column axis (S2: train fraction), mean with the voting cells'
    standard deviation as error bars; one line per weight decay, one panel per other axes."""
    lay = _Layout(phases)
    index = {lay.key(g): g for g in phases["groups"]}
    fig, axes = _panels(len(lay.panels), size=(4.2, 3.6), columns=3)
    cmap = plt.get_cmap("viridis")
    numeric = all(isinstance(c, (int, float)) for c in lay.cols)
    xs_of = (lambda c: c) if numeric else lay.cols.index
    drawn = False
    for ax, panel in zip(axes, lay.panels):
        for i, wd in enumerate(lay.wds):
            xs, means, stds = [], [], []
            for c in lay.cols:
                g = index.get((panel, wd, c))
                if g and g["grokking_steps"]:
                    xs.append(xs_of(c))
                    means.append(float(np.mean(g["grokking_steps"])))
                    stds.append(float(np.std(g["grokking_steps"])))
            if xs:
                drawn = True
                ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, linewidth=1.2,
                            color=cmap(i / max(1, len(lay.wds) - 1)), label=f"wd {spell(wd)}")
        if numeric and min(lay.cols) > 0 and max(lay.cols) / min(lay.cols) >= 100:
            ax.set_xscale("log")
        ax.set_xlabel(axis_label(lay.col))
        ax.set_ylabel("grokking step")
        ax.set_title(lay.title(panel), fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.set_yscale("log")
            ax.legend(fontsize=6, ncol=2 if len(lay.wds) > 8 else 1)
        else:
            ax.text(0.5, 0.5, "no cell reached the threshold", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
    xs_all = [xs_of(c) for c in lay.cols]
    tops = [ax.get_ylim() for ax in axes if ax.get_legend_handles_labels()[0]]
    for ax in axes:  # every panel on the same axes, so panels compare at a glance
        if ax.get_xscale() == "linear":
            pad = 0.05 * (max(xs_all) - min(xs_all) or 1.0)
            ax.set_xlim(min(xs_all) - pad, max(xs_all) + pad)
        if tops and ax.get_legend_handles_labels()[0]:
            ax.set_ylim(min(t[0] for t in tops), max(t[1] for t in tops))
    thr = spell(phases["settings"]["phases"]["grokking_step_accuracy"])
    fig.suptitle(f"Grokking step (first step with test accuracy >= {thr}); bars: std over seeds"
                 + ("" if drawn else " - none reached"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path)  # dpi: rcParams["savefig.dpi"] (config.yaml plots.dpi)
    plt.close(fig)


TRACES = {"train_acc": "train accuracy", "test_acc": "test accuracy",
           "param_norm": "parameter L2 norm (S1 5.1)",
           "subnetwork_fraction": "sparsity: sub-network share (S1 5.2)",
           "ipr": "Fourier IPR, r = 2 (S4)",
           "softmax_collapse": "softmax collapse: share of train examples with loss exactly 0"}


def plot_measure_traces(runs: list, path: str | Path, hue_label: str, keys: list[str], threshold: float,
                        aligned: bool) -> None:
    """One panel per curve in ``keys`` (:data:`TRACES`), one line per cell, one colour per hue
    value. ``runs``: (hue value, curves, grokking step or None). ``aligned``: x is the step minus
    the cell's grokking step (S1 5.1-5.2: what changes around it); otherwise the step itself
    with each cell's grokking step marked (S4 figure 5: the IPR's regimes)."""
    unknown = [k for k in keys if k not in TRACES]
    if unknown:
        raise ValueError(f"unknown curve(s) {', '.join(unknown)}; allowed: {', '.join(TRACES)}")
    hues = sorted({h for h, _, _ in runs}, key=lambda v: (isinstance(v, str), v))
    cmap = plt.get_cmap("viridis")
    colour = {h: cmap(i / max(1, len(hues) - 1)) for i, h in enumerate(hues)}
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), sharex=True, squeeze=False)
    axes = axes[0]
    for hue, curves, grok in runs:
        x = np.asarray(curves["step"], dtype=float) - (grok if aligned else 0)
        for ax, key in zip(axes, keys):
            y = [np.nan if v is None else v for v in curves[key]]
            ax.plot(x, y, color=colour[hue], linewidth=1, alpha=0.85)
            if not aligned and grok is not None:
                ax.axvline(grok, color=colour[hue], linestyle=":", linewidth=0.8)
    for ax, key in zip(axes, keys):
        if aligned:
            ax.axvline(0, color="black", linestyle=":", linewidth=1)
        if key.endswith("_acc"):
            ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
        if key in ("train_acc", "test_acc", "softmax_collapse"):
            ax.set_ylim(-0.02, 1.02)
        elif key == "subnetwork_fraction":
            ax.set_ylim(top=1.005)  # a share of neurons; its changes are a few per cent
        ax.set_ylabel(TRACES[key], fontsize=8)
        ax.set_xlabel("optimizer step - grokking step" if aligned else "optimizer step", fontsize=8)
        ax.tick_params(labelsize=7)
    handles = [plt.Line2D([], [], color=colour[h], label=f"{hue_label} = {spell(h)}") for h in hues]
    axes[0].legend(handles=handles, fontsize=7, loc="best")
    what = (f"{len(runs)} cells that grokked, aligned at their grokking step" if aligned else
            f"{len(runs)} cells; dotted: each cell's grokking step")
    fig.suptitle(f"{what} (test accuracy >= {spell(threshold)})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)  # dpi: rcParams["savefig.dpi"] (config.yaml plots.dpi)
    plt.close(fig)


def plot_refinement_comparison(refined: dict, full: dict, path: str | Path) -> None:
    """A refined sweep beside a full grid of the same lattice (issue 20): the full grid's
    phases, the refined map (each lattice point drawn with the trained cell covering it, the
    trained cells dotted by round), and the points where the two disagree."""
    full_lay, ref_lay = _Layout(full), _Layout(refined)
    truth = {full_lay.key(g): g for g in full["groups"]}
    drawn = {ref_lay.key(row): g for row, g in ref_lay.points(refined)}
    trained = {ref_lay.key(g): min(r["round"] for r in refined["cells"] if ref_lay.key(r) == ref_lay.key(g))
               for g in refined["groups"]}
    panels = full_lay.panels
    fig, axes = plt.subplots(len(panels), 3, figsize=(13.5, 4.4 * len(panels)), squeeze=False)
    markers = {0: ("o", 30), 1: ("o", 14), 2: ("o", 6)}
    for row_axes, panel in zip(axes, panels):
        a_full, a_ref, a_diff = row_axes
        g_full, g_ref, diff = full_lay.grid(), full_lay.grid(), full_lay.grid()
        for i, j, wd, c in full_lay.cells():
            f, r = truth.get((panel, wd, c)), drawn.get((panel, wd, c))
            if f is not None and f["phase"] in PHASES:
                g_full[i, j] = PHASES.index(f["phase"])
            if r is not None and r["phase"] in PHASES:
                g_ref[i, j] = PHASES.index(r["phase"])
            if f is not None and r is not None:
                diff[i, j] = 0 if f["phase"] == r["phase"] else 1
        a_full.imshow(g_full, cmap=_PHASE_CMAP, norm=_PHASE_NORM, origin="lower", aspect="auto")
        a_ref.imshow(g_ref, cmap=_PHASE_CMAP, norm=_PHASE_NORM, origin="lower", aspect="auto")
        for (p, wd, c), rnd in trained.items():
            if p == panel and wd in full_lay.wds and c in full_lay.cols:
                m, size = markers.get(rnd, ("o", 4))
                a_ref.scatter(full_lay.cols.index(c), full_lay.wds.index(wd), marker=m, s=size,
                              facecolor="white", edgecolor="black", linewidths=0.5)
        a_diff.imshow(diff, cmap=ListedColormap(["#f0f0f0", "#000000"]), vmin=0, vmax=1, origin="lower",
                      aspect="auto")
        n_full = sum(1 for k in truth if k[0] == panel)
        n_bad = int(np.nansum(diff))
        full_lay.label(a_full, full_lay.title(panel, f"full grid: {full['n_cells']} cells"))
        full_lay.label(a_ref, full_lay.title(panel, f"refined: {refined['n_cells']} cells "
                                                    f"(rounds {refined['refine']['cells_per_round']})"))
        full_lay.label(a_diff, full_lay.title(panel, f"disagree: {n_bad} of {n_full} points "
                                                     f"({1 - n_bad / max(1, n_full):.1%} agree)"))
    _phase_legend(fig)
    fig.suptitle("Adaptive refinement against the full grid (dots: trained cells, larger = earlier round)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.86, 0.95))
    fig.savefig(path)  # dpi: rcParams["savefig.dpi"] (config.yaml plots.dpi)
    plt.close(fig)
