"""The generic engine: any model, optimizer, loss and batching, as nn.Module + autograd +
torch.optim. Minibatches (``training.batch_size``), dropout and embedding noise draw from the
cell's own generator, seeded with the cell's seed (never torch's process-wide one: cells train
in parallel threads of one process). Evaluations run the whole train and test sets in row
chunks and measure the parameter norm, S1's sparsity (:func:`grokmap.training.models.subnetwork_fraction`),
S4's IPR (:func:`grokmap.training.models.ipr`) and softmax collapse
(:func:`grokmap.training.losses.collapse_count`). The loss is taken in
``training.softmax_precision`` when it is set.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..data import batch_sampler, split
from ..losses import collapse_count, loss
from ..models import Perturb, build_model, ipr, subnetwork_fraction
from ..optimizers import scale_lr, torch_optimizer
from ..precision import autocast, full

__all__ = ["GenericEngine"]

_EVAL_ROWS = 16_384


@torch.no_grad()
def _evaluate(model, x: torch.Tensor, y: torch.Tensor, kind: str, precision: str,
              loss_dtype: str | None, collapse: bool = False) -> tuple[float, int, torch.Tensor, int | None]:
    """(loss, correct count, last hidden layer (n, m), and with ``collapse`` the examples whose
    loss is exactly 0, else or without a softmax None) of the model on (x, y), in row chunks."""
    loss_sum, correct, hidden, zero = 0.0, 0, [], 0 if collapse else None
    for r0 in range(0, y.numel(), _EVAL_ROWS):
        with autocast(precision):
            logits, h = model.features(x[r0:r0 + _EVAL_ROWS])
        logits = full(logits)
        yt = y[r0:r0 + _EVAL_ROWS]
        loss_sum += loss(logits, yt, kind, "sum", loss_dtype).item()
        correct += (logits.argmax(dim=1) == yt).sum().item()
        hidden.append(h)
        if zero is not None:
            count = collapse_count(logits, yt, kind, loss_dtype)
            zero = None if count is None else zero + count
    return loss_sum / y.numel(), correct, torch.cat(hidden), zero


class GenericEngine:
    """One cell of any model but S3's."""

    def __init__(self, specs: Sequence, device: torch.device | None = None):
        (spec,) = specs
        tk, md, tr = spec.task, spec.model, spec.training
        self.device = device = device or torch.device("cpu")
        (x, y), (tx, ty) = split(tk.name, tk.modulus, spec.cell.train_fraction, spec.data_seed, tk.operands)
        self.x, self.y, self.tx, self.ty = (t.to(device) for t in (x, y, tx, ty))
        self.n_train, self.n_test = int(self.y.numel()), int(self.ty.numel())
        self.model = build_model(spec).to(device)
        self.precision = tr.precision
        self.n_parameters = sum(q.numel() for q in self.model.parameters())
        self.kernel = "generic/torch" + ("" if device.type == "cpu" else f"/{device.type}")  # autograd, torch.optim
        self.opt = torch_optimizer(tr, self.model.parameters(), spec.weight_decay)
        self.bases = [g["lr"] for g in self.opt.param_groups]
        self.loss, self.decay, self.loss_dtype = tr.loss, tr.lr_decay, tr.softmax_precision
        generator = torch.Generator().manual_seed(spec.cell.seed)  # batches, dropout, noise: this cell's own
        self.generator = generator
        self.perturb = Perturb(md.dropout, tr.embedding_noise, generator)
        self.sample = None if tr.full_batch else batch_sampler(self.n_train, tr.batch_size, tr.batch_sampling,
                                                               generator)

    def step(self, step: int, lr_factor: float, pre_accuracy: bool) -> None:
        if self.sample is None:
            xb, yb = self.x, self.y
        else:
            idx = self.sample().to(self.device)  # drawn on the cell's CPU generator
            xb, yb = self.x[idx], self.y[idx]
        self.opt.zero_grad(set_to_none=True)
        with autocast(self.precision):
            logits = self.model.features(xb, self.perturb)[0]
        loss(full(logits), yb, self.loss, dtype=self.loss_dtype).backward()
        if self.decay is not None:
            scale_lr(self.opt, self.bases, lr_factor)
        self.opt.step()

    def evaluate(self, rows: list[int]) -> list[tuple]:
        train_loss, train_correct, h_train, zero = _evaluate(self.model, self.x, self.y, self.loss, self.precision,
                                                             self.loss_dtype, collapse=True)
        test_loss, test_correct, _, _ = _evaluate(self.model, self.tx, self.ty, self.loss, self.precision,
                                                  self.loss_dtype)
        readout = self.model.readout()
        with torch.no_grad():
            measures = {
                "param_norm": float(torch.sqrt(sum((q.detach() ** 2).sum() for q in self.model.parameters()))),
                "subnetwork_fraction": None if readout is None else subnetwork_fraction(h_train, *readout),
                "ipr": ipr(self.model.operand_maps()),
                "softmax_collapse": None if zero is None else zero / self.n_train,
            }
        return [((train_loss, train_correct), (test_loss, test_correct), measures)]

    def state(self) -> dict:
        """Parameters, the optimizer's state and the cell's generator (its next minibatch, dropout
        mask and noise). Taken at an epoch's end, where an ``epoch_shuffle`` sampler holds no
        batches of the epoch before (the loop saves states at the budget only)."""
        return {"model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "optimizer": self.opt.state_dict(), "generator": self.generator.get_state()}

    def load_state(self, state: dict) -> None:
        """Continue from :meth:`state`: the steps that follow are those of one uninterrupted run."""
        own = self.model.state_dict()
        saved = state["model"]
        if set(saved) != set(own) or any(saved[k].shape != own[k].shape or saved[k].dtype != own[k].dtype
                                         for k in own):
            raise ValueError("saved model state does not fit this cell's model")
        self.model.load_state_dict(saved)
        self.opt.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])

    def accuracy(self):
        raise NotImplementedError("the generic engine keeps no accuracy log (settings allow it for s3_mlp only)")

    def keep(self, rows: list[int]) -> None:
        raise NotImplementedError("the generic engine trains one cell")
