#!/usr/bin/env python
"""Checkpoint `refine_round`: thin entry point; the logic is grokmap.jobs.aggregate.refine_round_main."""
import sys

from grokmap.jobs.aggregate import refine_round_main

if __name__ == "__main__":
    sys.exit(refine_round_main())
