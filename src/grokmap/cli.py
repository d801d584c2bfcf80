"""``grokmap summary DIR``, ``grokmap diff DIR_A DIR_B`` and ``grokmap compare DIR_A DIR_B``: a
finished sweep in a few lines, the cells whose phase changed between two sweeps (what ``dvc
metrics diff`` cannot say cell by cell), and both sweeps side by side in one explorer page with
the changed points outlined. Also ``python -m grokmap ...``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main", "summary_lines", "diff_lines", "compare_page"]


def summary_lines(results_dir: Path) -> list[str]:
    from .analysis.phases import PHASES
    from .results import _phases

    phases = _phases(results_dir)
    n, counts = phases["n_cells"], phases["counts"]
    lines = [f"{results_dir}: {n} cells: " + ", ".join(f"{counts[p]} {p}" for p in PHASES)]
    if "undecided_cells" in phases:
        lines.append(f"undecided at budget (still rising when training stopped): {phases['undecided_cells']} of {n}")
    ext = phases.get("extend")
    if ext:
        per = ", ".join(f"{k} to x{ext['factor'] ** r}" for r, k in enumerate(ext["cells_per_round"], 1))
        lines.append(f"extension: {ext['undecided_at_budget']} undecided at their own budget, continued {per or 'none'}; "
                     f"{ext['changed_phase']} changed phase")
    split = [g for g in phases["groups"] if g.get("agreement", 1) < 1]
    if split:
        lines.append(f"diagram points whose voters disagree: {len(split)} of {len(phases['groups'])}")
    if phases.get("fragile_groups"):
        lines.append(f"diagram points one vote would change: {phases['fragile_groups']} of {len(phases['groups'])}")
    metadata = Path(results_dir) / "metadata.json"
    eff = json.loads(metadata.read_text()).get("efficiency") if metadata.is_file() else None
    if eff and eff.get("cell_steps_per_second"):
        lines.append(f"efficiency: {eff['cell_steps_per_second']:,.0f} cell-steps per second of training; "
                     f"~{eff['achieved_gflops']:.1f} GFLOP/s of matrix products, {eff['matmul_peak_share']:.0%} "
                     f"of this machine's single-thread sgemm ({eff['sgemm_peak_gflops']:.0f} GFLOP/s)")
    validation = Path(results_dir) / "validation.json"
    if validation.is_file():
        v = json.loads(validation.read_text())
        lines.append(f"validation: {'passed' if v.get('passed') else 'FAILED'} ({len(v.get('checks', []))} checks)")
    else:
        lines.append("validation: none (the run did not finish, or it failed)")
    for name in ("report.md", "explorer.html"):
        if (Path(results_dir) / name).is_file():
            lines.append(f"{name}: {Path(results_dir) / name}")
    return lines


def diff_lines(a: Path, b: Path) -> list[str]:
    from .results import phase_changes

    changed, transitions = phase_changes(a, b)
    total = sum(transitions.values())
    lines = [f"{len(changed)} of {total} cells changed phase between {a} and {b}"]
    for row in changed:
        cell = ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("phase_a", "phase_b"))
        lines.append(f"  {cell}: {row['phase_a']} -> {row['phase_b']}")
    lines.append("transitions (A -> B: cells):")
    lines += [f"  {pa} -> {pb}: {k}" for (pa, pb), k in sorted(transitions.items()) if pa != pb]
    return lines


def _document(results_dir: Path, page_dir: Path) -> dict:
    """A finished sweep's explorer document, its curves read from each cell's record."""
    import os

    from .analysis.aggregate import cell_path
    from .analysis.axes import cell_from_row
    from .analysis.explorer import explorer_document
    from .results import _phases

    phases = _phases(results_dir)
    sweep = phases["settings"]["sweep"]

    def path(row) -> Path:
        return cell_path(results_dir, cell_from_row(row, sweep), row.get("round", 0), row.get("budget_multiple", 1))

    return explorer_document(phases, lambda row: json.loads(path(row).read_text())["curves"],
                             lambda row: os.path.relpath(path(row).resolve(), page_dir),
                             phases["settings"]["phases"]["accuracy_threshold"])


def compare_page(a: Path, b: Path, out: Path) -> list[str]:
    """``grokmap compare A B --out PAGE``: the two sweeps' diagrams side by side in one offline
    explorer page, the points whose phase changed outlined; returns what it printed."""
    from .analysis.explorer import compare_document, explorer_html, renderer_path
    from .io import atomic_write_text

    page_dir = out.resolve().parent
    doc = compare_document(_document(a, page_dir), _document(b, page_dir), f"A ({a})", f"B ({b})")
    renderer = renderer_path(Path(__file__).resolve().parents[2])
    if not renderer.is_file():
        raise FileNotFoundError(f"{renderer}: missing; run scripts/setup_env.sh to build the plotting renderer")
    atomic_write_text(out, explorer_html(doc, renderer.read_text(encoding="utf8"), f"grokmap: {a} against {b}"))
    return [f"{out}: {doc['info']['compared']['changed_points']} diagram point(s) changed phase between {a} and {b}"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="grokmap", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="phase counts, undecided cells, validation, where to look")
    s.add_argument("results_dir", type=Path)
    d = sub.add_parser("diff", help="the cells whose phase changed between two sweeps")
    d.add_argument("a", type=Path)
    d.add_argument("b", type=Path)
    c = sub.add_parser("compare", help="both sweeps' diagrams side by side in one explorer page, changes outlined")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--out", type=Path, default=Path("compare.html"), help="the page to write (default compare.html)")
    args = p.parse_args(argv)
    try:
        if args.command == "summary":
            lines = summary_lines(args.results_dir)
        elif args.command == "diff":
            lines = diff_lines(args.a, args.b)
        else:
            lines = compare_page(args.a, args.b, args.out)
    except FileNotFoundError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    try:
        print("\n".join(lines))
    except BrokenPipeError:  # e.g. `grokmap diff A B | head`
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
