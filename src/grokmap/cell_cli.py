"""Entry point of the ``train_cell`` rule (scripts/train_cell.py): train one cell.

Kept apart from the aggregation entry points in :mod:`grokmap.cli` because its source is
part of the training fingerprint: editing it retrains cells, editing those does not.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("grokmap")


def train_cell_main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Train one sweep cell and write its metrics.json atomically.")
    for short in ("wd", "frac", "width", "seed"):
        p.add_argument(f"--{short}", required=True, help="value as spelled in the cell path")
    p.add_argument("--settings", required=True, help="JSON of params.yaml task/model/training")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--fingerprint-out", required=True,
                   help="fingerprint-<first 16 hex>.json beside --out; written last")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        _train(args)
    except Exception as exc:  # one line for the user; the rule's log keeps it
        log.error("%s: %s", type(exc).__name__, exc)
        if args.log_level.upper() == "DEBUG":
            raise
        return 1
    return 0


def _train(args) -> None:
    import torch

    from .cells import run_cell
    from .fingerprint import (dumps_with_fingerprint, fingerprint, fingerprint_filename,
                              training_code_files)
    from .grid import cell_from_wildcards
    from .io import atomic_write_json, atomic_write_text

    torch.set_num_threads(args.threads)
    given = {k: getattr(args, k) for k in ("wd", "frac", "width", "seed")}
    cell = cell_from_wildcards(given)
    for short, text in cell.wildcards.items():
        if given[short] != text:
            raise ValueError(f"{short}={given[short]} is not the canonical spelling {text!r}")
    settings = json.loads(args.settings)
    fp, fp_doc = fingerprint(settings, training_code_files())
    fp_path = Path(args.fingerprint_out)
    if fp_path.name != fingerprint_filename(fp):
        raise ValueError(f"{fp_path.name} does not match this job's fingerprint {fp[:16]}: the "
                         f"workflow and this job see different settings or code")
    log.info("training %s (fingerprint %s)", cell.relpath, fp[:12])
    tr = settings["training"]
    every = max(1, tr["max_epochs"] // 10)

    def progress(epoch, m):
        if epoch % every < tr["eval_every_epochs"]:
            log.info("epoch %d train_acc %.3f test_acc %.3f", epoch, m["train_acc"], m["test_acc"])

    record = run_cell(settings, cell, fp, progress)
    atomic_write_text(args.out, dumps_with_fingerprint(fp, record))
    # Written last: a cell counts as done under this fingerprint only once both exist.
    atomic_write_json(fp_path, {"fingerprint": fp, **fp_doc})
    for old in fp_path.parent.glob("fingerprint-*.json"):
        if old != fp_path:
            old.unlink(missing_ok=True)
    log.info("done in %.1f s (%d epochs)", record["wall_seconds"], record["epochs_run"])
