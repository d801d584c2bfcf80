"""Optimizers on one flat parameter tensor, without torch.optim.

``torch.optim.Optimizer.__init__`` imports ``torch._dynamo``, which costs about 1.2 s per
process here: more than training a small cell. These classes do the same arithmetic as
PyTorch's single-tensor (``foreach=False``) implementation, op for op, so results are
bit-identical to ``torch.optim.AdamW(..., foreach=False)`` (tested).
"""
from __future__ import annotations

import torch

__all__ = ["AdamW"]


class AdamW:
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
