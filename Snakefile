# Grokking phase diagrams: the workflow's table of contents.
#
#   snakemake --cores all                 # the sweep in params.yaml, to results/report.md
#   snakemake --cores all --config params_file=studies/s2_fraction_scan.yaml results_dir=results/s2_fraction_scan
#                                         # a named study (docs/studies.md)
#   snakemake --cores all --config sweep='{seed: [1, 2, 3]}'   # one-off override, validated
#   snakemake --report report.html        # self-contained HTML report with captions
#   snakemake --workflow-profile workflow/profiles/slurm --cores 4   # on a SLURM cluster
#
# Without --workflow-profile, Snakemake loads profiles/default (= workflow/profiles/local):
# cell jobs then run as threads of this process, so torch is imported once per run.
#
# What to compute is params.yaml; how to run is config.yaml. Both are validated against
# workflow/schemas/ before any job starts. Each sweep cell is its own target:
#   results/cells/wd=<wd>/frac=<frac>/width=<width>/seed=<seed>/metrics.json
# (S3's model trains the cells that need it in stacks, several cells per job, each cell still
# writing its own files: workflow/rules/train.smk.)

include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/refine.smk"
include: "workflow/rules/extend.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plot.smk"
include: "workflow/rules/report.smk"


# Everything but the training runs where snakemake was started (on a cluster: the submit host).
localrules: all, cells, classify_phases, validate_results, plot_phase_diagrams, plot_curves, write_explorer, write_report


rule all:
    default_target: True
    input:
        OUT["validation"],
        OUT["report"],
        PLAN.agg_stamp,  # the aggregation's settings stamp: under new settings it is missing, so all of it reruns


rule cells:
    # Every cell of the grid and nothing else (the `train_cells` stage of dvc.yaml).
    input:
        PLAN.cell_outputs,
