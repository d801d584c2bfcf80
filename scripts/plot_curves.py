"""Rule `plot_curves` (workflow/rules/plot.smk, Snakemake's script: directive): hands the rule's
inputs, outputs and params to grokmap.jobs.steps.plot_curves."""
from grokmap.jobs.steps import plot_curves

sm = snakemake  # noqa: F821 (Snakemake defines it)
plot_curves(sm.params.params, sm.params.results_dir, sm.input.phases, sm.output.curves, sm.params.formats,
            sm.params.dpi, sm.log[0], sm.params.log_level)
