#!/usr/bin/env python
"""Rule `validate_results`: thin entry point; the logic is grokmap.jobs.aggregate.validate_results_main."""
import sys

from grokmap.jobs.aggregate import validate_results_main

if __name__ == "__main__":
    sys.exit(validate_results_main())
