"""Records for docs/reproductions/ (``scripts/reproduction_record.py``,
``scripts/measures_figure.py``): from a finished results directory, nothing typed in by hand."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path




def _finished_phases(results_dir: Path) -> dict | None:
    from ..analysis.aggregate import read_phases

    try:
        return read_phases(results_dir)
    except FileNotFoundError as err:
        sys.stderr.write(f"{err}\n")
        return None


def _keep(row: dict, only: list[tuple[str, str]]) -> bool:
    from ..training.grid import spell

    return all(spell(row[axis]) == value for axis, value in only)


def _only(phases: dict, given: list[str]) -> list[tuple[str, str]] | None:
    """``AXIS=VALUE`` filters, each axis a swept one (else a message and None)."""
    only = [tuple(o.split("=", 1)) for o in given]
    sweep = phases["settings"]["sweep"]
    for axis, *value in only:
        if axis not in sweep or not value:
            sys.stderr.write(f"--only {axis!r}: not AXIS=VALUE of a swept axis; allowed axes: {', '.join(sweep)}\n")
            return None
    return only


def reproduction_record_main(argv=None) -> int:
    """A finished sweep as a reproduction record: <out>.csv (per-cell phase table) and, for
    the whole sweep, <out>_phase_diagram.png and <out>_smooth_diagram.png."""
    import shutil

    from ..analysis.aggregate import reproduction_csv
    from ..io import atomic_write_text

    p = argparse.ArgumentParser(description=reproduction_record_main.__doc__.splitlines()[0])
    p.add_argument("results_dir", type=Path, help="a results directory the workflow finished (phases.json)")
    p.add_argument("out", type=Path, help="output path without extension, e.g. docs/reproductions/name")
    p.add_argument("--only", metavar="AXIS=VALUE", action="append", default=[],
                   help="keep the cells whose AXIS is spelled VALUE (repeatable); the diagrams, which "
                        "show every cell, are then not copied")
    p.add_argument("--columns", default="", help="comma-separated phases.csv columns to add to the table")
    args = p.parse_args(argv)
    phases = _finished_phases(args.results_dir)
    only = phases and _only(phases, args.only)
    if phases is None or only is None:
        return 1
    if only:
        phases["cells"] = [r for r in phases["cells"] if _keep(r, only)]
        if not phases["cells"]:
            sys.stderr.write(f"no cell has {', '.join(args.only)}\n")
            return 1
        for axis, _ in only:
            phases["settings"]["sweep"][axis] = [phases["cells"][0][axis]]
    try:
        table = reproduction_csv(phases, [c for c in args.columns.split(",") if c])
    except ValueError as err:
        sys.stderr.write(f"--columns: {err}\n")
        return 2
    csv_path = args.out.with_name(args.out.name + ".csv")  # not with_suffix: "..._frac0.35" keeps its ".35"
    atomic_write_text(csv_path, table)
    if only:
        print(f"wrote {csv_path} ({len(phases['cells'])} cells)")
        return 0
    for fig in ("phase_diagram", "smooth_diagram"):
        shutil.copyfile(args.results_dir / "figures" / f"{fig}.png", f"{args.out}_{fig}.png")
    print(f"wrote {args.out}.csv and its two diagrams")
    return 0


def measures_figure_main(argv=None) -> int:
    """Curves of a finished sweep's cells side by side, one line per cell coloured by a swept
    axis: by default test accuracy, parameter norm and sparsity of the cells that reached the
    grokking accuracy, aligned at their grokking step (S1 sections 5.1-5.2); with --absolute
    every cell against the step itself (S4 figure 5)."""
    from ..analysis.aggregate import cell_path
    from ..training.grid import cells
    from ..analysis.axes import short_label
    from ..analysis.plots import TRACES, plot_measure_traces

    p = argparse.ArgumentParser(description=measures_figure_main.__doc__.splitlines()[0])
    p.add_argument("results_dir", type=Path, help="a results directory the workflow finished (phases.json)")
    p.add_argument("out", type=Path, help="the PNG to write")
    p.add_argument("--hue", default="train_fraction", help="the swept axis that colours the lines")
    p.add_argument("--curves", default="test_acc,param_norm,subnetwork_fraction",
                   help="comma-separated curves, one panel each")
    p.add_argument("--only", metavar="AXIS=VALUE", action="append", default=[],
                   help="keep the cells whose AXIS is spelled VALUE (repeatable)")
    p.add_argument("--absolute", action="store_true",
                   help="every cell against the step itself, not aligned at its grokking step")
    args = p.parse_args(argv)
    phases = _finished_phases(args.results_dir)
    only = phases and _only(phases, args.only)
    if phases is None or only is None:
        return 1
    keys = args.curves.split(",")
    unknown = [k for k in keys if k not in TRACES]
    if unknown:
        sys.stderr.write(f"--curves: unknown curve(s) {', '.join(unknown)}; allowed: {', '.join(TRACES)}\n")
        return 2
    sweep = phases["settings"]["sweep"]
    if args.hue not in sweep:
        sys.stderr.write(f"--hue {args.hue!r} is not a swept axis; allowed: {', '.join(sweep)}\n")
        return 2
    runs = []
    for cell, row in zip(cells(sweep), phases["cells"], strict=True):
        if any(row[k] != v for k, v in cell.as_dict().items()):
            sys.stderr.write(f"{args.results_dir}/phases.json: rows are not in grid order at {cell.relpath}\n")
            return 1
        if (row["grokking_step"] is None and not args.absolute) or not _keep(row, only):
            continue
        record = json.loads(cell_path(args.results_dir, cell).read_text())
        runs.append((row[args.hue], record["curves"], row["grokking_step"]))
    if not runs:
        sys.stderr.write("no cell reached the grokking accuracy; nothing to align (see --absolute)\n")
        return 1
    threshold = phases["settings"]["phases"]["grokking_step_accuracy"]
    label = short_label(args.hue) if "." in args.hue else args.hue
    plot_measure_traces(runs, args.out, label, keys, threshold, aligned=not args.absolute)
    print(f"wrote {args.out} ({len(runs)} cells)")
    return 0


# Before/after checks of a change that must not move any number (scripts/compare_records.py).

# Record fields that differ between two runs of the same code: the fingerprint names the code,
# the others are timings, memory, package versions and the machine (whose CPU kind decides
# whether bit-identity can be asked for at all: :func:`cpu_kinds_verdict`).
VOLATILE = ("fingerprint", "train_seconds", "wall_seconds", "peak_rss_mb", "versions", "machine")


def _canonical(record: dict) -> str:
    return json.dumps({k: v for k, v in record.items() if k not in VOLATILE}, sort_keys=True)


def _cell_records(root: Path) -> dict:
    found = sorted((root / "cells").rglob("metrics.json"))
    return {p.parent.relative_to(root / "cells").as_posix(): p for p in found}


def compare_results(a: Path, b: Path) -> tuple[int, list[str]]:
    """(cells compared, differences) between two results directories: every cell record
    (``cells/**/metrics.json``) field for field except :data:`VOLATILE`, and ``phases.json``."""
    ra, rb = _cell_records(a), _cell_records(b)
    diffs = [f"{rel}: only in {a if rel in ra else b}" for rel in sorted(set(ra) ^ set(rb))]
    for rel in sorted(set(ra) & set(rb)):
        x, y = (json.loads(p.read_text()) for p in (ra[rel], rb[rel]))
        if _canonical(x) != _canonical(y):
            keys = sorted(k for k in set(x) | set(y) if k not in VOLATILE
                          and json.dumps(x.get(k), sort_keys=True) != json.dumps(y.get(k), sort_keys=True))
            curves = sorted(k for k in set(x.get("curves", {})) | set(y.get("curves", {}))
                            if x.get("curves", {}).get(k) != y.get("curves", {}).get(k))
            diffs.append(f"{rel}: differs in {', '.join(keys)}" + (f" (curves: {', '.join(curves)})" if curves else ""))
    pa, pb = a / "phases.json", b / "phases.json"
    if pa.exists() != pb.exists():
        diffs.append(f"phases.json: only in {a if pa.exists() else b}")
    elif pa.exists() and (json.dumps(json.loads(pa.read_text()), sort_keys=True)
                          != json.dumps(json.loads(pb.read_text()), sort_keys=True)):
        diffs.append("phases.json: differs")
    return len(set(ra) & set(rb)), diffs


def cpu_kinds(results_dir: Path) -> set:
    """The CPU kinds the cell records of a results directory name (None: a record predating them)."""
    from ..machine import cpu_kind

    return {cpu_kind(json.loads(p.read_text())) for p in _cell_records(results_dir).values()}


def cpu_kinds_verdict(kinds_a: set, kinds_b: set) -> tuple[bool, str]:
    """(same CPU kind, a words for it): bit-identity is asked for only when every record of both
    sides names one and the same kind (docs/reproducibility.md)."""
    kinds = kinds_a | kinds_b
    if len(kinds) == 1 and None not in kinds:
        return True, f"same CPU kind ({next(iter(kinds))})"
    named = sorted(k for k in kinds if k is not None)
    unknown = " and records that name none (made before CPU kinds were recorded)" if None in kinds else ""
    return False, f"other CPU kind ({'; '.join(named) or 'none named'}{unknown})"


def compare_records_main(argv=None) -> int:
    """Check that two results directories hold the same cell records and phases: bit for bit
    when both were made on one CPU kind, else the cells' phase agreement (reported, not failed)."""
    p = argparse.ArgumentParser(description=compare_records_main.__doc__)
    p.add_argument("before", type=Path, help="a results directory (or a directory of them, with --tree)")
    p.add_argument("after", type=Path)
    p.add_argument("--tree", action="store_true",
                   help="compare every results directory below BEFORE with the same one below AFTER")
    args = p.parse_args(argv)
    pairs = ([(d, args.after / d.name) for d in sorted(args.before.iterdir()) if (d / "cells").is_dir()]
             if args.tree else [(args.before, args.after)])
    failed = 0
    for before, after in pairs:
        if not (before / "cells").is_dir() or not (after / "cells").is_dir():
            print(f"{before.name}: no cells/ in {before if not (before / 'cells').is_dir() else after}")
            failed += 1
            continue
        n, diffs = compare_results(before, after)
        same_kind, words = cpu_kinds_verdict(cpu_kinds(before), cpu_kinds(after))
        if same_kind:
            status = "identical" if not diffs else f"{len(diffs)} difference(s)"
            print(f"{before.name}: {words}: bit for bit: {n} cells and phases.json compared: {status}")
            for line in diffs[:20]:
                print(f"  {line}")
            failed += bool(diffs)
            continue
        try:
            _, summary = phase_agreement({"before": before, "after": after})
        except (FileNotFoundError, ValueError) as err:
            print(f"{before.name}: {words}: bit-identity is not expected, and the phases cannot be compared: {err}")
            failed += 1
            continue
        agree = round(summary["agreement_with_before"]["after"] * summary["cells"])
        exact = n - sum(1 for d in diffs if ": differs in" in d)
        print(f"{before.name}: {words}: phase agreement {agree} of {summary['cells']} "
              f"({exact} of {n} records also equal to the bit)")
    print(f"{len(pairs) - failed} of {len(pairs)} results directories as expected "
          "(bit for bit on one CPU kind, phases reported across kinds)")
    return 1 if failed else 0


