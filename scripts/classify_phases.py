#!/usr/bin/env python
"""Rule `classify_phases`: thin entry point; the logic is grokmap.jobs.aggregate.classify_phases_main."""
import sys

from grokmap.jobs.aggregate import classify_phases_main

if __name__ == "__main__":
    sys.exit(classify_phases_main())
