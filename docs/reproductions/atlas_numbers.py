# The numbers of docs/atlas.md, recomputed from the committed record:
#   python docs/reproductions/atlas_numbers.py docs/reproductions/atlas_precision_loss.csv
# One row per cell: weight_decay, train_fraction, seed, precision, loss, phase, ... columns of
# scripts/reproduction_record.py with --columns max_softmax_collapse,final_softmax_collapse,
# final_train_acc,final_test_acc,undecided.
import sys

import pandas as pd

df = pd.read_csv(sys.argv[1])
if "seed" not in df:  # a record of one seed has no seed column
    df["seed"] = 0
GEN = {"grokking", "comprehension"}
panels = ["precision", "loss"]
print(f"{len(df)} cells; seeds {sorted(df.seed.unique())}; fractions {sorted(df.train_fraction.unique())}; "
      f"weight decays {sorted(df.weight_decay.unique())}")
print("\nphase counts per panel (undecided at budget in brackets):")
for (prec, loss), g in df.groupby(panels):
    counts = g.phase.value_counts().to_dict()
    print(f"  {prec:9s} {loss:24s} {counts} [{int(g.undecided.sum())} undecided]")

print("\n(a) softmax collapse at weight decay 0: the largest share of training examples with a loss of"
      " exactly 0, per cell (min / mean / max over fractions and seeds), and how many cells ever collapse:")
wd0 = df[df.weight_decay == 0]
for (prec, loss), g in wd0.groupby(panels):
    m = g.max_softmax_collapse
    print(f"  {prec:9s} {loss:24s} {m.min():.3f} / {m.mean():.3f} / {m.max():.3f}; cells > 0: {int((m > 0).sum())} of {len(m)};"
          f" test accuracy at the end {g.final_test_acc.mean():.3f} (mean)")

print("\n(b) the weight-decay boundary: per fraction, the smallest weight decay whose cell generalises"
      " (grokking or comprehension), per seed ('-' none does):")
def boundary(g):
    ok = g[g.phase.isin(GEN)].weight_decay
    return "-" if ok.empty else f"{ok.min():g}"
for (prec, loss), g in df.groupby(panels):
    parts = []
    for frac, h in g.groupby("train_fraction"):
        parts.append(f"frac {frac:g}: " + ",".join(boundary(s) for _, s in h.groupby("seed")))
    print(f"  {prec:9s} {loss:24s} " + "; ".join(parts))

print("\n(b') cells that generalise per panel and weight decay (of fractions x seeds):")
table = df.assign(gen=df.phase.isin(GEN)).pivot_table(index=panels, columns="weight_decay", values="gen", aggfunc="sum")
print(table.to_string())
