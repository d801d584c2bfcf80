"""The offline sweep explorer (``results/explorer.html``) and the offline DVC plots template.

Both pages inline one renderer: Vega, Vega-Lite and vega-embed as published on npm
(``renderer/package.json``, installed by ``scripts/setup_env.sh``), so they draw with no
network. The explorer is one Vega-Lite specification (phase diagrams faceted by panel, and
the curves of the clicked cell) plus a few lines of glue that hand the clicked cell's curves
to the curve charts; all drawing is Vega's.

What the page holds:
- one rectangle per diagram point (the majority over ``phases.majority_over``, e.g. seeds),
  spanning the region it represents on each axis, so non-uniform grids draw correctly; axes
  are logarithmic where the grid is (``symlog`` where a log-spaced axis also holds 0);
- a tooltip with the point's settings, phase, each voter's phase, the first steps at which
  train and test accuracy reached ``phases.accuracy_threshold``, and the gap;
- every cell's curves, downsampled on a logarithmic step grid to keep the page small for
  large sweeps (:func:`points_per_curve`), with a link to the cell's full record;
- the full records themselves, gzip-compressed, when they fit in :data:`RECORDS_BUDGET`: a
  page shown inside another document (Snakemake's ``--report`` embeds it as a ``data:`` URL,
  where a relative link leads nowhere) opens each record from its own copy.
"""
from __future__ import annotations

import base64
import gzip
import json
import math
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..training.grid import spell
from .aggregate import TIE
from .axes import DiagramLayout, axis_label, axis_scale
from .phases import PHASE_COLORS, PHASES, SPLIT_COLORS

__all__ = ["RENDERER_PACKAGES", "renderer_path", "compare_document", "renderer_bundle", "dvc_plots_template", "axis_scale", "cell_edges",
           "downsample", "points_per_curve", "embedded_records", "explorer_document", "explorer_html"]

# npm package -> its browser build, in load order (vega-embed needs the other two).
RENDERER_PACKAGES = {"vega": "build/vega.min.js", "vega-lite": "build/vega-lite.min.js",
                     "vega-embed": "build/vega-embed.min.js"}

# The PNG figures' colours; a tie between voters is grey.
_COLORS = {**PHASE_COLORS, TIE: "#bdbdbd"}

# Curve metrics drawn on click: record key -> (chart, split).
_METRICS = {"train_acc": ("accuracy", "train"), "test_acc": ("accuracy", "test"),
            "train_loss": ("loss", "train"), "test_loss": ("loss", "test"),
            "param_norm": ("parameter norm", ""), "ipr": ("IPR", ""),
            "softmax_collapse": ("softmax collapse (train share, loss exactly 0)", "")}

# Numbers of curve values the page may hold in all (about 7 characters each): the explorer of
# S3's 3,969-cell sweep stays near 6 MB.
CURVE_BUDGET = 1_000_000

# Bytes of record text (before compression) the page may carry in all; above it the page
# carries none and says where the records are. S0's 60-cell sweep has ~0.4 MB of records.
RECORDS_BUDGET = 32_000_000


def renderer_path(checkout: str | Path, prefix: str | Path | None = None) -> Path:
    """The renderer bundle scripts/setup_env.sh builds: the checkout's ``renderer/renderer.js``
    (git-ignored), else the copy inside the environment running the workflow
    (``<sys.prefix>/share/grokmap/renderer.js``), which a checkout without it uses (DVC's
    temporary experiment workspaces). The checkout's path when neither exists."""
    import sys

    own = Path(checkout) / "renderer" / "renderer.js"
    installed = Path(prefix or sys.prefix) / "share" / "grokmap" / "renderer.js"
    return own if own.is_file() or not installed.is_file() else installed


def renderer_bundle(node_modules: str | Path) -> str:
    """The three renderer packages' browser builds, concatenated, each under a comment naming
    its version; refuses what could not be inlined into a ``<script>`` element."""
    node_modules = Path(node_modules)
    parts = []
    for package, build in RENDERER_PACKAGES.items():
        path = node_modules / package / build
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the renderer is not installed; run scripts/setup_env.sh "
                                    "(it installs renderer/package.json's packages with npm)")
        version = json.loads((node_modules / package / "package.json").read_text())["version"]
        code = path.read_text(encoding="utf8")
        if "</script" in code.lower():
            raise ValueError(f"{path} contains '</script' and cannot be inlined")
        parts.append(f"/* {package} {version} (npm), {build} */\n{code}")
    return "\n".join(parts)


