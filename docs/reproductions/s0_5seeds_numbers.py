# The numbers of docs/reproductions/README.md, "Five seeds and one extension round", recomputed
# from the committed record: python docs/reproductions/s0_5seeds_numbers.py docs/reproductions/s0_5seeds_x2.csv
import sys
import pandas as pd

df = pd.read_csv(sys.argv[1])  # the committed record: one row per cell, 300 (60 settings x 5 seeds)
keys = ["weight_decay", "train_fraction", "width"]
s42 = df[df.seed == 42]
print("seed 42, decided at 2,500 epochs:", int((s42.undecided_at_budget == False).sum()), "of", len(s42))
print("decided at 2,500 epochs, per seed:", (df.undecided_at_budget == False).groupby(df.seed).sum().to_dict())
def majority(phases):
    top = phases.value_counts()
    return top.index[0] if len(top) == 1 or top.iloc[0] > top.iloc[1] else "tie"
for col, when in (("phase_at_budget", "at 2,500 epochs"), ("phase", "after the extension round")):
    maj = df.groupby(keys)[col].agg(majority)
    split = df.groupby(keys)[col].nunique().gt(1).sum()
    own = s42.set_index(keys)[col]
    print(f"{when}: settings whose 5 seeds disagree: {split} of 60; seed 42 differs from the 5-seed majority "
          f"at {(own != maj.loc[own.index]).sum()} (ties {(maj == 'tie').sum()}); majority counts "
          f"{maj.value_counts().to_dict()}")
print("cells continued:", int((df.budget_multiple > 1).sum()), "; changed phase:", int((df.phase != df.phase_at_budget).sum()),
      "; still undecided after:", int(df.undecided.sum()))
print("changes:", (df[df.phase != df.phase_at_budget].groupby(["phase_at_budget", "phase"]).size()).to_dict())
print("seed 42: changed", int((s42.phase != s42.phase_at_budget).sum()), "; counts after",
      s42.phase.value_counts().to_dict(), "; at budget", s42.phase_at_budget.value_counts().to_dict())
