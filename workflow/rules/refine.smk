# Adaptive refinement (params.yaml refine:, docs/refinement.md). With refine.rounds = 0 nothing
# here is used and the workflow is the plain grid.
#
# Round r is a checkpoint: once every cell of rounds 0..r-1 is trained, it classifies them and
# writes refined/round-<r>.json, the cells round r adds (src/grokmap/analysis/refine.py). Those
# cells are ordinary cells below refined/cells/<path>/ (metrics.json and the fingerprint file,
# like the grid's), trained one per job, or stacked where the engine trains several at once
# (S3's model), with a marker per stack. The checkpoint's settings are the phases, the sweep
# and refine.axes/digits but not refine.rounds, so more rounds train only the new ones; editing
# `phases:` re-derives the rounds and trains only cells that do not exist yet. A cell no longer
# listed is kept on disk and not counted.

from grokmap.analysis.aggregate import read_round, round_file, round_key, round_settings

REFINE = P["refine"]
ROUNDS = REFINE["rounds"]
REFINED = f"{R}/refined"


def _round_cells(r) -> list:
    """The cells round r lists, checked to lie on the refinement lattice (a hand-edited list trains nothing)."""
    path = checkpoints.refine_round.get(r=str(r), key=round_key(P, r)).output[0]
    return [c.relpath for c in read_round(path, P, int(r))]


def _spec_at(relpath: str) -> CellSpec:
    return CellSpec.of(CELL_SETTINGS, cell_from_wildcards(dict(part.split("=", 1) for part in relpath.split("/"))))


def _round_stacks(r) -> dict:
    """Stack id (a hash of its cells' paths) -> the paths of the cells one stacked job trains."""
    stacks = plan_stacks([_spec_at(rel) for rel in _round_cells(r)], RUN["max_cells_per_job"], _CORES)
    return {_hashlib.sha256("\n".join(s.cell.relpath for s in st).encode()).hexdigest()[:12]:
            [s.cell.relpath for s in st] for st in stacks}


def _round_outputs(r) -> list:
    if STACKED:
        return [f"{REFINED}/round-{r}/stack-{k}.done" for k in _round_stacks(r)]
    return [f"{REFINED}/cells/{rel}/{name}" for rel in _round_cells(r) for name in ("metrics.json", FP_FILE)]


def cells_before(r: int) -> list:
    """Every file of the cells of rounds 0..r-1, and the lists of rounds 1..r-1."""
    out = list(CELL_OUTPUTS)
    for q in range(1, r):
        out += [ROUND_FILES[q - 1]] + _round_outputs(q)
    return out


# Each round's list is named by the settings it is derived from (grokmap.analysis.aggregate.round_file):
# under other settings it is missing, so it is derived again even with no record of earlier runs.
ROUND_FILES = [str(round_file(R, r, P)) for r in range(1, ROUNDS + 1)]
# What the aggregation reads: the grid's cells, and with refinement every round's list and cells.
ALL_CELLS = CELL_OUTPUTS if not ROUNDS else (lambda wildcards: cells_before(ROUNDS + 1))


if ROUNDS:
    checkpoint refine_round:
        input:
            script=f"{SCRIPTS}/refine_round.py",
            cells=lambda wc: cells_before(int(wc.r)),
        output:
            REFINED + "/round-{r}-{key}.json",
        log:
            R + "/logs/refine/round-{r}-{key}.log",
        params:
            params=lambda wc: round_settings(P, wc.r),
        wildcard_constraints:
            r="[1-9][0-9]*",
            key="[0-9a-f]{16}",
        shell:
            "{PY:q} {input.script:q} --params {params.params:q} --results-dir {R:q} --round {wildcards.r:q}"
            " --out {output:q} --log-level {LOG_LEVEL:q} 2> {log:q}"

    localrules: refine_round

    if not STACKED:
        rule train_refined_cell:
            # like train_cell (train.smk): no inputs, no params; a refined cell's values are its path's
            output:
                metrics=REFINED + "/cells/" + CELL_KEY + "/metrics.json",
                fingerprint=REFINED + "/cells/" + CELL_KEY + "/" + FP_FILE,
                state=REFINED + "/cells/" + CELL_KEY + "/" + STATE_FILE,
            log:
                R + "/logs/refined/" + CELL_KEY + ".log",
            threads: RUN["threads_per_job"]
            resources:
                mem_mb=CELL_MEM_MB,
                runtime=lambda wc: spec_runtime_minutes(spec_of(wc)),
            run:
                from grokmap.jobs.cell import train_job

                train_job([spec_of(wildcards)], TRAIN_FP, TRAIN_FP_DOC, [output.metrics], [output.fingerprint],
                          threads, log[0], LOG_LEVEL)
    else:
        rule train_refined_stack:
            # the cells of one stack of round r: each writes its own two files; the marker comes last
            output:
                REFINED + "/round-{r}/stack-{stack}.done",
            log:
                R + "/logs/refined/round-{r}-stack-{stack}.log",
            threads: RUN["threads_per_job"]
            resources:
                mem_mb=CELL_MEM_MB,
                runtime=lambda wc: stack_runtime_minutes([_spec_at(rel) for rel in _round_stacks(wc.r)[wc.stack]]),
            params:
                cells=lambda wc: _round_stacks(wc.r)[wc.stack],
            run:
                from grokmap.io import atomic_write_json
                from grokmap.jobs.cell import train_job
                from grokmap.jobs.fingerprint import cell_files_complete

                todo = [rel for rel in params.cells
                        if not cell_files_complete(Path(f"{REFINED}/cells/{rel}/{FP_FILE}"))]  # resumed: skip the done
                if todo:
                    train_job([_spec_at(rel) for rel in todo], TRAIN_FP, TRAIN_FP_DOC,
                              [f"{REFINED}/cells/{rel}/metrics.json" for rel in todo],
                              [f"{REFINED}/cells/{rel}/{FP_FILE}" for rel in todo], threads, log[0], LOG_LEVEL)
                atomic_write_json(output[0], {"cells": params.cells, "trained_now": todo})
