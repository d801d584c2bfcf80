#!/usr/bin/env python
"""Rule `classify_phases`: thin entry point; the logic is grokmap.cli.classify_phases_main."""
import sys

from grokmap.cli import classify_phases_main

if __name__ == "__main__":
    sys.exit(classify_phases_main())
