"""Figures: discrete phase diagrams, S3-style smooth diagrams, training curves."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize  # noqa: E402

from .grid import spell  # noqa: E402
from .phases import PHASES  # noqa: E402

__all__ = ["PHASE_COLORS", "plot_phase_diagram", "plot_smooth_diagram", "plot_curves"]

# One fixed colour per phase, so a diagram missing a phase keeps the others' colours.
PHASE_COLORS = {"confusion": "#3b3b3b", "memorization": "#d62728",
                "grokking": "#ff9f1c", "comprehension": "#2a9d8f"}


def _axes_values(phases: dict):
    sweep = phases["settings"]["sweep"]
    return (sorted(float(v) for v in sweep["weight_decay"]),
            sorted(float(v) for v in sweep["train_fraction"]),
            sorted(int(v) for v in sweep["width"]))


def _panels(n: int):
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 1.6, 3.8), squeeze=False)
    return fig, axes[0]


def _label(ax, wds, fracs, width):
    ax.set_xticks(range(len(fracs)), [spell(f) for f in fracs])
    ax.set_yticks(range(len(wds)), [spell(w) for w in wds])
    ax.set_xlabel("train fraction")
    ax.set_ylabel("weight decay")
    ax.set_title(f"width {width}")


def plot_phase_diagram(phases: dict, path: str | Path) -> None:
    """Majority phase over seeds: one panel per width, weight decay x train fraction."""
    wds, fracs, widths = _axes_values(phases)
    index = {(g["weight_decay"], g["train_fraction"], g["width"]): g for g in phases["groups"]}
    cmap = ListedColormap([PHASE_COLORS[p] for p in PHASES])
    norm = BoundaryNorm(np.arange(len(PHASES) + 1) - 0.5, cmap.N)
    fig, axes = _panels(len(widths))
    for ax, width in zip(axes, widths):
        grid = np.full((len(wds), len(fracs)), np.nan)
        for i, wd in enumerate(wds):
            for j, fr in enumerate(fracs):
                g = index.get((wd, fr, width))
                if g is None:
                    continue
                grid[i, j] = PHASES.index(g["phase"])
                if g["n_seeds"] > 1:
                    ax.text(j, i, f"{g['agreement']:.0%}", ha="center", va="center",
                            fontsize=7, color="white")
        ax.imshow(grid, cmap=cmap, norm=norm, origin="lower", aspect="auto")
        _label(ax, wds, fracs, width)
    handles = [plt.Rectangle((0, 0), 1, 1, color=PHASE_COLORS[p]) for p in PHASES]
    fig.legend(handles, PHASES, loc="center right", frameon=False)
    n_seeds = max((g["n_seeds"] for g in phases["groups"]), default=1)
    fig.suptitle("Phase diagram" + (f" (majority of {n_seeds} seeds; text = agreement)"
                                    if n_seeds > 1 else ""))
    fig.tight_layout(rect=(0, 0, 0.84, 0.94))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def smooth_values(phases: dict) -> dict:
    """Per (wd, frac, width): (kind, value) for the smooth diagram (S3, section 4.2).

    generalizing (grokking/comprehension): log10(1 + max(0, T_test - T_train));
    memorization: log10(T_train); confusion: None (drawn darkest). Values are means over
    the seeds that share the group's majority phase.
    """
    by_group: dict[tuple, list] = {}
    for row in phases["cells"]:
        by_group.setdefault((row["weight_decay"], row["train_fraction"], row["width"]), []).append(row)
    out = {}
    for g in phases["groups"]:
        key = (g["weight_decay"], g["train_fraction"], g["width"])
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
    wds, fracs, widths = _axes_values(phases)
    values = smooth_values(phases)
    gap = phases["settings"]["phases"]["grokking_gap_epochs"]
    top = math.log10(1 + max_epochs)
    gen_norm, mem_norm = Normalize(0, top), Normalize(0, top)
    gen_cmap, mem_cmap = plt.get_cmap("YlGn_r"), plt.get_cmap("Reds")
    fig, axes = _panels(len(widths))
    for ax, width in zip(axes, widths):
        rgba = np.ones((len(wds), len(fracs), 4))
        for i, wd in enumerate(wds):
            for j, fr in enumerate(fracs):
                kind_value = values.get((wd, fr, width))
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
        _label(ax, wds, fracs, width)
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


def plot_curves(examples: dict, path: str | Path, threshold: float) -> None:
    """Accuracy and loss curves of one representative cell per phase that occurred."""
    names = [p for p in PHASES if p in examples]
    fig, axes = plt.subplots(2, max(1, len(names)), figsize=(3.8 * max(1, len(names)), 6),
                             squeeze=False)
    for col, phase in enumerate(names):
        label, curves = examples[phase]
        acc, loss = axes[0][col], axes[1][col]
        acc.plot(curves["epoch"], curves["train_acc"], label="train", color="#1f77b4")
        acc.plot(curves["epoch"], curves["test_acc"], label="test", color="#ff7f0e")
        acc.axhline(threshold, color="grey", linestyle=":", linewidth=1)
        acc.set_ylim(-0.02, 1.02)
        acc.set_title(f"{phase}\n{label}", fontsize=8, color=PHASE_COLORS[phase])
        acc.set_ylabel("accuracy")
        acc.legend(fontsize=7)
        loss.semilogy(curves["epoch"], curves["train_loss"], color="#1f77b4")
        loss.semilogy(curves["epoch"], curves["test_loss"], color="#ff7f0e")
        loss.set_xlabel("epoch")
        loss.set_ylabel("cross-entropy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
