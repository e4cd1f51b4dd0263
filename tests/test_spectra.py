"""spectra: each closed-form envelope against numeric quadrature of its rate spectrum, and against sampling."""

import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats

from learnability import spectra, window

LAGS = np.array([0.5, 1.0, 7.0, 40.0, 300.0])


def test_gamma_envelope_symbolic_and_quadrature():
    lam, l, beta, theta = sp.symbols("lambda ell beta theta", positive=True)
    density = theta**beta * lam ** (beta - 1) * sp.exp(-theta * lam) / sp.gamma(beta)
    f = sp.integrate(density * sp.exp(-lam * l), (lam, 0, sp.oo), conds="none")
    assert sp.simplify(f - (theta / (theta + l)) ** beta) == 0
    for lag in LAGS:
        quad = integrate.quad(
            lambda x: stats.gamma.pdf(x, 1.7, scale=1 / 0.3) * math.exp(-x * lag),
            0,
            np.inf,
            epsabs=0,
            epsrel=1e-12,
            limit=400,
        )[0]
        assert spectra.envelope_gamma([lag], beta=1.7, theta=0.3)[0] == pytest.approx(quad, rel=1e-8)


def test_uniform_envelope_quadrature():
    for lag in LAGS:
        quad = integrate.quad(lambda x: math.exp(-x * lag) / 0.45, 0.05, 0.5)[0]
        assert spectra.envelope_uniform([lag], rate_min=0.05, rate_max=0.5)[0] == pytest.approx(quad, rel=1e-8)
    assert spectra.envelope_uniform([0.0], rate_min=0.0, rate_max=1.0)[0] == 1.0


def test_loguniform_envelope_quadrature_and_asymptotics():
    t0, t1 = 1.0, 1e6
    for lag in LAGS:
        quad = integrate.quad(lambda u: math.exp(-lag * math.exp(-u)), math.log(t0), math.log(t1), limit=200)[0]
        assert spectra.envelope_loguniform([lag], tau_min=t0, tau_max=t1)[0] == pytest.approx(
            quad / math.log(t1 / t0), rel=1e-8
        )
    mid = np.array([100.0, 1000.0, 10000.0])
    exact = spectra.envelope_loguniform(mid, tau_min=t0, tau_max=t1)
    approx = spectra.envelope_loguniform_asymptotic(mid, tau_min=t0, tau_max=t1)
    assert np.all(np.abs(exact - approx) < 2e-3)


def test_envelope_from_sampled_rates_converges_to_closed_form():
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, 1 / 0.5, size=200_000)
    assert np.allclose(
        spectra.envelope_from_rates(LAGS, rates), spectra.envelope_gamma(LAGS, beta=2.0, theta=0.5), atol=3e-3
    )


def test_mixture_window_slope_is_tau_max_over_kappa():
    """Two time scales: for large N the window grows as (tau_max / kappa) ln N."""
    f = lambda l: float(spectra.envelope_mixture([l], weights=[0.5, 0.5], taus=[5.0, 50.0])[0])  # noqa: E731
    kw = {"threshold": 1.0, "sigma": 1.0, "c": 1.0}
    h = [window.window_numeric(f, n, 2.0, lower=1e-6, upper=2000.0, **kw) for n in (1e8, 1e10)]
    assert (h[1] - h[0]) / math.log(100) == pytest.approx(50.0 / 2.0, rel=1e-3)
    assert h[0] == pytest.approx(50 * (math.log(0.5) + 0.5 * math.log(1e8)), rel=1e-4)


