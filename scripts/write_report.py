#!/usr/bin/env python
"""Rule `write_report`: thin entry point; the logic is grokmap.jobs.aggregate.write_report_main."""
import sys

from grokmap.jobs.aggregate import write_report_main

if __name__ == "__main__":
    sys.exit(write_report_main())
