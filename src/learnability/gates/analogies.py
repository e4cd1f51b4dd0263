"""Gates and adaptive optimizers side by side (book/p1_analogies.md).

Adam's first moment m_n = beta1 m_{n-1} + (1 - beta1) g_n, m_0 = 0, weights past gradients by (1 - beta1) beta1^k
(eq-adam-ema); a constant gate alpha weights lag k of the state and, at zeroth order, of the update by
alpha (1 - alpha)^k (eq-state-kernel). With beta1 = 1 - alpha the kernels coincide; the averaging, however, runs over
optimisation steps for Adam and over lags within one BPTT pass for the gate.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check_beta(beta: float) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
        raise ValueError(f"beta (EMA decay) must lie in [0, 1); got {beta!r}")
    return float(beta)


def ema_weights(beta: float, n: int) -> Tensor:
    """Weights of m_n on g_1..g_n: (1 - beta) beta^(n - k), k = 1..n (eq-adam-ema), float64."""
    beta = _check_beta(beta)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    k = torch.arange(1, n + 1, dtype=torch.float64)
    return (1 - beta) * beta ** (n - k)


def adam_first_moment(grads: Tensor, beta1: float) -> Tensor:
    """The first moments m_1..m_n that ``torch.optim.Adam`` stores (``exp_avg``) for the gradient sequence
    grads (n, ...), read from the optimizer's state after each step: an independent check of eq-adam-ema."""
    _check_beta(beta1)
    if not isinstance(grads, Tensor) or grads.dim() < 1 or grads.shape[0] < 1:
        raise ValueError("grads must be a tensor (n, ...) with n >= 1")
    p = torch.zeros(grads.shape[1:], dtype=grads.dtype, requires_grad=True)
    opt = torch.optim.Adam([p], lr=1e-3, betas=(beta1, 0.999))
    out = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        out.append(opt.state[p]["exp_avg"].clone())
    return torch.stack(out)


def ema_noise_ratio(beta: float) -> float:
    """Stationary Var(m) / Var(g) of an EMA of iid gradients: sum_k (1-beta)^2 beta^(2k) = (1-beta)/(1+beta)
    (eq-ema-variance); for beta = 1 - alpha this is alpha / (2 - alpha)."""
    beta = _check_beta(beta)
    return (1 - beta) / (1 + beta)
