# Read S3's published phase diagrams at every cell's centre, into a table (one row per cell).
#
#   python docs/reproductions/s3_read_figure.py <S3 checkout>/images/toy_phases.png figure1 \
#       docs/reproductions/s3_figure1_read.csv
#   python docs/reproductions/s3_read_figure.py <S3 checkout>/images/regr_seeds.png classification_seeds \
#       docs/reproductions/s3_figure7_read.csv
#   python docs/reproductions/s3_read_figure.py <S3 checkout>/images/cls_seeds.png regression_seeds \
#       docs/reproductions/s3_figure7_regression_read.csv
#
# The two seed figures' file names are swapped in S3's repository: `regr_seeds.png` is titled
# "Addition classification" (weight decay 0-20; its 42/102 panel is Figure 1's left panel, cell
# for cell) and `cls_seeds.png` "Addition regression" (weight decay 0-10; its 42/102 panel is
# Figure 1's right panel).
#
# <S3 checkout> is `isadrtdinov/grokking-reproduction` (S3's code and figures; read here, never
# copied into the project). Each panel is found as the largest block of the four phase colours
# in its part of the image; a cell is the colour nearest to its centre pixel (none when no
# phase colour is near: the script then stops and names the cell). Axes are S3's: learning
# rate logspace(-5, -2, 21) spelled as the project's sweeps spell it, and weight decay
# linspace(0, 20, 21) (classification) or linspace(0, 10, 21) (regression).
import argparse
import csv

import numpy as np
from PIL import Image

PALETTE = {"memorization": (72, 60, 138), "grokking": (255, 215, 0), "comprehension": (154, 205, 50),
           "confusion": (0, 0, 0)}
LRS = [1e-05, 1.41e-05, 2e-05, 2.82e-05, 3.98e-05, 5.62e-05, 7.94e-05, 0.000112, 0.000158, 0.000224, 0.000316,
       0.000447, 0.000631, 0.000891, 0.00126, 0.00178, 0.00251, 0.00355, 0.00501, 0.00708, 0.01]
# (task, data seed, model seed, rough box y0, y1, x0, x1, weight decay's largest value)
LAYOUTS = {
    "figure1": [("classification", 42, 102, 25, 340, 50, 370, 20.0),
                ("regression", 42, 102, 25, 340, 415, 735, 10.0)],
}
for _task, _wd in (("classification", 20.0), ("regression", 10.0)):
    LAYOUTS[f"{_task}_seeds"] = [(_task, 41 + r, 101 + c, y0, y1, x0, x1, _wd)
                                 for r, (y0, y1) in enumerate([(55, 330), (330, 605), (605, 880)])
                                 for c, (x0, x1) in enumerate([(90, 370), (370, 650), (650, 935)])]


def nearest(pixel) -> str | None:
    dist = {k: sum((int(a) - b) ** 2 for a, b in zip(pixel, v)) for k, v in PALETTE.items()}
    best = min(dist, key=dist.get)
    return best if dist[best] < 3000 else None


def panel_box(image: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> tuple[int, int, int, int]:
    """The rows and columns of the rough box that are at least 90 % phase colour: the panel."""
    mask = np.zeros(image.shape[:2], bool)
    for colour in PALETTE.values():
        mask |= np.abs(image - np.array(colour)).sum(-1) < 60
    sub = mask[y0:y1, x0:x1]
    rows, cols = np.where(sub.mean(1) > 0.9)[0], np.where(sub.mean(0) > 0.9)[0]
    return y0 + rows.min(), y0 + rows.max(), x0 + cols.min(), x0 + cols.max()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("image")
    p.add_argument("layout", choices=sorted(LAYOUTS))
    p.add_argument("out")
    args = p.parse_args()
    image = np.array(Image.open(args.image).convert("RGB")).astype(int)
    rows = []
    for task, data_seed, model_seed, y0, y1, x0, x1, wd_max in LAYOUTS[args.layout]:
        top, bottom, left, right = panel_box(image, y0, y1, x0, x1)
        h, w = (bottom - top + 1) / 21, (right - left + 1) / 21
        for i in range(21):  # rows: weight decay from 0 (top) to wd_max (bottom)
            for j in range(21):  # columns: learning rate from 1e-5 (left) to 1e-2 (right)
                phase = nearest(image[int(top + (i + 0.5) * h), int(left + (j + 0.5) * w)])
                if phase is None:
                    raise SystemExit(f"{task} panel {data_seed}/{model_seed}: cell ({i}, {j}) has no phase colour")
                rows.append({"task": task, "data_seed": data_seed, "model_seed": model_seed,
                             "learning_rate": LRS[j], "weight_decay": round(wd_max * i / 20, 4), "phase_s3": phase})
        print(f"{task} {data_seed}/{model_seed}: panel at rows {top}-{bottom}, columns {left}-{right}")
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
