"""The fused engine's gradient pass as one graph compiled by ``torch.compile`` (inductor, C++
on the CPU): the matrix products stay library calls, and the elementwise tail around them
(gather, ReLU, softmax, loss, the one-hot subtraction, the ReLU mask, the casts to and from
bfloat16) becomes a few generated loops instead of a dozen passes over memory.

Compiled once per process for each shape and precision, and cached on disk by inductor across
processes; the generated code is wrapped in C++ (``cpp_wrapper``), so it runs without the
interpreter lock.
Several cells may train in threads of one process: the first call of a new shape compiles
under a lock, later calls run concurrently.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["gradient_graph", "compiled_gradient"]

_LOCK = threading.Lock()
_WARM: set = set()
_COMPILED = None
log = logging.getLogger(__name__)


def gradient_graph(ea, eb, w1, b1, w2, b2, a, b, y, low: Optional[torch.dtype], logits_out: bool):
    """Gradients of the mean cross-entropy of S0's MLP over (a, b, y), every matrix product in
    ``low`` when it is set; with ``logits_out`` also the logits (for the loss and accuracy of an
    evaluation step: computing them in the graph measured slower than one eager pass at
    evaluations only)."""
    n, d, p = a.shape[0], ea.shape[1], w2.shape[0]

    def mm(u, v):
        return u @ v if low is None else (u.to(low) @ v.to(low)).to(u.dtype)

    ta = b1 + mm(ea, w1[:, :d].t())  # every value of a (with the hidden bias) through the hidden layer
    tb = mm(eb, w1[:, d:].t())
    h = torch.relu(ta[a] + tb[b])
    logits = mm(h, w2.t()) + b2
    g = (torch.softmax(logits, 1) - F.one_hot(y, p).to(logits.dtype)) / n
    g_w2, g_b2 = mm(g.t(), h), g.sum(0)
    dh = mm(g, w2) * (h > 0)
    dta = torch.zeros_like(ta).index_add_(0, a, dh)
    dtb = torch.zeros_like(tb).index_add_(0, b, dh)
    g_w1 = torch.cat([mm(dta.t(), ea), mm(dtb.t(), eb)], 1)
    grads = (mm(dta, w1[:, :d]), mm(dtb, w1[:, d:]), g_w1, dta.sum(0), g_w2, g_b2)
    return grads + (logits,) if logits_out else grads


def _private_inductor_cache() -> None:
    """Point inductor at this user's private cache (:mod:`grokmap.cache`) unless the user named
    one: its default, ``<tmp>/torchinductor_<user>``, is a name another local user can create
    first and fill with code this process would load. A named folder must be private too."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from ...cache import CacheRefused, check_private, private_dir, scratch_dir

    named = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    try:
        if named and os.path.abspath(named) != os.path.abspath(default_cache_dir()):
            os.makedirs(named, mode=0o700, exist_ok=True)
            check_private(Path(named))
            return
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(private_dir("inductor"))
    except (CacheRefused, OSError) as err:
        log.warning("torch.compile's code cache is a private temporary folder, not the cache: %s", err)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(scratch_dir("inductor"))


def _graph():
    global _COMPILED
    if _COMPILED is None:
        import torch._dynamo

        _private_inductor_cache()

        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        # cpp_wrapper: the whole graph runs as C++ without the interpreter lock, so the steps of
        # cells in threads of one process overlap (with inductor's Python wrapper two threads
        # stepping two cells ran at 0.92x the throughput of one; with it, 2.0x)
        _COMPILED = torch.compile(gradient_graph, fullgraph=True, options={"cpp_wrapper": True})
    return _COMPILED


@torch.no_grad()
def compiled_gradient(net, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor, metrics: bool):
    """:meth:`FusedEmbedConcatMLP.gradient` through the compiled graph: the gradient into
    ``net.grad``, and (loss, correct count) with ``metrics``."""
    ea, eb, w1, b1, w2, b2 = net.p_views
    key = (a.numel(), tuple(w1.shape), w2.shape[0], net.flat.dtype, net.low, metrics)
    graph = _graph()
    if key in _WARM:
        out = graph(ea, eb, w1, b1, w2, b2, a, b, y, net.low, metrics)
    else:
        with _LOCK:
            out = graph(ea, eb, w1, b1, w2, b2, a, b, y, net.low, metrics)
            _WARM.add(key)
    for view, value in zip(net.g_views, out[:6]):
        view.copy_(value)
    if not metrics:
        return None
    logits = out[6]
    return F.cross_entropy(logits, y, reduction="sum").item() / a.numel(), int((logits.argmax(1) == y).sum())
