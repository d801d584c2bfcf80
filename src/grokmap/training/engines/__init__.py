"""The engines: how a cell's step and evaluation are computed (no torch here).

The loop (:mod:`grokmap.training.loop`) owns everything else. Each engine declares which
settings may differ between the cells it trains together; the workflow plans its jobs with
the same declaration (:func:`grokmap.jobs.planning.stack_groups`).

* ``fused`` (:mod:`.fused`): S0's embed-concat MLP, forward and backward written out by hand
  on one flat buffer. Used whenever a cell is S0's kind (``embed_concat_mlp``'s record in
  :mod:`grokmap.training.kinds`).
* ``generic`` (:mod:`.generic`): any model, optimizer, loss and batching; nn.Module + autograd
  + torch.optim.
* ``stacked`` (:mod:`.stacked`): S3's model, many cells as one batched computation.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..kinds import engine_name

__all__ = ["EngineInfo", "ENGINES", "engine_for", "load_engine"]


@dataclass(frozen=True)
class EngineInfo:
    name: str
    per_cell: tuple[str, ...]  # settings that may differ between cells trained together
    min_rows: int  # a stack never has fewer rows (finished cells stay as padding)

    @property
    def stacks(self) -> bool:
        return bool(self.per_cell)


ENGINES = {
    "fused": EngineInfo("fused", (), 1),
    "generic": EngineInfo("generic", (), 1),
    # Batched kernels round a single matrix differently from a stack of them: a stack always has at
    # least two rows, so no cell is computed by the plain matrix kernel. Stacks of other sizes may
    # still round differently in the last digit (on AMD EPYC they do): a cell's numbers are
    # bit-identical only for the same stack size on the same CPU kind (docs/reproducibility.md).
    "stacked": EngineInfo("stacked", ("cell.weight_decay", "cell.seed", "training.learning_rate",
                                      "training.encoder_learning_rate", "training.encoder_weight_decay",
                                      "task.data_seed"), 2),
}


def engine_for(spec) -> EngineInfo:
    """The engine that trains a :class:`grokmap.training.spec.CellSpec`: its model kind's choice
    (:attr:`grokmap.training.kinds.ModelKind.engine`)."""
    return ENGINES[engine_name(spec)]


def load_engine(info: EngineInfo):
    """The engine class (imports torch)."""
    if info.name == "fused":
        from .fused import FusedEngine as engine
    elif info.name == "generic":
        from .generic import GenericEngine as engine
    else:
        from .stacked import StackedEngine as engine
    return engine
