"""grokmap: train small models on algorithmic tasks, classify grokking phases, draw phase diagrams.

Pure library code: nothing here imports Snakemake or DVC. The workflow (Snakefile,
workflow/rules) calls the thin command-line scripts in ``scripts/``, which call this package.
"""
__version__ = "0.1.0"

__all__ = ["load_results", "load_curves"]


def __getattr__(name: str):
    """``grokmap.load_results`` and ``grokmap.load_curves`` (grokmap.results), imported on first
    use so that importing the package stays free of pandas."""
    if name in ("load_results", "load_curves", "phase_changes"):
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module 'grokmap' has no attribute {name!r}")
