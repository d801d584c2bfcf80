#!/usr/bin/env python
"""Stacked vs one-at-a-time training of S3's toy grid (a benchmark, not a test).

    .venv/bin/python benchmarks/stacked.py                # 21 x 21 grid, 200 steps, accuracy every step
    .venv/bin/python benchmarks/stacked.py --steps 1000 --grid 11

Both paths train the same cells (decoder lr logspace(1e-5, 1e-2) x weight decay linspace(0, 20),
one data and model seed) for the same number of full-batch steps, evaluating every step as S3
does, on one thread. The one-at-a-time path is timed on a sample of cells and scaled to the grid.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from grokmap.toy import ToyConfig, train_toy, train_toy_stacked  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=21)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--sample", type=int, default=10, help="cells timed one at a time")
    ap.add_argument("--loss", default="cross_entropy", choices=["cross_entropy", "mse"])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    configs = [ToyConfig(float(lr), float(wd), 0, 0, steps=args.steps, eval_every=1, loss=args.loss)
               for lr in np.logspace(-5, -2, args.grid) for wd in np.linspace(0, 20, args.grid)]
    train_toy(configs[0])  # warm-up: first use of torch.optim imports torch._dynamo
    start = time.perf_counter()
    for cfg in configs[:: max(1, len(configs) // args.sample)][: args.sample]:
        train_toy(cfg)
    single = (time.perf_counter() - start) / args.sample
    start = time.perf_counter()
    train_toy_stacked(configs)
    stacked = time.perf_counter() - start
    n = len(configs)
    print(f"{n} cells x {args.steps} steps ({args.loss}, accuracy every step, 1 thread)")
    print(f"one at a time: {single * 1e3:.1f} ms per cell -> {single * n:.1f} s for the grid "
          f"({single / args.steps * 1e6:.0f} us per cell-step)")
    print(f"stacked:       {stacked:.1f} s for the grid ({stacked / n / args.steps * 1e6:.0f} us per cell-step)")
    print(f"speed-up:      {single * n / stacked:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
