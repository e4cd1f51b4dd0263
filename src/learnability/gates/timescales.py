"""Gate-induced time scales: a retention 1 - g held for one step is a memory time scale -1 / ln(1 - g).

Implements eq-timescale (book/p1_euler_gates.md): the linear part of the leaky step forgets as
(1 - alpha)^l = exp(-l / tau) with tau = -1 / ln(1 - alpha); a data-dependent gate makes tau data- and
neuron-dependent, tau_{t,q} = -1 / ln(r_{t,q}) for the retention r = 1 - g (1 - z for the GRU, f for the LSTM).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..cells import Cell, make_cell


def euler_timescale(alpha: float | Tensor) -> float | Tensor:
    """tau = -1 / ln(1 - alpha) for an update gate alpha in (0, 1] (eq-timescale); alpha = 1 gives tau = 0."""
    t = torch.as_tensor(alpha, dtype=torch.float64)
    if t.isnan().any() or (t <= 0).any() or (t > 1).any():
        raise ValueError(f"alpha (update gate) must lie in (0, 1]; got {alpha!r}")
    tau = -1.0 / torch.log1p(-t)  # log1p(-1) = -inf gives tau = 0 exactly
    return float(tau) if not isinstance(alpha, Tensor) else tau


def retention_timescale(retention: Tensor) -> Tensor:
    """tau = -1 / ln(r) elementwise for retentions r in [0, 1) (eq-timescale); r = 0 gives tau = 0."""
    r = torch.as_tensor(retention)
    if r.isnan().any() or (r < 0).any() or (r >= 1).any():
        raise ValueError("retentions must lie in [0, 1): a retention of 1 never forgets (tau = inf)")
    return -1.0 / torch.log(r)


@torch.no_grad()
def retention_trajectory(cell: Cell, xs: Tensor, state=None) -> Tensor:
    """Retentions r_{t,q} (B, T, n) along the trajectory of ``cell`` driven by xs (B, T, input_size).

    r_t is the retention of step t, evaluated at (x_t, state_{t-1}); see :meth:`learnability.cells.Cell.retention`.
    """
    flat = cell.states(xs, state)
    out = [cell.retention(xs[:, t], cell.unflatten_state(flat[:, t])) for t in range(xs.shape[1])]
    return torch.stack(out, dim=1)


def gate_timescales(cell: Cell, xs: Tensor, state=None) -> Tensor:
    """Per-step, per-neuron time scales tau_{t,q} = -1 / ln r_{t,q} (B, T, n) along the trajectory."""
    return retention_timescale(retention_trajectory(cell, xs, state))


def effective_time(gates: Tensor) -> Tensor:
    """Internal clock of a gated cell, s_t = sum_{j <= t} g_j along the last-but-one axis (eq-time-warp).

    A gate sequence g_t acts as the Euler step dt_t / tau of eq-euler-step: the cell integrates its ODE for
    the internal time s_t, a warped version of the step count t.
    """
    g = torch.as_tensor(gates)
    if g.dim() < 2:
        raise ValueError(f"gates must have a time axis: shape (..., T, n); got {tuple(g.shape)}")
    if g.isnan().any() or (g < 0).any() or (g > 1).any():
        raise ValueError("gate values must lie in [0, 1]")
    return torch.cumsum(g, dim=-2)


def fitted_timescale(trace: Tensor) -> float:
    """Fitted exponential time scale of a positive decaying trace y_l ~ exp(-l / tau): least squares on log y."""
    y = torch.as_tensor(trace).detach().to(torch.float64).reshape(-1)
    if y.numel() < 2 or not bool((y > 0).all()):
        raise ValueError("trace must hold at least two positive values")
    lags = torch.arange(y.numel(), dtype=torch.float64)
    slope = torch.linalg.lstsq(torch.stack([lags, torch.ones_like(lags)], 1), torch.log(y).unsqueeze(1)).solution[0]
    if float(slope) >= 0:
        raise ValueError("trace does not decay: no positive time scale")
    return -1.0 / float(slope)


def simulated_leaky_timescale(alpha: float, steps: int = 60) -> float:
    """Time scale fitted to the simulated impulse response of a leaky cell with W = 0, b = 0 (checks eq-timescale).

    With W = 0 and zero input after a unit pulse at t = 1, h_t = (1 - alpha)^(t-1) alpha tanh(1) exactly.
    """
    cell = make_cell("leaky", 1, 1, alpha=alpha, bias=False, dtype=torch.float64)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2; got {steps!r}")
    with torch.no_grad():
        cell.W.zero_()
        cell.U.fill_(1.0)
        pulse = torch.zeros(1, steps, 1, dtype=torch.float64)
        pulse[0, 0, 0] = 1.0
        return fitted_timescale(cell.unroll(pulse)[0, :, 0])
