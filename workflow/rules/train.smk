# One job per sweep cell: its specification, resolved once when the run is planned (PLAN.specs),
# is passed to the job as an object; the cell's own values are those of its output path.
#
# Each cell writes two files: metrics.json and fingerprint-<fp>.json, where <fp> hashes
# the params.yaml sections every cell reads (task, model, training) and the training code.
# A settings or code change changes the second file's name, so every cell's output is
# missing and all cells retrain; growing the grid trains only the new cells; editing
# `phases:` or config.yaml changes neither. The rule has no params and no inputs, so
# nothing Snakemake remembers of earlier runs can retrain a cell whose files are current,
# e.g. after `git checkout` + `dvc checkout` of an earlier sweep. A cell trained alone also keeps
# its final state (state.pt: parameters, optimizer state, generator), which its record names by
# SHA-256: extension rounds (extend.smk) continue undecided cells from it.


if not PLAN.stacked and not PLAN.tiled:
    rule train_cell:
        output:
            metrics=PLAN.cell_dir + "/metrics.json",
            fingerprint=PLAN.cell_dir + "/" + PLAN.fp_file,
            state=PLAN.cell_dir + "/" + STATE_FILE,  # the final state an extension round continues from
        log:
            R + "/logs/cells/" + PLAN.cell_key + ".log",
        threads: RUN["threads_per_job"]
        resources:
            # what a batch system is asked for (src/grokmap/jobs/cluster.py); ignored locally
            mem_mb=CELL_MEM_MB,
            runtime=lambda wc: spec_runtime_minutes(PLAN.spec_of(wc)),
        run:
            # In the scheduler's process (the profile sets force-use-threads), so torch is
            # imported once per run rather than once per cell; scripts/train_cell.py is the
            # same job as a command.
            from grokmap.jobs.cell import train_job

            train_job([PLAN.spec_of(wildcards)], PLAN.train_fp, PLAN.train_fp_doc, [output.metrics],
                      [output.fingerprint], threads, log[0], LOG_LEVEL, RUN["device"])


# S3's model: one job per stack of cells (PLAN.stacks), each writing every cell's two files.
for _k, _stack in enumerate(PLAN.stacks):
    rule:
        name: f"train_stack_{_k}"
        output:
            PLAN.stack_files(_stack),
        log:
            f"{R}/logs/stacks/stack_{_k}_of_{len(PLAN.stacks)}.log",
        threads: RUN["threads_per_job"]
        resources:
            mem_mb=CELL_MEM_MB,
            runtime=stack_runtime_minutes(_stack),
        params:
            # the cells of this job, by their paths (a loop variable would be read late)
            cells=[s.cell.relpath for s in _stack],
        run:
            from grokmap.jobs.cell import train_job

            train_job([PLAN.specs[relpath] for relpath in params.cells], PLAN.train_fp, PLAN.train_fp_doc,
                      list(output)[0::2], list(output)[1::2], threads, log[0], LOG_LEVEL, RUN["device"])


# Other models with config.yaml tile_cells > 1: one job per tile of cells (PLAN.tile_specs), trained
# one after another; the workflow sees each tile's marker instead of its cells (so a sweep of
# 100,000 cells is a graph of 1,000 jobs). A tile resumed after a kill trains only the cells it had
# not finished; a tile done before with a cell to train again gets a marker of a new generation
# (jobs.plan.Plan._tile_markers), so it runs again with nothing deleted first.
if PLAN.tiled:
    rule train_tile:
        output:
            R + "/tiles/tile-{index}-{key}.done",
        log:
            R + "/logs/tiles/tile-{index}-{key}.log",
        wildcard_constraints:
            index="[0-9]+",
            key=TILE_KEY,  # with -g<N>: a tile done before, with a cell to train again
        threads: RUN["threads_per_job"]
        resources:
            mem_mb=CELL_MEM_MB,
            runtime=lambda wc: stack_runtime_minutes(PLAN.tile_specs(wc.index)),
        run:
            from grokmap.jobs.cell import train_marked_job

            train_marked_job(PLAN.tile_specs(wildcards.index), R + "/cells", PLAN.train_fp, PLAN.train_fp_doc,
                             PLAN.fp_file, output[0], threads, log[0], LOG_LEVEL, RUN["device"])
