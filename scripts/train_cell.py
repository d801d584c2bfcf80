#!/usr/bin/env python
"""Rule `train_cell`: thin entry point; the logic is grokmap.jobs.cell.train_cell_main."""
import sys

from grokmap.jobs.cell import train_cell_main

if __name__ == "__main__":
    sys.exit(train_cell_main())
