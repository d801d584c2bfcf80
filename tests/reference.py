"""Textbook training loops the engines are checked against (tests only).

* :func:`train_reference`: S0's full-batch AdamW loop (nn.Module, autograd, a separate no-grad
  evaluation), for S0's kind of cell (the fused engine).
* :func:`train_single`: one S3 cell with nn.Module + autograd + torch.optim.AdamW in two groups
  (the stacked engine).
Both keep their own curves with the same schedule and rules as the loop they check.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from grokmap.training.curves import CellLog, EarlyStop
from grokmap.training.data import batch_sampler, class_targets, split
from grokmap.training.losses import stacked_correct, stacked_loss
from grokmap.training.models import build_model
from grokmap.training.optimizers import scale_lr
from grokmap.training.schedule import eval_schedule, lr_factor
from grokmap.training.spec import CellSpec


def _metrics(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    return F.cross_entropy(logits, y).item(), (logits.argmax(dim=1) == y).sum().item() / y.numel()


def train_reference(params: dict, cell) -> dict:
    """The textbook full-batch AdamW loop of S0; same schedule."""
    spec = CellSpec.of(params, cell)
    tk, tr = spec.task, spec.training
    (x, y), (tx, ty) = split(tk.name, tk.modulus, cell.train_fraction, cell.seed, tk.operands)
    model = build_model(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=tr.learning_rate, betas=tuple(tr.betas),
                            eps=tr.eps, weight_decay=cell.weight_decay, foreach=False)
    evals = set(eval_schedule(tr.max_epochs, tr.eval_every_epochs))
    stopper = EarlyStop(tr.early_stop_accuracy, tr.early_stop_evals, tr.early_stop_rule)
    curves = {k: [] for k in ("epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc")}
    for epoch in range(1, tr.max_epochs + 1):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if tr.lr_decay is not None:
            scale_lr(opt, [tr.learning_rate], lr_factor(epoch, 1, tr.lr_decay))
        opt.step()
        if epoch in evals:
            with torch.no_grad():
                values = (epoch, epoch, *_metrics(model(x), y), *_metrics(model(tx), ty))
            for k, v in zip(curves, values):
                curves[k].append(v)
            if stopper.update(curves["train_acc"][-1], curves["test_acc"][-1]):
                break
    return {"curves": curves, "epochs_run": epoch}


def train_single(spec: CellSpec) -> dict:
    """One S3 cell: nn.Module + autograd + torch.optim.AdamW (encoder and decoder groups)."""
    started = time.perf_counter()
    tk, tr = spec.task, spec.training
    (x, y), (tx, ty) = split(tk.name, tk.modulus, spec.cell.train_fraction, spec.data_seed, tk.operands)
    targets = class_targets(tk.name, tk.modulus, tk.target_dim, spec.data_seed) if tr.loss == "mse" else None
    model = build_model(spec)
    enc = set(model.encoder_names())
    named = dict(model.named_parameters())
    opt = torch.optim.AdamW(
        [{"params": [p for n, p in named.items() if n in enc], "lr": spec.encoder_learning_rate,
          "weight_decay": spec.encoder_weight_decay},
         {"params": [p for n, p in named.items() if n not in enc], "lr": tr.learning_rate,
          "weight_decay": spec.weight_decay}], betas=tr.betas, eps=tr.eps, foreach=False)
    bases = [g["lr"] for g in opt.param_groups]
    cell = CellLog(spec, len(y), len(ty))
    sample = (None if tr.full_batch else
              batch_sampler(len(y), tr.batch_size, tr.batch_sampling, torch.Generator().manual_seed(spec.cell.seed)))

    def loss(out, yy):
        return stacked_loss(out, yy, tr.loss, targets)

    def correct(out, yy):
        return int(stacked_correct(out, yy, tr.loss, targets))

    acc_every = tr.accuracy_every_steps
    for step in range(1, spec.total_steps + 1):
        opt.zero_grad(set_to_none=True)
        if sample is None:
            bx, by = x, y
        else:
            idx = sample()
            bx, by = x[idx], y[idx]
        bout = model(bx)
        loss(bout, by).backward()
        if tr.lr_decay is not None:
            scale_lr(opt, bases, lr_factor(step, spec.steps_per_epoch, tr.lr_decay))
        log_acc = acc_every is not None and step % acc_every == 0
        if log_acc and sample is None:  # full batch: this step's own forward pass, before the update
            train_correct = correct(bout.detach(), y)
        opt.step()
        with torch.no_grad():
            if log_acc:
                if sample is not None:
                    train_correct = correct(model(x), y)
                cell.log_accuracy(step, train_correct, correct(model(tx), ty))
            if cell.wants_eval(step):
                out, tout = model(x), model(tx)
                norm = float(torch.sqrt(sum(p.pow(2).sum() for p in model.parameters())))
                cell.evaluate(step, (float(loss(out, y)), correct(out, y)), (float(loss(tout, ty)), correct(tout, ty)),
                              {"param_norm": norm})
        if cell.done:
            break
    return cell.result(time.perf_counter() - started, sum(p.numel() for p in model.parameters()),
                       {"stacked_cells": 1})
