# One job per sweep cell. Per-cell values reach the job through the wildcards of its
# output path; settings shared by all cells through the fingerprint (common.smk).
#
# Each cell writes two files: metrics.json and fingerprint-<fp>.json, where <fp> hashes
# the params.yaml sections every cell reads (task, model, training) and the training code.
# A settings or code change changes the second file's name, so every cell's output is
# missing and all cells retrain; growing the grid trains only the new cells; editing
# `phases:` or config.yaml changes neither. The rule has no params and no inputs, so
# nothing Snakemake remembers of earlier runs can retrain a cell whose files are current,
# e.g. after `git checkout` + `dvc checkout` of an earlier sweep.


rule train_cell:
    output:
        metrics=CELL_DIR + "/metrics.json",
        fingerprint=CELL_DIR + "/" + FP_FILE,
    log:
        R + "/logs/cells/wd={wd}/frac={frac}/width={width}/seed={seed}.log",
    threads: RUN["threads_per_job"]
    resources:
        mem_mb=1000,
        runtime=60,
    shell:
        "{PY} {SCRIPTS}/train_cell.py --wd {wildcards.wd} --frac {wildcards.frac}"
        " --width {wildcards.width} --seed {wildcards.seed} --settings {CELL_SETTINGS_JSON:q}"
        " --threads {threads} --out {output.metrics} --fingerprint-out {output.fingerprint}"
        " --log-level {LOG_LEVEL} 2> {log}"
