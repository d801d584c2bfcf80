"""The typed specification of one cell: everything it trains with, resolved once.

A :class:`CellSpec` is built from the settings every cell shares (params.yaml ``task``,
``model``, ``training``, swept settings marked :data:`grokmap.training.grid.SWEPT`) and the
cell itself (its four core axes and any extra ones): the extra axes' values are put in place,
and the derived quantities every engine needs (examples, split size, step budget, evaluation
schedule, the resolved seeds and encoder rates) are computed here and nowhere else. No torch.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Optional, Union

from .grid import Cell
from .schedule import step_schedule
from .tasks import n_classes, task_size

__all__ = ["TaskSpec", "ModelSpec", "TrainingSpec", "CellSpec"]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    modulus: int
    operands: int
    data_seed: Optional[int]  # None: the cell's seed
    target_dim: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    embedding_dim: int
    depth: int
    activation: str
    heads: int
    dropout: float
    init_scale: float


@dataclass(frozen=True)
class TrainingSpec:
    optimizer: str
    learning_rate: float
    encoder_learning_rate: Optional[float]  # s3_mlp; None: learning_rate
    encoder_weight_decay: Optional[float]  # s3_mlp; None: the cell's weight decay
    accuracy_every_steps: Optional[int]
    betas: tuple
    eps: float
    momentum: float
    loss: str
    batch_size: Union[int, str]  # or "full"
    batch_sampling: str
    max_epochs: int
    max_steps: Optional[int]
    eval_every_epochs: int
    embedding_noise: float
    early_stop_accuracy: float
    early_stop_evals: int
    lr_decay: Optional[float]
    early_stop_rule: str
    precision: str  # float32 | float64 | bfloat16 (matrix products only)
    softmax_precision: Optional[str] = None  # the loss's dtype; None: the working precision's

    @property
    def full_batch(self) -> bool:
        return self.batch_size == "full"


@dataclass(frozen=True)
class CellSpec:
    """One cell's resolved settings. ``shared`` is the settings mapping it was built from (what
    its record and fingerprint name); it takes no part in comparisons."""

    cell: Cell
    task: TaskSpec
    model: ModelSpec
    training: TrainingSpec
    shared: dict = field(compare=False, repr=False, hash=False)

    @classmethod
    def of(cls, shared: dict, cell: Cell, sections: tuple | None = None) -> "CellSpec":
        """The cell's spec; ``sections``: :meth:`sections` of its extra axes when known (a plan
        of many cells computes them once per combination of the extra axes)."""
        return cls(cell, *(sections or cls.sections(shared, cell.extra)), shared)

    @staticmethod
    def sections(shared: dict, extra: tuple) -> tuple:
        """(TaskSpec, ModelSpec, TrainingSpec) of the shared settings with the extra axes' values
        ``extra`` put in place (each section copied; the whole mapping is not)."""
        own = {section: dict(shared[section]) for section in ("task", "model", "training")}
        for key, value in extra:
            section, name = key.split(".", 1)
            own[section][name] = value
        tr = dict(own["training"], betas=tuple(own["training"]["betas"]))
        return TaskSpec(**own["task"]), ModelSpec(**own["model"]), TrainingSpec(**tr)

    def with_training(self, **changes) -> "CellSpec":
        """The same cell with other training settings (tests and benchmarks)."""
        return dataclasses.replace(self, training=dataclasses.replace(self.training, **changes))

    # --- derived -------------------------------------------------------------------------------
    @property
    def n_examples(self) -> int:
        return task_size(self.task.modulus, self.task.name, self.task.operands)

    @property
    def n_train(self) -> int:
        return int(self.n_examples * self.cell.train_fraction)

    @property
    def data_seed(self) -> int:
        return self.cell.seed if self.task.data_seed is None else self.task.data_seed

    @property
    def weight_decay(self) -> float:
        return self.cell.weight_decay

    @property
    def encoder_learning_rate(self) -> float:
        tr = self.training
        return tr.learning_rate if tr.encoder_learning_rate is None else tr.encoder_learning_rate

    @property
    def encoder_weight_decay(self) -> float:
        tr = self.training
        return self.cell.weight_decay if tr.encoder_weight_decay is None else tr.encoder_weight_decay

    @property
    def out_dim(self) -> int:
        """Outputs of the network: classes, or S3's toy MSE target vectors."""
        tk = self.task
        if tk.name == "toy_addition" and self.training.loss == "mse":
            return tk.target_dim
        return n_classes(tk.name, tk.modulus)

    @functools.cached_property
    def _schedule(self) -> tuple[int, int, tuple[int, ...]]:
        """(steps per epoch, total steps, evaluation steps), computed once per specification."""
        per_epoch, total, evals = step_schedule(dataclasses.asdict(self.training), self.n_train)
        return per_epoch, total, tuple(evals)

    @property
    def steps_per_epoch(self) -> int:
        return self._schedule[0]

    @property
    def total_steps(self) -> int:
        return self._schedule[1]

    @property
    def eval_steps(self) -> tuple[int, ...]:
        return self._schedule[2]

    def key_without(self, per_cell: tuple[str, ...]) -> tuple:
        """Every setting but those named in ``per_cell`` (dotted: ``training.learning_rate``,
        ``cell.seed``): cells with equal keys may train together on an engine whose per-cell
        settings these are."""
        parts = {"cell": dataclasses.asdict(self.cell), "task": dataclasses.asdict(self.task),
                 "model": dataclasses.asdict(self.model), "training": dataclasses.asdict(self.training)}
        parts["cell"].pop("extra")  # the extra axes' values are in the sections already
        for key in per_cell:
            section, name = key.split(".", 1)
            parts[section][name] = None
        return tuple((s, tuple(sorted(v.items()))) for s, v in parts.items())
