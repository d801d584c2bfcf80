"""The explorer at S3's full size (issue 21): page size and time to draw for 3,969 cells.

S3's Figure 1 grid is 21 x 21 points x 9 voters (3 data seeds x 3 model seeds) = 3,969 cells.
From a finished 21 x 21 results directory with one seed pair (e.g. the S3 reproduction), this
builds that sweep's page with every point's record standing in for all nine voters (the page's
size and drawing cost depend on the number of cells and curve points, not on their values),
writes it, and opens it in headless Chromium with the network cut to time the first drawing
and a click.

    .venv/bin/python benchmarks/explorer_size.py results/repro/s3_toy_classification_data42_model102
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results_dir", type=Path)
    p.add_argument("--voters", type=int, default=3, help="values per voting axis (S3: 3 x 3)")
    p.add_argument("--out", type=Path, help="where to write the page (default: a temporary file)")
    args = p.parse_args()

    from grokmap.analysis.aggregate import cell_path, classify_sweep
    from grokmap.analysis.axes import cell_from_row
    from grokmap.analysis.explorer import explorer_document, explorer_html
    from grokmap.io import read_json

    phases = read_json(args.results_dir / "phases.json")
    sweep = phases["settings"]["sweep"]
    votes = phases["settings"]["phases"]["majority_over"]
    curves = {}
    for row in phases["cells"]:
        curves[cell_from_row(row, sweep).relpath] = read_json(cell_path(args.results_dir, cell_from_row(row, sweep)))
    flat = copy.deepcopy(sweep)  # phases.json's sweep: extra axes by their dotted names
    for axis in votes:  # every voting axis gets `voters` values
        flat[axis] = [sweep[axis][0] + k for k in range(args.voters)]
    from grokmap.training.grid import cells

    grid = cells(flat)
    source = {}
    for cell in grid:  # each voter's stand-in: the same point's one recorded cell
        row = {**cell.as_dict(), **{a: sweep[a][0] for a in votes}}
        source[cell] = curves[cell_from_row(row, sweep).relpath]
    t0 = time.perf_counter()
    big_phases = classify_sweep(source, phases["settings"]["phases"], flat)
    doc = explorer_document(big_phases, lambda row: source[cell_from_row(row, flat)]["curves"],
                            lambda row: "cells/" + cell_from_row(row, flat).relpath + "/metrics.json",
                            phases["settings"]["phases"]["accuracy_threshold"])
    bundle = (ROOT / "renderer" / "renderer.js").read_text()
    html = explorer_html(doc, bundle, f"{len(grid)} cells")
    build_s = time.perf_counter() - t0
    out = args.out or Path(tempfile.mkdtemp()) / "explorer.html"
    out.write_text(html)
    print(f"cells: {len(grid)}; diagram points: {len(doc['groups'])}; points per curve: "
          f"{doc['info']['points_per_curve']}")
    print(f"page: {len(html.encode()) / 1e6:.2f} MB (renderer {len(bundle.encode()) / 1e6:.2f} MB); "
          f"built in {build_s:.1f} s")

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from tests.workflow.browser import OfflineBrowser

    browser = OfflineBrowser()
    try:
        t0 = time.perf_counter()
        browser.open(out)
        browser.wait_for("document.body.dataset.ready", timeout=300)
        drawn_s = time.perf_counter() - t0
        rect = browser.driver.find_elements(By.CSS_SELECTOR, "#view svg .mark-rect path")[200]
        t0 = time.perf_counter()
        ActionChains(browser.driver).click(rect).perform()
        browser.wait_for("document.body.dataset.shown", timeout=120)
        click_s = time.perf_counter() - t0
        outside, failed = browser.network_requests()
    finally:
        browser.close()
    print(f"headless Chromium, network cut: drawn in {drawn_s:.1f} s, a click's curves in {click_s:.2f} s; "
          f"requests leaving the page's files: {len(outside)}, failed: {len(failed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
