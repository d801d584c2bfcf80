"""Sparse sub-networks of a last hidden layer, measured three ways (S1 section 5.2's claim).

The record's own measure, :func:`grokmap.training.models.subnetwork_fraction`, is the share of
neurons the smallest prediction-reproducing sub-network needs, neurons ranked by their mean
contribution to the logits. Two questions it cannot answer alone:

* **Which ranking.** Merrill et al. (2023), whom S1 cites for its measure, rank neurons by their
  weight norm: :func:`neuron_norms` and :func:`ranked_subnetwork_fraction` with that order.
* **Margins.** Any "smallest sub-network that reproduces the predictions" shrinks when the
  predictions' margins grow, even if no neuron changes its share of the work: a confident
  network can lose neurons without flipping an arg-max. :func:`norm_participation` and
  :func:`norm_mass_share` read the neuron norms only, never a prediction, so they are the
  margin-free controls.

Everything is computed in float64 on detached tensors.
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["neuron_norms", "ranked_subnetwork_fraction", "norm_participation", "norm_mass_share"]


def neuron_norms(w_in: torch.Tensor, b_in: Optional[torch.Tensor], w_out: torch.Tensor) -> torch.Tensor:
    """Each hidden neuron's weight norm: its incoming weights (a row of ``w_in``, (m, k)), its
    bias, and its outgoing weights (a column of ``w_out``, (p, m)), as one vector: (m,)."""
    sq = w_in.detach().double().pow(2).sum(1) + w_out.detach().double().pow(2).sum(0)
    if b_in is not None:
        sq = sq + b_in.detach().double().pow(2)
    return sq.sqrt()


def ranked_subnetwork_fraction(hidden: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                               order: torch.Tensor) -> float:
    """The share of the m neurons that the smallest top-k sub-network in ``order`` (neuron
    indices, most important first) needs to reproduce the layer's arg-max prediction on every
    row of ``hidden`` (n, m); the readout is logits = hidden @ weight.T + bias. k by bisection
    (reproduction taken as monotone in k), as the record's measure."""
    h = hidden.detach().double()[:, order]
    w = weight.detach().double()[:, order]
    n, m = h.shape
    if n == 0 or m == 0:
        return float("nan")
    b = torch.zeros(w.shape[0], dtype=h.dtype) if bias is None else bias.detach().double()
    full = torch.addmm(b, h, w.t()).argmax(1)
    lo, hi = 0, m
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bool((torch.addmm(b, h[:, :mid], w[:, :mid].t()).argmax(1) == full).all()):
            hi = mid
        else:
            lo = mid
    return hi / m


def norm_participation(norms: torch.Tensor) -> float:
    """The effective share of neurons carrying the layer's squared norm: (sum n^2)^2 /
    (m * sum n^4), 1 when every neuron has the same norm, 1/m when one neuron has it all.
    Margin-free: it reads weights only."""
    sq = norms.double().pow(2)
    m = sq.numel()
    if m == 0 or float(sq.sum()) == 0.0:
        return float("nan")
    return float(sq.sum().pow(2) / (m * sq.pow(2).sum()))


def norm_mass_share(norms: torch.Tensor, mass: float = 0.9) -> float:
    """The share of neurons, largest first, that together hold ``mass`` of the layer's squared
    norm. Margin-free, like :func:`norm_participation`."""
    if not 0.0 < mass <= 1.0:
        raise ValueError(f"mass {mass!r}: allowed 0 < mass <= 1")
    sq = torch.sort(norms.double().pow(2), descending=True).values
    m, total = sq.numel(), float(sq.sum())
    if m == 0 or total == 0.0:
        return float("nan")
    k = int(torch.searchsorted(torch.cumsum(sq, 0), torch.tensor(mass * total, dtype=sq.dtype) * (1 - 1e-12)))
    return min(k + 1, m) / m
