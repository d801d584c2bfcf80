"""S3's toy model (../shared/seeds/S3-re-towards-understanding-grokking.txt; issue 8), one cell
at a time and many cells stacked.

Data: the 55 pairs a <= b of 0..9, label a + b (19 classes); a data seed permutes them, the
first 45 train and the last 10 test. Regression targets are one N(0, 1) vector per label
(30-d), drawn from the data seed; a regression prediction is the nearest target vector.

Model: 1-d embeddings of the ten digits, U(-0.5, 0.5); the decoder reads E_a + E_b through
1 -> 200 -> 200 -> out with tanh (or relu / leaky_relu). AdamW trains the embeddings with a
fixed lr and no weight decay and the decoder with the cell's lr and weight decay.

:func:`train_toy` is the textbook loop (nn.Module, autograd, torch.optim.AdamW with two
parameter groups). :func:`train_toy_stacked` trains C cells that share the data shapes and the
step budget as one computation: every parameter carries a leading cell dimension, the forward
pass is batched matmuls, and one AdamW step updates all cells with per-cell learning rates and
weight decays (tensors of shape (C, 1, ...)). Cells do not interact: the summed loss gives each
cell its own gradient. The same config gives the same curves on both paths (float rounding aside).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import seeded

__all__ = ["ToyConfig", "toy_pairs", "toy_split", "regression_targets", "ToyModel", "train_toy",
           "train_toy_stacked", "stackable"]

N_DIGITS = 10
N_CLASSES = 2 * N_DIGITS - 1
_ACT = {"tanh": torch.tanh, "relu": torch.relu, "leaky_relu": F.leaky_relu}


@dataclass(frozen=True)
class ToyConfig:
    """One toy cell: what it trains with."""

    decoder_lr: float
    weight_decay: float
    data_seed: int
    model_seed: int
    steps: int
    eval_every: int = 1
    embedding_lr: float = 1e-3
    activation: str = "tanh"
    loss: str = "cross_entropy"  # or "mse" (regression on random target vectors)
    hidden: int = 200
    target_dim: int = 30
    n_train: int = 45
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8

    def shape_key(self) -> tuple:
        """What cells must share to train stacked: everything but lr, weight decay and seeds."""
        return (self.steps, self.eval_every, self.embedding_lr, self.activation, self.loss, self.hidden,
                self.target_dim, self.n_train, self.betas, self.eps)


def stackable(configs: Sequence[ToyConfig]) -> bool:
    return len({c.shape_key() for c in configs}) == 1


def toy_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """The 55 pairs (a, b), a <= b, a-major, and their sums."""
    x = torch.tensor([(a, b) for a in range(N_DIGITS) for b in range(a, N_DIGITS)])
    return x, x.sum(1)


def toy_split(data_seed: int, n_train: int = 45):
    x, y = toy_pairs()
    perm = torch.from_numpy(np.random.RandomState(data_seed).permutation(len(y)))
    tr, te = perm[:n_train], perm[n_train:]
    return (x[tr], y[tr]), (x[te], y[te])


def regression_targets(data_seed: int, dim: int = 30) -> torch.Tensor:
    """One N(0, 1) target vector per label (19, dim), from the data seed."""
    g = torch.Generator().manual_seed(10_000 + data_seed)
    return torch.randn(N_CLASSES, dim, generator=g)


class ToyModel(nn.Module):
    def __init__(self, out: int, hidden: int = 200, activation: str = "tanh"):
        super().__init__()
        self.embed = nn.Parameter(torch.rand(N_DIGITS, 1) - 0.5)  # U(-0.5, 0.5)
        self.l1, self.l2, self.l3 = nn.Linear(1, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, out)
        self.act = _ACT[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed[x[:, 0]] + self.embed[x[:, 1]]
        return self.l3(self.act(self.l2(self.act(self.l1(h)))))


def _build(cfg: ToyConfig) -> ToyModel:
    out = N_CLASSES if cfg.loss == "cross_entropy" else cfg.target_dim
    return seeded(cfg.model_seed, lambda: ToyModel(out, cfg.hidden, cfg.activation))


def _predict(out: torch.Tensor, cfg: ToyConfig, targets: torch.Tensor | None) -> torch.Tensor:
    """Class predictions (n,) from outputs (n, out): argmax, or the nearest target vector."""
    return out.argmax(-1) if cfg.loss == "cross_entropy" else torch.cdist(out, targets).argmin(-1)


def _loss(out: torch.Tensor, y: torch.Tensor, cfg: ToyConfig, targets) -> torch.Tensor:
    """Mean cross-entropy, or squared distance to the label's target vector averaged over examples."""
    if cfg.loss == "cross_entropy":
        return F.cross_entropy(out, y)
    return (out - targets[y]).pow(2).sum(-1).mean()


