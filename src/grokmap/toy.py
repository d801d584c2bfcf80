"""S3's learning-rate x weight-decay experiments (../shared/seeds/S3-re-towards-understanding-grokking.txt;
issue 8): the toy addition task, the digits task, one cell at a time and many cells stacked.

Tasks (``task.name``):

* ``toy_addition``: the pairs a <= b of 0..p-1 (p = ``task.modulus``; S3: p = 10, 55 pairs),
  label a + b (2p - 1 classes), listed b-major as S3's code lists them (a meshgrid masked by
  a <= b: (0,0), (0,1), (1,1), (0,2), ...). The data seed splits them as S3 does, with
  scikit-learn's ``train_test_split(train_size=int(n * train_fraction), random_state=data seed)``.
  With ``loss: mse`` the targets are one N(0, 1) vector of size ``task.target_dim`` per label
  (S3: 30): ``torch.randn(2p - 1, target_dim)`` as the first draw after seeding torch with the
  data seed; a prediction is the nearest target vector.
* ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, read from the package's data
  file, nothing downloaded), pixels scaled to [0, 1]; with ``loss: mse`` the targets are one-hot.
  S3's MNIST code draws its 1,000 training images with ``np.random.choice(n, 1000,
  replace=False)`` after seeding numpy: here ``RandomState(data seed).permutation(n)[:n_train]``,
  the same draw; the other images are the test set (S3: MNIST's separate 10,000).

Model (``model.name: s3_mlp``), built right after ``torch.manual_seed(model seed)`` in S3's
order: toy_addition creates an ``nn.Embedding(p, 1)`` (its N(0, 1) init drawn and then
overwritten by U(-0.5, 0.5), as S3's code does, so the draws that follow match) and reads
E_a + E_b; digits reads the 64 pixels. Then width -> width -> out with ``model.activation``
(leaky_relu: slope 0.1, S3's), PyTorch's default init, every parameter multiplied by
``model.init_scale`` (S3's MNIST: 9). AdamW with
two groups: the encoder (toy: the embeddings; digits: the first two layers) at
``training.encoder_learning_rate`` / ``encoder_weight_decay`` and the decoder (toy: the MLP;
digits: the last layer) at the cell's learning rate and weight decay.

Logs: curves (loss, accuracy, parameter norm) at the evaluation schedule, and - when
``training.accuracy_every_steps`` is set - train and test accuracy every that many steps,
stored run-length encoded as correct counts (S3 needs the first step at 90 %, from 1e5 steps).
With full-batch training the train accuracy logged at step t is that of step t's own forward
pass, before its update (S3's code measures it on the output it takes the gradient of), and
the test accuracy is after the update; with minibatches both are after the update, on the
whole train and test sets.

:func:`train_single` is the textbook loop (nn.Module, autograd, torch.optim.AdamW).
:func:`train_stacked` trains C cells that share shapes and budget as one computation: every
parameter carries a leading cell dimension, layers are batched matmuls, and the optimizer
applies torch's fused AdamW kernel to each cell's slices with that cell's lr and weight decay.
Cells do not interact (the summed loss gives each cell its own gradient); a cell that stops
early is dropped from the stack. Both paths give the same records (float rounding aside).
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .curves import EarlyStop, first_logged_step
from .data import batch_sampler
from .grid import resolve_settings
from .models import seeded
from .schedule import epoch_of, lr_factor, step_schedule

__all__ = ["S3Config", "config_from_settings", "toy_pairs", "load_digits", "split", "class_targets",
           "S3Model", "train_single", "train_stacked", "stack_key", "first_logged_step", "Runs"]

_ACT = {"tanh": torch.tanh, "relu": torch.relu, "gelu": F.gelu,
        "leaky_relu": functools.partial(F.leaky_relu, negative_slope=0.1)}  # S3's slope


@dataclass(frozen=True)
class S3Config:
    """One S3 cell: everything it trains with. No defaults here: the values come from params.yaml
    through :func:`config_from_settings` (tests and benchmarks start from a study file's cell)."""

    task: str  # toy_addition | digits
    decoder_lr: float
    weight_decay: float
    encoder_lr: float
    encoder_wd: float
    data_seed: int
    model_seed: int
    steps: int
    eval_steps: tuple  # curve evaluations (the last is ``steps``)
    per_epoch: int
    batch_size: Optional[int]  # None: full batch
    batch_sampling: str  # with_replacement | epoch_shuffle
    acc_every: Optional[int]  # accuracy log every this many steps (None: none)
    activation: str
    loss: str
    hidden: int
    modulus: int
    target_dim: int
    train_fraction: float
    init_scale: float
    betas: tuple
    eps: float
    early_stop_accuracy: float  # > 1: never
    early_stop_evals: int
    early_stop_rule: str
    lr_decay: Optional[float]  # per-epoch factor of every group's rate (None: constant)


def stack_key(cfg: S3Config) -> tuple:
    """What cells must share to train stacked: everything but learning rates, weight decays and seeds."""
    return tuple(v for k, v in cfg.__dict__.items()
                 if k not in ("decoder_lr", "weight_decay", "encoder_lr", "encoder_wd", "data_seed", "model_seed"))


def config_from_settings(settings: dict, cell) -> S3Config:
    """The S3 config of ``cell`` under the settings every cell shares (its extra axes are put in place here)."""
    own = resolve_settings(settings, cell)
    tk, md, tr = own["task"], own["model"], own["training"]
    n_train = int(task_examples(tk) * cell.train_fraction)
    per_epoch, total, evals = step_schedule(tr, n_train)
    return S3Config(
        task=tk["name"], decoder_lr=tr["learning_rate"], weight_decay=cell.weight_decay,
        encoder_lr=tr["learning_rate"] if tr["encoder_learning_rate"] is None else tr["encoder_learning_rate"],
        encoder_wd=cell.weight_decay if tr["encoder_weight_decay"] is None else tr["encoder_weight_decay"],
        data_seed=cell.seed if tk["data_seed"] is None else tk["data_seed"], model_seed=cell.seed,
        steps=total, eval_steps=tuple(evals), per_epoch=per_epoch,
        batch_size=None if tr["batch_size"] == "full" else tr["batch_size"],
        batch_sampling=tr["batch_sampling"],
        acc_every=tr["accuracy_every_steps"], activation=md["activation"], loss=tr["loss"],
        hidden=cell.width, modulus=tk["modulus"], target_dim=tk["target_dim"],
        train_fraction=cell.train_fraction, init_scale=md["init_scale"], betas=tuple(tr["betas"]),
        eps=tr["eps"], early_stop_accuracy=tr["early_stop_accuracy"], early_stop_evals=tr["early_stop_evals"],
        early_stop_rule=tr["early_stop_rule"], lr_decay=tr["lr_decay"])


# --- data -------------------------------------------------------------------------------------

def toy_pairs(p: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """The p(p+1)/2 pairs (a, b), a <= b, b-major (S3's order), and their sums."""
    x = torch.tensor([(a, b) for b in range(p) for a in range(b + 1)])
    return x, x.sum(1)


@functools.lru_cache(maxsize=1)
def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 digits as (1797, 64) pixels in [0, 1] and labels, read
    straight from the package's data file (no sklearn import, no download)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("task 'digits' needs scikit-learn (pinned in requirements.lock); "
                           "run: bash scripts/setup_env.sh")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    return torch.from_numpy(data[:, :-1] / 16.0), torch.from_numpy(data[:, -1].astype(np.int64))


def task_examples(task: dict) -> int:
    from .tasks import task_size

    return task_size(task["modulus"], task["name"], task.get("operands", 2))


def _examples(cfg: S3Config):
    return toy_pairs(cfg.modulus) if cfg.task == "toy_addition" else load_digits()


def n_classes(cfg: S3Config) -> int:
    return 2 * cfg.modulus - 1 if cfg.task == "toy_addition" else 10


def split_order(task: str, n: int, n_train: int, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices as S3's code draws them: toy_addition - scikit-learn's
    train_test_split(random_state=data_seed); digits - numpy's choice without replacement
    (= RandomState(data_seed).permutation(n)[:n_train]), the rest testing."""
    if task == "toy_addition":
        from sklearn.model_selection import train_test_split

        tr, te = train_test_split(np.arange(n), train_size=n_train, random_state=data_seed)
        return tr, te
    perm = np.random.RandomState(data_seed).permutation(n)
    return perm[:n_train], perm[n_train:]


def split(cfg: S3Config):
    """Train and test (x, y) of the cell's data seed (:func:`split_order`)."""
    x, y = _examples(cfg)
    tr, te = (torch.from_numpy(i) for i in split_order(cfg.task, len(y), int(len(y) * cfg.train_fraction),
                                                          cfg.data_seed))
    if x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    return (x[tr], y[tr]), (x[te], y[te])


def class_targets(cfg: S3Config) -> Optional[torch.Tensor]:
    """MSE targets per class (classes, out): toy_addition's N(0, 1) vectors, the first draw of
    torch's generator seeded with the data seed (S3); digits' one-hot rows; None for cross-entropy."""
    if cfg.loss != "mse":
        return None
    if cfg.task == "digits":
        return torch.eye(10)
    g = torch.Generator().manual_seed(cfg.data_seed)
    return torch.randn(n_classes(cfg), cfg.target_dim, generator=g)


def _out_dim(cfg: S3Config) -> int:
    return cfg.target_dim if (cfg.loss == "mse" and cfg.task == "toy_addition") else n_classes(cfg)


# --- model ------------------------------------------------------------------------------------

class S3Model(nn.Module):
    """toy_addition: embeddings summed -> 1 -> w -> w -> out; digits: 64 -> w -> w -> out."""

    def __init__(self, cfg: S3Config):
        super().__init__()
        toy = cfg.task == "toy_addition"
        if toy:  # S3: nn.Embedding (its N(0, 1) init draws too), then U(-0.5, 0.5)
            self.embed = nn.Embedding(cfg.modulus, 1).weight
            nn.init.uniform_(self.embed, -0.5, 0.5)
        w = cfg.hidden
        self.l1, self.l2, self.l3 = nn.Linear(1 if toy else 64, w), nn.Linear(w, w), nn.Linear(w, _out_dim(cfg))
        self.act = _ACT[cfg.activation]
        with torch.no_grad():
            for p in self.parameters():
                p.mul_(cfg.init_scale)

    def encoder_names(self) -> list[str]:
        return ["embed"] if hasattr(self, "embed") else ["l1.weight", "l1.bias", "l2.weight", "l2.bias"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed[x[:, 0]] + self.embed[x[:, 1]] if hasattr(self, "embed") else x
        return self.l3(self.act(self.l2(self.act(self.l1(h)))))


def build(cfg: S3Config) -> S3Model:
    return seeded(cfg.model_seed, lambda: S3Model(cfg))


def _loss(out: torch.Tensor, y: torch.Tensor, loss: str, targets) -> torch.Tensor:
    """Per-cell loss over the last-but-one dim: cross-entropy, or MSE to the class targets
    (mean over examples and outputs, nn.MSELoss's reduction)."""
    if loss == "cross_entropy":  # flattened: no transposed copy of the stacked outputs
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none").view(y.shape).mean(-1)
    return (out - _rows(targets, y)).pow(2).mean((-1, -2))


def _rows(targets: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if targets.dim() == 2:
        return targets[y]
    return torch.gather(targets, 1, y.unsqueeze(-1).expand(-1, -1, targets.shape[-1]))


def _correct(out: torch.Tensor, y: torch.Tensor, loss: str, targets) -> torch.Tensor:
    pred = out.argmax(-1) if loss == "cross_entropy" else torch.cdist(out, targets).argmin(-1)
    return (pred == y).sum(-1)


# --- logs -------------------------------------------------------------------------------------

class Runs:
    """Run-length encoded integers: [[value, count], ...]."""

    def __init__(self):
        self.runs: list[list[int]] = []

    def add(self, value: int) -> None:
        if self.runs and self.runs[-1][0] == value:
            self.runs[-1][1] += 1
        else:
            self.runs.append([value, 1])


class _Cell:
    """Bookkeeping of one cell: curves, accuracy log, early stop."""

    def __init__(self, cfg: S3Config, n_train: int, n_test: int):
        self.cfg, self.n_train, self.n_test = cfg, n_train, n_test
        self.curves = {k: [] for k in ("epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc",
                                       "param_norm", "subnetwork_fraction", "ipr")}
        self.train_runs, self.test_runs = Runs(), Runs()
        self.stopped_early, self.non_finite, self.done = False, False, False
        self.stopper = EarlyStop(cfg.early_stop_accuracy, cfg.early_stop_evals, cfg.early_stop_rule)
        self.evals = set(cfg.eval_steps)

    def log_accuracy(self, step: int, train_correct: int, test_correct: int) -> None:
        """Every acc_every steps; early stop is checked here when the log is on."""
        self.train_runs.add(train_correct)
        self.test_runs.add(test_correct)
        self._check_stop(step, train_correct / self.n_train, test_correct / self.n_test)

    def wants_eval(self, step: int) -> bool:
        return step in self.evals or self.done

    def evaluate(self, step: int, train: tuple, test: tuple, norm: float) -> None:
        """train/test = (loss, correct). Marks the cell done at the budget or on non-finite loss."""
        c = self.curves
        for k, v in (("step", step), ("epoch", epoch_of(step, self.cfg.per_epoch)), ("train_loss", train[0]),
                     ("train_acc", train[1] / self.n_train), ("test_loss", test[0]),
                     ("test_acc", test[1] / self.n_test), ("param_norm", norm),
                     ("subnetwork_fraction", None), ("ipr", None)):
            c[k].append(v)
        if not (math.isfinite(train[0]) and math.isfinite(test[0])):
            self.non_finite = self.done = True
        if self.cfg.acc_every is None and not self.done:
            self._check_stop(step, c["train_acc"][-1], c["test_acc"][-1])
        if step >= self.cfg.steps:
            self.done = True

    def _check_stop(self, step: int, train_acc: float, test_acc: float) -> None:
        if self.stopper.update(train_acc, test_acc):
            self.stopped_early, self.done = step < self.cfg.steps, True

    def result(self, seconds: float, n_parameters: int, stacked: int) -> dict:
        out = {"curves": self.curves, "epochs_run": self.curves["epoch"][-1], "steps_run": self.curves["step"][-1],
               "steps_per_epoch": self.cfg.per_epoch, "stopped_early": self.stopped_early,
               "non_finite_loss": self.non_finite, "train_seconds": seconds, "n_train": self.n_train,
               "n_test": self.n_test, "n_parameters": n_parameters, "stacked_cells": stacked}
        if self.cfg.acc_every is not None:
            out["accuracy_log"] = {"every": self.cfg.acc_every, "n_train": self.n_train, "n_test": self.n_test,
                                   "train": self.train_runs.runs, "test": self.test_runs.runs}
        return out


def _batch_indices(cfg: S3Config, n_train: int):
    """The cell's minibatch sampler (``training.batch_sampling``; S3's digits: epoch_shuffle), from
    a generator seeded by the model seed; None for full batch."""
    if cfg.batch_size is None:
        return None
    return batch_sampler(n_train, cfg.batch_size, cfg.batch_sampling, torch.Generator().manual_seed(cfg.model_seed))


# --- one cell -----------------------------------------------------------------------------------

def train_single(cfg: S3Config, progress: Optional[Callable] = None) -> dict:
    """The reference: one cell, nn.Module + autograd + torch.optim.AdamW (two groups)."""
    from .train import decay_lr
    started = time.perf_counter()
    (x, y), (tx, ty) = split(cfg)
    targets = class_targets(cfg)
    model = build(cfg)
    enc = set(model.encoder_names())
    named = dict(model.named_parameters())
    opt = torch.optim.AdamW(
        [{"params": [p for n, p in named.items() if n in enc], "lr": cfg.encoder_lr, "weight_decay": cfg.encoder_wd},
         {"params": [p for n, p in named.items() if n not in enc], "lr": cfg.decoder_lr,
          "weight_decay": cfg.weight_decay}], betas=cfg.betas, eps=cfg.eps, foreach=False)
    bases = [g["lr"] for g in opt.param_groups]
    cell = _Cell(cfg, len(y), len(ty))
    sample = _batch_indices(cfg, len(y))
    for step in range(1, cfg.steps + 1):
        opt.zero_grad(set_to_none=True)
        if sample is None:
            bx, by = x, y
        else:
            idx = sample()
            bx, by = x[idx], y[idx]
        bout = model(bx)
        _loss(bout, by, cfg.loss, targets).backward()
        decay_lr(opt, bases, step, cfg.per_epoch, cfg.lr_decay)
        log_acc = cfg.acc_every is not None and step % cfg.acc_every == 0
        if log_acc and sample is None:  # full batch: this step's own forward pass, before the update
            train_correct = int(_correct(bout.detach(), y, cfg.loss, targets))
        opt.step()
        with torch.no_grad():
            if log_acc:
                if sample is not None:
                    train_correct = int(_correct(model(x), y, cfg.loss, targets))
                cell.log_accuracy(step, train_correct, int(_correct(model(tx), ty, cfg.loss, targets)))
            if cell.wants_eval(step):
                out, tout = model(x), model(tx)
                norm = float(torch.sqrt(sum(p.pow(2).sum() for p in model.parameters())))
                cell.evaluate(step, (float(_loss(out, y, cfg.loss, targets)), int(_correct(out, y, cfg.loss, targets))),
                              (float(_loss(tout, ty, cfg.loss, targets)), int(_correct(tout, ty, cfg.loss, targets))),
                              norm)
                if progress:
                    progress(cell.curves["epoch"][-1], cell.curves)
        if cell.done:
            break
    return cell.result(time.perf_counter() - started, sum(p.numel() for p in model.parameters()), 1)


# --- many cells at once -------------------------------------------------------------------------

class _StackedAdamW:
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
        self.count = [torch.zeros((), dtype=torch.float32) for _ in params]
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


def _layout(name: str, t: torch.Tensor) -> torch.Tensor:
    return t.t() if name.endswith("weight") else t


def train_stacked(configs: Sequence[S3Config], progress: Optional[Callable[[str], None]] = None,
                  on_done: Optional[Callable[[int, dict], None]] = None) -> list[dict]:
    """Train every config as one stacked computation; one result per config, in order.
    ``on_done(index, result)`` is called as soon as a cell finishes (early stop, non-finite
    loss or the budget), so its result can be saved before the others finish. A result's
    ``train_seconds`` is the stack's time until then, divided by the stack's size."""
    if not configs:
        return []
    if len({stack_key(c) for c in configs}) != 1:
        raise ValueError("cells differ in more than learning rates, weight decays and seeds; "
                         "they cannot train stacked")
    started = time.perf_counter()
    configs = list(configs)
    # A stack always has at least two rows: batched kernels round a single matrix differently,
    # and a cell's numbers must not depend on the stack it trains in. A lone cell trains beside
    # a copy of itself; when one cell is left, a finished one stays as padding.
    rows_cfg = configs + configs[:1] if len(configs) == 1 else configs
    handed: set[int] = {1} if len(configs) == 1 else set()  # rows whose cell is finished and returned
    cfg0 = configs[0]
    models = [build(c) for c in rows_cfg]
    names = [n for n, _ in models[0].named_parameters()]
    n_parameters = sum(p.numel() for p in models[0].parameters())
    enc = set(models[0].encoder_names())
    # weights stored transposed, (C, in, out), so every matmul reads them contiguously
    params = [torch.stack([_layout(n, dict(m.named_parameters())[n].detach()) for m in models])
              .contiguous().requires_grad_() for n in names]
    del models
    groups = [[k for k, n in enumerate(names) if n in enc], [k for k, n in enumerate(names) if n not in enc]]
    opt = _StackedAdamW(params, groups, [[(c.encoder_lr, c.encoder_wd), (c.decoder_lr, c.weight_decay)]
                                         for c in rows_cfg], cfg0.betas, cfg0.eps)
    splits = [split(c) for c in rows_cfg]
    data = {"x": torch.stack([s[0][0] for s in splits]), "y": torch.stack([s[0][1] for s in splits]),
            "tx": torch.stack([s[1][0] for s in splits]), "ty": torch.stack([s[1][1] for s in splits])}
    tg = [class_targets(c) for c in rows_cfg]
    data["targets"] = torch.stack(tg) if tg[0] is not None else None  # (C, classes, out)
    n_train, n_test = data["y"].shape[1], data["ty"].shape[1]
    cells = [_Cell(c, n_train, n_test) for c in rows_cfg]
    results: list = [None] * len(configs)
    samplers = [_batch_indices(c, n_train) for c in rows_cfg]
    active = list(range(len(rows_cfg)))  # original index of each stack row
    act, loss_name, toy = _ACT[cfg0.activation], cfg0.loss, cfg0.task == "toy_addition"
    idx_of = {n: k for k, n in enumerate(names)}

    def forward(xs: torch.Tensor) -> torch.Tensor:  # (C, n, 2 | 64) -> (C, n, out)
        P = opt.params
        if toy:
            e = P[idx_of["embed"]]  # (C, p, 1)
            h = torch.gather(e, 1, xs[..., :1]) + torch.gather(e, 1, xs[..., 1:])
        else:
            h = xs
        for layer in ("l1", "l2"):
            h = act(torch.baddbmm(P[idx_of[f"{layer}.bias"]].unsqueeze(1), h, P[idx_of[f"{layer}.weight"]]))
        return torch.baddbmm(P[idx_of["l3.bias"]].unsqueeze(1), h, P[idx_of["l3.weight"]])

    def batch():
        if samplers[0] is None:
            return data["x"], data["y"]
        idx = torch.stack([samplers[i]() for i in active])  # (C, B)
        bx = torch.gather(data["x"], 1, idx.unsqueeze(-1).expand(-1, -1, data["x"].shape[-1]))
        return bx, torch.gather(data["y"], 1, idx)

    full_batch = samplers[0] is None
    out = None  # full batch: the forward after step t is step t+1's gradient pass and step t's train evaluation
    report_every = max(1, cfg0.steps // 10)
    for step in range(1, cfg0.steps + 1):
        for p in opt.params:
            p.grad = None
        log_acc = cfg0.acc_every is not None and step % cfg0.acc_every == 0
        if full_batch:
            if out is None:
                out = forward(data["x"])
            _loss(out, data["y"], loss_name, data["targets"]).sum().backward()
            if log_acc:  # this step's own forward pass, before the update (S3)
                pre_c = _correct(out.detach(), data["y"], loss_name, data["targets"]).tolist()
        else:
            bx, by = batch()
            _loss(forward(bx), by, loss_name, data["targets"]).sum().backward()
        opt.scale = lr_factor(step, cfg0.per_epoch, cfg0.lr_decay)
        opt.step()
        live = [(row, i) for row, i in enumerate(active) if i not in handed]
        need_eval = any(cells[i].wants_eval(step) for _, i in live)
        with torch.set_grad_enabled(full_batch and step < cfg0.steps):
            out = forward(data["x"]) if (full_batch or log_acc or need_eval) else None
        with torch.no_grad():
            if log_acc or need_eval:
                tout = forward(data["tx"])
                tr_c = _correct(out, data["y"], loss_name, data["targets"]).tolist()
                te_c = _correct(tout, data["ty"], loss_name, data["targets"]).tolist()
            if log_acc:
                logged = pre_c if full_batch else tr_c
                for row, i in live:
                    cells[i].log_accuracy(step, logged[row], te_c[row])
            if need_eval or any(cells[i].done for _, i in live):
                rows = [row for row, i in live if cells[i].wants_eval(step)]
                tr_l = _loss(out, data["y"], loss_name, data["targets"]).tolist()
                te_l = _loss(tout, data["ty"], loss_name, data["targets"]).tolist()
                norms = torch.sqrt(sum(p.detach().pow(2).flatten(1).sum(1) for p in opt.params)).tolist()
                for row in rows:
                    cells[active[row]].evaluate(step, (tr_l[row], tr_c[row]), (te_l[row], te_c[row]), norms[row])
        if progress and (step % report_every == 0):
            progress(f"step {step}/{cfg0.steps}: {len(live)} of {len(configs)} cells still training")
        for _, i in live:
            if cells[i].done:
                handed.add(i)
                results[i] = cells[i].result((time.perf_counter() - started) / len(configs), n_parameters,
                                             len(configs))
                if on_done:
                    on_done(i, results[i])
        keep = [row for row, i in enumerate(active) if i not in handed]
        if not keep:
            break
        if len(keep) == 1 and len(active) > 1:  # never a stack of one: keep a finished row as padding
            keep = sorted(keep + [next(row for row in range(len(active)) if row not in keep)])
        if len(keep) < len(active):
            idx = torch.tensor(keep)
            opt.keep(idx, keep)
            active = [active[row] for row in keep]
            data = {k: (v[idx] if v is not None else None) for k, v in data.items()}
            out = None  # the parameters are new leaves: recompute the forward
    return results


def with_budget(cfg: S3Config, steps: int, eval_every: int) -> S3Config:
    """The same cell with another step budget (benchmarks and tests)."""
    evals = tuple(list(range(eval_every, steps, eval_every)) + [steps])
    return replace(cfg, steps=steps, eval_steps=evals)
