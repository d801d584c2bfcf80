# Settings, grid and paths shared by every rule. All logic lives in src/grokmap.
import json
import os
import sys
from pathlib import Path

_SRC = str(Path(workflow.basedir) / "src")
if _SRC not in sys.path:  # works without `pip install -e .` too
    sys.path.insert(0, _SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

from grokmap.jobs.cell import STATE_FILE
from grokmap.jobs.cluster import CELL_MEM_MB, spec_runtime_minutes, stack_runtime_minutes
from grokmap.jobs.fingerprint import cell_files_complete, fingerprint, fingerprint_filename, training_code_files
from grokmap.jobs.planning import cells_to_train, plan_stacks, stackable
from grokmap.settings import SettingsError, load_settings
from grokmap.training.grid import AXES, axis_name, cell_from_wildcards, extra_axes
from grokmap.training.grid import cells as grid_cells
from grokmap.training.record import cell_settings
from grokmap.training.spec import CellSpec

try:
    SETTINGS = load_settings(None, "config.yaml",  # params: config.yaml's params_file
                             Path(workflow.basedir) / "workflow" / "schemas", overrides=config)
except SettingsError as exc:
    sys.stderr.write(f"Invalid settings: {exc}\n")
    sys.exit(1)

P = SETTINGS.params  # what to compute
RUN = SETTINGS.run  # how to run
R = RUN["results_dir"].rstrip("/")
PY = sys.executable  # the interpreter running Snakemake, so the venv needs no activation
SCRIPTS = str(Path(workflow.basedir) / "scripts")
LOG_LEVEL = RUN["log_level"]
GRID = grid_cells(P["sweep"])

# Every aggregate output, by name. Rules name their inputs by these paths rather than by
# `rules.<name>.output`: a rule-output reference makes Snakemake hash the whole input list once
# per input file (quadratic in the number of cells; 6,000 cells took minutes to dry-run).
OUT = {name: f"{R}/{rel}" for name, rel in {
    "phases": "phases.json", "phases_csv": "phases.csv", "metrics": "metrics.json",
    "validation": "validation.json", "metadata": "metadata.json", "report": "report.md",
    "phase_diagram": "figures/phase_diagram.png", "smooth_diagram": "figures/smooth_diagram.png",
    "curves": "figures/curves.png", "grokking_step": "figures/grokking_step.png",
    "seed_diagrams": "figures/seed_diagrams.png", "explorer": "explorer.html",
    "refine_summary": "refined/summary.json",
    "extend_summary": "extended/summary.json",
    "grokking_steps_csv": "figures/grokking_steps.csv",
}.items()}
# Figure files (config.yaml plots): every figure as .png and, beside it, each other format.
FIG_FORMATS = RUN["plots"]["formats"]
FIG_ARGS = ["--formats", ",".join(FIG_FORMATS), "--dpi", str(RUN["plots"]["dpi"])]


def figure_files(*names: str) -> list:
    """The non-PNG files of the figures OUT[name] (their PNG is declared on its own)."""
    return [OUT[n][:-len(".png")] + f".{fmt}" for n in names for fmt in FIG_FORMATS if fmt != "png"]


# Each voter's own diagram only when the points of the diagram have several voters (seeds).
import math as _math

SEED_DIAGRAMS = _math.prod(len(P["sweep"].get(a, [None])) for a in P["phases"]["majority_over"]) > 1

# The plotting renderer inlined into the explorer, written by scripts/setup_env.sh.
# A checkout without it (a DVC experiment's temporary workspace) uses the environment's copy.
from grokmap.analysis.explorer import renderer_path

RENDERER = str(renderer_path(workflow.basedir))

# The cell path names every axis: extra axes first (e.g. training_optimizer={training_optimizer}),
# then wd/frac/width/seed, so studies with different axes never share a directory.
CELL_KEY = "/".join([f"{axis_name(k)}={{{axis_name(k)}}}" for k in extra_axes(P["sweep"])]
                    + [f"{short}={{{short}}}" for _, short, _ in AXES])
CELL_DIR = R + "/cells/" + CELL_KEY
CELLS = [f"{R}/cells/{c.relpath}/metrics.json" for c in GRID]

# What every cell reads (params.yaml task/model/training) and the training code, hashed:
# each metrics.json starts with the fingerprint it was trained under (src/grokmap/jobs/fingerprint.py).
CELL_SETTINGS = cell_settings(P)
TRAIN_FP, TRAIN_FP_DOC = fingerprint(CELL_SETTINGS, training_code_files(Path(_SRC) / "grokmap" / "training"))
FP_FILE = fingerprint_filename(TRAIN_FP)
# Every rule that reads cells requests both files of each, so that a cell whose
# fingerprint file is missing (or named for other settings) is retrained.
CELL_OUTPUTS = CELLS + [f"{R}/cells/{c.relpath}/{FP_FILE}" for c in GRID]
# The cells still to train, each resolved once into the specification its job trains
# (grokmap.training.spec). An engine that trains several cells at once (S3's model) gets them
# planned into stacks by grokmap.jobs.planning.plan_stacks (config.yaml max_cells_per_job, at
# least one job per core). A finished cell is in no job, so growing the grid trains only the new cells.
TODO = cells_to_train(R, GRID, FP_FILE)
# A cell's values are those its path spells (as scripts/train_cell.py reads them), so a job
# in this process and one on a cluster node write the same record.
SPECS = {c.relpath: CellSpec.of(CELL_SETTINGS, cell_from_wildcards(c.wildcards)) for c in TODO}


def spec_of(wildcards) -> CellSpec:
    """The specification of the cell at a path (resolved now if it was complete at parse time)."""
    cell = cell_from_wildcards({k: str(v) for k, v in dict(wildcards).items()})
    return SPECS.get(cell.relpath) or CellSpec.of(CELL_SETTINGS, cell)


STACKED = stackable(CellSpec.of(CELL_SETTINGS, GRID[0]))
STACKS = []
if STACKED:
    from snakemake.exceptions import WorkflowError

    try:  # --cores; a dry run or --rulegraph may give none (then the plan is for one core)
        _CORES = workflow.cores if isinstance(workflow.cores, int) and workflow.cores > 0 else 1
    except WorkflowError:
        _CORES = 1
    STACKS = plan_stacks(list(SPECS.values()), RUN["max_cells_per_job"], _CORES)

# All of params.yaml, as JSON, for the aggregation rules (tracked by their `params:`).
PARAMS_JSON = json.dumps(P, sort_keys=True)
# The settings the aggregated outputs are built from (phases and sweep): classify_phases also
# writes a stamp named by their hash, so under other settings its output is missing and
# aggregation reruns whatever Snakemake's own records say (results copied elsewhere, or
# restored without .snakemake/).
import hashlib as _hashlib

AGG_SETTINGS_JSON = json.dumps({"phases": P["phases"], "sweep": P["sweep"],
                                **({"refine": P["refine"]} if P["refine"]["rounds"] else {}),
                                **({"extend": P["extend"]} if P["extend"]["rounds"] else {})}, sort_keys=True)
AGG_STAMP = f"{R}/.grokmap-aggregation-{_hashlib.sha256(AGG_SETTINGS_JSON.encode()).hexdigest()[:16]}.json"

wildcard_constraints:
    wd="[0-9][0-9.e+-]*",
    frac="[0-9][0-9.e+-]*",
    width="[0-9]+",
    seed="[0-9]+",
    **{axis_name(k): "[^/]+" for k in extra_axes(P["sweep"])},


# Resume with the same command after a crash (grokmap.jobs.resume.prepare_run; a dry run deletes nothing).
from grokmap.jobs.resume import RunRefused, forget_scheduler, is_dry_run, is_unlock, prepare_run, record_scheduler

_STATE = Path(".snakemake")
try:
    for _line in prepare_run(_STATE, R, is_dry_run(sys.argv[1:]), cell_files_complete, is_unlock(sys.argv[1:])):
        sys.stderr.write(_line + "\n")
except RunRefused as exc:
    sys.stderr.write(f"Invalid settings: {exc}\n")
    sys.exit(1)

# The terminal (config.yaml terminal): brief by default, Snakemake's per-job lines in its log file
# only; the run ends with its answer (grokmap.jobs.terminal). Dry runs, listings and -p/--verbose
# keep Snakemake's own terminal.
import time as _time
from grokmap.jobs.terminal import brief_terminal, end_summary

_STARTED = _time.time()
_ARGS = sys.argv[1:]
_BRIEF = (RUN["terminal"] == "summary" and not is_dry_run(_ARGS)
          and not any(a in ("-p", "--printshellcmds", "--verbose", "--debug") for a in _ARGS)
          and brief_terminal(R, _STARTED))

# Progress: cells done / to do this run, and time left (printed by the scheduler process).
_MONITOR = []


onstart:
    from grokmap.jobs.progress import ProgressMonitor
    from grokmap.settings import mark_results_dir

    mark_results_dir(R)  # this directory is the workflow's from now on (settings.check_results_dir)
    record_scheduler(_STATE, R)
    _MONITOR.append(ProgressMonitor([f"{R}/cells/{c.relpath}/metrics.json" for c in TODO], len(CELLS)).begin())
    if P["refine"]["rounds"] or P["extend"]["rounds"]:  # the rounds' cells, as their lists appear
        from grokmap.jobs.progress import RoundProgress, round_cell_lists

        _MONITOR.append(RoundProgress(lambda: round_cell_lists(R, P)).begin())


onsuccess:
    forget_scheduler(_STATE)
    for m in _MONITOR:
        m.end()
        if m.paths and m.last_printed != m.done():
            print(m.line(m.done()), file=sys.stderr)
    if _BRIEF:
        print("\n".join(end_summary(R, _STARTED)), file=sys.stderr)


onerror:
    forget_scheduler(_STATE)
    for m in _MONITOR:
        m.end()