def dvc_plots_template(bundle: str) -> str:
    """An HTML template for ``dvc plots show/diff`` (``plots.html_template`` in .dvc/config)
    that inlines the renderer. It has no ``{scripts}`` placeholder, so DVC's own script tags,
    which load the renderer from a CDN, are left out."""
    return f"""<!DOCTYPE html>
<html>
<head>
{{refresh_tag}}
<meta charset="utf-8">
<title>grokmap: DVC plots</title>
<script>
{bundle}
</script>
<style>
body {{ font-family: sans-serif; margin: 16px; }}
table {{ border-spacing: 15px; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def _forward(scale: dict):
    kind = scale["type"]
    if kind == "log":
        return math.log10, lambda t: 10 ** t
    if kind == "symlog":
        c = scale["constant"]
        return (lambda x: math.copysign(math.log1p(abs(x) / c), x),
                lambda t: math.copysign(c * math.expm1(abs(t)), t))
    return (lambda x: x), (lambda t: t)


def cell_edges(values: Sequence, scale: dict) -> dict[float, tuple[float, float]]:
    """Value -> (low, high): the region each grid value represents on a numeric axis, split
    half-way (in the axis' own scale) between neighbours, the outer values extending as far
    out as in."""
    xs = sorted({float(v) for v in values})
    fwd, inv = _forward(scale)
    ts = [fwd(x) for x in xs]
    if len(ts) == 1:
        half = [0.5 if scale["type"] != "linear" else max(abs(xs[0]) * 0.5, 0.5)]
    else:
        half = [(b - a) / 2 for a, b in zip(ts, ts[1:])]
    out = {}
    for i, (x, t) in enumerate(zip(xs, ts)):
        lo = half[i - 1] if i > 0 else half[0]
        hi = half[i] if i < len(half) else half[-1]
        out[x] = (inv(t - lo), inv(t + hi))
    return out


def downsample(steps: Sequence[int], k: int) -> list[int]:
    """Indices of at most ``k`` points of a curve, evenly spaced in log(step) (the explorer
    draws steps on a log axis), always keeping the first and the last."""
    n = len(steps)
    if n <= k:
        return list(range(n))
    lo, hi = math.log(max(steps[0], 1)), math.log(max(steps[-1], 1))
    picks, j = {0, n - 1}, 0
    for i in range(1, k - 1):
        target = lo + (hi - lo) * i / (k - 1)
        while j < n - 1 and math.log(max(steps[j], 1)) < target:
            j += 1
        picks.add(j)
    return sorted(picks)


def points_per_curve(n_cells: int) -> int:
    """Points kept per curve: all of a small sweep's (up to 200), fewer for large sweeps so the
    page holds about :data:`CURVE_BUDGET` numbers, never fewer than 24."""
    return max(24, min(200, CURVE_BUDGET // (len(_METRICS) + 1) // max(n_cells, 1)))


def _round(v):
    return None if v is None or not math.isfinite(v) else float(f"{v:.4g}")


def _steps_text(rows: list[dict], key: str) -> str:
    return ", ".join("–" if r[key] is None else f"{r[key]:,}" for r in rows)


def embedded_records(texts: Mapping[str, bytes]) -> str | None:
    """The records (link -> file bytes) as base64 of gzip-compressed JSON, or None when their
    text exceeds :data:`RECORDS_BUDGET` (the page then links the files only)."""
    if sum(len(t) for t in texts.values()) > RECORDS_BUDGET:
        return None
    blob = json.dumps({k: t.decode("utf8") for k, t in texts.items()}, sort_keys=True).encode()
    return base64.b64encode(gzip.compress(blob, mtime=0)).decode("ascii")


def explorer_document(phases: dict, curves_of: Callable[[dict], Mapping], link_of: Callable[[dict], str],
                      threshold: float, text_of: Callable[[dict], bytes] | None = None) -> dict:
    """What the page draws, from phases.json: ``spec`` (Vega-Lite), ``groups`` (one row per
    diagram point), ``curves`` (per group, each voter's downsampled curves and record link)
    and ``info`` (headings). ``curves_of(row)`` returns a cell's record curves and
    ``link_of(row)`` the link to its record; with ``text_of(row)`` (the record file's bytes)
    the document also carries the records (:func:`embedded_records`)."""
    lay = DiagramLayout(phases)
    x_scale, y_scale = axis_scale(lay.cols), axis_scale(lay.wds)
    x_edges = cell_edges(lay.cols, x_scale) if x_scale["type"] != "band" else None
    y_edges = cell_edges(lay.wds, y_scale)
    members: dict[tuple, list[dict]] = {}
    for row in phases["cells"]:
        members.setdefault(lay.key(row), []).append(row)
    k = points_per_curve(len(phases["cells"]))
    x_name, y_name = axis_label(lay.col), "weight decay"
    groups, curves, present, texts = [], [], set(), {}
    gid = {id(group): g for g, group in enumerate(phases["groups"])}
    for where, group in lay.points(phases):  # with refinement: every lattice point, as covered
        g = gid[id(group)]
        panel, wd, col = lay.key(where)
        rows = members[lay.key(group)]
        voters = ["  ".join(f"{axis_label(a)}={spell(r[a])}" for a in lay.vote) for r in rows]
        item = {"g": g, "panel": lay.title(panel), "phase": group["phase"],
                "agreement": group["agreement"], "x": col if x_edges is None else float(col), "y": wd,
                x_name: spell(group[lay.col]), y_name: spell(group["weight_decay"])}
        if x_edges is not None:
            item["x0"], item["x1"] = x_edges[float(col)]
        item["y0"], item["y1"] = y_edges[wd]
        for a in lay.panel_axes:
            item[axis_label(a)] = spell(group[a])
        item["voters"] = "; ".join(f"{v}: {r['phase']}" for v, r in zip(voters, rows))
        item["seeds agree"] = (f"{round(group['agreement'] * len(rows))} of {len(rows)}"
                               + ("; one vote would change the label" if group.get("flips_with_one_vote") else ""))
        if "generalising_interval" in group:
            lo, hi = group["generalising_interval"]
            item["generalising share"] = f"{group['generalising_share']:.2f} (95 % interval {lo:.2f}-{hi:.2f})"
        item["final train / test accuracy"] = ", ".join(f"{r['final_train_acc']:.3f} / {r['final_test_acc']:.3f}"
                                                        for r in rows)
        item["grokking step"] = _steps_text(rows, "grokking_step")
        item["first train step"] = _steps_text(rows, "first_train_step")
        item["first test step"] = _steps_text(rows, "first_test_step")
        gap = group.get("mean_gap_epochs")
        item["gap (epochs)"] = "–" if gap is None else f"{gap:,.0f}"
        undecided = [r for r in rows if r.get("undecided")]
        item["undecided"] = bool(group.get("undecided"))
        item["undecided at budget"] = ("no" if not undecided else "; ".join(
            f"{v or 'cell'}: still rising (+{r['budget_gain']:.0%} over the budget's last "
            f"{phases['settings']['phases']['undecided_window_share']:.0%})"
            for v, r in zip(voters, rows) if r.get("undecided")))
        if "extend" in phases:  # extension rounds: how far each voter was continued, and its label at the budget
            item["extended"] = "; ".join(
                f"{v or 'cell'}: x{r['budget_multiple']} budget, at the budget {r['phase_at_budget']}"
                for v, r in zip(voters, rows) if r.get("budget_multiple", 1) > 1) or "no"
        if where is not group:
            item["round"] = str(rows[0].get("round", 0))
            item["drawn at"] = (f"{x_name}={spell(col)}, {y_name}={spell(wd)}"
                                + ("" if lay.key(where) == lay.key(group) else " (covered by the cell above)"))
        groups.append(item)
    for g, group in enumerate(phases["groups"]):
        series = []
        for r in members[lay.key(group)]:
            v = "  ".join(f"{axis_label(a)}={spell(r[a])}" for a in lay.vote)
            c = curves_of(r)
            steps = c.get("step") or c["epoch"]
            keep = [i for i in downsample(steps, k) if steps[i] > 0]
            one = {"voter": v or "cell", "phase": r["phase"], "file": link_of(r),
                   "step": [int(steps[i]) for i in keep]}
            for key in _METRICS:
                if key in c:
                    one[key] = [_round(c[key][i]) for i in keep]
                    if any(x is not None for x in one[key]):
                        present.add(_METRICS[key][0])
            series.append(one)
            if text_of is not None:
                texts[one["file"]] = text_of(r)
        curves.append(series)
    panels = [lay.title(p) for p in lay.panels]
    tooltip = ([x_name, y_name] + [axis_label(a) for a in lay.panel_axes]
               + ["phase", "undecided at budget", "seeds agree", "generalising share", "voters", "first train step",
                  "first test step",
                  "gap (epochs)", "final train / test accuracy", "grokking step"]
               + (["round", "drawn at"] if lay.covered is not None else [])
               + (["extended"] if "extend" in phases else []))
    # a select per setting that varies between panels, with the values the diagram holds
    lay.filters = [(axis_label(a), list(dict.fromkeys(spell(g[a]) for g in phases["groups"])))
                   for a in lay.panel_axes if a in lay.varying]
    spec = _spec(panels, x_name, y_name, x_scale, y_scale, lay, tooltip, threshold, present,
                 multi=max((len(members[lay.key(gr)]) for gr in phases["groups"]), default=1) > 1)
    return {"spec": spec, "groups": groups, "curves": curves,
            "records": embedded_records(texts) if text_of is not None else None,
            "info": {"n_cells": len(phases["cells"]), "n_groups": len(phases["groups"]), "points_per_curve": k,
                     "counts": phases["counts"], "threshold": threshold,
                     "undecided": phases.get("undecided_cells", 0),
                     "voting": [axis_label(a) for a in lay.vote]}}


def _axis(name: str, scale: dict, values: Sequence, field: str) -> tuple[dict, dict | None]:
    if scale["type"] == "band":
        return {"field": name, "type": "ordinal", "sort": [spell(v) for v in values],
                "title": name}, None
    s = {"type": scale["type"], "zero": False, "nice": False}
    if "constant" in scale:
        s["constant"] = scale["constant"]
    axis = {"format": "~g", "title": name + (" (log scale)" if scale["type"] == "log" else
                                             " (symmetric log scale)" if scale["type"] == "symlog" else "")}
    if len(values) <= 12:
        axis["values"] = [float(v) for v in values]
    else:
        axis["tickCount"] = 5
    return ({"field": field + "0", "type": "quantitative", "scale": s, "axis": axis},
            {"field": field + "1"})


def _spec(panels, x_name, y_name, x_scale, y_scale, lay, tooltip, threshold, present, multi) -> dict:
    setting_filters = lay.filters
    x, x2 = _axis(x_name, x_scale, lay.cols, "x")
    y, y2 = _axis(y_name, y_scale, lay.wds, "y")
    domain = list(PHASES) + [TIE]
    encoding = {
        "x": x, "y": y,
        "color": {"field": "phase", "type": "nominal", "title": "phase",
                  "scale": {"domain": domain, "range": [_COLORS[p] for p in domain]}},
        "stroke": {"condition": {"param": "pick", "empty": False, "value": "#000000"}, "value": "#ffffff"},
        "strokeWidth": {"condition": {"param": "pick", "empty": False, "value": 2.5}, "value": 0.4},
        "tooltip": [{"field": f} for f in tooltip],
    }
    if x2:
        encoding["x2"] = x2
    if y2:
        encoding["y2"] = y2
    if multi:  # how many voters agree with the majority: faint = split vote
        encoding["opacity"] = {"field": "agreement", "type": "quantitative", "title": "voters agree",
                               "scale": {"domain": [0, 1], "range": [0.25, 1]},
                               "legend": {"format": ".0%"}}
    diagram = {
        "data": {"name": "groups"},
        "transform": [{"filter": "!undecided_only || datum.undecided"},
                      {"filter": "only_phase == 'every phase' || datum.phase == only_phase"},
                      *({"filter": f"only_{i} == 'every value' || datum[{json.dumps(label)}] == only_{i}"}
                        for i, (label, _) in enumerate(setting_filters))],
        "facet": {"field": "panel", "type": "nominal", "sort": panels, "title": None,
                  "header": {"labelFontSize": 12}},
        "columns": min(len(panels), 3 if 16 * len(lay.cols) <= 300 else 2),
        "spec": {"width": max(260, min(520, 16 * len(lay.cols))), "height": max(220, min(440, 14 * len(lay.wds))),
                 "layer": [
                     {"params": [{"name": "pick", "select": {"type": "point", "fields": ["g"], "on": "click"}}],
                      "mark": {"type": "rect", "cursor": "pointer"}, "encoding": encoding},
                     # undecided at budget (phases.undecided_*): a white triangle at the point, as in the PNGs
                     {"transform": [{"filter": "datum.undecided"}],
                      "mark": {"type": "point", "shape": "triangle-up", "filled": True, "fill": "#ffffff",
                               "stroke": "#000000", "strokeWidth": 0.8, "size": 55, "opacity": 1,
                               "interactive": False},  # hover and click reach the point's rectangle beneath
                      "encoding": {"x": {**x, "field": x["field"] if x2 is None else "x"},
                                   "y": {**y, "field": y["field"] if y2 is None else "y"},
                                   "tooltip": encoding["tooltip"]}},
                 ]},
    }
    color = {"field": "split", "type": "nominal", "title": "split",
             "scale": {"domain": ["train", "test"], "range": [SPLIT_COLORS["train"], SPLIT_COLORS["test"]]}}

    def chart(metric, title, ylog=False, layer_rule=None):
        line = {"mark": {"type": "line", "tooltip": True, "clip": True},
                "encoding": {"x": {"field": "step", "type": "quantitative", "title": "step (log scale)",
                                   # not rounded out ("nice"): the axis ends at the budget, not the next power of 10
                                   "scale": {"type": "log", "nice": False}, "axis": {"format": "~s", "tickCount": 5}},
                             "y": {"field": "value", "type": "quantitative", "title": title,
                                   **({"axis": {"format": "~g"}} if ylog else {}),
                                   "scale": {"type": "log"} if ylog else {"zero": False}},
                             "detail": {"field": "voter", "type": "nominal"}}}
        if metric in ("accuracy", "loss"):
            line["encoding"]["color"] = color
        if multi:
            line["encoding"]["strokeDash"] = {"field": "voter", "type": "nominal", "title": "voter"}
        body = {"data": {"name": "curves"},
                "transform": [{"filter": {"field": "metric", "equal": metric}}],
                "width": 230, "height": 170, "title": title}
        if layer_rule is None:
            return {**body, **line}
        return {**body, "layer": [line, layer_rule]}

    rule = {"mark": {"type": "rule", "strokeDash": [4, 3], "color": "#777777"},
            "encoding": {"y": {"datum": threshold}}}
    charts = [chart("accuracy", "accuracy", layer_rule=rule), chart("loss", "loss", ylog=True)]
    charts += [chart(m, m) for m in ("parameter norm", "IPR", _METRICS["softmax_collapse"][0])
               if m in present]  # only what the records log
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "config": {"view": {"stroke": "#dddddd"}, "font": "sans-serif"},
        "autosize": {"type": "pad", "resize": True},
        "params": [{"name": "undecided_only", "value": False,
                    "bind": {"input": "checkbox", "name": "show only points undecided at budget (white triangle) "}},
                   {"name": "only_phase", "value": "every phase",
                    "bind": {"input": "select", "options": ["every phase", *domain], "name": "phase: "}},
                   # one select per setting that varies between panels (e.g. width, optimizer)
                   *({"name": f"only_{i}", "value": "every value",
                      "bind": {"input": "select", "options": ["every value", *values], "name": f"{label}: "}}
                     for i, (label, values) in enumerate(setting_filters))],
        # two charts a row and at most two wide panels a row: the page fits 1,024 px; wider scrolls, never cuts
        "vconcat": [diagram, {"concat": charts, "columns": 2}],
        "resolve": {"scale": {"color": "independent", "strokeDash": "independent"}},
    }


def _script_json(value) -> str:
    """JSON safe inside a ``<script>`` element."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


_GLUE = r"""
const METRICS = %(metrics)s;
const CURVES = DOC.curves;
function cellRows(g) {
  const rows = [];
  for (const c of CURVES[g]) {
    for (const [key, [metric, split]] of Object.entries(METRICS)) {
      const values = c[key];
      if (!values) continue;
      c.step.forEach((step, i) => {
        if (values[i] !== null) rows.push({voter: c.voter, metric: metric, split: split, step: step, value: values[i]});
      });
    }
  }
  return rows;
}
function describe(g) {
  const box = document.getElementById('cell');
  box.replaceChildren();
  const group = DOC.groups[g];
  const head = document.createElement('p');
  head.textContent = DOC.tooltip.map(k => k + ': ' + group[k]).join(' | ');
  box.appendChild(head);
  const links = document.createElement('p');
  links.appendChild(document.createTextNode(EMBEDDED ? 'Full records (shown below): ' : 'Full records: '));
  CURVES[g].forEach((c, i) => {
    const a = document.createElement('a');
    a.href = c.file;
    a.textContent = (c.voter || 'cell') + ' (' + c.phase + ')';
    if (EMBEDDED) a.addEventListener('click', event => { event.preventDefault(); showRecord(c.file); });
    if (i) links.appendChild(document.createTextNode(', '));
    links.appendChild(a);
  });
  box.appendChild(links);
}
// Shown inside another document (Snakemake's report embeds the page as a data: URL), a
// relative link leads nowhere: the page opens the record from its own compressed copy.
const EMBEDDED = !['file:', 'http:', 'https:'].includes(location.protocol);
let RECORDS = null;
function recordText(file) {
  if (!DOC.records) return Promise.resolve(undefined);
  if (!RECORDS) {
    const bytes = Uint8Array.from(atob(DOC.records), ch => ch.charCodeAt(0));
    RECORDS = new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).json();
  }
  return RECORDS.then(all => all[file]);
}
function showRecord(file) {
  const box = document.getElementById('record');
  return recordText(file).then(text => {
    box.replaceChildren();
    const head = document.createElement('p');
    if (text === undefined) {
      head.textContent = 'This page does not carry the records (the sweep\'s records exceed its budget); the record is ' + file + ', relative to explorer.html.';
      box.appendChild(head);
      return;
    }
    head.textContent = file + ' ';
    const save = document.createElement('a');
    save.href = URL.createObjectURL(new Blob([text], {type: 'application/json'}));
    save.download = file.split('/').slice(-2).join('_');
    save.textContent = '(download)';
    head.appendChild(save);
    const pre = document.createElement('pre');
    pre.textContent = text;
    box.append(head, pre);
    box.dataset.file = file;
  });
}
function show(view, g) {
  describe(g);
  return view.data('curves', cellRows(g)).runAsync().then(() => { document.body.dataset.shown = String(g); });
}
DOC.spec.datasets = {groups: DOC.groups, curves: []};
vegaEmbed('#view', DOC.spec, {renderer: 'svg', actions: {export: true, source: false, compiled: false, editor: false}})
  .then(result => {
    const view = result.view;
    window.explorerView = view;
    view.addEventListener('click', (event, item) => {
      if (item && item.datum && typeof item.datum.g === 'number') show(view, item.datum.g);
    });
    document.body.dataset.ready = '1';
  })
  .catch(err => { document.getElementById('cell').textContent = 'The explorer failed to draw: ' + err; });
"""


def compare_document(a: dict, b: dict, label_a: str, label_b: str) -> dict:
    """Two sweeps' explorer documents (:func:`explorer_document`) as one page: A's panels then
    B's, side by side, each point naming its phase in the other sweep, and the points whose
    phase differs between the two outlined in black (in both)."""
    import copy

    def key(item):
        return item["panel"], item["x"], item["y"]

    phase_of = [{key(i): i["phase"] for i in d["groups"]} for d in (a, b)]
    groups, panels = [], []
    for side, (doc, label, other) in enumerate(((a, label_a, phase_of[1]), (b, label_b, phase_of[0]))):
        offset = len(a["groups"]) if side else 0
        sort = doc["spec"]["vconcat"][0]["facet"]["sort"]
        panels += [f"{label}: {p}" for p in sort]
        for item in doc["groups"]:
            there = other.get(key(item))
            groups.append({**item, "g": item["g"] + offset, "panel": f"{label}: {item['panel']}",
                           "in the other sweep": there or "not there", "changed": there is not None and there != item["phase"]})
    spec = copy.deepcopy(b["spec"])
    diagram = spec["vconcat"][0]
    diagram["facet"]["sort"] = panels
    diagram["columns"] = len(panels) if len(panels) <= 4 else len(panels) // 2
    rects = diagram["spec"]["layer"][0]
    rects["encoding"]["tooltip"].append({"field": "in the other sweep"})
    outline = {k: v for k, v in rects["encoding"].items() if k in ("x", "x2", "y", "y2")}
    diagram["spec"]["layer"].append({"transform": [{"filter": "datum.changed"}],
                                     "mark": {"type": "rect", "filled": False, "stroke": "#000000", "strokeWidth": 3,
                                              "interactive": False},
                                     "encoding": {**outline, "tooltip": rects["encoding"]["tooltip"]}})
    changed = sum(g["changed"] for g in groups) // 2
    info = {**b["info"], "n_cells": a["info"]["n_cells"] + b["info"]["n_cells"], "n_groups": len(groups),
            "counts": {p: a["info"]["counts"].get(p, 0) + b["info"]["counts"].get(p, 0) for p in PHASES},
            "undecided": a["info"].get("undecided", 0) + b["info"].get("undecided", 0),
            "compared": {"a": label_a, "b": label_b, "changed_points": changed,
                         "counts_a": a["info"]["counts"], "counts_b": b["info"]["counts"]}}
    return {"spec": spec, "groups": groups, "curves": a["curves"] + b["curves"], "info": info, "records": None}


def explorer_html(document: dict, bundle: str, title: str) -> str:
    """The self-contained page: the renderer, the data, the specification and the glue."""
    doc = dict(document)
    doc["tooltip"] = [f["field"] for f in document["spec"]["vconcat"][0]["spec"]["layer"][0]["encoding"]["tooltip"]]
    info = document["info"]
    counts = ", ".join(f"{info['counts'].get(p, 0)} {p}" for p in PHASES)
    vote = (f"Each rectangle is the majority over {' × '.join(info['voting'])}; faint = the voters split. "
            if info["voting"] else "")
    vote += (f"{info['undecided']} cells are undecided at budget (still rising when training stopped): white "
             f"triangle. " if info.get("undecided") else "")
    cmp = info.get("compared")
    if cmp:
        vote = (f"Comparing A = {cmp['a']} ({', '.join(f'{v} {p}' for p, v in cmp['counts_a'].items())}) with "
                f"B = {cmp['b']} ({', '.join(f'{v} {p}' for p, v in cmp['counts_b'].items())}): "
                f"{cmp['changed_points']} point(s) changed phase, outlined in black in both. ") + vote
    metrics = {k: list(v) for k, v in _METRICS.items()}
    esc = _html_escape
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)}</title>
<script>
{bundle}
</script>
<style>
body {{ font-family: sans-serif; margin: 16px; color: #222; }}
h1 {{ font-size: 20px; margin: 0 0 4px 0; }}
p.lead {{ margin: 0 0 12px 0; color: #555; font-size: 13px; }}
#cell {{ font-size: 13px; margin: 8px 0; min-height: 2.5em; }}
#cell p {{ margin: 2px 0; }}
#view {{ overflow-x: auto; max-width: 100%; }}
#record pre {{ font-size: 11px; max-height: 400px; overflow: auto; background: #f6f6f6; padding: 6px; }}
</style>
</head>
<body>
<h1>{esc(title)}</h1>
<p class="lead">{info['n_cells']} cells, {info['n_groups']} diagram points: {esc(counts)}. {esc(vote)}Hover a
rectangle for its settings and steps; click it for its curves (each downsampled to at most
{info['points_per_curve']} points on a log step grid; the linked record holds them all).</p>
<div id="cell">Click a rectangle of a phase diagram to see its curves.</div>
<div id="record"></div>
<div id="view"></div>
<script>
const DOC = {_script_json(doc)};
{_GLUE % {"metrics": _script_json(metrics)}}
</script>
</body>
</html>
"""


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
