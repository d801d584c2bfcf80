"""S4's analytic solution of modular addition for the quadratic MLP (Gromov, "Grokking modular
arithmetic", eqs. for W1, W2 and the phase constraint), and its accuracy and IPR.

For f(n, m) = W2 (W1 x)^2 / N with x the two one-hot operands, neuron k gets a frequency
sigma_k in 1..p-1 and phases phi1_k, phi2_k drawn uniformly, phi3_k = phi1_k + phi2_k, and

    W1[k, n]     = cos(2 pi sigma_k n / p + phi1_k)        (first operand's columns)
    W1[k, p + m] = cos(2 pi sigma_k m / p + phi2_k)        (second operand's columns)
    W2[q, k]     = cos(2 pi sigma_k q / p + phi3_k).

The square's cross term 2 cos(a) cos(b) holds cos(2 pi sigma_k (n + m) / p + phi1_k + phi2_k);
with the read-out's phase phi3_k it adds up over neurons to a peak at q = n + m (mod p), while
the other terms (2n, 2m, n - m) carry phases that do not cancel and average out as 1/sqrt(N).
So accuracy rises with the width N (S4's Figure 4b), and every first-layer neuron is one
cosine: its Fourier IPR_2 (``grokmap.training.models.ipr``) is exactly 1/2.
"""
from __future__ import annotations

import math

import torch

__all__ = ["exact_solution", "solution_accuracy", "width_table", "neuron_phases"]


def exact_solution(p: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(W1 (width, 2p), W2 (p, width)) in float64, the random frequencies and phases drawn from
    a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    sigma = torch.randint(1, p, (width, 1), generator=g).double()
    phi1 = 2 * math.pi * torch.rand(width, 1, generator=g, dtype=torch.float64)
    phi2 = 2 * math.pi * torch.rand(width, 1, generator=g, dtype=torch.float64)
    n = torch.arange(p, dtype=torch.float64).unsqueeze(0)
    angle = 2 * math.pi * sigma * n / p  # (width, p)
    w1 = torch.cat([torch.cos(angle + phi1), torch.cos(angle + phi2)], dim=1)
    w2 = torch.cos(angle + phi1 + phi2).t()
    return w1, w2


@torch.no_grad()
def solution_accuracy(w1: torch.Tensor, w2: torch.Tensor, p: int) -> float:
    """The share of all p^2 pairs (n, m) whose arg-max output is (n + m) mod p, for
    f = W2 (W1 x)^2 / N (the model's forward pass, ``QuadraticMLP``)."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    pre = w1[:, a].t() + w1[:, p + b].t()  # (p^2, N)
    out = (pre * pre) @ w2.t() / w1.shape[0]
    return float((out.argmax(1) == (a + b) % p).double().mean())


def width_table(p: int, widths, seeds) -> list[dict]:
    """S4 Figure 4b's analytic curve: one row per (width, seed) with the solution's accuracy
    over all p^2 pairs and its first layer's mean IPR_2."""
    from ..training.models import ipr

    rows = []
    for width in widths:
        for seed in seeds:
            w1, w2 = exact_solution(p, width, seed)
            rows.append({"width": width, "seed": seed, "accuracy": solution_accuracy(w1, w2, p),
                         "ipr": ipr(list(w1.t().reshape(2, p, -1)))})
    return rows


def neuron_phases(w1: torch.Tensor, w2: torch.Tensor, p: int) -> dict:
    """S4's Figure 3 measure of a quadratic MLP's weights (W1 (N, 2p), W2 (p, N)): each neuron's
    dominant frequency sigma in 1..(p-1)/2 (the largest summed power of its two operand maps),
    the phases phi1, phi2 of its operand maps and phi3 of its read-out column at that frequency
    (the angle of the DFT coefficient), and delta = phi1 + phi2 - phi3 wrapped to (-pi, pi].
    Returns the deltas, the share of each neuron's power at its frequency (1 for a pure cosine),
    and the mean resultant length |mean exp(i delta)| (1: all deltas equal; about 1/sqrt(N) for
    uniformly random phases). The analytic solution gives delta = 0 for every neuron."""
    a, b, out = (torch.fft.fft(m.double(), dim=0) for m in (w1[:, :p].t(), w1[:, p:].t(), w2))
    half = (p - 1) // 2
    power = a.abs()[1:half + 1] ** 2 + b.abs()[1:half + 1] ** 2  # (half, N)
    sigma = power.argmax(0) + 1
    cols = torch.arange(w1.shape[0])
    phase = [torch.angle(t[sigma, cols]) for t in (a, b, out)]
    delta = torch.remainder(phase[0] + phase[1] - phase[2] + math.pi, 2 * math.pi) - math.pi
    total = (a.abs() ** 2 + b.abs() ** 2).sum(0)
    share = 2 * power[sigma - 1, cols] / total.clamp_min(1e-300)  # sigma and p - sigma
    return {"sigma": sigma, "delta": delta, "power_share": share,
            "resultant": float(torch.exp(1j * delta).mean().abs())}
