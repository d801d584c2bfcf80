#!/usr/bin/env python
"""S4 Figure 3: how close trained quadratic MLPs are to the analytic solution, from the saved
final state of each cell (state.pt, kept for every cell trained one at a time).

    .venv/bin/python scripts/s4_phases.py OUT.csv RESULTS_DIR [RESULTS_DIR ...]

One row per cell: its path, the mean resultant length of delta = phi1 + phi2 - phi3 over neurons
(1: every neuron has the analytic solution's phase relation; ~1/sqrt(N) for random weights),
the median |delta|, and the median share of a neuron's power at its dominant frequency (1: a
pure cosine). First two rows: the analytic solution and random N(0, 1) weights at N = 500.
Logic: grokmap.analysis.fourier.neuron_phases.
"""
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from grokmap.analysis.fourier import exact_solution, neuron_phases  # noqa: E402


def main() -> int:
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    out, folders = Path(sys.argv[1]), [Path(f) for f in sys.argv[2:]]
    p = 97
    g = torch.Generator().manual_seed(0)
    cases = [("analytic solution, N = 500", *exact_solution(p, 500, 0)),
             ("random N(0, 1) weights, N = 500", torch.randn(500, 2 * p, generator=g, dtype=torch.float64),
              torch.randn(p, 500, generator=g, dtype=torch.float64))]
    for folder in folders:
        for state in sorted(folder.glob("cells/**/state.pt")):
            model = torch.load(state, weights_only=True)["model"]
            cases.append((f"{folder.name}/{state.parent.relative_to(folder / 'cells')}", model["w1"], model["w2"]))
    rows = []
    for name, w1, w2 in cases:
        r = neuron_phases(w1, w2, p)
        rows.append({"cell": name, "neurons": int(w1.shape[0]), "resultant": round(r["resultant"], 4),
                     "median_abs_delta": round(float(r["delta"].abs().median()), 4),
                     "median_power_share": round(float(r["power_share"].median()), 4)})
        print(" ".join(f"{k}={v}" for k, v in rows[-1].items()))
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
