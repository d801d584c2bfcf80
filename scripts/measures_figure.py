#!/usr/bin/env python
"""Curves of a finished sweep's cells side by side (S1 sections 5.1-5.2, S4 figure 5).
Thin entry point; the logic is grokmap.jobs.tools.measures_figure_main.

    .venv/bin/python scripts/measures_figure.py results/s1_noise docs/reproductions/s1_noise_measures.png \
        --hue training.embedding_noise
    .venv/bin/python scripts/measures_figure.py results/s4_adamw docs/reproductions/s4_adamw_ipr.png \
        --hue train_fraction --curves train_acc,test_acc,ipr --absolute --only weight_decay=0
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from grokmap.jobs.tools import measures_figure_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(measures_figure_main())
