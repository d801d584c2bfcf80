"""Models (``params.yaml`` ``model.name``). Parameters are created in a fixed order right after
``torch.manual_seed(seed)``, so the same seed gives the same initial weights as S0's
reference code for S0's model.

Every model maps operands ``x`` (n, K) to ``(logits (n, p), hidden (n, m))``: ``hidden`` is the
last hidden layer, from which S1's sparsity is measured (:func:`subnetwork_fraction`, through
:meth:`readout`: the layer's linear map to the logits, or None where it is not linear). During training a
:class:`Perturb` carries dropout, input-embedding noise and the cell's own random generator
(never torch's process-wide one: cells train in parallel threads of one process).
:meth:`operand_maps` gives, per operand, each first-layer neuron's response to every operand
value, a (p, m) matrix whose columns' Fourier spectra give S4's inverse participation ratio.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .kinds import kind
from .precision import precision_dtypes

__all__ = ["EmbedConcatMLP", "Transformer", "LSTMNet", "QuadraticMLP", "EncoderDecoderMLP", "Perturb",
           "build_model",
           "first_layer_maps", "seeded", "ipr", "subnetwork_fraction"]

_SEEDED_INIT = threading.Lock()
# Every model's activations (the settings check allows tanh and leaky_relu for s3_mlp only).
_ACTIVATIONS = {"relu": torch.relu, "gelu": F.gelu, "tanh": torch.tanh,
                "leaky_relu": functools.partial(F.leaky_relu, negative_slope=0.1)}  # S3's slope


@dataclass
class Perturb:
    """Training-time randomness of one cell: dropout probability, embedding-noise std, generator."""

    dropout: float
    noise: float
    generator: torch.Generator

    def drop(self, h: torch.Tensor) -> torch.Tensor:
        if self.dropout == 0:
            return h
        # drawn on the cell's CPU generator wherever h lives: the same masks on every device
        keep = (torch.rand(h.shape, generator=self.generator, dtype=h.dtype) >= self.dropout).to(h.device)
        return h * keep / (1 - self.dropout)

    def jitter(self, e: torch.Tensor) -> torch.Tensor:
        if self.noise == 0:
            return e
        return e + self.noise * torch.randn(e.shape, generator=self.generator, dtype=e.dtype).to(e.device)


def _drop(h, perturb: Optional[Perturb]):
    return perturb.drop(h) if perturb is not None else h


def _jitter(e, perturb: Optional[Perturb]):
    return perturb.jitter(e) if perturb is not None else e


def first_layer_maps(embeddings: list[torch.Tensor], w: torch.Tensor) -> list[torch.Tensor]:
    """Per operand k, the first hidden layer's response to every value: E_k @ W[:, k-th block].T,
    (p, width), for embeddings (p, d) concatenated into a Linear of weight (width, K*d)."""
    d = embeddings[0].shape[1]
    return [e @ w[:, k * d:(k + 1) * d].t() for k, e in enumerate(embeddings)]


def seeded(seed: int, build):
    """``build()`` right after ``torch.manual_seed(seed)``, under one process-wide lock: cells
    may be built in several threads of one process, and torch's default generator is shared."""
    with _SEEDED_INIT:
        torch.manual_seed(seed)
        return build()


class _Net(nn.Module):
    """``forward(x)`` with x (n, K), or ``forward(a, b, ...)`` with one tensor per operand: logits."""

    def forward(self, *operands: torch.Tensor) -> torch.Tensor:
        x = operands[0] if len(operands) == 1 else torch.stack(operands, dim=1)
        return self.features(x)[0]


class EmbedConcatMLP(_Net):
    """S0's model, deepened: one embedding per operand (d each), concatenated, ``depth`` hidden
    layers of ``width`` with ``activation``, Linear(p). Depth 1 with ReLU is S0's network."""

    def __init__(self, p: int, embedding_dim: int, width: int, depth: int = 1,
                 activation: str = "relu", operands: int = 2):
        super().__init__()
        # Creation order matters for the RNG stream: embeddings, hidden, deeper layers, output (S0).
        self.embed = nn.ModuleList(nn.Embedding(p, embedding_dim) for _ in range(operands))
        self.hidden = nn.Linear(operands * embedding_dim, width)
        self.deeper = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.output = nn.Linear(width, p)
        self.act = _ACTIVATIONS[activation]

    @property
    def embed_a(self) -> nn.Embedding:
        return self.embed[0]

    @property
    def embed_b(self) -> nn.Embedding:
        return self.embed[1]

    def features(self, x: torch.Tensor, perturb: Optional[Perturb] = None):
        e = torch.cat([emb(x[:, k]) for k, emb in enumerate(self.embed)], dim=-1)  # (n, K*d)
        h = _drop(self.act(self.hidden(_jitter(e, perturb))), perturb)
        for layer in self.deeper:
            h = _drop(self.act(layer(h)), perturb)
        return self.output(h), h

    def operand_maps(self) -> list[torch.Tensor]:
        return first_layer_maps([emb.weight for emb in self.embed], self.hidden.weight)

    def readout(self) -> Optional[tuple]:
        return self.output.weight, self.output.bias, 1.0


