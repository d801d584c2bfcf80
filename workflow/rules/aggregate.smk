# Classification reads the curves of every cell of the current grid and the phase
# thresholds; editing a threshold reruns this (and what follows), never a cell. Each rule hands
# its inputs, outputs and params to one function of grokmap.jobs.steps (scripts/<rule>.py).


rule classify_phases:
    input:
        cells=PLAN.all_cells,
    output:
        phases=report(OUT["phases"], caption="../report/phases.rst", category="Tables"),
        csv=report(OUT["phases_csv"], caption="../report/phases.rst", category="Tables"),
        metrics=OUT["metrics"],
        refined=OUT["refine_summary"],  # cells per refinement round (refine:), 0 rounds too
        extended=OUT["extend_summary"],  # cells per extension round (extend:), 0 rounds too
        settings=PLAN.agg_stamp,  # named by the settings it was built from: new settings, new file
    log:
        R + "/logs/classify_phases.log",
    params:
        params=P,
        results_dir=R,
        log_level=LOG_LEVEL,
        remove_on_failure=[OUT["report"], OUT["validation"]],
    script:
        "../../scripts/classify_phases.py"


rule validate_results:
    input:
        cells=PLAN.all_cells,
        phases=OUT["phases"],
        metrics=OUT["metrics"],
        metadata=OUT["metadata"],
        explorer=OUT["explorer"],  # its numbers are checked too
        settings=PLAN.agg_stamp,
    output:
        OUT["validation"],
    log:
        R + "/logs/validate_results.log",
    params:
        params=P,
        results_dir=R,
        log_level=LOG_LEVEL,
        remove_on_failure=[OUT["report"], OUT["explorer"]],
    script:
        "../../scripts/validate_results.py"
