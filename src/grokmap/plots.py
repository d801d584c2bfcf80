"""Figures: discrete phase diagrams, S3-style smooth diagrams, training curves with the
logged measurements, and S2's grokking step against the train fraction.

Diagrams have one panel per width and per combination of the extra sweep axes (e.g. one
per optimizer), each weight decay x train fraction."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize  # noqa: E402

from .grid import extra_axes, short_label, spell  # noqa: E402
from .phases import PHASES  # noqa: E402

__all__ = ["PHASE_COLORS", "plot_phase_diagram", "plot_smooth_diagram", "plot_curves",
           "plot_grokking_step"]

# One fixed colour per phase, so a diagram missing a phase keeps the others' colours.
PHASE_COLORS = {"confusion": "#3b3b3b", "memorization": "#d62728",
                "grokking": "#ff9f1c", "comprehension": "#2a9d8f"}


def _axes_values(phases: dict):
    """(weight decays, train fractions, panels); a panel is (extra values tuple, width)."""
    sweep = phases["settings"]["sweep"]
    extras = extra_axes(sweep)
    panels = []
    for g in phases["groups"]:
        key = (tuple(g[k] for k in extras), g["width"])
        if key not in panels:
            panels.append(key)
    return (sorted(float(v) for v in sweep["weight_decay"]),
            sorted(float(v) for v in sweep["train_fraction"]), panels)


def _group_key(row: dict, extras: list[str]) -> tuple:
    return (tuple(row[k] for k in extras), row["weight_decay"], row["train_fraction"], row["width"])


def _panel_title(phases: dict, panel: tuple) -> str:
    extras = extra_axes(phases["settings"]["sweep"])
    values, width = panel
    return " ".join([f"{short_label(k)}={spell(v)}" for k, v in zip(extras, values)] + [f"width {width}"])


def _panels(n: int, size=(3.6, 3.8), columns: int = 4):
    cols = min(n, columns)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols + 1.6, size[1] * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def _label(ax, wds, fracs, title):
    ax.set_xticks(range(len(fracs)), [spell(f) for f in fracs])
    ax.set_yticks(range(len(wds)), [spell(w) for w in wds])
    ax.set_xlabel("train fraction")
    ax.set_ylabel("weight decay")
    ax.set_title(title, fontsize=9)


def plot_phase_diagram(phases: dict, path: str | Path) -> None:
    """Majority phase over seeds: one panel per width (and extra-axes combination)."""
    wds, fracs, panels = _axes_values(phases)
    extras = extra_axes(phases["settings"]["sweep"])
    index = {_group_key(g, extras): g for g in phases["groups"]}
    cmap = ListedColormap([PHASE_COLORS[p] for p in PHASES])
    norm = BoundaryNorm(np.arange(len(PHASES) + 1) - 0.5, cmap.N)
    fig, axes = _panels(len(panels))
    for ax, (values, width) in zip(axes, panels):
        grid = np.full((len(wds), len(fracs)), np.nan)
        for i, wd in enumerate(wds):
            for j, fr in enumerate(fracs):
                g = index.get((values, wd, fr, width))
                if g is None:
                    continue
                grid[i, j] = PHASES.index(g["phase"])
                if g["n_seeds"] > 1:
                    ax.text(j, i, f"{g['agreement']:.0%}", ha="center", va="center",
                            fontsize=7, color="white")
        ax.imshow(grid, cmap=cmap, norm=norm, origin="lower", aspect="auto")
        _label(ax, wds, fracs, _panel_title(phases, (values, width)))
    handles = [plt.Rectangle((0, 0), 1, 1, color=PHASE_COLORS[p]) for p in PHASES]
    fig.legend(handles, PHASES, loc="center right", frameon=False)
    n_seeds = max((g["n_seeds"] for g in phases["groups"]), default=1)
    fig.suptitle("Phase diagram" + (f" (majority of {n_seeds} seeds; text = agreement)"
                                    if n_seeds > 1 else ""))
    fig.tight_layout(rect=(0, 0, 0.84, 0.94))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def smooth_values(phases: dict) -> dict:
    """Per group (extra values, wd, frac, width): (kind, value) for the smooth diagram (S3, 4.2).

    generalizing (grokking/comprehension): log10(1 + max(0, T_test - T_train));
    memorization: log10(T_train); confusion: None (drawn darkest). Values are means over
    the seeds that share the group's majority phase.
    """
    extras = extra_axes(phases["settings"]["sweep"])
    by_group: dict[tuple, list] = {}
    for row in phases["cells"]:
        by_group.setdefault(_group_key(row, extras), []).append(row)
    out = {}
    for g in phases["groups"]:
        key = _group_key(g, extras)
        members = [r for r in by_group[key] if r["phase"] == g["phase"]]
        if g["phase"] in ("grokking", "comprehension"):
            vals = [math.log10(1 + max(0, r["first_test_epoch"] - r["first_train_epoch"])) for r in members]
            out[key] = ("generalizing", float(np.mean(vals)))
        elif g["phase"] == "memorization":
            out[key] = ("memorization", float(np.mean([math.log10(r["first_train_epoch"]) for r in members])))
        else:
            out[key] = ("confusion", None)
    return out


def plot_smooth_diagram(phases: dict, path: str | Path, max_epochs: int) -> None:
    """S3's smooth phase diagram with one colour bar per shaded region."""
    wds, fracs, panels = _axes_values(phases)
    values = smooth_values(phases)
    gap = phases["settings"]["phases"]["grokking_gap_epochs"]
    top = math.log10(1 + max_epochs)
    gen_norm, mem_norm = Normalize(0, top), Normalize(0, top)
    gen_cmap, mem_cmap = plt.get_cmap("YlGn_r"), plt.get_cmap("Reds")
    fig, axes = _panels(len(panels))
    for ax, (extra_values, width) in zip(axes, panels):
        rgba = np.ones((len(wds), len(fracs), 4))
        for i, wd in enumerate(wds):
            for j, fr in enumerate(fracs):
                kind_value = values.get((extra_values, wd, fr, width))
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
                else:
                    rgba[i, j] = (0.05, 0.05, 0.05, 1.0)
        ax.imshow(rgba, origin="lower", aspect="auto")
        _label(ax, wds, fracs, _panel_title(phases, (extra_values, width)))
    fig.tight_layout(rect=(0, 0, 0.80, 0.92))
    cax1 = fig.add_axes((0.82, 0.15, 0.02, 0.7))
    cb1 = fig.colorbar(plt.cm.ScalarMappable(gen_norm, gen_cmap), cax=cax1)
    cb1.set_label("log10(1 + max(0, T_test - T_train))", fontsize=7)
    cb1.ax.set_title("generalizing", fontsize=7)
    cb1.ax.axhline(math.log10(1 + gap), color="black", linewidth=2)
    cax2 = fig.add_axes((0.91, 0.15, 0.02, 0.7))
    cb2 = fig.colorbar(plt.cm.ScalarMappable(mem_norm, mem_cmap), cax=cax2)
    cb2.set_label("log10(T_train); confusion is black", fontsize=7)
    cb2.ax.set_title("memorization", fontsize=7)
    fig.suptitle(f"Smooth phase diagram (S3): outlined squares and the bar's black line mark "
                 f"the grokking gap (> {spell(gap)} epochs)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


_MEASURES = (("param_norm", "parameter L2 norm (S1)", "#6a3d9a"),
             ("active_fraction", "active hidden neurons (S1)", "#33a02c"),
             ("ipr", "Fourier IPR r=2 (S4)", "#b15928"))


def plot_curves(examples: dict, path: str | Path, threshold: float, loss_name: str = "cross-entropy") -> None:
    """One column per phase that occurred (its representative cell): accuracy, loss, and
    the logged measurements (parameter norm; active fraction and IPR) on the same steps."""
    names = [p for p in PHASES if p in examples]
    cols = max(1, len(names))
    fig, axes = plt.subplots(4, cols, figsize=(3.8 * cols, 10.5), squeeze=False, sharex="col")
    for col, phase in enumerate(names):
        label, curves = examples[phase]
        x = curves.get("step") or curves["epoch"]
        acc, loss, norm, frac = (axes[r][col] for r in range(4))
        acc.plot(x, curves["train_acc"], label="train", color="#1f77b4")
        acc.plot(x, curves["test_acc"], label="test", color="#ff7f0e")
        acc.axhline(threshold, color="grey", linestyle=":", linewidth=1)
        acc.set_ylim(-0.02, 1.02)
        acc.set_title(f"{phase}\n{label}", fontsize=7, color=PHASE_COLORS[phase])
        acc.set_ylabel("accuracy")
        acc.legend(fontsize=7)
        loss.semilogy(x, curves["train_loss"], color="#1f77b4")
        loss.semilogy(x, curves["test_loss"], color="#ff7f0e")
        loss.set_ylabel(loss_name)
        for ax, (key, name, color) in ((norm, _MEASURES[0]), (frac, _MEASURES[1]), (frac, _MEASURES[2])):
            values = curves.get(key)
            if values and all(v is not None for v in values):
                ax.plot(x, values, color=color, label=name)
        norm.set_ylabel("parameter L2 norm")
        frac.set_ylabel("fraction / IPR")
        frac.set_ylim(-0.02, 1.02)
        frac.legend(fontsize=6)
        frac.set_xlabel("optimizer step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_grokking_step(phases: dict, path: str | Path) -> None:
    """S2: grokking step (first step with test accuracy >= phases.grokking_step_accuracy)
    against the train fraction, mean with the seeds' standard deviation as error bars; one
    line per weight decay, one panel per width (and extra-axes combination)."""
    wds, fracs, panels = _axes_values(phases)
    extras = extra_axes(phases["settings"]["sweep"])
    index = {_group_key(g, extras): g for g in phases["groups"]}
    fig, axes = _panels(len(panels), size=(4.2, 3.6), columns=3)
    cmap = plt.get_cmap("viridis")
    drawn = False
    for ax, (values, width) in zip(axes, panels):
        for i, wd in enumerate(wds):
            xs, means, stds = [], [], []
            for fr in fracs:
                g = index.get((values, wd, fr, width))
                if g and g["grokking_steps"]:
                    xs.append(fr)
                    means.append(float(np.mean(g["grokking_steps"])))
                    stds.append(float(np.std(g["grokking_steps"])))
            if xs:
                drawn = True
                ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, linewidth=1.2,
                            color=cmap(i / max(1, len(wds) - 1)), label=f"wd {spell(wd)}")
        ax.set_xlabel("train fraction")
        ax.set_ylabel("grokking step")
        ax.set_title(_panel_title(phases, (values, width)), fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no cell reached the threshold", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
    pad = 0.05 * (max(fracs) - min(fracs) or 1.0)
    tops = [ax.get_ylim() for ax in axes if ax.get_legend_handles_labels()[0]]
    for ax in axes:  # every panel on the same axes, so panels compare at a glance
        ax.set_xlim(min(fracs) - pad, max(fracs) + pad)
        if tops and ax.get_legend_handles_labels()[0]:
            ax.set_ylim(min(t[0] for t in tops), max(t[1] for t in tops))
    thr = spell(phases["settings"]["phases"]["grokking_step_accuracy"])
    fig.suptitle(f"Grokking step (first step with test accuracy >= {thr}); bars: std over seeds"
                 + ("" if drawn else " - none reached"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
