#!/usr/bin/env python
"""Rule `plot_phase_diagrams`: thin entry point; the logic is grokmap.jobs.aggregate.plot_main."""
import sys

from grokmap.jobs.aggregate import plot_main

if __name__ == "__main__":
    sys.exit(plot_main())
