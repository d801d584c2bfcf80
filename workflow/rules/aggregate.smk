# Classification reads the curves of every cell of the current grid and the phase
# thresholds; editing a threshold reruns this (and what follows), never a cell.


rule classify_phases:
    input:
        script=f"{SCRIPTS}/classify_phases.py",
        cells=CELL_OUTPUTS,
    output:
        phases=report(R + "/phases.json", caption="../report/phases.rst", category="Tables"),
        csv=report(R + "/phases.csv", caption="../report/phases.rst", category="Tables"),
        metrics=R + "/metrics.json",
    log:
        R + "/logs/classify_phases.log",
    params:
        params=PARAMS_JSON,
    shell:
        "{PY} {input.script} --params {params.params:q} --results-dir {R}"
        " --phases-json {output.phases} --phases-csv {output.csv}"
        " --metrics-json {output.metrics} --log-level {LOG_LEVEL} 2> {log}"


rule validate_results:
    input:
        script=f"{SCRIPTS}/validate_results.py",
        cells=CELL_OUTPUTS,
        phases=rules.classify_phases.output.phases,
        metrics=rules.classify_phases.output.metrics,
        metadata=R + "/metadata.json",
    output:
        R + "/validation.json",
    log:
        R + "/logs/validate_results.log",
    params:
        params=PARAMS_JSON,
    shell:
        "{PY} {input.script} --params {params.params:q} --results-dir {R}"
        " --phases-json {input.phases} --metrics-json {input.metrics}"
        " --metadata {input.metadata} --out {output} --log-level {LOG_LEVEL} 2> {log}"