def _empty_curves() -> dict:
    return {"step": [], "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}


def train_toy(cfg: ToyConfig) -> dict:
    """The reference: one cell, nn.Module + autograd + torch.optim.AdamW (two groups)."""
    (x, y), (tx, ty) = toy_split(cfg.data_seed, cfg.n_train)
    targets = regression_targets(cfg.data_seed, cfg.target_dim) if cfg.loss == "mse" else None
    model = _build(cfg)
    decoder = [p for n, p in model.named_parameters() if n != "embed"]
    opt = torch.optim.AdamW([{"params": [model.embed], "lr": cfg.embedding_lr, "weight_decay": 0.0},
                             {"params": decoder, "lr": cfg.decoder_lr, "weight_decay": cfg.weight_decay}],
                            betas=cfg.betas, eps=cfg.eps, foreach=False)
    curves = _empty_curves()
    for step in range(1, cfg.steps + 1):
        opt.zero_grad(set_to_none=True)
        _loss(model(x), y, cfg, targets).backward()
        opt.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            with torch.no_grad():
                curves["step"].append(step)
                for split, (xs, ys) in (("train", (x, y)), ("test", (tx, ty))):
                    out = model(xs)
                    curves[f"{split}_loss"].append(float(_loss(out, ys, cfg, targets)))
                    curves[f"{split}_acc"].append(int((_predict(out, cfg, targets) == ys).sum()) / len(ys))
    return {"curves": curves}


class _StackedAdamW:
    """AdamW over stacked parameters with per-cell lr and weight decay: torch's fused AdamW
    kernel (one pass over parameter, gradient and both moments) called once per cell on that
    cell's slices. The step is memory-bound; the fused kernel halves its time against
    separate in-place ops."""

    def __init__(self, params: list[torch.Tensor], groups: list[list[int]], lrs: list[list[float]],
                 wds: list[list[float]], betas: tuple, eps: float):
        """``groups``: indices of parameters sharing a cell's lr and weight decay; ``lrs[k][i]``
        and ``wds[k][i]``: parameter k's values in cell i."""
        self.params, self.groups, self.lrs, self.wds = params, groups, lrs, wds
        (self.b1, self.b2), self.eps = betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        n_cells = params[0].shape[0]
        self.steps = [[torch.zeros((), dtype=torch.float32) for _ in params] for _ in range(n_cells)]

    @torch.no_grad()
    def step(self) -> None:
        for i, steps in enumerate(self.steps):
            torch._foreach_add_(steps, 1)
            # one call per group of equal hyper-parameters (embedding; decoder) of cell i
            for group in self.groups:
                torch._fused_adamw_([self.params[k][i] for k in group], [self.params[k].grad[i] for k in group],
                                    [self.m[k][i] for k in group], [self.v[k][i] for k in group], [],
                                    [steps[k] for k in group], lr=self.lrs[group[0]][i], beta1=self.b1,
                                    beta2=self.b2, weight_decay=self.wds[group[0]][i], eps=self.eps,
                                    amsgrad=False, maximize=False)


def _layout(name: str, t: torch.Tensor) -> torch.Tensor:
    return t.t() if name.endswith("weight") else t


def train_toy_stacked(configs: Sequence[ToyConfig]) -> list[dict]:
    """Train every config as one stacked computation; one result per config, in order."""
    if not configs:
        return []
    if not stackable(configs):
        raise ValueError("cells differ in more than lr, weight decay and seeds; they cannot train stacked")
    cfg0 = configs[0]
    models = [_build(c) for c in configs]
    names = [n for n, _ in models[0].named_parameters()]
    # weights stored transposed, (C, in, out), so every matmul reads them contiguously
    params = [torch.stack([_layout(n, dict(m.named_parameters())[n].detach()) for m in models])
              .contiguous().requires_grad_() for n in names]
    P = dict(zip(names, params))
    lrs = [[cfg0.embedding_lr] * len(configs) if n == "embed" else [c.decoder_lr for c in configs]
           for n in names]
    wds = [[0.0] * len(configs) if n == "embed" else [c.weight_decay for c in configs] for n in names]
    groups = [[k for k, n in enumerate(names) if n == "embed"], [k for k, n in enumerate(names) if n != "embed"]]
    opt = _StackedAdamW(params, groups, lrs, wds, cfg0.betas, cfg0.eps)
    splits = [toy_split(c.data_seed, c.n_train) for c in configs]
    x = torch.stack([s[0][0] for s in splits])  # (C, n, 2)
    y = torch.stack([s[0][1] for s in splits])  # (C, n)
    tx = torch.stack([s[1][0] for s in splits])
    ty = torch.stack([s[1][1] for s in splits])
    targets = (torch.stack([regression_targets(c.data_seed, c.target_dim) for c in configs])
               if cfg0.loss == "mse" else None)  # (C, 19, dim)
    act = _ACT[cfg0.activation]

    def forward(xs: torch.Tensor) -> torch.Tensor:  # (C, n, 2) -> (C, n, out)
        e = P["embed"]  # (C, 10, 1)
        h = torch.gather(e, 1, xs[..., :1]) + torch.gather(e, 1, xs[..., 1:])  # (C, n, 1)
        h = act(torch.baddbmm(P["l1.bias"].unsqueeze(1), h, P["l1.weight"]))
        h = act(torch.baddbmm(P["l2.bias"].unsqueeze(1), h, P["l2.weight"]))
        return torch.baddbmm(P["l3.bias"].unsqueeze(1), h, P["l3.weight"])

    def losses(out, ys):
        if cfg0.loss == "cross_entropy":
            return F.cross_entropy(out.transpose(1, 2), ys, reduction="none").mean(-1)
        return (out - torch.gather(targets, 1, ys.unsqueeze(-1).expand(-1, -1, targets.shape[-1]))
                ).pow(2).sum(-1).mean(-1)

    def correct(out, ys):
        pred = out.argmax(-1) if cfg0.loss == "cross_entropy" else torch.cdist(out, targets).argmin(-1)
        return (pred == ys).sum(-1)

    results = [_empty_curves() for _ in configs]
    out = forward(x)  # after `step` steps: the next step's gradient pass and this step's train evaluation
    for step in range(1, cfg0.steps + 1):
        for p in params:
            p.grad = None
        losses(out, y).sum().backward()  # cells are independent: each gets its own gradient
        opt.step()
        last = step == cfg0.steps
        with torch.set_grad_enabled(not last):  # after the last step: evaluation only
            out = forward(x)
        if step % cfg0.eval_every == 0 or last:
            with torch.no_grad():
                tout = forward(tx)
                values = [losses(out, y).tolist(), correct(out, y).tolist(),
                          losses(tout, ty).tolist(), correct(tout, ty).tolist()]
            for i, r in enumerate(results):
                r["step"].append(step)
                r["train_loss"].append(values[0][i])
                r["train_acc"].append(values[1][i] / y.shape[1])
                r["test_loss"].append(values[2][i])
                r["test_acc"].append(values[3][i] / ty.shape[1])
    return [{"curves": r} for r in results]
