"""Rule `write_explorer` (workflow/rules/plot.smk, Snakemake's script: directive): hands the rule's
inputs, outputs and params to grokmap.jobs.steps.write_explorer."""
from grokmap.jobs.steps import write_explorer

sm = snakemake  # noqa: F821 (Snakemake defines it)
write_explorer(sm.params.params, sm.params.results_dir, sm.input.phases, sm.input.renderer, sm.output[0],
               sm.log[0], sm.params.log_level)
