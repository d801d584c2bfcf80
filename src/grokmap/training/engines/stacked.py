"""The stacked engine: S3's model (``s3_mlp``), C cells trained as one computation.

Every parameter carries a leading cell dimension (weights stored transposed, (C, in, out), so
every matmul reads them contiguously); layers are batched matmuls; the optimizer
(:class:`grokmap.training.optimizers.StackedAdamW`) applies torch's fused AdamW kernel to each
cell's slices with that cell's learning rate and weight decay, in two groups: the encoder
(toy_addition: the embeddings; digits: the first two layers) at ``training.encoder_learning_rate``
/ ``encoder_weight_decay``, the decoder at the cell's learning rate and weight decay. Cells do
not interact (the summed loss gives each cell its own gradient). Cells may differ in what
:data:`grokmap.training.engines.ENGINES` declares for this engine.

With full-batch training the forward pass after step t is step t+1's gradient pass and step
t's train evaluation, so each step costs one forward and one backward.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..data import batch_sampler, class_targets, split
from ..losses import stacked_correct, stacked_loss
from ..models import build_model
from ..optimizers import StackedAdamW
from ..precision import autocast, full, precision_dtypes

__all__ = ["StackedEngine"]


def _layout(name: str, t: torch.Tensor) -> torch.Tensor:
    return t.t() if name.endswith("weight") else t


class StackedEngine:
    def __init__(self, specs: Sequence, device: torch.device | None = None):
        s0 = specs[0]
        self.device = device = device or torch.device("cpu")
        tk, md, tr = s0.task, s0.model, s0.training
        dtype, _ = precision_dtypes(tr.precision)
        self.precision = tr.precision
        models = [build_model(s) for s in specs]
        names = [n for n, _ in models[0].named_parameters()]
        self.n_parameters = sum(p.numel() for p in models[0].parameters())
        self.kernel = "stacked/torch" + ("" if device.type == "cpu" else f"/{device.type}")  # batched products, fused AdamW
        enc = set(models[0].encoder_names())
        self.act = models[0].act
        params = [torch.stack([_layout(n, dict(m.named_parameters())[n].detach()) for m in models])
                  .contiguous().to(device).requires_grad_() for n in names]
        del models
        groups = [[k for k, n in enumerate(names) if n in enc], [k for k, n in enumerate(names) if n not in enc]]
        self.opt = StackedAdamW(params, groups, [[(s.encoder_learning_rate, s.encoder_weight_decay),
                                                  (s.training.learning_rate, s.weight_decay)] for s in specs],
                                tr.betas, tr.eps)
        splits = [split(tk.name, tk.modulus, s.cell.train_fraction, s.data_seed, tk.operands) for s in specs]
        x, tx = (torch.stack([s[k][0] for s in splits]) for k in (0, 1))
        cast = (lambda t: t.to(device)) if dtype is None else \
            (lambda t: (t.to(dtype) if t.is_floating_point() else t).to(device))
        self.data = {"x": cast(x), "y": torch.stack([s[0][1] for s in splits]).to(device),
                     "tx": cast(tx), "ty": torch.stack([s[1][1] for s in splits]).to(device)}
        self.data["targets"] = (cast(torch.stack([class_targets(tk.name, tk.modulus, tk.target_dim, s.data_seed)
                                                  for s in specs]))
                                if tr.loss == "mse" else None)  # (C, classes, out)
        self.n_train, self.n_test = self.data["y"].shape[1], self.data["ty"].shape[1]
        self.samplers = (None if tr.full_batch else
                         [batch_sampler(self.n_train, tr.batch_size, tr.batch_sampling,
                                        torch.Generator().manual_seed(s.cell.seed)) for s in specs])
        self.rows = list(range(len(specs)))  # the sampler of each row
        self.loss, self.toy, self.total = tr.loss, tk.name == "toy_addition", s0.total_steps
        self.idx = {n: k for k, n in enumerate(names)}
        self.out = None  # the forward pass on the train set at the current parameters (full batch: with grad)
        self.tout = None  # the same on the test set
        self.step_no = 0

    def forward(self, xs: torch.Tensor) -> torch.Tensor:  # (C, n, 2 | 64) -> (C, n, out)
        with autocast(self.precision):
            return full(self._forward(xs))

    def _forward(self, xs: torch.Tensor) -> torch.Tensor:
        P, idx = self.opt.params, self.idx
        if self.toy:
            e = P[idx["embed"]]  # (C, p, 1)
            h = torch.gather(e, 1, xs[..., :1]) + torch.gather(e, 1, xs[..., 1:])
        else:
            h = xs
        for layer in ("l1", "l2"):
            h = self.act(torch.baddbmm(P[idx[f"{layer}.bias"]].unsqueeze(1), h, P[idx[f"{layer}.weight"]]))
        return torch.baddbmm(P[idx["l3.bias"]].unsqueeze(1), h, P[idx["l3.weight"]])

    def _batch(self):
        d = self.data
        idx = torch.stack([self.samplers[r]() for r in self.rows]).to(self.device)  # (C, B), drawn on the CPU
        bx = torch.gather(d["x"], 1, idx.unsqueeze(-1).expand(-1, -1, d["x"].shape[-1]))
        return bx, torch.gather(d["y"], 1, idx)

    def step(self, step: int, lr_factor: float, pre_accuracy: bool):
        d, pre = self.data, None
        for p in self.opt.params:
            p.grad = None
        if self.samplers is None:
            if self.out is None:
                self.out = self.forward(d["x"])
            stacked_loss(self.out, d["y"], self.loss, d["targets"]).sum().backward()
            if pre_accuracy:  # this step's own forward pass, before the update (S3)
                pre = stacked_correct(self.out.detach(), d["y"], self.loss, d["targets"]).tolist()
        else:
            bx, by = self._batch()
            stacked_loss(self.forward(bx), by, self.loss, d["targets"]).sum().backward()
        self.opt.scale = lr_factor
        self.opt.step()
        self.step_no, self.tout = step, None
        if self.samplers is None:  # the next step's gradient pass (and this step's train evaluation)
            with torch.set_grad_enabled(step < self.total):
                self.out = self.forward(d["x"])
        else:
            self.out = None
        return pre

    @torch.no_grad()
    def _outputs(self):
        if self.out is None:
            self.out = self.forward(self.data["x"])
        if self.tout is None:
            self.tout = self.forward(self.data["tx"])
        return self.out, self.tout

    @torch.no_grad()
    def accuracy(self) -> tuple[list[int], list[int]]:
        d = self.data
        out, tout = self._outputs()
        return (stacked_correct(out, d["y"], self.loss, d["targets"]).tolist(),
                stacked_correct(tout, d["ty"], self.loss, d["targets"]).tolist())

    @torch.no_grad()
    def evaluate(self, rows: list[int]) -> list[tuple]:
        d = self.data
        out, tout = self._outputs()
        tr_c, te_c = self.accuracy()
        tr_l = stacked_loss(out, d["y"], self.loss, d["targets"]).tolist()
        te_l = stacked_loss(tout, d["ty"], self.loss, d["targets"]).tolist()
        norms = torch.sqrt(sum(p.detach().pow(2).flatten(1).sum(1) for p in self.opt.params)).tolist()
        return [((tr_l[r], tr_c[r]), (te_l[r], te_c[r]), {"param_norm": norms[r]}) for r in rows]

    def keep(self, rows: list[int]) -> None:
        idx = torch.tensor(rows, device=self.device)
        self.opt.keep(idx, rows)
        self.rows = [self.rows[r] for r in rows]
        self.data = {k: (v[idx] if v is not None else None) for k, v in self.data.items()}
        self.out = self.tout = None  # the parameters are new leaves: recompute the forward
