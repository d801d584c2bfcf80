#!/usr/bin/env python
"""Called by scripts/setup_env.sh: bundle the npm-installed renderer and write the offline
DVC plots template; the logic is grokmap.jobs.tools.build_renderer_main."""
import sys

from grokmap.jobs.tools import build_renderer_main

if __name__ == "__main__":
    sys.exit(build_renderer_main())
