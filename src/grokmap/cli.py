"""``grokmap summary DIR`` and ``grokmap diff DIR_A DIR_B``: a finished sweep in a few lines,
and the cells whose phase changed between two sweeps (what ``dvc metrics diff`` cannot say
cell by cell). Also ``python -m grokmap ...``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main", "summary_lines", "diff_lines"]


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
    if phases.get("fragile_groups"):
        lines.append(f"diagram points one vote would change: {phases['fragile_groups']} of {len(phases['groups'])}")
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="grokmap", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="phase counts, undecided cells, validation, where to look")
    s.add_argument("results_dir", type=Path)
    d = sub.add_parser("diff", help="the cells whose phase changed between two sweeps")
    d.add_argument("a", type=Path)
    d.add_argument("b", type=Path)
    args = p.parse_args(argv)
    try:
        lines = summary_lines(args.results_dir) if args.command == "summary" else diff_lines(args.a, args.b)
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
