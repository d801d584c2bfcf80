"""The explorer and the DVC plots pages in a real browser with the network cut.

A tiny two-seed sweep runs through `dvc repro` in a Git + DVC copy of the project; headless
Chromium (Debian's, installed by scripts/browser_local.sh like SLURM's test cluster) opens
results/explorer.html and the page `dvc plots diff` writes, offline. Each page must draw, make
no request outside its own files, and log no error; a click on a diagram point must draw
that point's curves. DVC's stock template, which loads the renderer from a CDN, is the
control: offline it fails, so the checks can fail. Screenshots go to the test's temporary
directory.
"""
from __future__ import annotations

import subprocess
import time

import pytest

from ..conftest import ROOT
from .browser import OfflineBrowser
from .helpers import TINY, Project

pytestmark = pytest.mark.workflow

TWO_SEEDS = {**TINY, "sweep": {**TINY["sweep"], "seed": [0, 1]}}


def _git(proj, *args):
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=proj.path,
                          check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    proj = Project(tmp_path_factory.mktemp("explorer"), TWO_SEEDS)
    (proj.path / ".dvc" / "plots").mkdir(parents=True)
    for rel in (".dvc/config", ".dvc/.gitignore", ".dvc/plots/phase_map.json", ".dvcignore", ".gitignore"):
        (proj.path / rel).write_bytes((ROOT / rel).read_bytes())
    _git(proj, "init", "-q")
    proj.run("repro", tool="dvc")
    _git(proj, "add", "-A")
    _git(proj, "commit", "-qm", "sweep 1")
    return proj


@pytest.fixture(scope="module")
def browser():
    b = OfflineBrowser()
    yield b
    b.close()


def _page_is_offline_clean(browser):
    outside, failed = browser.network_requests()
    assert outside == [] and failed == [], (outside, failed)
    assert browser.console_errors() == []


def test_explorer_draws_offline_and_a_click_shows_the_curves(swept, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    page = swept.path / "results" / "explorer.html"
    assert "(explorer.html)" in swept.read("results/report.md").decode()
    browser.requests()  # forget earlier pages' requests
    browser.open(page)
    browser.wait_for("document.body.dataset.ready")
    rects = browser.driver.find_elements(By.CSS_SELECTOR, "#view svg .mark-rect path")
    assert len(rects) == 4  # 2 weight decays x 2 fractions, the majority of 2 seeds each
    ActionChains(browser.driver).move_to_element(rects[-1]).perform()
    tip = browser.wait_for("(document.getElementById('vg-tooltip-element') || {}).innerText")
    for words in ("weight decay", "train fraction", "phase", "seed=0", "seed=1", "first train step",
                  "first test step", "gap (epochs)"):
        assert words in tip, (words, tip)
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "#view svg .mark-line path")  # no curves yet
    ActionChains(browser.driver).click(rects[-1]).perform()
    assert browser.wait_for("document.body.dataset.shown") == "3"
    lines = browser.driver.find_elements(By.CSS_SELECTOR, "#view svg .mark-line path")
    drawn = [ln for ln in lines if len(ln.get_attribute("d") or "") > 20]
    # accuracy and loss (train, test) and the parameter norm, for each of the 2 seeds
    assert len(drawn) >= 2 * 5, len(drawn)
    links = browser.driver.find_elements(By.CSS_SELECTOR, "#cell a")
    assert len(links) == 2 and all(a.get_attribute("href").endswith("/metrics.json") for a in links)
    assert all((page.parent / a.get_attribute("href").split("/results/", 1)[1]).exists() for a in links)
    _page_is_offline_clean(browser)
    assert browser.screenshot(tmp_path / "explorer.png").stat().st_size > 10_000


