#!/usr/bin/env python
"""Rule `write_explorer`: thin entry point; the logic is grokmap.jobs.aggregate.explorer_main."""
import sys

from grokmap.jobs.aggregate import explorer_main

if __name__ == "__main__":
    sys.exit(explorer_main())
