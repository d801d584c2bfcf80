# Extension rounds along the budget (params.yaml extend:, docs/extension.md). With
# extend.rounds = 0 nothing here is used.
#
# Round r is a checkpoint: once every cell of the grid, of the refinement rounds and of extension
# rounds 1..r-1 is trained, it classifies the cells (each by its longest record) and writes
# extended/round-<r>-<key>.json, the cells still undecided at their budget
# (src/grokmap/analysis/extend.py). Each is continued from its saved final state (state.pt) to
# factor ** r times its budget, into extended/x<factor ** r>/cells/<path>/ (metrics.json,
# the fingerprint file and its own state), one job per cell. The checkpoint's settings are all
# of params.yaml but extend.rounds, so more rounds continue only what is still undecided, and
# another factor continues into other directories.
# The round lists, the cells they name and each continued cell's source are looked up in the plan
# (grokmap.jobs.plan).


if PLAN.xrounds:
    checkpoint extend_round:
        input:
            cells=lambda wc: PLAN.extended_before(int(wc.r)),
        output:
            PLAN.extended + "/round-{r}-{key}.json",
        log:
            R + "/logs/extend/round-{r}-{key}.log",
        params:
            params=lambda wc: PLAN.extension_params(wc.r),
            results_dir=R,
            log_level=LOG_LEVEL,
        wildcard_constraints:
            r="[1-9][0-9]*",
            key="[0-9a-f]{16}",
        script:
            "../../scripts/extend_round.py"

    localrules: extend_round

    rule train_extended_cell:
        # the cell's values are its path's; its budget is its multiple's (the path's x<multiple>)
        input:
            metrics=lambda wc: PLAN.source(wc, "metrics.json"),
            state=lambda wc: PLAN.source(wc, STATE_FILE),
        output:
            metrics=PLAN.extended + "/x{multiple}/cells/" + PLAN.cell_key + "/metrics.json",
            fingerprint=PLAN.extended + "/x{multiple}/cells/" + PLAN.cell_key + "/" + PLAN.fp_file,
            state=PLAN.extended + "/x{multiple}/cells/" + PLAN.cell_key + "/" + STATE_FILE,
        log:
            R + "/logs/extended/x{multiple}/" + PLAN.cell_key + ".log",
        wildcard_constraints:
            multiple="[1-9][0-9]*",
        threads: RUN["threads_per_job"]
        resources:
            mem_mb=CELL_MEM_MB,
            runtime=lambda wc: spec_runtime_minutes(PLAN.extended_spec(wc)),
        run:
            from grokmap.jobs.cell import extend_job

            extend_job(PLAN.extended_spec(wildcards), int(wildcards.multiple), input.metrics, PLAN.train_fp,
                       PLAN.train_fp_doc, output.metrics, output.fingerprint, threads, log[0], LOG_LEVEL,
                       RUN["device"])