def test_record_links_work_inside_snakemakes_report(swept, browser, tmp_path):
    """`snakemake --report` embeds the explorer as a data: URL, where a relative link leads
    nowhere: there a record link opens the page's own copy of the record, byte for byte the file."""
    import json

    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    swept.run("--report", "report.html")
    browser.requests()
    browser.open(swept.path / "report.html")
    browser.wait_for("document.evaluate(\"//span[text()='Explorer']\", document).iterateNext()")
    browser.driver.find_element(By.XPATH, "//span[text()='Explorer']").click()
    row_xpath = "document.evaluate(\"//tr[td[contains(text(),'explorer.html')]]\", document).iterateNext()"
    # the eye shows the page in the report; a click that lands while the report is still wiring
    # its table does nothing (seen once in a loaded CI run), so click again until the frame is there
    deadline, frame = time.time() + 60, None
    while frame is None and time.time() < deadline:
        browser.wait_for(row_xpath).find_elements(By.TAG_NAME, "a")[0].click()
        try:
            frame = browser.wait_for("document.querySelector('iframe')", timeout=5)
        except AssertionError:
            pass
    frame = frame or browser.wait_for("document.querySelector('iframe')")
    assert frame.get_attribute("src").startswith("data:text/html")
    browser.driver.switch_to.frame(frame)
    try:
        browser.wait_for("document.body.dataset.ready")
        rects = browser.driver.find_elements(By.CSS_SELECTOR, "#view svg .mark-rect path")
        ActionChains(browser.driver).click(rects[0]).perform()
        browser.wait_for("document.body.dataset.shown")
        links = browser.driver.find_elements(By.CSS_SELECTOR, "#cell a")
        assert len(links) == 2 and "shown below" in browser.driver.find_element(By.ID, "cell").text
        opened = []
        for link in links:
            browser.driver.execute_script("delete document.getElementById('record').dataset.file")
            link.click()
            opened.append(browser.wait_for("document.getElementById('record').dataset.file"))
            shown = browser.driver.find_element(By.CSS_SELECTOR, "#record pre").get_attribute("textContent")
            assert shown == (swept.path / "results" / opened[-1]).read_text() and "curves" in json.loads(shown)
        assert len(set(opened)) == 2  # each voter's own record
        assert browser.console_errors() == []
    finally:
        browser.driver.switch_to.default_content()
    outside, _ = browser.network_requests()
    assert outside == []


def test_dvc_plots_diff_draws_two_sweeps_offline(swept, browser, tmp_path):
    from selenium.webdriver.common.by import By

    swept.edit_params({"phases": {"accuracy_threshold": 0.5}})
    out = swept.run("repro", tool="dvc").stdout
    assert "Stage 'train_cells' didn't change" in out
    swept.run("plots", "diff", "HEAD", "-o", str(tmp_path / "diff"), tool="dvc")
    browser.requests()
    browser.open(tmp_path / "diff" / "index.html")
    # the phase map (one column per revision) and the grokking-step scatter, drawn by the inlined vega
    drawn = browser.wait_for("document.querySelectorAll('.vega-embed canvas, .vega-embed svg').length >= 2")
    assert drawn
    sizes = browser.driver.execute_script(
        "return Array.from(document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks'))"
        ".map(c => [c.getBoundingClientRect().width, c.getBoundingClientRect().height])")
    assert len(sizes) >= 2 and all(w > 200 and h > 100 for w, h in sizes), sizes
    images = browser.driver.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert len(images) >= 2 * 5 and all(w > 0 for _, w in images), images  # five figures, two revisions
    assert any("workspace" in (src or "") for src, _ in images) and any("HEAD" in (src or "") for src, _ in images)
    _page_is_offline_clean(browser)
    browser.screenshot(tmp_path / "dvc_plots_diff.png")


def test_dvc_stock_template_fails_offline_so_the_check_can_fail(swept, browser, tmp_path):
    """The control: DVC's own page template loads vega from a CDN and draws nothing offline."""
    from dvc_render.html import PAGE_HTML

    stock = tmp_path / "stock.html"
    stock.write_text(PAGE_HTML)
    swept.run("plots", "show", "--html-template", str(stock), "-o", str(tmp_path / "show"), tool="dvc")
    browser.requests()
    browser.open(tmp_path / "show" / "index.html")
    time.sleep(2)
    outside, failed = browser.network_requests()
    assert outside and failed, "the stock template should have tried, and failed, to reach the CDN"
    assert browser.driver.execute_script("return document.querySelectorAll('.vega-embed').length") == 0


def test_two_sweeps_side_by_side_with_the_changes_outlined(swept, browser, tmp_path):
    """`grokmap compare A B`: one offline page, A's and B's diagrams side by side, each point
    naming its phase in the other sweep, the points that changed outlined in both."""
    import json

    from selenium.webdriver.common.by import By

    swept.snakemake("--config", "results_dir=results_b", "phases={accuracy_threshold: 0.5}")
    page = tmp_path / "compare.html"
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "grokmap"), "compare", "results", "results_b", "--out", str(page)],
                         cwd=swept.path, capture_output=True, text=True, check=True).stdout
    a, b = (json.loads(swept.read(f"{d}/phases.json")) for d in ("results", "results_b"))
    key = lambda g: (g["weight_decay"], g["train_fraction"], g["width"])  # noqa: E731
    changed = sum(ga["phase"] != gb["phase"] for ga, gb in zip(sorted(a["groups"], key=key), sorted(b["groups"], key=key)))
    assert f"{changed} diagram point(s) changed phase" in out
    browser.requests()  # forget earlier pages' requests and console messages
    browser.console_errors()
    browser.open(page)
    browser.wait_for("document.body.dataset.ready")
    rects = browser.driver.find_elements(By.CSS_SELECTOR, "#view svg .mark-rect path")
    # A's 4 points and B's 4, and one outline per changed point on each side
    assert len(rects) == 8 + 2 * changed, len(rects)
    _page_is_offline_clean(browser)
    browser.screenshot(tmp_path / "compare.png")