class _Block(nn.Module):
    """Pre-norm decoder block: causal multi-head self-attention, then a 4x feed-forward."""

    def __init__(self, width: int, heads: int, activation: str):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)
        self.act = _ACTIVATIONS[activation]

    def forward(self, h: torch.Tensor, perturb: Optional[Perturb]):
        n, k, w = h.shape
        q, kk, v = self.qkv(self.norm1(h)).view(n, k, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, kk, v, is_causal=True)  # (n, heads, k, w/heads)
        h = h + _drop(self.proj(att.transpose(1, 2).reshape(n, k, w)), perturb)
        mid = self.act(self.up(self.norm2(h)))
        return h + _drop(self.down(_drop(mid, perturb)), perturb), mid


class Transformer(_Net):
    """Decoder-only Transformer over the K operand tokens, read out at the last position (S1)."""

    def __init__(self, p: int, width: int, depth: int, heads: int, activation: str, operands: int):
        super().__init__()
        self.tokens = nn.Embedding(p, width)
        self.positions = nn.Embedding(operands, width)
        self.blocks = nn.ModuleList(_Block(width, heads, activation) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, p)

    def features(self, x: torch.Tensor, perturb: Optional[Perturb] = None):
        h = _jitter(self.tokens(x), perturb) + self.positions.weight[: x.shape[1]]
        mid = None
        for block in self.blocks:
            h, mid = block(h, perturb)
        return self.output(self.norm(h[:, -1])), mid[:, -1]

    def operand_maps(self) -> list[torch.Tensor]:
        return [self.tokens.weight]

    def readout(self) -> Optional[tuple]:
        return None  # the last hidden layer (the feed-forward's) reaches the logits through a LayerNorm


class LSTMNet(_Net):
    """Shared token embedding, ``depth`` LSTM layers of ``width``, Linear(p) on the last hidden state (S1)."""

    def __init__(self, p: int, embedding_dim: int, width: int, depth: int):
        super().__init__()
        self.tokens = nn.Embedding(p, embedding_dim)
        # one nn.LSTM per layer, so dropout between layers uses the cell's own generator
        self.layers = nn.ModuleList(nn.LSTM(embedding_dim if i == 0 else width, width, batch_first=True)
                                    for i in range(depth))
        self.output = nn.Linear(width, p)

    def features(self, x: torch.Tensor, perturb: Optional[Perturb] = None):
        h = _jitter(self.tokens(x), perturb)
        for i, layer in enumerate(self.layers):
            h = layer(_drop(h, perturb) if i else h)[0]
        last = h[:, -1]
        return self.output(last), last

    def operand_maps(self) -> list[torch.Tensor]:
        return [self.tokens.weight]

    def readout(self) -> Optional[tuple]:
        return self.output.weight, self.output.bias, 1.0


class QuadraticMLP(_Net):
    """S4: f(x) = W2 (W1 x)^2 / N on the concatenated one-hot operands x (K*p), no biases,
    weights drawn from N(0, 1)."""

    def __init__(self, p: int, width: int, operands: int):
        super().__init__()
        self.p, self.operands = p, operands
        self.w1 = nn.Parameter(torch.randn(width, operands * p))
        self.w2 = nn.Parameter(torch.randn(p, width))

    def features(self, x: torch.Tensor, perturb: Optional[Perturb] = None):
        n, k = x.shape
        if perturb is not None and perturb.noise > 0:
            onehot = F.one_hot(x + self.p * torch.arange(k), k * self.p).sum(1).to(self.w1.dtype)
            pre = _jitter(onehot, perturb) @ self.w1.t()
        else:  # W1 x for one-hot x: a sum of K columns of W1
            cols = self.w1.t().view(k, self.p, -1)
            pre = sum(cols[j][x[:, j]] for j in range(k))
        h = _drop(pre * pre, perturb)
        return h @ self.w2.t() / self.w1.shape[0], h

    def operand_maps(self) -> list[torch.Tensor]:
        return list(self.w1.t().view(self.operands, self.p, -1))

    def readout(self) -> Optional[tuple]:
        return self.w2, None, 1.0 / self.w1.shape[0]


