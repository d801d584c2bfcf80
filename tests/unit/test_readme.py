"""The README tells the truth by construction (issue 30): every number it states about the
default sweep is read here from the committed record it names, and its end-of-run block is the
summary the workflow prints."""
from __future__ import annotations

import csv
import json
import re
from collections import Counter

from grokmap.cli import summary_lines

from ..conftest import ROOT

README = (ROOT / "README.md").read_text()
PHASES = ("confusion", "memorization", "grokking", "comprehension")


def _seed42() -> list[dict]:
    """Seed 42's rows of the committed 5-seed record: S0's default sweep at S0's budget."""
    with open(ROOT / "docs" / "reproductions" / "s0_5seeds_x2.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["seed"] == "42"]
    assert len(rows) == 60
    return rows


def _block() -> list[str]:
    start = README.index("It ends with its answer")
    body = README[start:].split("```", 2)[1]
    return [line for line in body.splitlines() if line.strip()]


def test_the_counts_the_readme_states_are_the_records():
    rows = _seed42()
    counts = Counter(r["phase_at_budget"] for r in rows)
    stated = re.search(r"60 cells: (\d+) confusion, (\d+) memorization, (\d+) grokking, (\d+) comprehension",
                       README)
    assert tuple(int(x) for x in stated.groups()) == tuple(counts[p] for p in PHASES)
    undecided = [r for r in rows if r["undecided_at_budget"] == "True"]
    assert f"undecided at budget (still rising when training stopped): {len(undecided)} of 60" in README
    by_phase = Counter(r["phase_at_budget"] for r in undecided)
    assert (f"({by_phase['confusion']} of the confusion and {by_phase['memorization']} of the memorization"
            in " ".join(README.split()))
    assert f"{len(undecided)} of the\n60 labels" in README or f"{len(undecided)} of the 60 labels" in " ".join(README.split())


def test_the_end_of_run_block_is_what_the_workflow_prints(tmp_path, monkeypatch):
    rows = _seed42()
    counts = Counter(r["phase_at_budget"] for r in rows)
    results = tmp_path / "results"
    results.mkdir()
    (results / "phases.json").write_text(json.dumps({
        "n_cells": 60, "counts": {p: counts[p] for p in PHASES}, "groups": [],
        "undecided_cells": sum(r["undecided_at_budget"] == "True" for r in rows)}))
    (results / "validation.json").write_text(json.dumps({"passed": True, "checks": [{}] * 3}))
    (results / "metadata.json").write_text(json.dumps({"efficiency": {
        "cell_steps_per_second": 1234.5, "achieved_gflops": 9.87, "matmul_peak_share": 0.123, "sgemm_peak_gflops": 65.4}}))
    for name in ("report.md", "explorer.html"):
        (results / name).write_text("")
    monkeypatch.chdir(tmp_path)
    printed = ["grokmap: this run's results"] + ["  " + line for line in summary_lines(results.relative_to(tmp_path))]
    block = _block()
    assert block[0].startswith("[progress] 60/60 cells trained this run")
    numbers = r"(?<=[ ~(])[\d,.]+(?=[ %])"  # the efficiency line's measured numbers are this machine's
    assert [re.sub(numbers, "...", re.sub(r"\(\d+ checks\)", "(... checks)", line)) if "efficiency" in line
            else re.sub(r"\(\d+ checks\)", "(... checks)", line) for line in printed] == block[1:]


def test_the_sweep_times_the_readme_states_are_recorded():
    times = re.search(r"the sweep itself: ([\d.]+) s on a\s+2-core AMD EPYC, ([\d.]+) s on the Intel machine", README)
    row = next(line for line in (ROOT / "docs" / "performance.md").read_text().splitlines()
               if line.startswith("| float32 (C tail) |"))
    assert f"| {times.group(1)} s |" in row and f"{times.group(2)} s;" in row


def test_the_readme_names_no_file_a_clone_lacks():
    assert "shared/seeds" not in README
    for link in re.findall(r"\]\(((?:docs|studies|scripts)/[^)#]+)", README):
        assert (ROOT / link).exists(), link


def test_every_relative_link_in_the_docs_resolves():
    """README.md and docs/**/*.md: every relative link names a file or folder that exists."""
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"^(https?:|mailto:|#)", target):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", text))


def _headings(page) -> set:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_every_anchor_in_the_docs_names_a_heading():
    """README.md and docs/**/*.md: a link's #anchor names a heading of the page it points to."""
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"^(https?:|mailto:)", target) or "#" not in target:
                continue
            path, anchor = target.split("#", 1)
            dest = (page.parent / path).resolve() if path else page
            if dest.suffix == ".md" and dest.exists() and anchor not in _headings(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_every_pointer_from_code_to_the_docs_resolves():
    """Comments and docstrings of the code, workflow and settings files that point a reader to a
    README section ("README: Studies", "README.md ..., 'How it works'") or to a docs page name
    one that exists."""
    sections = {h.lower() for h in re.findall(r"^#{2,6} (.+)$", README, flags=re.M)}
    sources = [ROOT / "Snakefile", ROOT / "params.yaml", ROOT / "config.yaml", ROOT / "dvc.yaml",
               *sorted((ROOT / "workflow").rglob("*.smk")), *sorted((ROOT / "workflow").rglob("*.yaml")),
               *sorted((ROOT / "src").rglob("*.py")), *sorted((ROOT / "scripts").glob("*.py")),
               *sorted((ROOT / "scripts").glob("*.sh")), *sorted((ROOT / "studies").rglob("*.yaml"))]
    broken, seen = [], 0
    for src in sources:
        text = src.read_text()
        for name in re.findall(r"README(?:\.md)?: ([A-Z][\w ,'-]+?)[)\n.;]", text) + \
                re.findall(r"README\.md[^'\n]*'([^']+)'", text):
            seen += 1
            if not any(s.startswith(name.strip().lower()) for s in sections):
                broken.append(f"{src.relative_to(ROOT)}: README section {name!r}")
        for path in re.findall(r"\b(docs/[\w./-]+\.md)", text):
            seen += 1
            if not (ROOT / path).exists():
                broken.append(f"{src.relative_to(ROOT)}: {path}")
    assert seen > 10 and not broken, broken
