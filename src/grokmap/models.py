"""Models. Parameters are created in a fixed order right after ``torch.manual_seed(seed)``,
so the same seed gives the same initial weights as S0's reference code."""
from __future__ import annotations

import threading

import torch
from torch import nn

__all__ = ["EmbedConcatMLP", "build_model"]

_SEEDED_INIT = threading.Lock()


class EmbedConcatMLP(nn.Module):
    """S0's model: embed a and b separately (d each), concatenate (2d), Linear(width), ReLU, Linear(p)."""

    def __init__(self, p: int, embedding_dim: int, width: int):
        super().__init__()
        # Creation order matters for the RNG stream: embed_a, embed_b, hidden, output (S0).
        self.embed_a = nn.Embedding(p, embedding_dim)
        self.embed_b = nn.Embedding(p, embedding_dim)
        self.hidden = nn.Linear(2 * embedding_dim, width)
        self.output = nn.Linear(width, p)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.embed_a(a), self.embed_b(b)], dim=-1)  # (n, 2d)
        return self.output(torch.relu(self.hidden(x)))  # (n, p)


def build_model(model_params: dict, p: int, width: int, seed: int) -> nn.Module:
    """Seed torch, then build the model named in params.yaml ``model.name``.

    Holds a lock from seeding to the last parameter: cells may be built in several threads
    of one process, and torch's default generator is process-wide."""
    name = model_params["name"]
    if name == "embed_concat_mlp":
        with _SEEDED_INIT:
            torch.manual_seed(seed)
            return EmbedConcatMLP(p, model_params["embedding_dim"], width)
    raise ValueError(f"unknown model {name!r}; allowed: 'embed_concat_mlp'")
