"""Synthetic sequence tasks (book/p1_lag_profiles.md, book/p1_anisotropy.md), after the code of arXiv 2508.12121.

Every task returns ``(x, y, mask)``: inputs x (B, T, m), targets y (B, T, k) and a mask (B, T) of the steps whose
output enters the loss, so that last-step regression and sequence outputs (copy) share one loss,
sum(mask * ||readout(h_t) - y_t||^2) / sum(mask). All draws use the given ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Task = Callable[..., tuple[Tensor, Tensor, Tensor]]
_TASKS: dict[str, Task] = {}


def _task(name: str) -> Callable[[Task], Task]:
    def register(fn: Task) -> Task:
        _TASKS[name] = fn
        return fn

    return register


def names() -> tuple[str, ...]:
    """Registered task names."""
    return tuple(_TASKS)


def make_batch(
    name: str,
    batch: int,
    T: int,
    input_size: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor, Tensor]:
    """One batch of task ``name``: (x (B, T, m), y (B, T, k), mask (B, T))."""
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; available: {sorted(_TASKS)}")
    for label, v, low in (("batch", batch, 1), ("T", T, 2), ("input_size", input_size, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{label} must be an integer >= {low}; got {v!r}")
    x, y, mask = _TASKS[name](batch, T, input_size, generator)
    return x.to(dtype), y.to(dtype), mask.to(dtype)


def output_size(name: str, input_size: int) -> int:
    """Dimension k of the task's targets."""
    return max(input_size - 2, 1) if name == "copy" else 1


def _last_step(y_last: Tensor, T: int) -> tuple[Tensor, Tensor]:
    B = y_last.shape[0]
    y = torch.zeros(B, T, 1, dtype=y_last.dtype)
    y[:, -1, 0] = y_last
    mask = torch.zeros(B, T)
    mask[:, -1] = 1
    return y, mask


def _need(name: str, input_size: int, minimum: int) -> None:
    if input_size < minimum:
        raise ValueError(f"task {name!r} needs input_size >= {minimum}; got {input_size}")


@_task("adding")
def adding(B: int, T: int, m: int, gen) -> tuple[Tensor, Tensor, Tensor]:
    """Values U(0,1) on channels 0..m-2, a marker channel (last) with one 1 in [0, T/2) and one in [T/2, T);
    target at the last step: the sum of channel 0 at the two marked steps."""
    _need("adding", m, 2)
    x = torch.rand(B, T, m, generator=gen)
    x[..., -1] = 0
    first = torch.randint(0, T // 2, (B,), generator=gen)
    second = torch.randint(T // 2, T, (B,), generator=gen)
    rows = torch.arange(B)
    x[rows, first, -1] = 1
    x[rows, second, -1] = 1
    return (x, *_last_step(x[rows, first, 0] + x[rows, second, 0], T))


@_task("copy")
def copy(B: int, T: int, m: int, gen, length: int = 5) -> tuple[Tensor, Tensor, Tensor]:
    """Classic copy memory: ``length`` one-hot symbols (of m - 2) at the start, blanks, a delimiter (channel m-1)
    at step T - length - 1, then the symbols must be output in order on the last ``length`` steps (one-hot, MSE)."""
    _need("copy", m, 4)
    if T < 2 * length + 2:
        raise ValueError(f"copy needs T >= {2 * length + 2} for {length} symbols; got {T}")
    k = m - 2
    symbols = torch.randint(0, k, (B, length), generator=gen)
    x = torch.zeros(B, T, m)
    x[torch.arange(B).unsqueeze(1), torch.arange(length), symbols] = 1
    x[:, length:, m - 2] = 1  # blank channel
    x[:, T - length - 1, m - 2] = 0
    x[:, T - length - 1, m - 1] = 1  # delimiter
    y = torch.zeros(B, T, k)
    y[torch.arange(B).unsqueeze(1), torch.arange(T - length, T), symbols] = 1
    mask = torch.zeros(B, T)
    mask[:, T - length :] = 1
    return x, y, mask


@_task("ar2")
def ar2(B: int, T: int, m: int, gen) -> tuple[Tensor, Tensor, Tensor]:
    """The code's AR(2) task: latent x_t = 1.6 x_{t-1} - 0.7 x_{t-2} + N(0, 0.05^2), target x_T; the inputs are
    independent U(0, 1) distractors (so the target is unlearnable except by memorising a fixed batch)."""
    x = torch.rand(B, T, m, generator=gen)
    z = torch.zeros(B, T + 2)
    noise = 0.05 * torch.randn(B, T, generator=gen)
    for t in range(T):
        z[:, t + 2] = 1.6 * z[:, t + 1] - 0.7 * z[:, t] + noise[:, t]
    return (x, *_last_step(z[:, -1], T))


@_task("movingavg")
def movingavg(B: int, T: int, m: int, gen) -> tuple[Tensor, Tensor, Tensor]:
    """Target: the mean of the last 8 values of channel 0 (U(0,1)); the other channels are 0."""
    x = torch.zeros(B, T, m)
    x[..., 0] = torch.rand(B, T, generator=gen)
    return (x, *_last_step(x[:, -8:, 0].mean(1), T))


@_task("delaysum")
def delaysum(B: int, T: int, m: int, gen) -> tuple[Tensor, Tensor, Tensor]:
    """Target: (1/4) sum of channel 0 at delays d in {4, 12, 24, 36} before the last step (N(0,1) inputs)."""
    if T < 38:
        raise ValueError(f"delaysum needs T >= 38 (its longest delay is 36); got {T}")
    x = torch.randn(B, T, m, generator=gen)
    return (x, *_last_step(sum(x[:, T - 1 - d, 0] for d in (4, 12, 24, 36)) / 4, T))


@_task("narma10")
def narma10(B: int, T: int, m: int, gen) -> tuple[Tensor, Tensor, Tensor]:
    """NARMA-10 on channel 0, u ~ U(0, 0.5): y_{t+1} = 0.3 y_t + 0.05 y_t sum_{i<10} y_{t-i} + 1.5 u_{t-9} u_t + 0.1;
    target y_T."""
    u = 0.5 * torch.rand(B, T, generator=gen)
    y = torch.zeros(B, T + 1)
    for t in range(T):
        past = y[:, max(0, t - 9) : t + 1].sum(1)
        u_lag = u[:, t - 9] if t >= 9 else torch.zeros(B)
        y[:, t + 1] = 0.3 * y[:, t] + 0.05 * y[:, t] * past + 1.5 * u_lag * u[:, t] + 0.1
    x = torch.zeros(B, T, m)
    x[..., 0] = u
    return (x, *_last_step(y[:, -1], T))
