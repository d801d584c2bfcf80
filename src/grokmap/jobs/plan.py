"""The run's plan: everything the workflow's rules look up, built once from the validated settings
(no torch, nothing of Snakemake). ``workflow/rules/common.smk`` builds a :class:`Plan` and the
rules only read it: paths of every output, the cells of the grid and those still to train, their
specifications and stacks, the fingerprint, the aggregation stamp, and for refinement and
extension rounds the cells each round lists (read through the checkpoint lookups the workflow
hands in with :meth:`Plan.use_checkpoints`).

Resuming after a crash is its own step, :func:`prepare`: the workflow calls it once, visibly,
before any rule is defined; a dry run deletes nothing (:mod:`grokmap.jobs.resume`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional

from ..analysis.aggregate import REFINED, aggregation_stamp, read_round, round_file, round_key, round_settings
from ..analysis.extend import EXTENDED, extension_file, extension_key, extension_settings, read_extension
from ..analysis.extend import multiple as extend_multiple
from ..settings import Settings, load_settings
from ..training.grid import AXES, Cell, axis_name, cell_from_wildcards, extra_axes
from ..training.grid import cells as grid_cells
from ..training.record import cell_settings
from ..training.spec import CellSpec
from .cell import STATE_FILE, TILE_MARKER
from .fingerprint import fingerprint, fingerprint_filename, training_code_files
from .planning import cells_to_train, plan_stacks, stackable

__all__ = ["Plan", "build_plan", "prepare", "OUTPUTS"]

# Every aggregate output, by name, below the results directory. Rules name their inputs by these
# paths rather than by `rules.<name>.output`: a rule-output reference makes Snakemake hash the whole
# input list once per input file (quadratic in the number of cells; 6,000 cells took minutes).
OUTPUTS = {
    "phases": "phases.json", "phases_csv": "phases.csv", "metrics": "metrics.json",
    "validation": "validation.json", "metadata": "metadata.json", "report": "report.md",
    "phase_diagram": "figures/phase_diagram.png", "smooth_diagram": "figures/smooth_diagram.png",
    "curves": "figures/curves.png", "grokking_step": "figures/grokking_step.png",
    "seed_diagrams": "figures/seed_diagrams.png", "explorer": "explorer.html",
    "refine_summary": "refined/summary.json", "extend_summary": "extended/summary.json",
    "grokking_steps_csv": "figures/grokking_steps.csv",
}


@dataclass
class Plan:
    """What one run of the workflow does, for ``settings`` on ``cores`` cores."""

    settings: Settings
    cores: int = 1
    _round_path: Optional[Callable[[int], str]] = field(default=None, repr=False)
    _extension_path: Optional[Callable[[int], str]] = field(default=None, repr=False)

    def __post_init__(self):
        p, run = self.settings.params, self.settings.run
        self.params, self.run = p, run
        self.results = run["results_dir"].rstrip("/")
        self.out = {name: f"{self.results}/{rel}" for name, rel in OUTPUTS.items()}
        self.fig_formats = run["plots"]["formats"]
        # each voter's own diagram only when the points of the diagram have several voters (seeds)
        self.seed_diagrams = math.prod(len(p["sweep"].get(a, [None])) for a in p["phases"]["majority_over"]) > 1
        self.grid = grid_cells(p["sweep"])
        # the cell path names every axis: extra axes first, then wd/frac/width/seed, so studies
        # with different axes never share a directory
        self.cell_key = "/".join([f"{axis_name(k)}={{{axis_name(k)}}}" for k in extra_axes(p["sweep"])]
                                 + [f"{short}={{{short}}}" for _, short, _ in AXES])
        self.cell_dir = f"{self.results}/cells/{self.cell_key}"
        self.cells = [f"{self.results}/cells/{c.relpath}/metrics.json" for c in self.grid]
        # what every cell reads (task/model/training) and the training code, hashed: each
        # metrics.json starts with the fingerprint it was trained under (jobs/fingerprint.py)
        self.cell_settings = cell_settings(p)
        self.train_fp, self.train_fp_doc = fingerprint(self.cell_settings, training_code_files())
        self.fp_file = fingerprint_filename(self.train_fp)
        # every rule that reads cells asks for both files of each, so a cell whose fingerprint
        # file is missing (or named for other settings) is retrained
        self.cell_outputs = self.cells + [f"{self.results}/cells/{c.relpath}/{self.fp_file}" for c in self.grid]
        # the cells still to train, each resolved once into the specification its job trains;
        # a finished cell is in no job, so growing the grid trains only the new cells
        self.todo = cells_to_train(self.results, self.grid, self.fp_file)
        self._sections: dict = {}  # the specs' sections, once per combination of the extra axes
        self.specs = {c.relpath: self.spec(c) for c in self.todo}
        # cells an engine trains together (S3's model): stacks; others one per job, or in tiles of
        # config.yaml tile_cells trained one after another (a huge sweep's graph stays small)
        self.stacked = stackable(self.spec(self.grid[0]))
        self.stacks = plan_stacks(list(self.specs.values()), run["max_cells_per_job"], self.cores) \
            if self.stacked else []
        self.tiled = not self.stacked and run["tile_cells"] > 1
        self.tiles_to_redo = 0  # tiles done before with a cell to train again (a new marker generation)
        if self.tiled:
            # the workflow sees tiles, not cells: each tile job's marker stands for its cells
            self.cell_outputs, self.tiles_to_redo = self._tile_markers()
        self.agg_stamp = str(aggregation_stamp(self.results, p))
        self.rounds = p["refine"]["rounds"]
        self.refined = f"{self.results}/{REFINED}"
        self.round_files = [str(round_file(self.results, r, p)) for r in range(1, self.rounds + 1)]
        self.xrounds = p["extend"]["rounds"]
        self.extended = f"{self.results}/{EXTENDED}"
        self.extend_files = [str(extension_file(self.results, r, p)) for r in range(1, self.xrounds + 1)]
        self._grid_paths = {c.relpath for c in self.grid}

    # --- the grid ---------------------------------------------------------------------------------

    def spec(self, cell: Cell) -> CellSpec:
        """A cell's specification (the settings every cell shares, its own values put in place).
        Its values are those its path spells (as scripts/train_cell.py reads them on a cluster
        node), so a job here and one there write the same record: an extra axis' 0.0 is 0."""
        if cell.extra:
            cell = cell_from_wildcards(cell.wildcards)
        if cell.extra not in self._sections:
            self._sections[cell.extra] = CellSpec.sections(self.cell_settings, cell.extra)
        return CellSpec.of(self.cell_settings, cell, self._sections[cell.extra])

    def figure_files(self, *names: str) -> list:
        """The non-PNG files of the figures ``out[name]`` (their PNG is declared on its own)."""
        return [self.out[n][:-len(".png")] + f".{fmt}" for n in names for fmt in self.fig_formats if fmt != "png"]

    def wildcard_constraints(self) -> dict:
        return {"wd": "[0-9][0-9.e+-]*", "frac": "[0-9][0-9.e+-]*", "width": "[0-9]+", "seed": "[0-9]+",
                **{axis_name(k): "[^/]+" for k in extra_axes(self.params["sweep"])}}

    def spec_of(self, wildcards: Mapping) -> CellSpec:
        """The specification of the cell at a path (resolved now if it was complete when planned).
        A cell's values are those its path spells, so a job here and one on a cluster node agree."""
        cell = cell_from_wildcards({k: str(v) for k, v in dict(wildcards).items() if k != "multiple"})
        return self.specs.get(cell.relpath) or self.spec(cell)

    def stack_files(self, stack: list) -> list:
        """A stack's outputs: each cell's metrics.json and fingerprint file, in that order."""
        return [f"{self.results}/cells/{s.cell.relpath}/{f}" for s in stack for f in ("metrics.json", self.fp_file)]

    # --- tiles (config.yaml tile_cells > 1) -----------------------------------------------------------

    def tile_specs(self, index) -> list:
        """The cells of tile ``index``: the grid's cells index * tile_cells ... in grid order (a
        tile is the same cells whenever it is planned, here or on a cluster node)."""
        n = self.run["tile_cells"]
        return [self.spec(c) for c in self.grid[int(index) * n:(int(index) + 1) * n]]

    def _tile_markers(self) -> tuple[list, int]:
        """The marker of every tile of the grid, named by its index, its cells and the fingerprint
        (other cells or settings: another file): tiles/tile-<k>-<key>.done. A tile with a cell still
        to train whose marker exists already (a cell lost or killed after its tile finished) gets
        the next generation's name, tile-<k>-<key>-g<N>.done, so its job runs again and nothing is
        deleted to make it run (the job then removes the older generations). Read only: the
        aggregation reads every tile's newest marker, so its inputs stay the same from run to run.
        Also how many tiles get a new generation."""
        n, out = self.run["tile_cells"], []
        folder = Path(self.results) / "tiles"
        have: dict[str, int] = {}  # each tile's newest marker generation
        for name in (os.listdir(folder) if folder.is_dir() else ()):
            m = TILE_MARKER.fullmatch(name)
            if m:
                have[m["base"]] = max(have.get(m["base"], 0), int(m["gen"] or 0))
        todo, redo = {c.relpath for c in self.todo}, 0
        for k in range(0, len(self.grid), n):
            cells = [self.fp_file] + [c.relpath for c in self.grid[k:k + n]]
            base = f"tile-{k // n}-{hashlib.sha256(chr(10).join(cells).encode()).hexdigest()[:12]}"
            gen = have.get(base)
            if gen is not None and any(c.relpath in todo for c in self.grid[k:k + n]):
                gen += 1  # done before, a cell to train now: a new marker, so the tile runs
                redo += 1
            out.append(f"{self.results}/tiles/{base}{f'-g{gen}' if gen else ''}.done")
        return out, redo

    # --- refinement rounds (params.yaml refine:) -----------------------------------------------------

    def use_checkpoints(self, round_path: Callable[[int], str], extension_path: Callable[[int], str]) -> None:
        """How to read round r's list: the workflow's checkpoint lookups (they defer the rules that
        need a list until the checkpoint has written it)."""
        self._round_path, self._extension_path = round_path, extension_path

    def round_key(self, r) -> str:
        return round_key(self.params, int(r))

    def extension_key(self, r) -> str:
        return extension_key(self.params, int(r))

    def round_params(self, r) -> dict:
        """What round r's list is derived from: params.yaml with refine.rounds = r (so growing
        refine.rounds never re-derives a finished round)."""
        return json.loads(round_settings(self.params, int(r)))

    def extension_params(self, r) -> dict:
        """What extension round r's list is derived from: params.yaml with extend.rounds = r."""
        return json.loads(extension_settings(self.params, int(r)))

    def round_cells(self, r) -> list[Cell]:
        """The cells round r lists, checked to lie on the refinement lattice (a hand-edited list
        trains nothing)."""
        return read_round(self._round_path(int(r)), self.params, int(r))

    def round_stacks(self, r) -> dict:
        """Stack id (a hash of its cells' paths) -> the specs of the cells one stacked job trains."""
        stacks = plan_stacks([self.spec(c) for c in self.round_cells(r)], self.run["max_cells_per_job"], self.cores)
        return {hashlib.sha256("\n".join(s.cell.relpath for s in st).encode()).hexdigest()[:12]: st
                for st in stacks}

    def round_stack_specs(self, r, stack: str) -> list:
        return self.round_stacks(r)[stack]

    def round_outputs(self, r) -> list:
        if self.stacked:
            return [f"{self.refined}/round-{r}/stack-{k}.done" for k in self.round_stacks(r)]
        return [f"{self.refined}/cells/{c.relpath}/{name}" for c in self.round_cells(r)
                for name in ("metrics.json", self.fp_file)]

    def cells_before(self, r: int) -> list:
        """Every file of the cells of rounds 0..r-1, and the lists of rounds 1..r-1."""
        out = list(self.cell_outputs)
        for q in range(1, int(r)):
            out += [self.round_files[q - 1]] + self.round_outputs(q)
        return out

    # --- extension rounds (params.yaml extend:) ------------------------------------------------------

    def known_cells(self) -> dict:
        """Every cell of the grid (0) and of the refinement rounds (their round), as the rounds list them."""
        out = {c: 0 for c in self.grid}
        for r in range(1, self.rounds + 1):
            for c in self.round_cells(r):
                out.setdefault(c, r)
        return out

    def extended_cells(self, r) -> list:
        """The cells extension round r continues, checked to be cells of this sweep."""
        return read_extension(self._extension_path(int(r)), self.params, int(r), self.known_cells())

    def extended_outputs(self, r) -> list:
        m = extend_multiple(self.params, r)
        return [f"{self.extended}/x{m}/cells/{c.relpath}/{name}" for c in self.extended_cells(r)
                for name in ("metrics.json", self.fp_file, STATE_FILE)]

    def extended_before(self, r: int) -> list:
        """Every file of the grid's and the refinement rounds' cells, and of extension rounds 1..r-1."""
        out = self.cells_before(self.rounds + 1)
        for q in range(1, int(r)):
            out += [self.extend_files[q - 1]] + self.extended_outputs(q)
        return out

    def source(self, wildcards, name: str) -> str:
        """The file ``name`` of the record a continued cell goes on from: its record at the budget
        multiple of the round before (the grid's or a refinement round's at multiple 1)."""
        m = int(wildcards.multiple)
        allowed = [extend_multiple(self.params, r) for r in range(1, self.xrounds + 1)]
        if m not in allowed:
            raise ValueError(f"extended/x{m}: not a budget multiple of these settings ({allowed})")
        rel = self.spec_of(wildcards).cell.relpath
        before = m // self.params["extend"]["factor"]
        if before > 1:
            return f"{self.extended}/x{before}/cells/{rel}/{name}"
        return f"{self.results}/cells/{rel}/{name}" if rel in self._grid_paths else f"{self.refined}/cells/{rel}/{name}"

    def extended_spec(self, wildcards) -> CellSpec:
        spec = self.spec_of(wildcards)
        return spec.with_training(max_epochs=spec.training.max_epochs * int(wildcards.multiple))

    # --- what the aggregation reads --------------------------------------------------------------------

    def all_cells(self, wildcards=None) -> list:
        """Every cell's records: the grid's, and every refinement and extension round's list and cells."""
        if self.xrounds:
            return self.extended_before(self.xrounds + 1)
        return self.cells_before(self.rounds + 1)


