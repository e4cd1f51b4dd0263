"""Training a cell with a linear readout on a task of :mod:`learnability.tasks` (used by the Part I experiments)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from . import tasks
from .cells import Cell, make_cell
from .fastpaths import fused

OPTIMIZERS = {
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr),
    "sgd_momentum": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=1e-4),
    "rmsprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr),
}


class SequenceModel(nn.Module):
    """A recurrent cell followed by a linear readout of its hidden state at every step."""

    def __init__(self, cell: Cell, output_size: int, seed: int | None = None) -> None:
        super().__init__()
        self.cell = cell
        self.readout = nn.Linear(cell.hidden_size, output_size, dtype=cell.dtype)
        if seed is not None:
            gen = torch.Generator().manual_seed(seed + 1)
            k = cell.hidden_size**-0.5
            with torch.no_grad():
                self.readout.weight.uniform_(-k, k, generator=gen)
                self.readout.bias.uniform_(-k, k, generator=gen)

    def forward(self, xs: Tensor) -> Tensor:
        return self.readout(self.cell.unroll(xs))


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` inside the block. Training steps these small cells (n <= 128,
    batches of 64-512) one time step at a time, op by op: a second OpenMP thread only adds synchronisation (measured
    on 2 cores: about 10 % slower, and many times slower while another process runs), and one thread makes the
    trained weights independent of the machine's core count (LayerNorm's backward sums its parameter gradients over
    the threads' row blocks)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def training_forward(model: SequenceModel, xs: Tensor) -> Tensor:
    """``model(xs)`` for a training step: the readout of the fused recurrence of :mod:`learnability.fastpaths.fused`
    (the same numbers, hand-written BPTT) where it applies (GRU and LSTM without LayerNorm on the CPU), else of the
    cell's explicit step loop. Only the training loops call it; everything that differentiates the network in other ways
    (``torch.func``, forward mode) calls the model itself."""
    if fused.supports(model.cell):
        return model.readout(fused.unroll(model.cell, xs))
    return model(xs)


def masked_mse(pred: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """sum_{b,t} mask * ||pred - y||^2 / sum mask."""
    if pred.shape != y.shape or mask.shape != pred.shape[:2]:
        raise ValueError(
            f"pred and y must match and mask be (B, T); got {tuple(pred.shape)}, {tuple(y.shape)}, {tuple(mask.shape)}"
        )
    return (mask * ((pred - y) ** 2).sum(-1)).sum() / mask.sum()


def build_model(kind: str, task: str, input_size: int, hidden_size: int, seed: int, **cell_options) -> SequenceModel:
    """Cell of ``kind`` plus readout sized for ``task``, initialised from ``seed``."""
    cell = make_cell(kind, input_size, hidden_size, seed=seed, **cell_options)
    return SequenceModel(cell, tasks.output_size(task, input_size), seed=seed)


def train(
    model: SequenceModel,
    task: str,
    *,
    steps: int,
    batch: int,
    T: int,
    optimizer: str,
    lr: float,
    seed: int,
    checkpoints: tuple[int, ...] = (),
    fixed_batch: bool = False,
    input_jitter: float = 0.0,
) -> tuple[dict[int, dict], list[float]]:
    """Train in place; return ({step: state_dict copy} at ``checkpoints``, loss per step).

    ``fixed_batch=True`` reuses one batch for every step, as the official S2 code effectively does (it creates an
    unseeded ``torch.Generator`` per batch, and a fresh generator always starts from the same default seed).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; available: {sorted(OPTIMIZERS)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer; got {steps!r}")
    if any(c < 0 or c > steps for c in checkpoints):
        raise ValueError(f"checkpoints must lie in [0, steps = {steps}]; got {checkpoints}")
    opt = OPTIMIZERS[optimizer](model.parameters(), lr)
    gen = torch.Generator().manual_seed(seed + 123)
    m = model.cell.input_size
    saved, losses = {}, []
    fixed = tasks.make_batch(task, batch, T, m, gen, dtype=model.cell.dtype) if fixed_batch else None
    if 0 in checkpoints:
        saved[0] = copy.deepcopy(model.state_dict())
    for step in range(1, steps + 1):
        x, y, mask = fixed or tasks.make_batch(task, batch, T, m, gen, dtype=model.cell.dtype)
        if input_jitter:
            x = x + input_jitter * torch.randn(x.shape, generator=gen, dtype=x.dtype)
        loss = masked_mse(training_forward(model, x), y, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step in checkpoints:
            saved[step] = copy.deepcopy(model.state_dict())
    return saved, losses


def evaluate(model: SequenceModel, task: str, *, batch: int, T: int, seed: int) -> float:
    """Masked MSE of ``model`` on a fresh batch drawn from ``torch.Generator().manual_seed(seed)``."""
    x, y, mask = tasks.make_batch(
        task, batch, T, model.cell.input_size, torch.Generator().manual_seed(seed), dtype=model.cell.dtype
    )
    with torch.no_grad():
        return float(masked_mse(training_forward(model, x), y, mask))
