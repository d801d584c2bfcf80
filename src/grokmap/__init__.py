"""grokmap: train small models on algorithmic tasks, classify grokking phases, draw phase diagrams.

Pure library code: nothing here imports Snakemake or DVC. The workflow (Snakefile,
workflow/rules) calls the thin command-line scripts in ``scripts/``, which call this package.
"""
__version__ = "0.1.0"