def build_plan(overrides: Mapping, basedir: str | Path, cores) -> Plan:
    """Validate config.yaml and its params file with ``overrides`` (``snakemake --config``) and plan
    the run for ``cores`` (a dry run or --rulegraph may give none: then one core)."""
    settings = load_settings(None, "config.yaml", Path(basedir) / "workflow" / "schemas", overrides=overrides)
    return Plan(settings, cores if isinstance(cores, int) and cores > 0 else 1)


def prepare(plan: Plan, argv: list) -> list[str]:
    """Before the run, reading only: refuse when a live run writes the results directory (and hold
    its lock for this run), and say what an interrupted run left: the lines to print. Nothing is
    deleted here. What a killed run leaves needs no repair: Snakemake's own locks are off
    (``nolock`` in the profiles: the results directory's lock, :func:`.resume.hold_results_dir`,
    refuses a second run instead), Snakemake redoes unfinished outputs when it runs their jobs
    (``rerun-incomplete``), a tile with a cell lost gets a new marker (:meth:`Plan._tile_markers`),
    and the dead run's registration is forgotten when the run starts (``onstart``). A dry run
    (or report, graph, lint) neither refuses nor says anything."""
    from .resume import is_dry_run, is_unlock, prepare_run

    dry = is_dry_run(argv)
    lines = prepare_run(Path(".snakemake"), plan.results, dry, is_unlock(argv))
    if plan.tiles_to_redo and not dry:
        lines.append(f"[resume] {plan.tiles_to_redo} tile(s) with a cell still to train will run again")
    return lines
