#!/usr/bin/env python
"""Benchmark suite (not a test): prints a table, writes results/benchmarks/summary.json.

    .venv/bin/python benchmarks/run.py            # everything (about 25-30 minutes here)
    .venv/bin/python benchmarks/run.py --quick    # reduced budgets, a few minutes
    .venv/bin/python benchmarks/run.py --only per_cell,hardware
    .venv/bin/python benchmarks/run.py --only precision     # the fused step in each precision

Every figure is measured side by side in the same run so that machine noise cancels:
1. per-cell training speed, one thread: the project's loop vs a textbook baseline written
   here (nn.Module with two nn.Embedding, torch.cat, two nn.Linear, nn.CrossEntropyLoss,
   torch.optim.AdamW, evaluation as a separate no-grad pass), same schedule, same seed;
2. hardware efficiency: GFLOP/s of the training step vs a measured single-core sgemm peak;
3. the whole default sweep with `snakemake --cores 2` vs the baseline running the same
   cells serially in one process, and the fraction of the sweep spent outside training;
4. overheads: no-op snakemake and dvc repro at 60 cells, `snakemake -n` at 6,000 cells;
5. scaling: 60 / 300 / 600 cells (seed axis) at a reduced epoch budget; peak RSS;
6. precision: the fused step in float32, float64 and bfloat16, eager and compiled, with the
   share of the step spent in matrix products;
7. tail: the fused step row-tiled (C tail or torch's), untiled and compiled, and the elementwise
   tail (softmax minus one-hot) by torch's kernels against the C loop the step uses;
8. compile: the generic and stacked engines' forward passes eager and under torch.compile
   (S2's MLP, S1's Transformer, 64 of S3's toy cells), float32 and bfloat16;
9. kernels: every gradient path of the fused step (C tail, torch tail, compiled graph) in every
   precision, with its compile cost and its gradient's deviation from float64 (--only kernels).
10. floor (--only floor): S0's sub-grid steps against their matrix products alone and the sgemm
   rate: what the sub-grid's training would take if a step were its products (issue 34).
Sections 7, 8, 9 and 10 interleave the variants they compare in blocks (median of the blocks), so
that this machine's drifting speed (10-30 % within minutes) falls on all of them alike.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
BIN = Path(sys.executable).parent

import torch  # noqa: E402
from torch import nn  # noqa: E402

from grokmap.analysis.phases import classify_curves  # noqa: E402
from grokmap.settings import load_settings  # noqa: E402
from grokmap.training.data import split  # noqa: E402
from grokmap.training.grid import Cell, cells as grid_cells  # noqa: E402
from grokmap.training.loop import train_cell  # noqa: E402
from grokmap.training.schedule import eval_schedule  # noqa: E402

PARAMS = load_settings(ROOT / "params.yaml", ROOT / "config.yaml", ROOT / "workflow" / "schemas").params


# --------------------------------------------------------------------------- baseline
class TextbookMLP(nn.Module):
    def __init__(self, p, d, width):
        super().__init__()
        self.embed_a, self.embed_b = nn.Embedding(p, d), nn.Embedding(p, d)
        self.hidden, self.output = nn.Linear(2 * d, width), nn.Linear(width, p)

    def forward(self, a, b):
        return self.output(torch.relu(self.hidden(torch.cat([self.embed_a(a), self.embed_b(b)], 1))))


def baseline_train(params: dict, cell: Cell) -> dict:
    """The plain S0-style loop: what a researcher would write without this project."""
    p, tr = params["task"]["modulus"], params["training"]
    (x, y), (tx, ty) = split("modular_addition", p, cell.train_fraction, cell.seed)
    a, b, ta, tb = x[:, 0], x[:, 1], tx[:, 0], tx[:, 1]
    torch.manual_seed(cell.seed)
    model = TextbookMLP(p, params["model"]["embedding_dim"], cell.width)
    opt = torch.optim.AdamW(model.parameters(), lr=tr["learning_rate"], betas=tuple(tr["betas"]),
                            eps=tr["eps"], weight_decay=cell.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    evals, run, curves = set(eval_schedule(tr["max_epochs"], tr["eval_every_epochs"])), 0, []
    for epoch in range(1, tr["max_epochs"] + 1):
        model.train()
        opt.zero_grad()
        loss_fn(model(a, b), y).backward()
        opt.step()
        if epoch in evals:
            model.eval()
            with torch.no_grad():
                accs = [(model(x1, x2).argmax(1) == t).float().mean().item()
                        for x1, x2, t in ((a, b, y), (ta, tb, ty))]
            curves.append((epoch, *accs))
            run = run + 1 if min(accs) >= tr["early_stop_accuracy"] else 0
            if run >= tr["early_stop_evals"]:
                break
    return {"epochs_run": epoch, "curves": curves}


# --------------------------------------------------------------------------- helpers
def _params(**training) -> dict:
    q = copy.deepcopy(PARAMS)
    q["training"].update(training)
    return q


def _time(fn, *args) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def _run(cmd, cwd, env=None) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {}))
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed, proc


def _project_copy(sweep: dict | None = None, **training) -> Path:
    path = Path(tempfile.mkdtemp(prefix="grokmap-bench-"))
    for name in ("Snakefile", "workflow", "profiles", "scripts", "src", "config.yaml", "params.yaml", "dvc.yaml",
                 ".dvcignore"):
        src = ROOT / name
        shutil.copytree(src, path / name, symlinks=True) if src.is_dir() else shutil.copy2(src, path / name)
    import yaml

    params = yaml.safe_load((path / "params.yaml").read_text())
    params["training"].update(training)
    if sweep:
        params["sweep"].update(sweep)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return path


# --------------------------------------------------------------------------- sections
def per_cell(epochs: int) -> dict:
    torch.set_num_threads(1)
    # The first torch.optim optimizer imports torch._dynamo (~1.2 s); keep that out of the timings.
    torch.optim.AdamW([nn.Parameter(torch.zeros(1))])
    q = _params(max_epochs=epochs, early_stop_accuracy=1.01)  # no early stop: equal work
    rows, ratios = [], []
    for width in PARAMS["sweep"]["width"]:
        for frac in PARAMS["sweep"]["train_fraction"]:
            cell = Cell(0.01, frac, width, 42)
            t_base, base = _time(baseline_train, q, cell)
            t_proj, proj = _time(train_cell, q, cell)
            same = max(abs(x[1] - y) for x, y in zip(base["curves"], proj["curves"]["train_acc"]))
            rows.append({"width": width, "train_fraction": frac, "epochs": epochs,
                         "baseline_epochs_per_s": epochs / t_base, "project_epochs_per_s": epochs / t_proj,
                         "speedup": t_base / t_proj, "max_train_acc_difference": same})
            ratios.append(t_base / t_proj)
    return {"rows": rows, "per_cell_speedup": math.exp(sum(map(math.log, ratios)) / len(ratios)),
            "per_cell_speedup_min": min(ratios)}


def hardware(epochs: int) -> dict:
    torch.set_num_threads(1)
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    t, reps = time.perf_counter(), 20
    for _ in range(reps):
        torch.mm(a, b)
    peak = 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
    p, d, width, frac = PARAMS["task"]["modulus"], PARAMS["model"]["embedding_dim"], 64, 0.9
    n_train = int(p * p * frac)
    t_proj, _ = _time(train_cell, _params(max_epochs=epochs, early_stop_accuracy=1.01), Cell(0.01, frac, width, 42))
    # per epoch: forward logits + two backward matmuls (6 n w p), two table matmuls
    # forward and four backward (6 * 2 p d w), plus the test-free steps; ignore element-wise work
    flops = 6 * n_train * width * p + 12 * p * d * width
    achieved = flops * epochs / t_proj / 1e9
    return {"sgemm_peak_gflops": peak, "train_step_gflops": achieved, "sgemm_efficiency": achieved / peak,
            "shape": {"n_train": n_train, "width": width, "p": p}}


def precision(steps: int) -> dict:
    """ms per fused training step of S0's largest cell (frac 0.9, width 64) in each precision, on
    the eager row-tiled step and on the compiled one (:mod:`grokmap.training.engines.compiled`),
    and the share of the step spent in matrix products (torch.profiler: aten::mm and addmm)."""
    from torch.profiler import ProfilerActivity, profile

    from grokmap.training.engines.fused import FusedEngine
    from grokmap.training.record import cell_settings
    from grokmap.training.spec import CellSpec

    torch.set_num_threads(1)
    rows = []
    for prec in ("float32", "float64", "bfloat16"):
        for compiled in (False, True):
            spec = CellSpec.of(cell_settings(PARAMS), Cell(0.1, 0.9, 64, 0)).with_training(precision=prec)
            engine = FusedEngine([spec])
            engine.net.compiled = compiled
            t0 = time.perf_counter()
            for k in range(1, 6):
                engine.step(k, 1.0, False)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            for k in range(steps):
                engine.step(k, 1.0, False)
            ms = (time.perf_counter() - t0) / steps * 1e3
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for k in range(20):
                    engine.step(k, 1.0, False)
            events = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in events)
            mm = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::addmm"))
            rows.append({"precision": prec, "step": "compiled" if compiled else "eager", "ms_per_step": ms,
                         "matmul_share": mm / total if total else None, "first_5_steps_s": first,
                         "used_by_default": compiled == (prec == "bfloat16")})
    return {"rows": rows, "threads": two_threads(steps), "engines": engine_precision(max(10, steps // 10))}


def two_threads(steps: int) -> list[dict]:
    """How well two cells' steps overlap in two threads of one process (as the workflow runs
    cells): throughput of two threads relative to one, eager float32 and compiled bfloat16."""
    import threading

    from grokmap.training.engines.fused import FusedEngine
    from grokmap.training.record import cell_settings
    from grokmap.training.spec import CellSpec

    torch.set_num_threads(1)
    rows = []
    for prec in ("float32", "bfloat16"):
        engines = [FusedEngine([CellSpec.of(cell_settings(PARAMS), Cell(0.1, 0.9, 64, seed))
                                .with_training(precision=prec)]) for seed in (0, 1)]
        for e in engines:
            for k in range(1, 6):
                e.step(k, 1.0, False)

        def run(e):
            for k in range(steps):
                e.step(k, 1.0, False)

        t0 = time.perf_counter()
        run(engines[0])
        one = time.perf_counter() - t0
        threads = [threading.Thread(target=run, args=(e,)) for e in engines]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        two = time.perf_counter() - t0
        rows.append({"precision": prec, "one_thread_ms_per_step": one / steps * 1e3,
                     "two_threads_throughput_vs_one": 2 * one / two})
    return rows


def _engine_cases() -> list[tuple]:
    """(label, study params, its grid, cells per engine) of the generic and stacked cases that
    sections 6 and 8 time: S2's network (width 256, batch 256), S1's Transformer (depth 2), and a
    stack of 64 of S3's toy cells."""
    cases = []
    for label, study, only, n in (("S2 MLP (generic)", "s2_fraction_scan", {}, 1),
                                  ("S1 transformer (generic)", "s1_models", {"model.name": "transformer"}, 1),
                                  ("S3 toy, 64 cells (stacked)", "s3_toy_classification", {}, 64)):
        params = load_settings(ROOT / "studies" / f"{study}.yaml", ROOT / "config.yaml", ROOT / "workflow" / "schemas").params
        grid = [c for c in grid_cells(params["sweep"]) if all(dict(c.extra).get(k) == v for k, v in only.items())]
        cases.append((label, params, grid, n))
    return cases


