#!/usr/bin/env python
"""Rule `plot_curves`: thin entry point; the logic is grokmap.jobs.aggregate.plot_curves_main."""
import sys

from grokmap.jobs.aggregate import plot_curves_main

if __name__ == "__main__":
    sys.exit(plot_curves_main())
