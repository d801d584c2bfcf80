#!/usr/bin/env python
"""The phases of one grid in several finished results directories, cell by cell (e.g. the
default sweep in float32, float64 and bfloat16). Thin entry point; the logic is
grokmap.jobs.tools.phase_agreement_main.

    .venv/bin/python scripts/phase_agreement.py float32=results/precision_float32 \\
        float64=results/precision_float64 bfloat16=results/precision_bfloat16 --out table.csv
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from grokmap.jobs.tools import phase_agreement_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(phase_agreement_main())
