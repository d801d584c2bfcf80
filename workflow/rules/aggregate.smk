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
        extended=OUT["extend_summary"],  # cells per extension round (extend:), 0 rounds too
        settings=AGG_STAMP,  # named by the settings it was built from: new settings, new file
    log:
        R + "/logs/classify_phases.log",
    params:
        params=PARAMS_JSON,
    shell:
        "{PY:q} {input.script:q} --params {params.params:q} --results-dir {R:q}"
        " --phases-json {output.phases:q} --phases-csv {output.csv:q}"
        " --metrics-json {output.metrics:q} --refine-summary {output.refined:q}"
        " --extend-summary {output.extended:q}"
        " --settings-stamp {output.settings:q} --log-level {LOG_LEVEL:q}"
        " --on-failure-remove {R:q}/report.md --on-failure-remove {R:q}/validation.json 2> {log:q}"


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
        "{PY:q} {input.script:q} --params {params.params:q} --results-dir {R:q}"
        " --phases-json {input.phases:q} --metrics-json {input.metrics:q}"
        " --metadata {input.metadata:q} --out {output:q} --log-level {LOG_LEVEL:q}"
        " --on-failure-remove {R:q}/report.md --on-failure-remove {R:q}/explorer.html 2> {log:q}"
