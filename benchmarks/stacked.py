#!/usr/bin/env python
"""Stacked vs one-at-a-time training of S3's toy grid (a benchmark, not a test).

    .venv/bin/python benchmarks/stacked.py                     # 21 x 21 grid, 200 steps
    .venv/bin/python benchmarks/stacked.py --steps 1000 --stack 64 --stack 441

Both paths train the same cells (studies/s3_toy_classification.yaml's decoder lr
logspace(1e-5, 1e-2, 21) x weight decay linspace(0, 20, 21), one data and one model seed)
for the same number of full-batch steps with accuracy logged every step, as S3 does, on one
thread, without early stopping. The one-at-a-time path (grokmap.toy.train_single: nn.Module,
autograd, torch.optim.AdamW) is timed on a sample of cells and scaled to the grid; the stacked
path (grokmap.toy.train_stacked) trains the whole grid in stacks of --stack cells.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from grokmap.toy import S3Config, train_single, train_stacked, with_budget  # noqa: E402


def grid(n: int, steps: int, loss: str) -> list[S3Config]:
    base = with_budget(S3Config(task="toy_addition", decoder_lr=1e-3, weight_decay=0.0, encoder_lr=1e-3,
                                encoder_wd=0.0, data_seed=42, model_seed=101, steps=steps, eval_steps=(steps,),
                                loss=loss), steps, max(1, steps // 10))
    return [replace(base, decoder_lr=float(lr), weight_decay=float(wd))
            for lr in np.logspace(-5, -2, n) for wd in np.linspace(0, 20, n)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=21)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--sample", type=int, default=10, help="cells timed one at a time")
    ap.add_argument("--stack", type=int, action="append", help="cells per stack (repeatable; default: the grid)")
    ap.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "mse"])
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    configs = grid(args.grid, args.steps, args.loss)
    n = len(configs)
    train_single(with_budget(configs[0], 5, 5))  # warm-up: first use of torch.optim imports torch._dynamo
    start = time.perf_counter()
    for cfg in configs[:: max(1, n // args.sample)][: args.sample]:
        train_single(cfg)
    single = (time.perf_counter() - start) / args.sample
    print(f"{n} cells x {args.steps} steps ({args.loss}, accuracy every step, 1 thread)")
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


if __name__ == "__main__":
    raise SystemExit(main())
