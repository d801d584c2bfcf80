# Adaptive refinement (params.yaml refine:, docs/refinement.md). With refine.rounds = 0 nothing
# here is used and the workflow is the plain grid.
#
# Round r is a checkpoint: once every cell of rounds 0..r-1 is trained, it classifies them and
# writes refined/round-<r>-<key>.json, the cells round r adds (src/grokmap/analysis/refine.py),
# named by the settings it is derived from. Those cells are ordinary cells below
# refined/cells/<path>/ (metrics.json and the fingerprint file, like the grid's), trained one per
# job, or stacked where the engine trains several at once (S3's model), with a marker per stack.
# The checkpoint's settings are the phases, the sweep and refine.axes/digits but not
# refine.rounds, so more rounds train only the new ones; editing `phases:` re-derives the rounds
# and trains only cells that do not exist yet. A cell no longer listed is kept on disk and not
# counted. The round lists and the cells they name are looked up in the plan (grokmap.jobs.plan).


if PLAN.rounds:
    checkpoint refine_round:
        input:
            script=f"{SCRIPTS}/refine_round.py",
            cells=lambda wc: PLAN.cells_before(int(wc.r)),
        output:
            PLAN.refined + "/round-{r}-{key}.json",
        log:
            R + "/logs/refine/round-{r}-{key}.log",
        params:
            params=lambda wc: PLAN.round_params(wc.r),
            results_dir=R,
            log_level=LOG_LEVEL,
        wildcard_constraints:
            r="[1-9][0-9]*",
            key="[0-9a-f]{16}",
        script:
            "../../scripts/refine_round.py"

    localrules: refine_round

    if not PLAN.stacked:
        rule train_refined_cell:
            # like train_cell (train.smk): no inputs, no params; a refined cell's values are its path's
            output:
                metrics=PLAN.refined + "/cells/" + PLAN.cell_key + "/metrics.json",
                fingerprint=PLAN.refined + "/cells/" + PLAN.cell_key + "/" + PLAN.fp_file,
                state=PLAN.refined + "/cells/" + PLAN.cell_key + "/" + STATE_FILE,
            log:
                R + "/logs/refined/" + PLAN.cell_key + ".log",
            threads: RUN["threads_per_job"]
            resources:
                mem_mb=CELL_MEM_MB,
                runtime=lambda wc: spec_runtime_minutes(PLAN.spec_of(wc)),
            run:
                from grokmap.jobs.cell import train_job

                train_job([PLAN.spec_of(wildcards)], PLAN.train_fp, PLAN.train_fp_doc, [output.metrics],
                          [output.fingerprint], threads, log[0], LOG_LEVEL, RUN["device"])
    else:
        rule train_refined_stack:
            # the cells of one stack of round r: each writes its own two files; the marker comes last
            output:
                PLAN.refined + "/round-{r}/stack-{stack}.done",
            log:
                R + "/logs/refined/round-{r}-stack-{stack}.log",
            threads: RUN["threads_per_job"]
            resources:
                mem_mb=CELL_MEM_MB,
                runtime=lambda wc: stack_runtime_minutes(PLAN.round_stack_specs(wc.r, wc.stack)),
            run:
                from grokmap.jobs.cell import train_marked_job

                train_marked_job(PLAN.round_stack_specs(wildcards.r, wildcards.stack), PLAN.refined + "/cells",
                                      PLAN.train_fp, PLAN.train_fp_doc, PLAN.fp_file, output[0], threads, log[0],
                                      LOG_LEVEL, RUN["device"])
