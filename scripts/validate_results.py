"""Rule `validate_results` (workflow/rules/aggregate.smk, Snakemake's script: directive): hands the
rule's inputs, outputs and params to grokmap.jobs.steps.validate_results."""
from grokmap.jobs.steps import validate_results

sm = snakemake  # noqa: F821 (Snakemake defines it)
validate_results(sm.params.params, sm.params.results_dir, sm.input.phases, sm.input.metrics, sm.input.metadata,
                 sm.output[0], sm.params.remove_on_failure, sm.log[0], sm.params.log_level, sm.input.explorer)
