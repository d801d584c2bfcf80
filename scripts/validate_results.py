#!/usr/bin/env python
"""Rule `validate_results`: thin entry point; the logic is grokmap.cli.validate_results_main."""
import sys

from grokmap.cli import validate_results_main

if __name__ == "__main__":
    sys.exit(validate_results_main())
