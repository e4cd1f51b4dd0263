"""Quirks of the authors' public code, reproduced so that their effect can be measured (book appendix "errata").

Gate term (book/p1_jacobians.md, erratum after eq-jac-multi): the code of arXiv 2508.12121 builds the gate term
of J_t with phi(a_t) - h_t instead of d_t = phi(a_t) - h_{t-1}, i.e. scaled by the retention 1 - g_t.
"""

from __future__ import annotations

import torch

from .cells import make_cell


def gate_term_error(
    kind: str,
    *,
    gate_init: float | None = None,
    hidden_size: int = 64,
    input_size: int = 4,
    batch: int = 16,
    seed: int = 0,
) -> float:
    """max over a batch of ||J_code - J||_2 / ||J||_2 for a fresh ``scalar`` or ``multi`` cell (float64).

    Random inputs x ~ N(0, 1) and states h = tanh(N(0, 1)); J is the exact Jacobian eq-jac-scalar / eq-jac-multi,
    J_code the same with the code's gate term (``jacobian_terms(..., code_compat=True)``).
    """
    if kind not in ("scalar", "multi"):
        raise ValueError(f"the gate-term erratum concerns the 'scalar' and 'multi' cells; got {kind!r}")
    cell = make_cell(kind, input_size, hidden_size, seed=seed, dtype=torch.float64, gate_init=gate_init)
    gen = torch.Generator().manual_seed(seed + 1)
    x_t = torch.randn(batch, input_size, generator=gen, dtype=torch.float64)
    h_prev = torch.tanh(torch.randn(batch, hidden_size, generator=gen, dtype=torch.float64))
    with torch.no_grad():
        exact = cell.jacobian(x_t, h_prev)
        code = sum(cell.jacobian_terms(x_t, h_prev, code_compat=True).values())
    ratio = torch.linalg.matrix_norm(code - exact, ord=2) / torch.linalg.matrix_norm(exact, ord=2)
    return float(ratio.max())


def code_jacobians(cell, xs: torch.Tensor) -> torch.Tensor:
    """J_1..J_T (B, T, n, n) as the official code of arXiv 2508.12121 builds them: gate term with h_t (scaled by
    the retention), for the gated family."""
    with torch.no_grad():
        flat = cell.states(xs)
        return torch.stack(
            [sum(cell.jacobian_terms(xs[:, t], flat[:, t], code_compat=True).values()) for t in range(xs.shape[1])], 1
        )


def reversed_products_by_lag(J: torch.Tensor, max_lag: int) -> list[torch.Tensor]:
    """The code's product order, R(t, t-l) = J_{t-l+1} ... J_t (reversed), for l = 0..max_lag, in the layout of
    :func:`learnability.transport.transport_by_lag` (entry l, index i: end step t = l + i)."""
    B, T, d, _ = J.shape
    R = torch.eye(d, dtype=J.dtype).expand(B, T + 1, d, d)
    out = [R]
    for lag in range(max_lag):
        R = J[:, : T - lag] @ R[:, 1:]  # R(t, t-l-1) = J_{t-l} R(t, t-l)
        out.append(R)
    return out


def power_iteration_norm(P: torch.Tensor, iters: int = 5, generator: torch.Generator | None = None) -> torch.Tensor:
    """The code's norm estimate: ``iters`` steps of v <- P v / |P v| from a random start, then |P v|. It tends to
    the modulus of the dominant eigenvalue, not to the largest singular value."""
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be a positive integer; got {iters!r}")
    v = torch.randn(*P.shape[:-1], 1, generator=generator, dtype=P.dtype)
    v = v / torch.linalg.vector_norm(v, dim=-2, keepdim=True)
    for _ in range(iters):
        w = P @ v
        v = w / torch.linalg.vector_norm(w, dim=-2, keepdim=True).clamp_min(torch.finfo(P.dtype).tiny)
    return torch.linalg.vector_norm(P @ v, dim=(-2, -1))
