#!/usr/bin/env python
"""DVC stage `check_settings`: refuse bad settings before any stage removes an output. Thin entry
point; the logic is grokmap.jobs.tools.check_settings_main."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from grokmap.jobs.tools import check_settings_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(check_settings_main())
