# Classification reads the curves of every cell of the current grid and the phase
# thresholds; editing a threshold reruns this (and what follows), never a cell.


rule classify_phases:
    input:
        script=f"{SCRIPTS}/classify_phases.py",
        cells=ALL_CELLS,
    output:
        phases=report(OUT["phases"], caption="../report/phases.rst", category="Tables"),
        csv=report(OUT["phases_csv"], caption="../report/phases.rst", category="Tables"),
        metrics=OUT["metrics"],
        refined=OUT["refine_summary"],  # cells per refinement round (refine:), 0 rounds too
        settings=AGG_STAMP,  # named by the settings it was built from: new settings, new file
    log:
        R + "/logs/classify_phases.log",
    params:
        params=PARAMS_JSON,
    shell:
        "{PY} {input.script} --params {params.params:q} --results-dir {R}"
        " --phases-json {output.phases} --phases-csv {output.csv}"
        " --metrics-json {output.metrics} --refine-summary {output.refined}"
        " --settings-stamp {output.settings} --log-level {LOG_LEVEL}"
        " --on-failure-remove {R}/report.md --on-failure-remove {R}/validation.json 2> {log}"


rule validate_results:
    input:
        script=f"{SCRIPTS}/validate_results.py",
        cells=ALL_CELLS,
        phases=OUT["phases"],
        metrics=OUT["metrics"],
        metadata=OUT["metadata"],
        settings=AGG_STAMP,
    output:
        OUT["validation"],
    log:
        R + "/logs/validate_results.log",
    params:
        params=PARAMS_JSON,
    shell:
        "{PY} {input.script} --params {params.params:q} --results-dir {R}"
        " --phases-json {input.phases} --metrics-json {input.metrics}"
        " --metadata {input.metadata} --out {output} --log-level {LOG_LEVEL}"
        " --on-failure-remove {R}/report.md 2> {log}"
