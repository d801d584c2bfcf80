#!/usr/bin/env python
"""Checkpoint `extend_round`: thin entry point; the logic is grokmap.jobs.aggregate.extend_round_main."""
import sys

from grokmap.jobs.aggregate import extend_round_main

if __name__ == "__main__":
    sys.exit(extend_round_main())
