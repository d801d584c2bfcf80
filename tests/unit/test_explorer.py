"""The explorer's page model (no browser): axis scales, cell regions, downsampling, the data
the page draws, and the renderer bundle. The browser test is tests/workflow/test_explorer.py."""
from __future__ import annotations

import json

import pytest

from grokmap.analysis.aggregate import classify_sweep
from grokmap.analysis.explorer import (CURVE_BUDGET, axis_scale, cell_edges, downsample, dvc_plots_template,
                                       explorer_document, explorer_html, points_per_curve, renderer_bundle)
from grokmap.training.grid import cells

from .test_records import _hand_record


def test_axis_scales_follow_the_grid_spacing():
    assert axis_scale([1e-5, 1e-4, 1e-3, 1e-2]) == {"type": "log"}
    assert axis_scale([0.000316, 0.001, 0.00316, 0.01, 0.0316]) == {"type": "log"}
    # S0's weight decays: log-spaced and 0; 0 sits one decade below the smallest
    assert axis_scale([0.0, 0.001, 0.01, 0.1, 1.0]) == {"type": "symlog", "constant": 0.0001}
    assert axis_scale([0.3, 0.5, 0.7, 0.9])["type"] == "linear"
    assert axis_scale([0, 4, 8, 12, 16, 20])["type"] == "linear"  # S3's weight decays
    assert axis_scale([1, 2, 4])["type"] == "linear"  # spans less than a factor 10
    assert axis_scale(["adamw", "sgd"]) == {"type": "band"}


def test_cell_regions_tile_the_axis_in_its_own_scale():
    lr = [1e-5, 1e-4, 1e-3]
    edges = cell_edges(lr, {"type": "log"})
    assert edges[1e-4][0] == pytest.approx(10 ** -4.5) and edges[1e-4][1] == pytest.approx(10 ** -3.5)
    assert edges[1e-5][0] == pytest.approx(10 ** -5.5) and edges[1e-3][1] == pytest.approx(10 ** -2.5)
    frac = cell_edges([0.3, 0.5, 0.9], {"type": "linear"})  # non-uniform: 0.5 spans 0.4 .. 0.7
    assert frac[0.5] == pytest.approx((0.4, 0.7)) and frac[0.3] == pytest.approx((0.2, 0.4))
    assert frac[0.9] == pytest.approx((0.7, 1.1))
    wd = cell_edges([0.0, 0.001, 0.01], {"type": "symlog", "constant": 0.0001})
    for a, b in zip([0.0, 0.001], [0.001, 0.01]):  # neighbours share an edge, no gap, no overlap
        assert wd[a][1] == pytest.approx(wd[b][0]) and wd[a][0] < a < wd[a][1]
    assert cell_edges([2.0], {"type": "linear"})[2.0] == (1.0, 3.0)


def test_downsampling_keeps_ends_and_is_log_spaced():
    steps = list(range(1, 100_001))
    keep = downsample(steps, 30)
    assert keep[0] == 0 and keep[-1] == len(steps) - 1 and len(keep) <= 30
    ratios = [steps[b] / steps[a] for a, b in zip(keep[5:], keep[6:])]
    assert max(ratios) / min(ratios) < 1.2  # evenly spaced in log(step)
    assert downsample([10, 20, 30], 30) == [0, 1, 2]
    assert points_per_curve(60) == 200 and points_per_curve(3969) < 60
    assert points_per_curve(3969) * 7 * 3969 <= CURVE_BUDGET and points_per_curve(10 ** 6) == 24


def _phases():
    """Two weight decays x two fractions x two seeds of hand-made records, classified."""
    params = {"phases": {"accuracy_threshold": 0.95, "grokking_gap_epochs": 200, "grokking_step_accuracy": 0.99,
                         "require_final_accuracy": True, "diagram_columns": "train_fraction",
                         "majority_over": ["seed"], "smooth_scale_max": None, "undecided_window_share": 0.2,
                       "undecided_min_gain": 0.05},
              "sweep": {"weight_decay": [0.0, 1.0], "train_fraction": [0.5, 0.9], "width": [8, 16], "seed": [0, 1]},
              "training": {"early_stop_accuracy": 0.99, "early_stop_evals": 2, "early_stop_rule": "together"}}
    e = [100, 200, 300, 400, 500]
    grok = _hand_record([0.96, 1.0, 1.0, 1.0, 1.0], [0.1, 0.1, 0.1, 0.96, 0.99], e)
    memo = _hand_record([1.0] * 5, [0.1] * 5, e)
    grid = cells(params["sweep"])
    records = {c: json.loads(json.dumps(grok if c.seed == 0 or c.weight_decay == 1.0 else memo)) for c in grid}
    for c in grid:
        records[c]["curves"]["param_norm"] = [10.0, 11.0, 12.0, 13.0, 14.0]
    return classify_sweep(records, params["phases"], params["sweep"]), records


