"""Checkpoint `refine_round` (workflow/rules/refine.smk, Snakemake's script: directive): hands the
rule's params and output to grokmap.jobs.steps.refine_round."""
from grokmap.jobs.steps import refine_round

sm = snakemake  # noqa: F821 (Snakemake defines it)
refine_round(sm.params.params, sm.params.results_dir, int(sm.wildcards.r), sm.output[0], sm.log[0], sm.params.log_level)
