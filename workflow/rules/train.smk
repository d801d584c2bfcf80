# One job per sweep cell. Per-cell values reach the job only through the wildcards of its
# output path; settings shared by all cells through `params:` (a change retrains all);
# the grid itself is never a parameter here, so growing it trains only the new cells.


rule train_cell:
    input:
        script=f"{SCRIPTS}/train_cell.py",
        code=TRAIN_CODE,
    output:
        metrics=CELL_DIR + "/metrics.json",
    log:
        R + "/logs/cells/wd={wd}/frac={frac}/width={width}/seed={seed}.log",
    params:
        settings=CELL_SETTINGS_JSON,
    threads: RUN["threads_per_job"]
    resources:
        mem_mb=1000,
        runtime=60,
    shell:
        "{PY} {input.script} --wd {wildcards.wd} --frac {wildcards.frac}"
        " --width {wildcards.width} --seed {wildcards.seed} --settings {params.settings:q}"
        " --threads {threads} --out {output.metrics} --log-level {LOG_LEVEL} 2> {log}"
