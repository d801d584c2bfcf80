# report.md and metadata.json; the validator (aggregate.smk) checks them last.


rule write_report:
    input:
        script=f"{SCRIPTS}/write_report.py",
        cells=ALL_CELLS,
        phases=OUT["phases"],
        discrete=OUT["phase_diagram"],
        smooth=OUT["smooth_diagram"],
        curves=OUT["curves"],
        grokking_step=OUT["grokking_step"],
        **({"seed_diagrams": OUT["seed_diagrams"]} if SEED_DIAGRAMS else {}),
        explorer=OUT["explorer"],
    output:
        report=OUT["report"],
        metadata=OUT["metadata"],
    log:
        R + "/logs/write_report.log",
    params:
        params=PARAMS_JSON,
        # each --figure=TITLE=PATH one shell word (quoted below, like every value)
        figures=lambda wc, input: [f"--figure={title}={path}" for title, path in (
            ("Phase diagram", input.discrete), ("Smooth phase diagram", input.smooth),
            ("Training curves and measurements", input.curves), ("Grokking step", input.grokking_step))]
            + ([f"--figure=Phase diagram of each seed={input.seed_diagrams}"] if SEED_DIAGRAMS else []),
    shell:
        "{PY:q} {input.script:q} --params {params.params:q} --results-dir {R:q}"
        " --phases-json {input.phases:q} --metadata {output.metadata:q} --report {output.report:q}"
        " {params.figures:q} --explorer {input.explorer:q} --log-level {LOG_LEVEL:q} 2> {log:q}"
