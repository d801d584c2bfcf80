# report.md and metadata.json; the validator (aggregate.smk) checks them last.


rule write_report:
    input:
        cells=PLAN.all_cells,
        phases=OUT["phases"],
        discrete=OUT["phase_diagram"],
        smooth=OUT["smooth_diagram"],
        curves=OUT["curves"],
        grokking_step=OUT["grokking_step"],
        **({"seed_diagrams": OUT["seed_diagrams"]} if PLAN.seed_diagrams else {}),
        explorer=OUT["explorer"],
    output:
        report=OUT["report"],
        metadata=OUT["metadata"],
    log:
        R + "/logs/write_report.log",
    params:
        params=P,
        results_dir=R,
        log_level=LOG_LEVEL,
        # the figures the report shows, by title
        figures={"Phase diagram": OUT["phase_diagram"], "Smooth phase diagram": OUT["smooth_diagram"],
                 "Training curves and measurements": OUT["curves"], "Grokking step": OUT["grokking_step"],
                 **({"Phase diagram of each seed": OUT["seed_diagrams"]} if PLAN.seed_diagrams else {})},
    script:
        "../../scripts/write_report.py"