def phase_agreement(named: dict[str, Path]) -> tuple[str, dict]:
    """Cell by cell, the phases of several finished results directories of the same grid (e.g.
    one sweep in three precisions): a CSV table (the swept axes, one phase column per name, and
    whether all agree) and, per name, the share of cells whose phase equals the first name's."""
    import csv
    import io

    from ..analysis.aggregate import read_phases
    from ..training.grid import AXES, extra_axes

    phases = {name: read_phases(path) for name, path in named.items()}
    first = next(iter(phases.values()))
    sweep = first["settings"]["sweep"]
    axes = [k for k in extra_axes(sweep) + [name for name, _, _ in AXES]]

    def key(row):
        return tuple(row[k] for k in axes)

    by_cell = {name: {key(r): r for r in ph["cells"]} for name, ph in phases.items()}
    cells = [key(r) for r in first["cells"]]
    for name, rows in by_cell.items():
        if set(rows) != set(cells):
            raise ValueError(f"{named[name]} holds other cells than {next(iter(named.values()))}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(axes + [f"phase_{n}" for n in phases] + [f"grokking_step_{n}" for n in phases] + ["agree"])
    for c in cells:
        ph = [by_cell[n][c]["phase"] for n in phases]
        steps = ["" if by_cell[n][c]["grokking_step"] is None else by_cell[n][c]["grokking_step"] for n in phases]
        writer.writerow(list(c) + ph + steps + [len(set(ph)) == 1])
    base = next(iter(phases))
    share = {n: sum(by_cell[n][c]["phase"] == by_cell[base][c]["phase"] for c in cells) / len(cells)
             for n in phases}
    return buf.getvalue(), {"cells": len(cells), "agreement_with_" + base: share,
                            "counts": {n: {p: sum(by_cell[n][c]["phase"] == p for c in cells)
                                           for p in ("confusion", "memorization", "grokking", "comprehension")}
                                       for n in phases}}


def phase_agreement_main(argv=None) -> int:
    """Compare the phases of one grid across several results directories, cell by cell."""
    p = argparse.ArgumentParser(description=phase_agreement_main.__doc__)
    p.add_argument("runs", nargs="+", metavar="NAME=RESULTS_DIR", help="the first is the reference")
    p.add_argument("--out", type=Path, help="write the per-cell table here (CSV); default: stdout")
    args = p.parse_args(argv)
    named = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        if not sep:
            sys.stderr.write(f"{item!r}: expected NAME=RESULTS_DIR\n")
            return 2
        named[name] = Path(path)
    try:
        table, summary = phase_agreement(named)
    except (FileNotFoundError, ValueError) as err:
        sys.stderr.write(f"{err}\n")
        return 1
    if args.out:
        args.out.write_text(table)
    else:
        sys.stdout.write(table)
    print(json.dumps(summary, indent=1))
    return 0


def refinement_agreement(refined: dict, full: dict) -> tuple[str, dict]:
    """A refined sweep's map against a full grid's (issue 20): at every point of the full
    grid, the phase of the refined cell covering it (phases.json ``refine.coverage``) against
    the full run's own. Returns the per-point CSV and the summary (agreement, share of cells
    trained)."""
    import csv
    import io

    from ..analysis.axes import DiagramLayout
    from ..training.grid import spell

    if "refine" not in refined:
        raise ValueError("the first results directory was not refined (its phases.json has no 'refine')")
    lay = DiagramLayout(refined)
    drawn = {tuple(spell(row[a]) for a in refined["refine"]["coverage"]["axes"]): g
             for row, g in lay.points(refined)}
    axes = refined["refine"]["coverage"]["axes"]
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow([*axes, "full_phase", "refined_phase", "refined_cell_round", "agree"])
    agree = total = missing = 0
    for g in full["groups"]:
        key = tuple(spell(g[a]) for a in axes)
        cover = drawn.get(key)
        if cover is None:
            missing += 1
            continue
        rows = [r for r in refined["cells"] if all(spell(r[a]) == spell(cover[a]) for a in axes)]
        same = cover["phase"] == g["phase"]
        agree += same
        total += 1
        trained_here = all(spell(cover[a]) == k for a, k in zip(axes, key))
        out.writerow([*key, g["phase"], cover["phase"], rows[0]["round"] if trained_here else "", int(same)])
    summary = {"points": total, "agree": agree, "agreement": agree / total if total else 0.0,
               "points_not_in_refined_lattice": missing, "refined_cells": refined["n_cells"],
               "full_cells": full["n_cells"], "cells_share": refined["n_cells"] / full["n_cells"],
               "cells_per_round": refined["refine"]["cells_per_round"]}
    return buf.getvalue(), summary


def refinement_agreement_main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Compare a refined sweep's phase map with a full grid's, point by "
                                            "point (docs/refinement.md).")
    p.add_argument("refined", type=Path, help="results directory of the refined sweep")
    p.add_argument("full", type=Path, help="results directory of the full grid (same budget and seeds)")
    p.add_argument("--out", type=Path, help="write the per-point table (CSV) here")
    p.add_argument("--figure", type=Path, help="draw the two maps side by side (PNG) here")
    args = p.parse_args(argv)
    refined, full = _finished_phases(args.refined), _finished_phases(args.full)
    if refined is None or full is None:
        return 1
    try:
        table, summary = refinement_agreement(refined, full)
    except ValueError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    if args.out:
        from ..io import atomic_write_text

        atomic_write_text(args.out, table)
    if args.figure:
        from ..analysis.plots import plot_refinement_comparison

        plot_refinement_comparison(refined, full, args.figure)
    print(f"{summary['agree']} of {summary['points']} points agree ({summary['agreement']:.1%}); "
          f"cells trained: {summary['refined_cells']} of {summary['full_cells']} ({summary['cells_share']:.1%}); "
          f"per round {summary['cells_per_round']}"
          + (f"; {summary['points_not_in_refined_lattice']} points of the full grid are not on the refined lattice"
             if summary["points_not_in_refined_lattice"] else ""))
    return 0