class EncoderDecoderMLP(nn.Module):
    """``model.name: s3_mlp``, S3's encoder-decoder network, built right after
    ``torch.manual_seed(model seed)`` in S3's order.
    toy_addition: an ``nn.Embedding(p, 1)`` (its N(0, 1) init drawn, then overwritten by
    U(-0.5, 0.5), as S3's code does, so the draws that follow match), E_a + E_b -> 1 -> w -> w -> out;
    digits: 64 pixels -> w -> w -> out. PyTorch's default init, every parameter multiplied by
    ``init_scale`` (S3's MNIST: 9). The encoder (:meth:`encoder_names`; toy: the embeddings,
    digits: the first two layers) trains at its own learning rate and weight decay."""

    def __init__(self, toy: bool, width: int, out: int, activation: str, init_scale: float, p: int):
        super().__init__()
        if toy:
            self.embed = nn.Embedding(p, 1).weight
            nn.init.uniform_(self.embed, -0.5, 0.5)
        self.l1, self.l2, self.l3 = nn.Linear(1 if toy else 64, width), nn.Linear(width, width), nn.Linear(width, out)
        self.act = _ACTIVATIONS[activation]
        with torch.no_grad():
            for q in self.parameters():
                q.mul_(init_scale)

    def encoder_names(self) -> list[str]:
        return ["embed"] if hasattr(self, "embed") else ["l1.weight", "l1.bias", "l2.weight", "l2.bias"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed[x[:, 0]] + self.embed[x[:, 1]] if hasattr(self, "embed") else x
        return self.l3(self.act(self.l2(self.act(self.l1(h)))))


def build_model(spec) -> nn.Module:
    """The model of a :class:`grokmap.training.spec.CellSpec` (its kind's ``build``,
    :mod:`grokmap.training.kinds`), built from its seed (:func:`seeded`) in torch's default dtype
    and cast to the cell's ``training.precision`` (float64: the float32 draws cast, so a cell
    starts from the same weights in every precision)."""
    build = kind(spec.model.name).build
    model = seeded(spec.cell.seed, lambda: build(spec))
    dtype = precision_dtypes(spec.training.precision)[0]
    return model if dtype is None else model.to(dtype)


def ipr(maps: list[torch.Tensor], r: int = 2) -> float:
    """S4's inverse participation ratio of each neuron's Fourier spectrum, averaged over
    neurons (and operands): for a column w over Z_p with DFT coefficients c_k,
    IPR_r = sum_k |c_k|^(2r) / (sum_k |c_k|^2)^r; 1/p for a flat spectrum, 1/2 for one frequency."""
    values = []
    for m in maps:
        power = torch.fft.fft(m.detach().double(), dim=0).abs() ** 2  # (p, neurons)
        values.append((power ** r).sum(0) / power.sum(0).clamp_min(1e-300) ** r)
    return float(torch.cat(values).mean())


def subnetwork_fraction(hidden: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                        scale: float = 1.0) -> float:
    """S1's sparsity (S1 section 5.2, after Merrill et al. 2023): the share of the last hidden
    layer's m neurons that the smallest sub-network reproducing the network's predictions needs.

    ``hidden`` holds the training inputs' activations (n, m); the readout is linear, logits =
    scale * hidden @ weight.T + bias. Neurons enter the sub-network largest first, ranked by
    their mean contribution to the logits, mean_x |h_j(x)| * ||weight[:, j]||. A top-k
    sub-network (the other neurons set to 0) *reproduces* when its arg-max equals the whole
    layer's on every input. k is found by bisection over 1..m (about log2 m matrix products),
    i.e. the k at which top-k reproduces and top-(k-1) does not, taking reproduction as monotone
    in k. 1.0: every neuron is needed (dense); small: a few neurons carry the predictions."""
    # float64, so that a near-tie between two logits cannot flip with the summation order
    h = hidden.detach().double() * scale
    w = weight.detach().double()
    n, m = h.shape
    if n == 0 or m == 0 or not bool(torch.isfinite(h).all()) or not bool(torch.isfinite(w).all()):
        return float("nan")
    order = torch.argsort(h.abs().mean(0) * w.norm(dim=0), descending=True, stable=True)
    h, w = h[:, order], w[:, order]
    b = (torch.zeros(w.shape[0], dtype=h.dtype) if bias is None else bias.detach().to(h.dtype))

    def predictions(k: int) -> torch.Tensor:
        return torch.addmm(b, h[:, :k].contiguous(), w[:, :k].t().contiguous()).argmax(1)

    full = predictions(m)
    lo, hi = 0, m  # top-lo does not reproduce (0: nothing does), top-hi does
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bool((predictions(mid) == full).all()):
            hi = mid
        else:
            lo = mid
    return hi / m
