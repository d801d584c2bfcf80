#!/usr/bin/env python
"""A finished sweep as a reproduction record under docs/reproductions/ (README there):
<name>.csv (per-cell phase table), <name>_phase_diagram.png and <name>_smooth_diagram.png.
Thin entry point; the logic is grokmap.jobs.tools.reproduction_record_main.

    .venv/bin/python scripts/reproduction_record.py results/repro/<run> docs/reproductions/<name>
        --only task.data_seed=41                  # the cells of one value of an axis (table only)
        --columns grokking_step,final_test_acc    # more phases.csv columns in the table
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from grokmap.jobs.tools import reproduction_record_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(reproduction_record_main())
