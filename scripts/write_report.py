"""Rule `write_report` (workflow/rules/report.smk, Snakemake's script: directive): hands the rule's
inputs, outputs and params to grokmap.jobs.steps.write_report."""
from grokmap.jobs.steps import write_report

sm = snakemake  # noqa: F821 (Snakemake defines it)
write_report(sm.params.params, sm.params.results_dir, sm.input.phases, sm.output.metadata, sm.output.report,
             dict(sm.params.figures), sm.input.explorer, sm.log[0], sm.params.log_level)
