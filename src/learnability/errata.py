"""Quirks of the authors' public code, reproduced so that their effect can be measured (book appendix "errata").

Gate term (book/p1_jacobians.md, erratum after eq-jac-multi): the code of arXiv 2508.12121 builds the gate term
of J_t with phi(a_t) - h_t instead of d_t = phi(a_t) - h_{t-1}, i.e. scaled by the retention 1 - g_t.
"""

from __future__ import annotations

import torch

from .cells import make_cell


def gate_term_error(kind: str, *, gate_init: float | None = None, hidden_size: int = 64, input_size: int = 4,
                    batch: int = 16, seed: int = 0) -> float:
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