def test_the_page_model_holds_every_point_its_voters_and_their_curves():
    phases, records = _phases()
    by_row = {(r["weight_decay"], r["train_fraction"], r["width"], r["seed"]): r for r in phases["cells"]}
    doc = explorer_document(phases, lambda row: records[next(c for c in records if c.as_dict() == {
        k: row[k] for k in ("weight_decay", "train_fraction", "width", "seed")})]["curves"],
        lambda row: f"cells/{row['seed']}.json", 0.95)
    assert len(doc["groups"]) == 8 and len(doc["curves"]) == 8
    split = [g for g in doc["groups"] if g["y"] == 0.0]
    assert all(g["phase"] == "tie" and g["seeds agree"] == "1 of 2; one vote would change the label" for g in split)
    assert all(g["generalising share"] == "0.50 (95 % interval 0.09-0.91)" for g in split)
    assert all("seed=0: grokking" in g["voters"] and "seed=1: memorization" in g["voters"] for g in split)
    agreed = [g for g in doc["groups"] if g["y"] == 1.0]
    assert all(g["phase"] == "grokking" and g["seeds agree"] == "2 of 2" for g in agreed)
    assert all(g["first train step"] == "100, 100" and g["first test step"] == "400, 400" for g in agreed)
    assert {g["panel"] for g in doc["groups"]} == {"width=8", "width=16"}
    # each point spans its region; neighbours touch
    g05, g09 = (next(g for g in agreed if g["x"] == x and g["width"] == "8") for x in (0.5, 0.9))
    assert g05["x1"] == pytest.approx(g09["x0"]) == pytest.approx(0.7)
    first = doc["curves"][0]
    assert [c["voter"] for c in first] == ["seed=0", "seed=1"] and first[0]["file"] == "cells/0.json"
    assert first[0]["step"] == [100, 200, 300, 400, 500] and first[0]["param_norm"][-1] == 14.0
    spec = doc["spec"]
    titles = [c["title"] for c in spec["vconcat"][1]["concat"]]
    assert titles == ["accuracy", "loss", "parameter norm"]  # no IPR logged: no IPR chart
    rects, marks = spec["vconcat"][0]["spec"]["layer"]
    enc = rects["encoding"]
    assert "opacity" in enc and enc["x"]["scale"]["type"] == "linear"
    # cells undecided at budget: a triangle layer drawn only where the group says so, and the tooltip says why
    assert marks["transform"] == [{"filter": "datum.undecided"}] and marks["mark"]["shape"] == "triangle-up"
    assert "undecided at budget" in [t["field"] for t in enc["tooltip"]]
    assert all(g["undecided at budget"] == "no" and g["undecided"] is False for g in doc["groups"])
    assert len(by_row) == 16
    # final accuracies and grokking steps in the tooltip; a phase filter beside the undecided one
    fields = [t["field"] for t in enc["tooltip"]]
    assert "final train / test accuracy" in fields and "grokking step" in fields
    assert all(g["final train / test accuracy"].count("/") == 2 for g in agreed)
    select = next(p for p in spec["params"] if p["name"] == "only_phase")
    assert select["bind"]["options"] == ["every phase", "confusion", "memorization", "grokking", "comprehension", "tie"]
    assert {"filter": "only_phase == 'every phase' || datum.phase == only_phase"} in spec["vconcat"][0]["transform"]
    width = next(p for p in spec["params"] if p["name"] == "only_0")  # widths 8 and 16: one panel each
    assert width["bind"]["name"] == "width: " and width["bind"]["options"] == ["every value", "8", "16"]
    assert {"filter": "only_0 == 'every value' || datum[\"width\"] == only_0"} in spec["vconcat"][0]["transform"]
    # the curves' step axis ends at the budget, not at the next power of ten
    acc = spec["vconcat"][1]["concat"][0]
    assert acc["layer"][0]["encoding"]["x"]["scale"] == {"type": "log", "nice": False}


def test_the_page_inlines_the_renderer_and_escapes_its_data(tmp_path):
    phases, records = _phases()
    doc = explorer_document(phases, lambda row: next(iter(records.values()))["curves"],
                            lambda row: "cells/</script>.json", 0.95)
    html = explorer_html(doc, "/* renderer */ window.vegaEmbed = null;", "t <b>")
    assert "<script src" not in html and "http" not in html.split("const DOC")[0].replace(
        "https://vega.github.io/schema", "")
    assert "cells/<\\/script>.json" in html and "t &lt;b&gt;" in html
    payload = html.split("const DOC = ", 1)[1].split(";\n", 1)[0]
    assert json.loads(payload.replace("<\\/", "</"))["groups"][0]["g"] == 0


def test_renderer_bundle_names_versions_and_refuses_a_missing_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="setup_env.sh"):
        renderer_bundle(tmp_path)
    for pkg, build in (("vega", "build/vega.min.js"), ("vega-lite", "build/vega-lite.min.js"),
                       ("vega-embed", "build/vega-embed.min.js")):
        (tmp_path / pkg / "build").mkdir(parents=True)
        (tmp_path / pkg / "package.json").write_text(json.dumps({"version": "9.9." + str(len(pkg))}))
        (tmp_path / pkg / build).write_text(f"var {pkg.replace('-', '_')} = 1;")
    bundle = renderer_bundle(tmp_path)
    assert bundle.index("vega 9.9.4") < bundle.index("vega-lite 9.9.9") < bundle.index("vega-embed 9.9.10")
    page = dvc_plots_template(bundle)
    assert "{plot_divs}" in page and "{refresh_tag}" in page and "{scripts}" not in page  # no CDN tags
    (tmp_path / "vega" / "build" / "vega.min.js").write_text("x = '</script>';")
    with pytest.raises(ValueError, match="cannot be inlined"):
        renderer_bundle(tmp_path)
