# The run's plan, built once in the package (grokmap.jobs.plan) from the validated settings;
# the rules only look things up in it. No logic here.
import os
import sys
import time
from pathlib import Path

_SRC = str(Path(workflow.basedir) / "src")
if _SRC not in sys.path:  # works without `pip install -e .` too
    sys.path.insert(0, _SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

from snakemake.exceptions import WorkflowError

from grokmap.analysis.explorer import renderer_path
from grokmap.jobs.cell import STATE_FILE, TILE_KEY
from grokmap.jobs.cluster import CELL_MEM_MB, spec_runtime_minutes, stack_runtime_minutes
from grokmap.jobs.plan import build_plan, prepare
from grokmap.jobs.resume import RunRefused, forget_dead_runs, forget_scheduler, record_scheduler
from grokmap.jobs.terminal import brief_terminal, end_summary, wants_brief_terminal
from grokmap.settings import SettingsError

try:  # --cores; a dry run or --rulegraph may give none (then the plan is for one core)
    _CORES = workflow.cores
except WorkflowError:
    _CORES = 1
try:
    PLAN = build_plan(config, workflow.basedir, _CORES)
except SettingsError as exc:
    sys.stderr.write(f"Invalid settings: {exc}\n")
    sys.exit(1)

P, RUN, R, OUT = PLAN.params, PLAN.run, PLAN.results, PLAN.out  # what to compute; how to run; where
PY = sys.executable  # the interpreter running Snakemake, so the venv needs no activation
SCRIPTS = str(Path(workflow.basedir) / "scripts")
LOG_LEVEL = RUN["log_level"]
# the plotting renderer inlined into the explorer (scripts/setup_env.sh writes it; a checkout
# without it, e.g. a DVC experiment's temporary workspace, uses the environment's copy)
RENDERER = str(renderer_path(workflow.basedir))

wildcard_constraints:
    **PLAN.wildcard_constraints(),

# How the plan reads a refinement or extension round's list: through its checkpoint, so a rule
# that needs the list waits until the checkpoint has written it (refine.smk, extend.smk).
PLAN.use_checkpoints(lambda r: checkpoints.refine_round.get(r=str(r), key=PLAN.round_key(r)).output[0],
                     lambda r: checkpoints.extend_round.get(r=str(r), key=PLAN.extension_key(r)).output[0])

# Before the run, reading only: refuse when a live run writes the results directory, and say what
# an interrupted run left (the run redoes it: grokmap.jobs.plan.prepare). Nothing is deleted here.
try:
    for _line in prepare(PLAN, sys.argv[1:]):
        sys.stderr.write(_line + "\n")
except RunRefused as exc:
    sys.stderr.write(f"Invalid settings: {exc}\n")
    sys.exit(1)

# The terminal (config.yaml terminal): brief by default, Snakemake's per-job lines in its log file
# only; the run ends with its answer. Dry runs, listings and -p/--verbose keep Snakemake's own.
_STARTED = time.time()
_BRIEF = wants_brief_terminal(RUN["terminal"], sys.argv[1:]) and brief_terminal(R, _STARTED)
_MONITOR = []  # progress: cells done / to do this run, and time left


onstart:
    from grokmap.jobs.progress import start_monitors
    from grokmap.settings import mark_results_dir

    mark_results_dir(R)  # this directory is the workflow's from now on (settings.check_results_dir)
    forget_dead_runs(".snakemake")  # killed runs' registrations (read, not deleted, while parsing)
    record_scheduler(".snakemake", R)
    _MONITOR.extend(start_monitors(PLAN))


onsuccess:
    from grokmap.jobs.progress import end_monitors

    forget_scheduler(".snakemake")
    end_monitors(_MONITOR, final=True)
    if _BRIEF:
        print("\n".join(end_summary(R, _STARTED)), file=sys.stderr)


onerror:
    from grokmap.jobs.progress import end_monitors

    forget_scheduler(".snakemake")
    end_monitors(_MONITOR, final=False)
