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

from grokmap.analysis.extend import EXTENDED as _EXT, extension_file, extension_key, extension_settings
from grokmap.analysis.extend import multiple as extend_multiple, read_extension

XROUNDS = P["extend"]["rounds"]
EXTENDED = f"{R}/{_EXT}"
_GRID_PATHS = {c.relpath for c in GRID}


def _known_cells() -> dict:
    """Every cell of the grid (0) and of the refinement rounds (their round), as the rounds list them."""
    out = {c: 0 for c in GRID}
    for r in range(1, ROUNDS + 1):
        path = checkpoints.refine_round.get(r=str(r), key=round_key(P, r)).output[0]
        for c in read_round(path, P, r):
            out.setdefault(c, r)
    return out


def _extended(r) -> list:
    """The cells extension round r continues, checked to be cells of this sweep."""
    path = checkpoints.extend_round.get(r=str(r), key=extension_key(P, r)).output[0]
    return read_extension(path, P, int(r), _known_cells())


def _extended_outputs(r) -> list:
    m = extend_multiple(P, r)
    return [f"{EXTENDED}/x{m}/cells/{c.relpath}/{name}" for c in _extended(r)
            for name in ("metrics.json", FP_FILE, STATE_FILE)]


def extended_before(r: int) -> list:
    """Every file of the grid's and the refinement rounds' cells, and of extension rounds 1..r-1."""
    out = list(cells_before(ROUNDS + 1))
    for q in range(1, r):
        out += [EXTEND_FILES[q - 1]] + _extended_outputs(q)
    return out


def _cell_wildcards(wildcards) -> dict:
    return {k: str(v) for k, v in dict(wildcards).items() if k != "multiple"}


def _source(wildcards, name: str) -> str:
    """The file ``name`` of the record a continued cell goes on from: its record at the budget
    multiple of the round before (the grid's or a refinement round's at multiple 1)."""
    m = int(wildcards.multiple)
    allowed = [extend_multiple(P, r) for r in range(1, XROUNDS + 1)]
    if m not in allowed:
        raise ValueError(f"extended/x{m}: not a budget multiple of these settings ({allowed})")
    rel = cell_from_wildcards(_cell_wildcards(wildcards)).relpath
    before = m // P["extend"]["factor"]
    if before > 1:
        return f"{EXTENDED}/x{before}/cells/{rel}/{name}"
    return f"{R}/cells/{rel}/{name}" if rel in _GRID_PATHS else f"{REFINED}/cells/{rel}/{name}"


def _extended_spec(wildcards) -> CellSpec:
    spec = CellSpec.of(CELL_SETTINGS, cell_from_wildcards(_cell_wildcards(wildcards)))
    return spec.with_training(max_epochs=spec.training.max_epochs * int(wildcards.multiple))


EXTEND_FILES = [str(extension_file(R, r, P)) for r in range(1, XROUNDS + 1)]

if XROUNDS:
    # What the aggregation reads: every cell's records, and every extension round's list and cells.
    ALL_CELLS = lambda wildcards: extended_before(XROUNDS + 1)

    checkpoint extend_round:
        input:
            script=f"{SCRIPTS}/extend_round.py",
            cells=lambda wc: extended_before(int(wc.r)),
        output:
            EXTENDED + "/round-{r}-{key}.json",
        log:
            R + "/logs/extend/round-{r}-{key}.log",
        params:
            params=lambda wc: extension_settings(P, wc.r),
        wildcard_constraints:
            r="[1-9][0-9]*",
            key="[0-9a-f]{16}",
        shell:
            "{PY:q} {input.script:q} --params {params.params:q} --results-dir {R:q} --round {wildcards.r:q}"
            " --out {output:q} --log-level {LOG_LEVEL:q} 2> {log:q}"

    localrules: extend_round

    rule train_extended_cell:
        # the cell's values are its path's; its budget is its multiple's (the path's x<multiple>)
        input:
            metrics=lambda wc: _source(wc, "metrics.json"),
            state=lambda wc: _source(wc, STATE_FILE),
        output:
            metrics=EXTENDED + "/x{multiple}/cells/" + CELL_KEY + "/metrics.json",
            fingerprint=EXTENDED + "/x{multiple}/cells/" + CELL_KEY + "/" + FP_FILE,
            state=EXTENDED + "/x{multiple}/cells/" + CELL_KEY + "/" + STATE_FILE,
        log:
            R + "/logs/extended/x{multiple}/" + CELL_KEY + ".log",
        wildcard_constraints:
            multiple="[1-9][0-9]*",
        threads: RUN["threads_per_job"]
        resources:
            mem_mb=CELL_MEM_MB,
            runtime=lambda wc: spec_runtime_minutes(_extended_spec(wc)),
        run:
            from grokmap.jobs.cell import extend_job

            extend_job(_extended_spec(wildcards), int(wildcards.multiple), input.metrics, TRAIN_FP, TRAIN_FP_DOC, output.metrics,
                       output.fingerprint, threads, log[0], LOG_LEVEL)
