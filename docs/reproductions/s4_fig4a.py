# S4's Figure 4a (grokking time against the train fraction, three optimizers), recomputed from the
# committed records s4_fig4a_{gd,momentum,adamw}.csv (docs/reproductions/README.md, S4):
#   .venv/bin/python docs/reproductions/s4_fig4a.py            # the table and s4_fig4a.png
# Grokking time: the first evaluated step with test accuracy >= 0.99 (the records' grokking_step);
# a cell that never reaches it is drawn at its budget with an open marker (set a little apart).
import sys
from pathlib import Path

import pandas as pd

here = Path(__file__).parent
RUNS = {"GD, lr 300": "s4_fig4a_gd", "GD + momentum 0.9, lr 30": "s4_fig4a_momentum", "AdamW, lr 0.01": "s4_fig4a_adamw"}
tables = {label: pd.read_csv(here / f"{name}.csv") for label, name in RUNS.items() if (here / f"{name}.csv").exists()}
if not tables:
    sys.exit("no s4_fig4a_*.csv record yet")


def cell(r) -> str:
    if pd.notna(r.grokking_step):
        return f"{int(r.grokking_step):,}"
    return f"not by {int(r.steps_run):,} (test {r.final_test_acc:.2f})"


fractions = sorted({f for t in tables.values() for f in t.train_fraction})
print("| train fraction | " + " | ".join(tables) + " |")
print("|---" * (len(tables) + 1) + "|")
for f in fractions:
    row = [cell(t[t.train_fraction == f].iloc[0]) if (t.train_fraction == f).any() else "-" for t in tables.values()]
    print(f"| {f} | " + " | ".join(row) + " |")
for label, t in tables.items():
    grok = t[t.grokking_step.notna()].sort_values("train_fraction")
    lowest = grok.train_fraction.min() if len(grok) else None
    print(f"{label}: groks at {len(grok)} of {len(t)} fractions; the lowest that groks: {lowest}; phases "
          + ", ".join(f"{r.train_fraction}: {r.phase}" for r in t.sort_values("train_fraction").itertuples()))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(4.6, 3.4))
for k, ((label, t), marker) in enumerate(zip(tables.items(), "osD")):
    t = t.sort_values("train_fraction")
    done = t[t.grokking_step.notna()]
    line, = ax.plot(done.train_fraction, done.grokking_step, marker=marker, label=label)
    stalled = t[t.grokking_step.isna()]
    ax.plot(stalled.train_fraction + 0.006 * (k - 1), stalled.steps_run, marker=marker, linestyle="none",
            markerfacecolor="none", color=line.get_color())
ax.set_yscale("log")
ax.set_xlabel("train fraction")
ax.set_ylabel("steps to test accuracy 0.99")
ax.set_title("S4 Fig. 4a: quadratic MLP, MSE, wd 0, seed 0", fontsize=9)
ax.legend(fontsize=7, title="open: not grokked by the budget", title_fontsize=7)
fig.tight_layout()
fig.savefig(here / "s4_fig4a.png", dpi=130)
print(f"wrote {here / 's4_fig4a.png'}")
