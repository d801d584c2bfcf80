#!/usr/bin/env python
"""A refined sweep against a full grid, point by point (docs/refinement.md); the logic is
grokmap.jobs.tools.refinement_agreement_main."""
import sys

from grokmap.jobs.tools import refinement_agreement_main

if __name__ == "__main__":
    sys.exit(refinement_agreement_main())
