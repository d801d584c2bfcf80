# S3 Figure 1 (right, addition regression) and the budget comparison on S3's split, recomputed
# from the committed tables:
#   python docs/reproductions/s3_regression_numbers.py
# s3_figure1_read.csv is S3's Figure 1 read at every cell's centre by s3_read_figure.py; its
# regression panel equals the 42/102 panel of S3's regression seed figure cell for cell
# (s3_figure7_regression_read.csv).
from pathlib import Path

import pandas as pd

here = Path(__file__).parent
keys = ["learning_rate", "weight_decay"]
GEN = {"grokking", "comprehension"}
ORDER = ["comprehension", "grokking", "memorization", "confusion"]
s3 = pd.read_csv(here / "s3_figure1_read.csv")


def counts(series) -> str:
    c = series.value_counts()
    return " / ".join(str(int(c.get(k, 0))) for k in ORDER)


def compare(name: str, ours: pd.DataFrame, theirs: pd.DataFrame, col: str = "phase_s3") -> None:
    both = ours.merge(theirs, on=keys)
    same = int((both.phase == both[col]).sum())
    gen = int((both.phase.isin(GEN) == both[col].isin(GEN)).sum())
    print(f"{name}: {len(both)} points; here {counts(both.phase)}; theirs {counts(both[col])} "
          f"(comprehension / grokking / memorization / confusion); same phase {same} ({same / len(both):.1%}); "
          f"generalises-or-not agrees {gen} ({gen / len(both):.1%})")
    return both


reg = here / "s3_toy_regression_11x11_data42_model102.csv"
if reg.exists():
    both = compare("regression, 11 x 11, data seed 42, model seed 102, 1e5 steps, against S3's Figure 1 (right)",
                   pd.read_csv(reg), s3[s3.task == "regression"])
    for phase in ORDER:
        moved = both[(both.phase_s3 == phase) & (both.phase != phase)]
        if len(moved):
            print(f"  S3 {phase}, here: {moved.phase.value_counts().to_dict()}")
else:
    print(f"no record yet: {reg.name}")

short = here / "s3_toy_classification_11x11_data42_model102_3e4.csv"
if short.exists():
    at3e4 = pd.read_csv(short)
    at1e5 = pd.read_csv(here / "s3_toy_classification_data42_model102.csv")[keys + ["phase"]]
    both = compare("classification, 11 x 11 at 3e4 steps against the same points at 1e5 (Figure 1 record)",
                   at3e4, at1e5.rename(columns={"phase": "phase_1e5"}), col="phase_1e5")
    changes = both[both.phase != both.phase_1e5].groupby(["phase", "phase_1e5"]).size()
    print("  3e4 -> 1e5: " + ", ".join(f"{a} -> {b}: {n}" for (a, b), n in changes.items()))
    compare("classification, 11 x 11 at 3e4 steps, against S3's Figure 1 (left, 1e5 steps)",
            at3e4, s3[s3.task == "classification"])
else:
    print(f"no record yet: {short.name}")