def test_broader_spectrum_gives_larger_window():
    """Same mean rate, larger variance (smaller Gamma shape): pointwise larger f at large l, larger H_N."""
    kw = {"threshold": 1.0, "sigma": 1.0, "c": 1.0}
    narrow = lambda l: float(spectra.envelope_gamma([l], beta=8.0, theta=80.0)[0])  # noqa: E731  mean rate 0.1
    broad = lambda l: float(spectra.envelope_gamma([l], beta=0.5, theta=5.0)[0])  # noqa: E731  mean rate 0.1
    hn = window.window_numeric(narrow, 1e4, 1.5, lower=1e-6, upper=1e9, **kw)
    hb = window.window_numeric(broad, 1e4, 1.5, lower=1e-6, upper=1e12, **kw)
    assert hb > hn


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: spectra.envelope_gamma([1.0], beta=0.0, theta=1.0), "beta must be a positive"),
        (lambda: spectra.envelope_gamma([-1.0], beta=1.0, theta=1.0), "non-negative"),
        (lambda: spectra.envelope_uniform([1.0], rate_min=0.5, rate_max=0.5), "rate_min < rate_max"),
        (lambda: spectra.envelope_loguniform([0.0], tau_min=1.0, tau_max=2.0), "lags > 0"),
        (lambda: spectra.envelope_loguniform([1.0], tau_min=3.0, tau_max=2.0), "tau_min < tau_max"),
        (lambda: spectra.envelope_mixture([1.0], weights=[0.5, 0.4], taus=[1.0, 2.0]), "sum to 1"),
        (lambda: spectra.envelope_mixture([1.0], weights=[1.0], taus=[1.0, 2.0]), "one length"),
        (lambda: spectra.envelope_from_rates([1.0], [-0.1]), "non-negative"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _root(f, level, upper):
    from scipy.optimize import brentq

    return brentq(lambda l: math.log(f(l)) - math.log(level), 1e-9, upper, xtol=1e-13, rtol=1e-15)


def test_spectrum_windows_against_root_finding():
    for level in (0.3, 0.05, 0.01):
        exact = _root(lambda l: spectra.envelope_gamma([l], beta=0.5, theta=10.0)[0], level, 1e12)
        assert spectra.window_gamma(level, beta=0.5, theta=10.0) == pytest.approx(exact, rel=1e-8)
    for level in (0.02, 0.005):  # asymptotic forms: deep in their regime, a few per cent
        exact = _root(lambda l: spectra.envelope_uniform([l], rate_min=0.001, rate_max=0.099)[0], level, 2e4)
        approx = spectra.window_uniform_asymptotic(level, rate_min=0.001, rate_max=0.099)
        assert approx == pytest.approx(exact, rel=0.02)
        exact = _root(lambda l: spectra.envelope_mixture([l], weights=[0.5, 0.5], taus=[10.0, 100.0])[0], level, 3000.0)
        assert spectra.window_mixture_asymptotic(level, weights=[0.5, 0.5], taus=[10.0, 100.0]) == pytest.approx(
            exact, rel=1e-3
        )
    for level in (0.3, 0.5):
        exact = _root(lambda l: spectra.envelope_loguniform([l], tau_min=1.0, tau_max=1e6)[0], level, 1e8)
        approx = spectra.window_loguniform_asymptotic(level, tau_min=1.0, tau_max=1e6)
        assert approx == pytest.approx(exact, rel=0.02)
    assert spectra.window_uniform_asymptotic(0.01, rate_min=0, rate_max=0.1) == pytest.approx(1000.0)
    with pytest.raises(ValueError, match=r"level .* must lie in \(0, 1\)"):
        spectra.window_gamma(1.5, beta=1.0, theta=1.0)


def test_windows_over_N_puts_the_numeric_root_beside_the_formula():
    """For the Gamma spectrum the window formula is exact: both agree; an asymptotic formula that leaves its range
    (H <= 0) gives NaN; empty inputs are refused."""
    cases = {
        "gamma": (
            lambda lag: spectra.envelope_gamma([lag], beta=0.5, theta=10.0)[0],
            lambda level: spectra.window_gamma(level, beta=0.5, theta=10.0),
        ),
        "never": (lambda lag: spectra.envelope_gamma([lag], beta=0.5, theta=10.0)[0], lambda level: -1.0),
    }
    Ns = np.array([10.0, 1e3, 1e5])
    numeric, formula = spectra.windows_over_N(cases, Ns, (1.5, 2.0), threshold=1.0, sigma=1.0, c=1.0)
    assert set(numeric) == set(formula) == {(name, a) for name in cases for a in (1.5, 2.0)}
    np.testing.assert_allclose(numeric["gamma", 1.5], formula["gamma", 1.5], rtol=1e-8)
    assert np.all(np.diff(numeric["gamma", 2.0]) > 0) and np.all(np.isnan(formula["never", 2.0]))
    with pytest.raises(ValueError, match="non-empty"):
        spectra.windows_over_N({}, Ns, (1.5,), threshold=1.0, sigma=1.0, c=1.0)
