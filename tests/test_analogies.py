"""analogies: Adam's first moment against the constant-gate kernel, the EMA variance, validation."""

import pytest
import sympy as sp
import torch

from learnability.effective_lr import state_kernel
from learnability.gates import analogies


def test_adam_exp_avg_equals_ema_weights_and_the_gate_kernel():
    alpha, n = 0.1, 30
    grads = torch.randn(n, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m = analogies.adam_first_moment(grads, beta1=1 - alpha)
    w = analogies.ema_weights(1 - alpha, n)
    assert torch.allclose(m[-1], (w.unsqueeze(1) * grads).sum(0), atol=1e-12)
    gate = state_kernel(torch.full((1, n, 1), alpha, dtype=torch.float64))[0, -1, :, 0]
    assert torch.allclose(gate, w, atol=1e-15)


def test_ema_kernel_symbolically():
    b = sp.Symbol("beta")
    g = sp.symbols("g1:7")
    m = 0
    for gk in g:
        m = b * m + (1 - b) * gk
    m = sp.expand(m)
    for k, gk in enumerate(g, start=1):
        assert sp.simplify(m.coeff(gk) - (1 - b) * b ** (len(g) - k)) == 0


def test_ema_noise_ratio_symbolic_and_monte_carlo():
    a, k = sp.symbols("alpha k", positive=True)
    total = sp.summation(a**2 * (1 - a) ** (2 * k), (k, 0, sp.oo))
    convergent = total.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0])  # 0 < alpha < 1
    assert sp.simplify(convergent - a / (2 - a)) == 0
    grads = torch.randn(4000, 2000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    m = analogies.adam_first_moment(grads, beta1=0.8)[-1]
    assert float(m.var()) == pytest.approx(analogies.ema_noise_ratio(0.8), rel=0.1)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: analogies.ema_weights(1.0, 3), r"beta .* must lie in \[0, 1\)"),
        (lambda: analogies.ema_weights(0.5, 0), "n must be a positive integer"),
        (lambda: analogies.adam_first_moment(torch.zeros(0), 0.9), "grads must be"),
        (lambda: analogies.ema_noise_ratio(-0.1), "must lie in"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
