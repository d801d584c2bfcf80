#!/usr/bin/env python
"""Called by scripts/setup_env.sh: bundle the npm-installed renderer and write the offline
DVC plots template; the logic is grokmap.jobs.aggregate.build_renderer_main."""
import sys

from grokmap.jobs.aggregate import build_renderer_main

if __name__ == "__main__":
    sys.exit(build_renderer_main())
