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
        seed_diagrams=OUT["seed_diagrams"],
        explorer=OUT["explorer"],
    output:
        report=OUT["report"],
        metadata=OUT["metadata"],
    log:
        R + "/logs/write_report.log",
    params:
        params=PARAMS_JSON,
    shell:
        "{PY} {input.script} --params {params.params:q} --results-dir {R}"
        " --phases-json {input.phases} --metadata {output.metadata} --report {output.report}"
        " --figure 'Phase diagram={input.discrete}' --figure 'Smooth phase diagram={input.smooth}'"
        " --figure 'Training curves and measurements={input.curves}'"
        " --figure 'Grokking step={input.grokking_step}'"
        " --figure 'Phase diagram of each seed={input.seed_diagrams}' --explorer {input.explorer} --log-level {LOG_LEVEL} 2> {log}"
