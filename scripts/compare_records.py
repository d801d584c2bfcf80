#!/usr/bin/env python
"""Check that a change moved no number: every cell record (curves, steps, accuracy log,
settings; not timings or the code fingerprint) and phases.json of two results directories
must be identical. Thin entry point; the logic is grokmap.jobs.tools.compare_records_main.

    .venv/bin/python scripts/compare_records.py --tree BEFORE_DIR AFTER_DIR
(docs/refactoring.md: the whole before/after procedure.)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from grokmap.jobs.tools import compare_records_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(compare_records_main())
