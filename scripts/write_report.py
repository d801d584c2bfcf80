#!/usr/bin/env python
"""Rule `write_report`: thin entry point; the logic is grokmap.cli.write_report_main."""
import sys

from grokmap.cli import write_report_main

if __name__ == "__main__":
    sys.exit(write_report_main())