def engine_precision(steps: int) -> list[dict]:
    """ms per step of the generic and stacked engines in each precision: S2's network (width
    256, batch 256), S1's Transformer (depth 2), and a stack of 64 of S3's toy cells."""
    from grokmap.training.engines import engine_for, load_engine
    from grokmap.training.record import cell_settings
    from grokmap.training.spec import CellSpec

    rows = []
    for label, params, grid, n in _engine_cases():
        for prec in ("float32", "float64", "bfloat16"):
            specs = [CellSpec.of(cell_settings(params), c).with_training(precision=prec) for c in grid[:n]]
            engine = load_engine(engine_for(specs[0]))(specs)
            for k in range(1, 4):
                engine.step(k, 1.0, False)
            t0 = time.perf_counter()
            for k in range(steps):
                engine.step(k + 4, 1.0, False)
            rows.append({"case": label, "precision": prec, "ms_per_step": (time.perf_counter() - t0) / steps * 1e3})
    return rows


def _interleaved(runs: dict, blocks: int, steps: int) -> dict:
    """Median ms per call of each of ``runs`` (name -> callable), timed in ``blocks`` rounds of
    ``steps`` calls each, the variants taking turns within every round."""
    import statistics

    times = {k: [] for k in runs}
    for _ in range(blocks):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            times[k].append((time.perf_counter() - t0) / steps * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def tail(steps: int) -> dict:
    """Issue 19's first deliverable, measured: S0's largest cell (frac 0.9, width 64), float32,
    one thread. (a) The fused step row-tiled with the C tail (as cells train), row-tiled with
    torch's softmax and add, untiled (one tile of every row: each product one call) with the C
    tail, and as the compiled graph; (b) the tail of one row tile alone, softmax then minus
    one-hot over n, by torch's kernels and by the C loop (:mod:`grokmap.training.engines.ctail`)."""
    import torch.nn.functional as F

    from grokmap.training.engines import ctail
    from grokmap.training.engines.fused import FusedEngine, torch_softmax_minus_onehot
    from grokmap.training.record import cell_settings
    from grokmap.training.spec import CellSpec

    torch.set_num_threads(1)
    if ctail.library() is None:
        return {"kernel": "the C tail could not be built here (see the warning above)"}
    engines = {}
    for name in ("tiled, C tail", "tiled, torch tail", "untiled, C tail", "compiled"):
        e = FusedEngine([CellSpec.of(cell_settings(PARAMS), Cell(0.1, 0.9, 64, 0))])
        e.net.rows = e.n_train if name.startswith("untiled") else e.net.rows
        e.net.tail = "torch" if "torch" in name else e.net.tail
        e.net.compiled = name == "compiled"
        for k in range(1, 6):
            e.step(k, 1.0, False)
        engines[name] = e
    step_ms = _interleaved({k: (lambda e=e: e.step(1, 1.0, False)) for k, e in engines.items()}, 7, steps)
    e = engines["tiled, C tail"]
    rows, n, p = e.net.rows, e.n_train, e.net.p
    logits = e.net.logits(e.a[:rows], e.b[:rows])[0].clone()
    y = e.y[:rows].contiguous()
    neg = -F.one_hot(y, p).float() / n
    work = {"torch": logits.clone(), "c": logits.clone()}

    def torch_tail():
        torch_softmax_minus_onehot(work["torch"].copy_(logits), neg, 1.0 / n)

    def c_tail():
        ctail.softmax_minus_onehot(work["c"].copy_(logits), y, 1.0 / n)

    torch_tail(), c_tail()
    exact = (torch.softmax(logits.double(), 1) - F.one_hot(y, p).double()) / n
    errors = {k: float((v.double() - exact).abs().max()) for k, v in work.items()}
    copy_ms = _interleaved({"copy": lambda: work["torch"].copy_(logits)}, 3, steps * 10)["copy"]
    tail_ms = _interleaved({"torch": torch_tail, "c": c_tail}, 7, steps * 10)
    tiles = -(-n // rows)
    return {"rows_per_tile": rows, "step_ms": step_ms, "tile_shape": [rows, p],
            "tail_us_per_tile": {k: (v - copy_ms) * 1e3 for k, v in tail_ms.items()},
            "tail_ms_per_step": {k: (v - copy_ms) * tiles for k, v in tail_ms.items()},
            "max_abs_error_vs_float64": errors}


def kernels(steps: int) -> list[dict]:
    """Issue 33's kernel decision, measured: S0's largest cell (frac 0.9, width 64), one thread,
    every gradient path of the fused step in every precision it can run: the row tiles with the
    C tail (float32 only), the row tiles with torch's softmax and add, and the compiled graph.
    ms per step interleaved in blocks (median), the first gradient's seconds (compilation
    included; torch.compile's cache is this user's, so warm after a first run), the largest
    deviation of the gradient from the float64 one at the same parameters (relative to the
    gradient's largest entry), and which path a cell of that precision uses."""
    from grokmap.training.engines import ctail
    from grokmap.training.engines.fused import FusedEngine
    from grokmap.training.record import cell_settings
    from grokmap.training.spec import CellSpec

    torch.set_num_threads(1)
    ref = FusedEngine([CellSpec.of(cell_settings(PARAMS), Cell(0.1, 0.9, 64, 0)).with_training(precision="float64")])
    ref.net.gradient(ref.a, ref.b, ref.y, ref.neg_onehot)
    rows = []
    for prec in ("float32", "float64", "bfloat16"):
        paths = (["C tail"] if prec == "float32" and ctail.library() is not None else []) + ["torch tail", "compiled"]
        engines, first, error = {}, {}, {}
        for name in paths:
            e = FusedEngine([CellSpec.of(cell_settings(PARAMS), Cell(0.1, 0.9, 64, 0)).with_training(precision=prec)])
            e.net.compiled = name == "compiled"
            e.net.tail = "c" if name == "C tail" else "torch"
            e.net.flat.copy_(ref.net.flat.to(e.net.flat.dtype))  # the float64 cell's parameters
            t0 = time.perf_counter()
            e.net.gradient(e.a, e.b, e.y, e.neg_onehot)  # the compiled graph is built (or loaded) here
            first[name] = time.perf_counter() - t0
            error[name] = float((e.net.grad.double() - ref.net.grad).abs().max() / ref.net.grad.abs().max())
            for k in range(1, 6):
                e.step(k, 1.0, False)
            engines[name] = e
        default = FusedEngine([CellSpec.of(cell_settings(PARAMS), Cell(0.1, 0.9, 64, 0)).with_training(precision=prec)])
        used = {"fused/compiled": "compiled", "fused/c_tail": "C tail", "fused/torch_tail": "torch tail"}[default.kernel]
        ms = _interleaved({k: (lambda e=e: e.step(1, 1.0, False)) for k, e in engines.items()}, 7, steps)
        for name in paths:
            rows.append({"precision": prec, "path": name, "ms_per_step": ms[name], "first_call_s": first[name],
                         "gradient_error_vs_float64": error[name], "used": name == used})
    return rows


def floor(steps: int) -> dict:
    """Issue 34's first target, bounded: the float32 fused step of S0's sub-grid cells (train
    fraction 0.9, widths 32 and 64) as cells train, against the same step's matrix products
    alone (one row tile after another, the shapes the step uses: logits, the second layer's
    weight gradient and the hidden gradient; the small table products left out), against this
    core's sgemm rate on 1024 x 1024 operands, interleaved in blocks (median). What the sub-grid's
    training (4 cells x 1,500 steps) would take on two perfectly parallel cores if a step were
    its products alone, at their measured rate and at the sgemm rate."""
    from grokmap.training.engines.fused import FusedEngine
    from grokmap.training.record import cell_settings
    from grokmap.training.spec import CellSpec

    torch.set_num_threads(1)
    n = 1024
    big = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    runs, flops, rows = {"sgemm 1024": lambda: torch.mm(big[0], big[1], out=big[2])}, {"sgemm 1024": 2 * n ** 3}, []
    for width in (32, 64):
        e = FusedEngine([CellSpec.of(cell_settings(PARAMS), Cell(0.1, 0.9, width, 0))])
        for k in range(1, 6):
            e.step(k, 1.0, False)
        m, tile, p = e.n_train, e.net.rows, e.net.p
        h, g, w2, b2 = torch.randn(tile, width), torch.randn(tile, p), torch.randn(p, width), torch.randn(p)
        out = torch.empty(tile, p), torch.empty(p, width), torch.empty(tile, width)
        tiles = [min(tile, m - r0) for r0 in range(0, m, tile)]

        def products(h=h, g=g, w2=w2, b2=b2, out=out, tiles=tiles):
            for t in tiles:
                torch.addmm(b2, h[:t], w2.t(), out=out[0][:t])
                torch.addmm(out[1], g[:t].t(), h[:t], out=out[1])
                torch.mm(g[:t], w2, out=out[2][:t])

        runs[f"step {width}"] = lambda e=e: e.step(1, 1.0, False)
        runs[f"products {width}"] = products
        flops[f"products {width}"] = 3 * 2 * m * width * p
        rows.append({"width": width, "n_train": m, "rows_per_tile": tile, "kernel": e.kernel})
    ms = _interleaved(runs, 7, steps)
    peak = flops["sgemm 1024"] / ms["sgemm 1024"] / 1e6
    for r in rows:
        w = r["width"]
        r.update(step_ms=ms[f"step {w}"], products_ms=ms[f"products {w}"],
                 products_share=ms[f"products {w}"] / ms[f"step {w}"],
                 products_gflops=flops[f"products {w}"] / ms[f"products {w}"] / 1e6,
                 products_ms_at_sgemm_peak=flops[f"products {w}"] / peak / 1e6)
    per_step = {k: sum(2 * r[k] for r in rows) for k in ("step_ms", "products_ms", "products_ms_at_sgemm_peak")}
    return {"rows": rows, "sgemm_gflops": peak,
            "subgrid_two_cores_s": {k: v * 1500 / 2 / 1e3 for k, v in per_step.items()}}


def compile_engines(steps: int) -> list[dict]:
    """Issue 19's third deliverable, measured: ms per step of the generic and stacked engines
    with their forward pass eager (as they train) and compiled by torch.compile (inductor; the
    backward follows through AOTAutograd), one thread, the variants interleaved."""
    from grokmap.training.engines import engine_for, load_engine
    from grokmap.training.record import cell_settings
    from grokmap.training.spec import CellSpec

    def stacked_forward(embed, b1, w1, b2, w2, b3, w3, xs, act, low: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            h = torch.gather(embed, 1, xs[..., :1]) + torch.gather(embed, 1, xs[..., 1:])
            h = act(torch.baddbmm(b1.unsqueeze(1), h, w1))
            h = act(torch.baddbmm(b2.unsqueeze(1), h, w2))
            return torch.baddbmm(b3.unsqueeze(1), h, w3).float()

    def compiled(engine):
        if hasattr(engine, "model"):  # generic: the model's forward
            engine.model.features = torch.compile(engine.model.features)
            return engine
        graph = torch.compile(stacked_forward, fullgraph=True)
        names = ("embed", "l1.bias", "l1.weight", "l2.bias", "l2.weight", "l3.bias", "l3.weight")

        def forward(xs):
            P = engine.opt.params
            return graph(*[P[engine.idx[k]] for k in names], xs, engine.act, engine.precision == "bfloat16")

        engine.forward = forward
        return engine

    torch.set_num_threads(1)
    rows = []
    for (label, params, grid, n), k_steps in zip(_engine_cases(), (steps, max(3, steps // 10), max(3, steps // 5))):
        for prec in ("float32", "bfloat16"):
            runs, first = {}, {}
            for mode in ("eager", "compiled"):
                specs = [CellSpec.of(cell_settings(params), c).with_training(precision=prec) for c in grid[:n]]
                engine = load_engine(engine_for(specs[0]))(specs)
                engine = compiled(engine) if mode == "compiled" else engine
                acc = engine_for(specs[0]).stacks  # S3 logs accuracy every step
                t0 = time.perf_counter()
                for k in range(1, 4):
                    engine.step(k, 1.0, acc)
                first[mode] = time.perf_counter() - t0

                def run(e=engine, acc=acc):
                    e.step(4, 1.0, acc)
                    if acc:
                        e.accuracy()

                runs[mode] = run
            ms = _interleaved(runs, 5, k_steps)
            rows.append({"case": label, "precision": prec, "eager_ms_per_step": ms["eager"],
                         "compiled_ms_per_step": ms["compiled"], "compiled_vs_eager": ms["eager"] / ms["compiled"],
                         "first_3_steps_s": first})
    return rows


def sweep(quick: bool) -> dict:
    sweep_over = {"seed": [42]}
    if quick:
        sweep_over.update(weight_decay=[0.0, 1.0], train_fraction=[0.3, 0.9])
    proj = _project_copy(sweep_over)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    wall, _ = _run([BIN / "snakemake", "--cores", "2", "--quiet", "all"], proj)
    peak_child_kb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    grid = grid_cells(json.loads((proj / "results" / "phases.json").read_text())["settings"]["sweep"])
    recs = [json.loads((proj / "results" / "cells" / c.relpath / "metrics.json").read_text()) for c in grid]
    train_s = sum(r["train_seconds"] for r in recs)
    outside = 1 - train_s / (wall * 2)
    # baseline: the same cells, serially, one process, default torch threads
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    base_runs = [baseline_train(PARAMS, c) for c in grid]
    base_wall = time.perf_counter() - t0
    torch.set_num_threads(1)
    same_epochs = sum(b["epochs_run"] == r["epochs_run"] for b, r in zip(base_runs, recs))
    ph = PARAMS["phases"]

    def phase(curves: dict) -> str:
        return classify_curves(curves, ph["accuracy_threshold"], ph["grokking_gap_epochs"])["phase"]

    base_phases = [phase(dict(zip(("epoch", "train_acc", "test_acc"), map(list, zip(*b["curves"])))))
                   for b in base_runs]
    proj_phases = [phase(r["curves"]) for r in recs]
    differing = [{"cell": c.relpath, "baseline": bp, "project": pp}
                 for c, bp, pp in zip(grid, base_phases, proj_phases) if bp != pp]
    noop_s, _ = _run([BIN / "snakemake", "--cores", "2"], proj)
    _run(["git", "init", "-q"], proj)
    _run([BIN / "dvc", "init", "-q"], proj)
    _run([BIN / "dvc", "repro", "-q"], proj)  # records the finished sweep (Snakemake: nothing to do)
    noop_dvc_s, out = _run([BIN / "dvc", "repro"], proj)
    shutil.rmtree(proj, ignore_errors=True)
    return {"cells": len(grid), "snakemake_wall_s": wall, "baseline_serial_wall_s": base_wall,
            "sweep_speedup": base_wall / wall, "outside_training_fraction": outside,
            "training_seconds_sum": train_s, "same_epochs_run_as_baseline": f"{same_epochs}/{len(grid)}",
            "same_phase_as_baseline": f"{len(grid) - len(differing)}/{len(grid)}",
            "phases_differing_from_baseline": differing,
            "noop_snakemake_s_60": noop_s, "noop_dvc_repro_s_60": noop_dvc_s,
            "peak_rss_mb_per_job": max(r.get("peak_rss_mb", 0) for r in recs),
            "peak_rss_mb_largest_process": peak_child_kb / 1024}


def dryrun_6000() -> dict:
    proj = _project_copy({"seed": list(range(100))})
    t, out = _run([BIN / "snakemake", "-n", "--quiet", "rules"], proj)
    jobs = [line.split() for line in out.stdout.splitlines() if line.startswith("train_cell")]
    shutil.rmtree(proj, ignore_errors=True)
    return {"dryrun_snakemake_s_6000": t, "dryrun_train_jobs": int(jobs[0][1]) if jobs else None}


def scaling(epochs: int, sizes=(1, 5, 10)) -> dict:
    rows = []
    for n_seeds in sizes:
        proj = _project_copy({"seed": list(range(n_seeds))}, max_epochs=epochs,
                             eval_every_epochs=min(100, epochs))
        wall, _ = _run([BIN / "snakemake", "--cores", "2", "--quiet", "all", "--", "cells"], proj)
        rows.append({"cells": 60 * n_seeds, "wall_s": wall, "s_per_cell": wall / (60 * n_seeds)})
        shutil.rmtree(proj, ignore_errors=True)
    return {"epochs": epochs, "rows": rows}


def _table(rows: list[dict], columns: list[tuple]) -> None:
    """Print rows as a right-aligned table: columns are (header, key, width, format)."""
    print(" ".join(f"{h:>{w}}" for h, _, w, _ in columns))
    for r in rows:
        print(" ".join(f"{format(r[k], f) if f else str(r[k]):>{w}}" for _, k, w, f in columns))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="reduced budgets (minutes, not half an hour)")
    ap.add_argument("--only", default="per_cell,precision,tail,kernels,compile,hardware,sweep,dryrun,scaling")
    ap.add_argument("--scaling-seeds", default="1,5,10",
                    help="seed-axis lengths for the scaling runs (x 60 cells)")
    ap.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "summary.json"))
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    raw, summary = {}, {}
    if "per_cell" in only:
        raw["per_cell"] = per_cell(100 if args.quick else 500)
        summary["per_cell_speedup"] = raw["per_cell"]["per_cell_speedup"]
        print(f"{'width':>5} {'frac':>5} {'baseline ep/s':>14} {'project ep/s':>13} {'speedup':>8}")
        for r in raw["per_cell"]["rows"]:
            print(f"{r['width']:>5} {r['train_fraction']:>5} {r['baseline_epochs_per_s']:>14.1f} "
                  f"{r['project_epochs_per_s']:>13.1f} {r['speedup']:>8.2f}")
    if "precision" in only:
        raw["precision"] = precision(50 if args.quick else 300)
        print(f"{'precision':>9} {'step':>8} {'ms/step':>8} {'matmul share':>13} {'default':>8}")
        for r in raw["precision"]["rows"]:
            print(f"{r['precision']:>9} {r['step']:>8} {r['ms_per_step']:>8.2f} {r['matmul_share']:>13.2f} "
                  f"{str(r['used_by_default']):>8}")
        for r in raw["precision"]["threads"]:
            print(f"two threads, {r['precision']}: {r['two_threads_throughput_vs_one']:.2f}x the throughput of one")
        for r in raw["precision"]["engines"]:
            print(f"{r['case']:>28} {r['precision']:>9} {r['ms_per_step']:>8.2f} ms/step")
    if "tail" in only:
        raw["tail"] = t = tail(30 if args.quick else 100)
        print(f"fused step, float32, {t['rows_per_tile']} rows per tile: " + ", ".join(
            f"{k} {v:.2f} ms" for k, v in t["step_ms"].items()))
        if "tail_us_per_tile" in t:
            print(f"softmax minus one-hot over a {t['tile_shape'][0]} x {t['tile_shape'][1]} tile: " + ", ".join(
                f"{k} {v:.1f} us ({t['tail_ms_per_step'][k]:.2f} ms per step)" for k, v in t["tail_us_per_tile"].items())
                + "; largest error against float64: " + ", ".join(
                    f"{k} {v:.1e}" for k, v in t["max_abs_error_vs_float64"].items()))
        else:
            print(t["kernel"])
    if "kernels" in only:
        raw["kernels"] = kernels(30 if args.quick else 100)
        _table(raw["kernels"], [("precision", "precision", 9, ""), ("path", "path", 11, ""),
                                ("ms/step", "ms_per_step", 8, ".2f"), ("first call s", "first_call_s", 12, ".2f"),
                                ("grad error", "gradient_error_vs_float64", 11, ".1e"), ("used", "used", 5, "")])
    if "floor" in only:
        raw["floor"] = f = floor(10 if args.quick else 40)
        _table(f["rows"], [("width", "width", 5, ""), ("step ms", "step_ms", 8, ".2f"),
                           ("products ms", "products_ms", 11, ".2f"), ("share", "products_share", 6, ".2f"),
                           ("products GFLOP/s", "products_gflops", 16, ".1f"),
                           ("at sgemm rate ms", "products_ms_at_sgemm_peak", 16, ".2f")])
        s = f["subgrid_two_cores_s"]
        print(f"sgemm 1024 x 1024, one thread: {f['sgemm_gflops']:.1f} GFLOP/s")
        print(f"S0's sub-grid (4 cells x 1,500 steps) on two perfectly parallel cores: steps {s['step_ms']:.1f} s, "
              f"their products alone {s['products_ms']:.1f} s, the products at the sgemm rate "
              f"{s['products_ms_at_sgemm_peak']:.1f} s")
    if "compile" in only:
        raw["compile"] = compile_engines(20 if args.quick else 100)
        _table(raw["compile"], [("case", "case", 28, ""), ("precision", "precision", 9, ""),
                                ("eager", "eager_ms_per_step", 8, ".2f"), ("compiled", "compiled_ms_per_step", 9, ".2f"),
                                ("ratio", "compiled_vs_eager", 6, ".2f")])
    if "hardware" in only:
        raw["hardware"] = hardware(100 if args.quick else 300)
        summary["sgemm_efficiency"] = raw["hardware"]["sgemm_efficiency"]
    if "sweep" in only:
        raw["sweep"] = sweep(args.quick)
        for k in ("sweep_speedup", "outside_training_fraction", "noop_snakemake_s_60",
                  "noop_dvc_repro_s_60", "peak_rss_mb_per_job"):
            summary[k] = raw["sweep"][k]
    if "dryrun" in only:
        raw["dryrun"] = dryrun_6000()
        summary["dryrun_snakemake_s_6000"] = raw["dryrun"]["dryrun_snakemake_s_6000"]
    if "scaling" in only:
        seeds = (1, 2) if args.quick else tuple(int(x) for x in args.scaling_seeds.split(","))
        raw["scaling"] = scaling(20 if args.quick else 100, seeds)
    out = {**summary, "raw": raw, "quick": args.quick, "torch": torch.__version__, "cpus": os.cpu_count()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print()
    print(f"{'figure':<28} {'value':>10}   target")
    targets = {"per_cell_speedup": ">= 3", "sweep_speedup": ">= 5", "outside_training_fraction": "<= 0.10",
               "noop_snakemake_s_60": "<= 5 s", "noop_dvc_repro_s_60": "<= 5 s",
               "dryrun_snakemake_s_6000": "<= 30 s", "sgemm_efficiency": "-", "peak_rss_mb_per_job": "-"}
    for k, v in summary.items():
        print(f"{k:<28} {v:>10.3f}   {targets.get(k, '')}")
    for section in ("sweep", "scaling", "hardware", "dryrun"):
        if section in raw:
            print(f"{section}: " + json.dumps({k: v for k, v in raw[section].items() if k != 'rows'}))
            for r in raw[section].get("rows", []):
                print("   ", json.dumps(r))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
