# Adaptive refinement's rule (grokmap.analysis.refine) simulated on full maps already recorded,
# including maps the rule was not tuned on:
#   python docs/reproductions/refine_simulation.py
# For each full map: the base grid (every 2^L-th point), then L rounds of round_points with the
# labels read from the full map, then every lattice point takes the phase of the trained point
# that covers it (refine.coverage), against the full map. Shares: of the cells, and of the
# training steps (a cell stops once train and test accuracy each reached the threshold, S3's
# rule, so its steps are the later of its two first steps, or the 1e5 budget; stacked cells
# cost in proportion to their steps).
import sys
from fractions import Fraction
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from grokmap.analysis.refine import coverage, lattice_positions, round_points  # noqa: E402

here = Path(__file__).parent
BUDGET = 100_000
maps = {"Figure 1 (data 42, model 102; the map the rule was tuned on), 6 x 6 + 2 rounds":
        ("s3_toy_classification_data42_model102.csv", 2),
        "data 41, model 102, 6 x 6 + 1 round": ("s3_toy_classification_11x11_data41_model102.csv", 1),
        "data 43, model 102, 6 x 6 + 1 round": ("s3_toy_classification_11x11_data43_model102.csv", 1),
        "data 42, model 101, 6 x 6 + 1 round": ("s3_toy_classification_11x11_data42_model101.csv", 1),
        "data 42, model 103, 6 x 6 + 1 round": ("s3_toy_classification_11x11_data42_model103.csv", 1),
        "regression (Figure 1 right; data 42, model 102), 6 x 6 + 1 round":
        ("s3_toy_regression_11x11_data42_model102.csv", 1)}
for title, (name, level) in maps.items():
    if not (here / name).exists():
        print(f"{title}: no record yet")
        continue
    df = pd.read_csv(here / name)
    lrs, wds = sorted(df.learning_rate.unique()), sorted(df.weight_decay.unique())
    step = 2 ** level
    sizes = [(len(lrs) - 1) // step, (len(wds) - 1) // step]
    row = {(lr, wd): r for lr, wd, r in zip(df.learning_rate, df.weight_decay, df.itertuples())}

    def at(p):  # lattice position (Fractions in grid steps) -> the full map's row
        return row[(lrs[int(p[0] * step)], wds[int(p[1] * step)])]

    known = {p: at(p).phase for p in lattice_positions(sizes, 0)}
    rounds = {p: 0 for p in known}
    for r in range(1, level + 1):
        for p in round_points(sizes, known, r):
            known[p] = at(p).phase
            rounds[p] = r
    cover = coverage(sizes, rounds, level)
    agree = sum(at(p).phase == known[q] for p, q in cover.items())

    def steps(r):
        return BUDGET if pd.isna(r.first_train_step) or pd.isna(r.first_test_step) else max(r.first_train_step, r.first_test_step)

    trained_steps = sum(steps(at(p)) for p in rounds)
    all_steps = sum(steps(r) for r in df.itertuples())
    print(f"{title}: cells {len(rounds)} of {len(cover)} ({len(rounds) / len(cover):.1%}); steps "
          f"{trained_steps / all_steps:.1%} of the full map's; points in the full map's phase {agree} of "
          f"{len(cover)} ({agree / len(cover):.1%})")
