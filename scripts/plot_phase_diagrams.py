"""Rule `plot_phase_diagrams` (workflow/rules/plot.smk, Snakemake's script: directive): hands the
rule's inputs, outputs and params to grokmap.jobs.steps.plot_phase_diagrams."""
from grokmap.jobs.steps import plot_phase_diagrams

sm = snakemake  # noqa: F821 (Snakemake defines it)
plot_phase_diagrams(sm.input.phases, sm.params.max_epochs, sm.output.discrete, sm.output.smooth,
                    sm.output.grokking_step, sm.output.grokking_steps, sm.output.get("seed_diagrams"),
                    sm.params.formats, sm.params.dpi, sm.log[0], sm.params.log_level)
