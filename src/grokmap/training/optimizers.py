"""The optimizers, one per engine.

* :class:`FlatAdamW` (fused engine): AdamW on one flat parameter tensor, without torch.optim.
  ``torch.optim.Optimizer.__init__`` imports ``torch._dynamo``, which costs about 1.2 s per
  process here: more than training a small cell. It does the same arithmetic as PyTorch's
  single-tensor (``foreach=False``) implementation, op for op, so results are bit-identical to
  ``torch.optim.AdamW(..., foreach=False)`` (tested).
* :func:`torch_optimizer` (generic engine): ``training.optimizer`` as a torch.optim optimizer;
  ``perp_adamw`` is :class:`PerpAdamW`, Prieto et al.'s ⊥Grad on AdamW.
* :class:`StackedAdamW` (stacked engine): AdamW over parameters with a leading cell dimension,
  each cell with its own learning rate and weight decay per parameter group.
"""
from __future__ import annotations

import torch

__all__ = ["FlatAdamW", "PerpAdamW", "torch_optimizer", "scale_lr", "StackedAdamW"]


class FlatAdamW:
    """Decoupled weight decay Adam (Loshchilov & Hutter), as torch.optim.AdamW computes it."""

    def __init__(self, param: torch.Tensor, grad: torch.Tensor, lr: float, betas, eps: float,
                 weight_decay: float):
        self.param, self.grad = param, grad
        self.lr, self.beta1, self.beta2 = float(lr), float(betas[0]), float(betas[1])
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        self._denom = torch.empty_like(param)
        self.step_count = 0

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        step = float(self.step_count)
        if self.weight_decay != 0:
            self.param.mul_(1 - self.lr * self.weight_decay)
        self.exp_avg.lerp_(self.grad, 1 - self.beta1)
        self.exp_avg_sq.mul_(self.beta2).addcmul_(self.grad, self.grad, value=1 - self.beta2)
        bias_correction1 = 1 - self.beta1 ** step
        bias_correction2 = 1 - self.beta2 ** step
        step_size = self.lr / bias_correction1
        denom = torch.sqrt(self.exp_avg_sq, out=self._denom)
        denom.div_(bias_correction2 ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-step_size)


class PerpAdamW(torch.optim.AdamW):
    """⊥Grad (Prieto et al., "Grokking at the edge of numerical stability"): before AdamW's step,
    each parameter tensor's gradient g loses its component along the tensor w,
    g_perp = g - (w·g / (w·w + 1e-30)) w, and is rescaled to g's norm,
    g_perp * |g| / (|g_perp| + 1e-30) (the 1e-30 guards as their public code does). Updates then
    cannot grow the weights along themselves, the direction Prieto et al. show leads to
    softmax collapse; weight decay is AdamW's, applied as usual."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                w, g = p.reshape(-1), p.grad.reshape(-1)
                perp = g - (torch.dot(w, g) / (torch.dot(w, w) + 1e-30)) * w
                p.grad.copy_((perp * (g.norm() / (perp.norm() + 1e-30))).view_as(p.grad))
        return super().step(closure)


def torch_optimizer(tr, params, weight_decay: float):
    """``training.optimizer`` (a :class:`grokmap.training.spec.TrainingSpec`) over ``params``."""
    lr, wd, name = tr.learning_rate, weight_decay, tr.optimizer
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(tr.betas), eps=tr.eps, weight_decay=wd, foreach=False)
    if name == "perp_adamw":
        return PerpAdamW(params, lr=lr, betas=tuple(tr.betas), eps=tr.eps, weight_decay=wd, foreach=False)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(tr.betas), eps=tr.eps, weight_decay=wd, foreach=False)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=tr.betas[1], eps=tr.eps, weight_decay=wd,
                                   momentum=tr.momentum, foreach=False)
    if name in ("sgd", "gd"):
        return torch.optim.SGD(params, lr=lr, momentum=tr.momentum if name == "sgd" else 0.0,
                               weight_decay=wd, foreach=False)
    raise ValueError(f"unknown optimizer {name!r}; allowed: 'adamw', 'perp_adamw', 'adam', 'rmsprop', 'sgd', 'gd'")


def scale_lr(opt, base_lrs: list, factor: float) -> None:
    """Set every parameter group's rate to its base rate x ``factor`` (``training.lr_decay``)."""
    for group, base in zip(opt.param_groups, base_lrs):
        group["lr"] = base * factor


class StackedAdamW:
    """AdamW over stacked parameters with per-cell lr and weight decay per group: torch's fused
    AdamW kernel (one pass over parameter, gradient and both moments) on each cell's slices.
    Cells of a stack step in lockstep, so they share one step counter per parameter; the
    per-cell views of parameters and moments are made once (and again after :meth:`keep`)."""

    def __init__(self, params: list[torch.Tensor], groups: list[list[int]], hyper: list[list[tuple]],
                 betas: tuple, eps: float):
        """``groups[g]``: indices of the parameters of group g; ``hyper[i][g]``: cell i's (lr, wd) in group g."""
        self.params, self.groups, self.hyper = params, groups, hyper
        (self.b1, self.b2), self.eps = betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.count = [torch.zeros((), dtype=torch.float32, device=p.device) for p in params]
        self.scale = 1.0  # training.lr_decay's factor for the coming step (every group, every cell)
        self._views()

    def _views(self) -> None:
        """One fused call per distinct (group, lr, weight decay): e.g. every cell's embeddings
        (S3: one encoder lr for all) together, and the decoders of cells that differ only in seeds."""
        p, m, v = ([t.unbind(0) for t in ts] for ts in (self.params, self.m, self.v))
        calls: dict[tuple, list] = {}
        for i, hyper in enumerate(self.hyper):
            for g, group in enumerate(self.groups):
                calls.setdefault((g, *hyper[g]), []).extend((k, i) for k in group)
        self.calls = [(lr, wd, pairs, [p[k][i] for k, i in pairs], [m[k][i] for k, i in pairs],
                       [v[k][i] for k, i in pairs], [self.count[k] for k, _ in pairs])
                      for (_, lr, wd), pairs in calls.items()]

    @torch.no_grad()
    def step(self) -> None:
        torch._foreach_add_(self.count, 1)
        grads = [p.grad.unbind(0) for p in self.params]
        for lr, wd, pairs, ps, ms, vs, counts in self.calls:
            torch._fused_adamw_(ps, [grads[k][i] for k, i in pairs], ms, vs, [], counts, lr=lr * self.scale,
                                beta1=self.b1, beta2=self.b2, weight_decay=wd, eps=self.eps,
                                amsgrad=False, maximize=False)

    def keep(self, idx: torch.Tensor, keep_list: list[int]) -> None:
        """Drop every cell not in ``idx`` (parameters are re-made as new leaves)."""
        self.params = [p.detach()[idx].clone().requires_grad_() for p in self.params]
        self.m = [m[idx].clone() for m in self.m]
        self.v = [v[idx].clone() for v in self.v]
        self.hyper = [self.hyper[i] for i in keep_list]
        self._views()
