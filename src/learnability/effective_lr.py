"""Per-lag, per-neuron effective learning rates mu and the envelope f (book/p1_effective_lr.md).

Split each one-step Jacobian's diagonal into the retention r_j (1 - g, 1 - z, or f for the LSTM's cell state) and
the rest, rt_j = diag(J_j) - r_j. For a window j = t - l + 1..t ending at step t (eq-mu):

    order 0:  mu0_{t,l} = prod_j r_j
    order 1:  mu1_{t,l} = prod_j r_j * (1 + sum_j rt_j / r_j)
    exact:    prod_j (r_j + rt_j) = prod_j diag(J_j)          (the diagonal product, no first-order truncation)

Products over windows are differences of prefix sums of logs, so all (t, l) pairs cost O(T) per lag, and long
sequences stay finite. The ground truth for all three is the diagonal of the transport Phi(t, t - l).
The diagonals of J come from ``Cell.jacobian_diagonal`` (eq-jac-diagonal, O(n^2) per step) rather than from full
Jacobians (O(n^3)): profiled on the authors' medium configuration (bench/bench_peers.py), the pipeline's
:func:`trajectory_diagonals` went from 12.5 s to about 1 s.
For the LSTM the neuron coordinates are those of the cell state c (indices n..2n-1 of the flat state); there the
first-order bracket vanishes (the c -> c block of the Jacobian is exactly diag(f)), and the authors' code uses a
different rate instead, with a window-end factor and an h-mediated correction (:func:`lstm_code_diagonals`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .cells import Cell
from .transport import jacobians

_CLAMP = 1e-300


ROWS = 4096
"""(sequence, step) pairs per ``jacobian_diagonal`` call in :func:`trajectory_diagonals` and
:func:`lstm_code_diagonals`: bounds their temporaries (some fifteen (rows, n) tensors) whatever the batch."""


def _step_inputs(cell: Cell, xs: Tensor, state=None, states: Tensor | None = None) -> Iterator[tuple[Tensor, object]]:
    """Chunks of at most ``ROWS`` (sequence, step) pairs as batch rows, sequence-major: x (rows, m) and the states the
    steps start from (one pass, or ``states`` = ``cell.states(xs, state)`` when the caller has it; a step's
    Jacobian depends only on its input and incoming state)."""
    flat = (cell.states(xs, state) if states is None else states)[:, :-1]
    B, T, m = xs.shape
    x, flat = xs.reshape(B * T, m), flat.reshape(B * T, -1)
    for start in range(0, B * T, ROWS):
        yield x[start : start + ROWS], cell.unflatten_state(flat[start : start + ROWS])


def trajectory_diagonals(
    cell: Cell, xs: Tensor, state=None, states: Tensor | None = None, *, split: bool = True
) -> tuple[Tensor, Tensor]:
    """Retentions r (B, T, n) and diagonal corrections rt = diag(J) - r (B, T, n) along the trajectory, from
    ``cell.jacobian_diagonal`` of the (sequence, step) pairs in chunks of ``ROWS`` (eq-jac-diagonal: O(B T n^2)
    work and O(B T n) memory for the built-in cells, no Jacobian formed); ``states`` as in ``_step_inputs``.
    ``split=False`` (a cell without a ``retention``): r = diag(J) and rt = 0, whose ``order="exact"`` windows are the
    diagonal products (orders 0 and 1 assume retentions in (0, 1] and do not apply to them)."""
    B, n = xs.shape[0], cell.hidden_size
    parts = []
    for x, s in _step_inputs(cell, xs, state, states):
        diag = cell.jacobian_diagonal(x, s)[..., -n:]  # cell-state coordinates of an LSTM
        parts.append((diag, cell.retention(x, s) if split else diag))
    diag, r = (torch.cat(p).reshape(B, -1, n) for p in zip(*parts))
    return r, diag - r


def lstm_code_diagonals(
    cell: Cell, xs: Tensor, state=None, states: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """The ingredients of the LSTM rates of the authors' code (eq-lstm-code-rates), each (B, T, n): the forget gate
    f_j (the retention), the h-mediated correction r_j = [dc_j/dh_{j-1}]_qq e_{j-1}, and the window-end factor
    e_j = dh_j/dc_j = o_j (1 - tanh^2 c_j), the within-step derivative of h_j = o_j tanh(c_j) (e_0 = 0: the initial
    h does not depend on the initial c). f_j + r_j is the diagonal of the cell-state map c_{j-1} -> c_j when h_{j-1}
    follows c_{j-1} within its step. Our [dc_j/dh_{j-1}]_qq is the exact block's diagonal, LayerNorm Jacobian
    included; the authors' code drops that Jacobian (flag F8), so the two agree without LayerNorm. ``states`` as in
    ``_step_inputs``."""
    if getattr(cell, "kind", None) != "lstm":
        raise ValueError(f"lstm_code_diagonals needs an LSTM cell; got {getattr(cell, 'kind', type(cell).__name__)!r}")
    parts = [cell.block_diagonals(x, s) for x, s in _step_inputs(cell, xs, state, states)]
    blocks = {k: torch.cat([p[k] for p in parts]).reshape(xs.shape[0], -1, cell.hidden_size) for k in parts[0]}
    f, dc_dh, e = blocks["cc"], blocks["ch"], blocks["hc"] / blocks["cc"]  # o dtanh(c) f / f
    e_prev = torch.cat([torch.zeros_like(e[:, :1]), e[:, :-1]], 1)
    return f, dc_dh * e_prev, e


def lstm_code_windows(f: Tensor, r: Tensor, e: Tensor, lags) -> Iterator[tuple[int, int, Tensor]]:
    """(i, lag, mu) per lag in the layout of :func:`windows`, for the authors' LSTM rates (eq-lstm-code-rates):
    mu_{t,l} = e_t prod_j f_j (1 + sum_j r_j / f_j) over the window j = t - l + 1..t, from
    :func:`lstm_code_diagonals`."""
    for i, lag, value in windows(f, r, lags, order=1)[1]:
        yield i, lag, value * e[:, lag - 1 :].double()


def _check_lags(lags, T: int) -> list[int]:
    lags = [lags] if isinstance(lags, int) else list(lags)
    if not lags or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in lags):
        raise ValueError(f"lags must be positive integers; got {lags!r}")
    if max(lags) > T:
        raise ValueError(f"a lag cannot exceed the sequence length T = {T}; got {max(lags)}")
    return lags


def windows(
    r: Tensor, rt: Tensor, lags, order: int | str, magnitude: bool = False
) -> tuple[list[int], Iterator[tuple[int, int, Tensor]]]:
    """The checked lags and an iterator of (i, lag, mu) for each lag: mu (B, T - lag + 1, n) in float64 for the
    window ends t = lag..T (eq-mu), from prefix sums in log space (one vectorised expression per lag, no loop over
    t); the sign of the exact product is the parity of its negative factors. ``magnitude`` gives |mu| for the exact
    order without the sign (an envelope needs no more). Arguments are checked at the call, not at the first
    iteration."""
    if r.shape != rt.shape or r.dim() != 3:
        raise ValueError(f"r and rt must both have shape (B, T, n); got {tuple(r.shape)} and {tuple(rt.shape)}")
    if order not in (0, 1, "exact"):
        raise ValueError(f"order must be 0, 1 or 'exact'; got {order!r}")
    B, T, n = r.shape
    lags = _check_lags(lags, T)
    r64, rt64 = r.double(), rt.double()
    zero = torch.zeros(B, 1, n, dtype=torch.float64, device=r.device)
    if order == "exact":
        full = r64 + rt64
        log_abs = torch.cat([zero, torch.cumsum(torch.log(full.abs().clamp_min(_CLAMP)), 1)], 1)
        negatives = torch.cat([zero.long(), torch.cumsum((full < 0).long(), 1)], 1)
    else:
        log_abs = torch.cat([zero, torch.cumsum(torch.log(r64.clamp_min(_CLAMP)), 1)], 1)
        ratio = torch.cat([zero, torch.cumsum(rt64 / r64.clamp_min(_CLAMP), 1)], 1)

    def each() -> Iterator[tuple[int, int, Tensor]]:
        for i, lag in enumerate(lags):
            value = (log_abs[:, lag:] - log_abs[:, : T + 1 - lag]).exp_()  # windows j = t-lag+1..t, t = lag..T
            if order == "exact" and not magnitude:
                odd = (negatives[:, lag:] - negatives[:, : T + 1 - lag]).bitwise_and_(1).bool()
                value = torch.where(odd, -value, value)
            elif order == 1:
                value.mul_((ratio[:, lag:] - ratio[:, : T + 1 - lag]).add_(1))
            yield i, lag, value

    return lags, each()


def window_products(r: Tensor, rt: Tensor, lags, order: int | str = 0) -> Tensor:
    """mu[b, t-1, i, q] for lag lags[i] ending at step t from retentions r and corrections rt (B, T, n); eq-mu.

    ``order`` 0, 1 or ``"exact"`` (see the module docstring). Windows that start before step 1 (t < lag) are 0.
    """
    lags, per_lag = windows(r, rt, lags, order)
    B, T, n = r.shape
    out = torch.zeros(B, T, len(lags), n, dtype=torch.float64, device=r.device)
    for i, lag, value in per_lag:
        out[:, lag - 1 :, i] = value
    return out.to(r.dtype)


def window_envelope(r: Tensor, rt: Tensor, lags, order: int | str = 1, reduce: str = "sum") -> Tensor:
    """The envelope f(l) (eq-envelope) straight from retentions and corrections, one lag at a time, without
    forming the (B, T, L, n) tensor of :func:`window_products`: equal to ``envelope(window_products(...))``."""
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean'; got {reduce!r}")
    values = []
    for _, _, mu in windows(r, rt, lags, order, magnitude=True)[1]:
        values.append((mu.abs().sum(-1) if reduce == "sum" else mu.abs().mean(-1)).mean())
    return torch.stack(values).to(r.dtype)


def effective_learning_rates(cell: Cell, xs: Tensor, lags, order: int | str = 0, state=None) -> Tensor:
    """mu (B, T, len(lags), n): per-neuron effective learning rate of lag lags[i] ending at step t (eq-mu).

    mu[b, t-1, i, q] covers the window j = t - l + 1..t; order 0 is the product of retentions, order 1 adds the
    first-order diagonal bracket, ``"exact"`` is the diagonal product; positions with t < lag are 0.
    """
    if not isinstance(xs, Tensor) or xs.dim() != 3:
        raise ValueError("xs must be a tensor of shape (batch, T, input_size)")
    with torch.no_grad():
        r, rt = trajectory_diagonals(cell, xs, state)
    return window_products(r, rt, lags, order)


def cell_envelope(cell: Cell, xs: Tensor, lags, order: int | str = 1, reduce: str = "sum", state=None) -> Tensor:
    """f(l) of ``cell`` along the trajectory driven by xs (eq-envelope), by :func:`window_envelope`: the same numbers
    as ``envelope(effective_learning_rates(...))`` in O(B T n) memory."""
    if not isinstance(xs, Tensor) or xs.dim() != 3:
        raise ValueError("xs must be a tensor of shape (batch, T, input_size)")
    with torch.no_grad():
        r, rt = trajectory_diagonals(cell, xs, state)
    return window_envelope(r, rt, lags, order, reduce)


def gate_product_profile(gates: Tensor, max_lag: int, extra: int = 0) -> np.ndarray:
    """Zeroth-order lag profile from a gate sequence (B, T, n): for l = 1..max_lag, the median over sequences and
    window ends of the mean over neurons of the product of the last l + ``extra`` gates, normalised at l = 1
    (eq-power-fit). With retentions this is the median of mu0 (eq-mu); with update gates and ``extra=1`` it is
    the predictor of the official S1 code (its off-by-one included)."""
    if gates.dim() != 3:
        raise ValueError(f"gates must have shape (B, T, n); got {tuple(gates.shape)}")
    T = gates.shape[1]
    widths = [min(lag + extra, T) for lag in range(1, max_lag + 1)]
    mu = window_products(gates, torch.zeros_like(gates), widths, order=0)
    out = np.array([float(mu[:, w - 1 :, i].mean(-1).median()) for i, w in enumerate(widths)])
    return out / out[0]


def transport_diagonal_windows(
    cell: Cell, xs: Tensor, lags, stride: int = 1, state=None
) -> Iterator[tuple[int, int, Tensor]]:
    """Ground truth on sampled windows: (i, lag, diag) per lag, diag (B, S, n) the diagonal of Phi(k + lag, k) in
    neuron coordinates for the window starts k = 0, stride, 2 stride, ... <= T - lag, which is the layout of
    :func:`windows` taken every ``stride``-th start (``mu[:, ::stride]``). From each start the product
    Phi(k + j, k) = J_{k+j} Phi(k + j - 1, k) is carried forward one step at a time, all starts at once, and its
    diagonal kept at the lags asked for: (T / stride) max(lags) matrix products per sequence."""
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive integer; got {stride!r}")
    T, n = xs.shape[1], cell.hidden_size
    lags = _check_lags(lags, T)
    with torch.no_grad():
        J = jacobians(cell, xs, state)  # J[:, t - 1] = J_t
    starts = torch.arange(0, T, stride)
    P = torch.eye(J.shape[-1], dtype=J.dtype).expand(J.shape[0], len(starts), -1, -1).clone()
    where = {lag: i for i, lag in enumerate(lags)}
    for j in range(1, max(lags) + 1):
        active = int((starts <= T - j).sum())  # starts whose window k + j still fits
        P = J[:, starts[:active] + j - 1] @ P[:, :active]
        if j in where:
            d = torch.diagonal(P, dim1=-2, dim2=-1)
            yield where[j], j, d[..., -n:]  # the cell-state coordinates of an LSTM


def transport_diagonal(cell: Cell, xs: Tensor, lags, state=None) -> Tensor:
    """Ground truth: the diagonal of Phi(t, t - l) in neuron coordinates, same layout as mu (B, T, len(lags), n),
    from :func:`transport_diagonal_windows` with every window start."""
    lags = _check_lags(lags, xs.shape[1])
    out = torch.zeros(xs.shape[0], xs.shape[1], len(lags), cell.hidden_size, dtype=xs.dtype)
    for i, lag, d in transport_diagonal_windows(cell, xs, lags, 1, state):
        out[:, lag - 1 :, i] = d  # window ends t = lag..T
    return out


def envelope(mu: Tensor, lags, reduce: str = "sum") -> Tensor:
    """f(l) = ||mu_{t,l}||_1 averaged over sequences and window ends t >= l (eq-envelope): (len(lags),).

    ``mu`` as returned by :func:`effective_learning_rates` for the same ``lags``. ``reduce="sum"`` sums |mu| over
    neurons (the L1 norm); ``"mean"`` averages them (the normalisation of the learnability code's first version).
    """
    if mu.dim() != 4:
        raise ValueError(f"mu must have shape (B, T, L, n); got {tuple(mu.shape)}")
    lags = _check_lags(lags, mu.shape[1])
    if len(lags) != mu.shape[2]:
        raise ValueError(f"mu holds {mu.shape[2]} lags but {len(lags)} were given")
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean'; got {reduce!r}")
    per = mu.abs().sum(-1) if reduce == "sum" else mu.abs().mean(-1)  # (B, T, L)
    return torch.stack([per[:, lag - 1 :, i].mean() for i, lag in enumerate(lags)])


def state_kernel(gates: Tensor) -> Tensor:
    """w[b, t-1, k-1, q] = g_k prod_{j=k+1..t} (1 - g_j) for 1 <= k <= t <= T (eq-state-kernel); gates (B, T, n).

    The gated state is exactly h_t = sum_k w_{t,k} phi(a_k) + prod_{j<=t} (1 - g_j) h_0 (eq-state-filter).
    """
    if gates.dim() != 3:
        raise ValueError(f"gates must have shape (B, T, n); got {tuple(gates.shape)}")
    g = gates.double()
    B, T, n = g.shape
    log_keep = torch.cat(
        [torch.zeros(B, 1, n, dtype=torch.float64), torch.cumsum(torch.log((1 - g).clamp_min(_CLAMP)), 1)], 1
    )  # index t: sum_{j<=t}
    t = torch.arange(1, T + 1).view(T, 1)
    k = torch.arange(1, T + 1).view(1, T)
    mask = (k <= t).double().unsqueeze(0).unsqueeze(-1)
    # prod_{j=k+1..t} (1 - g_j) = exp(log_keep[t] - log_keep[k])
    decay = torch.exp((log_keep[:, 1:].unsqueeze(2) - log_keep[:, 1:].unsqueeze(1)).clamp_max(0.0))
    return (decay * g.unsqueeze(1) * mask).to(gates.dtype)


def state_filter(cell: Cell, xs: Tensor, state=None) -> Tensor:
    """Hidden states rebuilt by the filter eq-state-filter from the gates and candidates along the trajectory.

    Only for the gated family (plain, leaky, scalar, multi): equals ``cell.unroll(xs, state)``.
    """
    if not hasattr(cell, "gate_and_candidate"):
        raise ValueError(
            f"state_filter needs a cell of the gated family (plain, leaky, scalar, multi); got {cell.kind!r}"
        )
    with torch.no_grad():
        flat = cell.states(xs, state)
        parts = [cell.gate_and_candidate(xs[:, t], flat[:, t]) for t in range(xs.shape[1])]
        g = torch.stack([p[0] for p in parts], 1)
        phi = torch.stack([p[1] for p in parts], 1)
        w = state_kernel(g)
        keep = torch.cumprod(1 - g, 1)
        return torch.einsum("btkq,bkq->btq", w, phi) + keep * flat[:, :1]
