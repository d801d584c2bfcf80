#!/usr/bin/env python
"""Stacked vs one-at-a-time training of S3's toy grid (a benchmark, not a test).

    .venv/bin/python benchmarks/stacked.py                     # 21 x 21 grid, 200 steps
    .venv/bin/python benchmarks/stacked.py --steps 1000 --stack 64 --stack 441 --every 2
    .venv/bin/python benchmarks/stacked.py --profile 60 --steps 500  # where one stack's step goes

Both paths train the same cells (the decoder learning rate x weight decay grid of
studies/s3_toy_classification.yaml, 21 x 21, for one data and one model seed)
for the same number of full-batch steps with accuracy logged every step, as S3 does, on one
thread, without early stopping. The one-at-a-time path (the tests' reference loop,
tests/reference.py train_single: nn.Module, autograd, torch.optim.AdamW) is timed on a sample
of cells and scaled to the grid; the stacked engine (grokmap.training.loop.train) trains the
whole grid in stacks of --stack cells.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # tests/reference.py

import torch  # noqa: E402

from grokmap.settings import load_settings  # noqa: E402
from grokmap.training.grid import cells  # noqa: E402
from grokmap.training.loop import train as train_stacked  # noqa: E402
from grokmap.training.record import cell_settings  # noqa: E402
from grokmap.training.spec import CellSpec  # noqa: E402
from tests.reference import train_single  # noqa: E402


def with_budget(spec: CellSpec, steps: int, eval_every: int) -> CellSpec:
    """The same full-batch cell trained ``steps`` steps, evaluated every ``eval_every``, never stopping early."""
    return spec.with_training(max_epochs=steps, max_steps=None, eval_every_epochs=eval_every,
                              early_stop_accuracy=2.0)


def grid(study: str, data_seed: int, model_seed: int, every: int, steps: int) -> list[CellSpec]:
    """The study's learning rate x weight decay cells for one data and model seed (every
    ``every``-th value of each), at ``steps`` steps without early stopping."""
    params = load_settings(ROOT / "studies" / f"{study}.yaml", ROOT / "config.yaml", ROOT / "workflow" / "schemas").params
    sweep = params["sweep"]
    lrs, wds = sweep["training.learning_rate"][::every], sweep["weight_decay"][::every]
    shared = cell_settings(params)
    return [with_budget(CellSpec.of(shared, c), steps, max(1, steps // 10))
            for c in cells(sweep) if c.seed == model_seed and dict(c.extra)["task.data_seed"] == data_seed
            and dict(c.extra)["training.learning_rate"] in lrs and c.weight_decay in wds]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="s3_toy_classification", choices=["s3_toy_classification", "s3_toy_regression"])
    ap.add_argument("--data-seed", type=int, default=42)
    ap.add_argument("--model-seed", type=int, default=101)
    ap.add_argument("--every", type=int, default=1, help="every n-th learning rate and weight decay of the study")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--sample", type=int, default=10, help="cells timed one at a time")
    ap.add_argument("--stack", type=int, action="append", help="cells per stack (repeatable; default: the grid)")
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--profile", type=int, metavar="C",
                    help="instead: profile one stack of the grid's first C cells for --steps steps (torch.profiler), "
                         "and print each kind of operation's share of the CPU time")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    configs = grid(args.study, args.data_seed, args.model_seed, args.every, args.steps)
    if args.profile:
        return profile(configs[:args.profile], args.steps)
    n = len(configs)
    train_single(with_budget(configs[0], 5, 5))  # warm-up: first use of torch.optim imports torch._dynamo
    start = time.perf_counter()
    for cfg in configs[:: max(1, n // args.sample)][: args.sample]:
        train_single(cfg)
    single = (time.perf_counter() - start) / args.sample
    print(f"{n} cells of {args.study} x {args.steps} steps (accuracy every step, 1 thread)")
    print(f"one at a time: {single * n:.1f} s for the grid ({single / args.steps * 1e6:.0f} us per cell-step)")
    out = {"cells": n, "steps": args.steps, "single_us_per_cell_step": single / args.steps * 1e6, "stacked": {}}
    for size in args.stack or [n]:
        start = time.perf_counter()
        for i in range(0, n, size):
            train_stacked(configs[i:i + size])
        stacked = time.perf_counter() - start
        us = stacked / n / args.steps * 1e6
        print(f"stacks of {size:4d}: {stacked:.1f} s for the grid ({us:.0f} us per cell-step) "
              f"-> speed-up {single * n / stacked:.1f}x")
        out["stacked"][size] = {"us_per_cell_step": us, "speedup": single * n / stacked}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def profile(specs: list[CellSpec], steps: int) -> int:
    """One stack's training step as S3 runs it (accuracy logged every step), by operation."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from grokmap.training.engines.stacked import StackedEngine

    engine = StackedEngine([with_budget(s, steps + 20, steps + 20) for s in specs])
    for s in range(1, 21):  # warm-up
        engine.step(s, 1.0, True)
        engine.accuracy()
    start = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for s in range(21, 21 + steps):
            engine.step(s, 1.0, True)
            engine.accuracy()
    wall = time.perf_counter() - start
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in rows)
    print(f"one stack of {len(specs)} cells x {steps} steps (profiled, 1 thread): "
          f"{wall / steps / len(specs) * 1e6:.0f} us per cell-step")
    products = sum(e.self_cpu_time_total for e in rows if e.key in ("aten::bmm", "aten::baddbmm"))
    print(f"batched products (bmm, baddbmm): {products / total:.1%} of the CPU time")
    for e in rows[:8]:
        print(f"  {e.key:32s} {e.self_cpu_time_total / total:6.1%}  {e.count // steps:3d} calls per step")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
