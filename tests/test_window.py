"""window: closed-form windows against numeric root-finding, the discrete window, monotonicity, validation."""

import math

import numpy as np
import pytest
import sympy as sp

from learnability import window

KW = {"threshold": 1.0, "sigma": 1.0, "c": 1.0}


def test_sample_complexity_formula_and_known_value():
    n = window.sample_complexity([0.5, 0.1], 1.5, threshold=2.0, sigma=1.0, c=1.0)
    assert np.allclose(n.numpy(), [(2 / 0.5) ** 3, (2 / 0.1) ** 3])
    # the notes' example: C = c = eps = sigma = 1, tau = 20, alpha = 1.5, N = 1e4 -> H = 61.40
    assert window.window_exponential(1e4, 1.5, tau=20.0, **KW) == pytest.approx(61.40, abs=5e-3)


@pytest.mark.parametrize("alpha", [1.2, 1.5, 2.0])
@pytest.mark.parametrize("N", [10.0, 1e3, 1e6])
def test_closed_forms_equal_root_finding(alpha, N):
    kw = {"threshold": 5.0, "sigma": 0.7, "c": 2.0}
    C = 3.0
    cases = [
        (window.window_exponential(N, alpha, tau=15.0, C=C, **kw), lambda l: C * math.exp(-l / 15.0)),
        (window.window_power(N, alpha, beta=0.8, C=C, **kw), lambda l: C * l**-0.8),
        (window.window_log(N, alpha, gamma=1.5, C=C, **kw), lambda l: C * math.log(l) ** -1.5),
    ]
    for closed, f in cases:
        assert closed > 1.0
        root = window.window_numeric(f, N, alpha, lower=1.0 + 1e-9, upper=10 * closed + 10, **kw)
        assert abs(root - closed) / closed < 1e-8


def test_exponential_window_slope_is_tau_over_kappa_symbolically():
    N, tau, C, eps, sig, c, a = sp.symbols("N tau C epsilon sigma c alpha", positive=True)
    kappa = a / (a - 1)
    level = eps * sig * N ** (-1 / kappa) / c
    H = tau * sp.log(C / level)
    assert sp.simplify(sp.diff(H, N) * N - tau / kappa) == 0
    assert sp.simplify(sp.diff(H, a) - tau * sp.log(N) / a**2) == 0  # > 0 for N > 1: heavier tails shrink H


def test_elasticity_identity_numerically():
    """d log H / d log N = 1 / (kappa beta_loc), beta_loc = -d log f / d log l at l = H."""
    alpha, beta = 1.6, 0.7
    kappa = alpha / (alpha - 1)
    h = lambda N: window.window_power(N, alpha, beta=beta, **KW)  # noqa: E731
    N, d = 1e4, 1e-4
    elasticity = (math.log(h(N * math.exp(d))) - math.log(h(N * math.exp(-d)))) / (2 * d)
    assert elasticity == pytest.approx(1 / (kappa * beta), rel=1e-6)


def test_discrete_window_max_vs_contiguous():
    f = np.array([1.0, 0.5, 0.1, 0.4, 0.01])  # a bump at lag 4
    N = float(window.sample_complexity([0.4], 2.0, **KW)[0])
    assert window.learnability_window(f, N, 2.0, **KW) == 4
    assert window.learnability_window(f, N, 2.0, contiguous=True, **KW) == 2
    assert window.learnability_window(lambda l: 0.9**l, 1e6, 2.0, max_lag=500, **KW) == math.floor(
        window.window_exponential(1e6, 2.0, tau=-1 / math.log(0.9), **KW)
    )
    assert window.learnability_window(f, 1.0 - 1e-12, 2.0, threshold=2.0, sigma=1.0, c=1.0) == 0


def test_window_grows_with_alpha_and_N():
    hs = [window.window_exponential(1e4, a, tau=10.0, **KW) for a in (1.2, 1.5, 1.8, 2.0)]
    assert all(x < y for x, y in zip(hs, hs[1:]))
    hs = [window.window_power(n, 1.5, beta=1.0, **KW) for n in (1e2, 1e3, 1e4)]
    assert all(x < y for x, y in zip(hs, hs[1:]))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: window.sample_complexity([0.5], 1.0, **KW), r"alpha must lie in \(1, 2\]"),
        (lambda: window.sample_complexity([0.5], 2.5, **KW), r"alpha must lie in \(1, 2\]"),
        (lambda: window.sample_complexity([0.0], 1.5, **KW), "finite and positive"),
        (lambda: window.sample_complexity([0.5], 1.5, threshold=0.0, sigma=1.0, c=1.0), "threshold must be a positive"),
        (lambda: window.learnability_window(lambda l: 0.5, 10.0, 1.5, **KW), "needs max_lag"),
        (lambda: window.learnability_window(np.ones((2, 2)), 10.0, 1.5, **KW), "1-D array"),
        (lambda: window.learnability_window([0.5], -1.0, 1.5, **KW), "N must be a positive"),
        (lambda: window.window_exponential(10.0, 1.5, tau=-1.0, **KW), "tau must be a positive"),
        (lambda: window.window_numeric(lambda l: math.exp(-l), 10.0, 1.5, lower=1.0, upper=1.5, **KW), "change sign"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
