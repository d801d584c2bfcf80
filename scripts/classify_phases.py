"""Rule `classify_phases` (workflow/rules/aggregate.smk, Snakemake's script: directive): hands the
rule's inputs, outputs and params to grokmap.jobs.steps.classify_phases."""
from grokmap.jobs.steps import classify_phases

sm = snakemake  # noqa: F821 (Snakemake defines it)
classify_phases(sm.params.params, sm.params.results_dir, sm.output.phases, sm.output.csv, sm.output.metrics,
                sm.output.refined, sm.output.extended, sm.output.settings, sm.params.remove_on_failure,
                sm.log[0], sm.params.log_level)
