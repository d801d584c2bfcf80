#!/usr/bin/env python
"""Rule `train_cell`: thin entry point; the logic is grokmap.cell_cli.train_cell_main."""
import sys

from grokmap.cell_cli import train_cell_main

if __name__ == "__main__":
    sys.exit(train_cell_main())