def check_settings_main(argv=None) -> int:
    """DVC's first stage: validate params.yaml and config.yaml as the workflow does, before any
    stage removes an output (DVC deletes a stage's outputs before running it, so settings refused
    only inside the workflow would already have cost the published results). On success the
    stage's output RESULTS_DIR/.grokmap-settings.json is written, the same bytes whatever the
    settings: it orders this stage before the others and, unchanged, invalidates none of them."""
    from ..io import atomic_write_json
    from ..settings import SettingsError, load_settings

    p = argparse.ArgumentParser(description=check_settings_main.__doc__.splitlines()[0])
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--schemas", default="workflow/schemas")
    args = p.parse_args(argv)
    try:
        settings = load_settings(None, args.config, args.schemas)
        run = settings.run
        # DVC's stages track params.yaml and write results/: a study named in config.yaml would train
        # untracked (dvc.lock recording params.yaml's values), so it is refused here, in one line
        if Path(run["params_file"]).resolve() != Path("params.yaml").resolve():
            raise SettingsError(
                f"{args.config}: 'params_file' = {run['params_file']!r}: DVC's stages track params.yaml only, so "
                f"this study would run untracked; allowed: params.yaml under DVC (to run the study with DVC: "
                f"cp {run['params_file']} params.yaml, then dvc repro or dvc exp run; without DVC: snakemake "
                f"--config params_file={run['params_file']} results_dir=results/<study>)")
        if Path(run["results_dir"]).resolve() != Path("results").resolve():
            raise SettingsError(f"{args.config}: 'results_dir' = {run['results_dir']!r}: dvc.yaml's outputs are "
                                f"below results/; allowed: results under DVC")
    except SettingsError as exc:
        sys.stderr.write(f"Invalid settings: {exc}\n")
        return 1
    atomic_write_json(Path(settings.run["results_dir"]) / ".grokmap-settings.json",
                      {"checked": "params.yaml and config.yaml passed the workflow's checks (dvc.yaml: check_settings)"})
    return 0


def build_renderer_main(argv=None) -> int:
    """scripts/build_renderer.py (called by scripts/setup_env.sh): bundle the npm-installed
    renderer for the explorer and write the offline DVC plots template."""
    p = argparse.ArgumentParser(description=build_renderer_main.__doc__)
    p.add_argument("--node-modules", required=True)
    p.add_argument("--bundle", required=True, help="where to write the renderer bundle (JavaScript)")
    p.add_argument("--dvc-template", required=True, help="where to write the DVC plots HTML template")
    args = p.parse_args(argv)
    from ..analysis.explorer import dvc_plots_template, renderer_bundle
    from ..io import atomic_write_text

    bundle = renderer_bundle(args.node_modules)
    atomic_write_text(args.bundle, bundle)
    atomic_write_text(args.dvc_template, dvc_plots_template(bundle))
    return 0
