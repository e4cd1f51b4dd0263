"""Part II estimators on synthetic inputs with known answers."""

import math

import numpy as np
import pytest
import torch

from learnability import diagnostics as dg
from learnability.cells import make_cell
from learnability.effective_lr import effective_learning_rates, envelope
from learnability.stable import sample_sas


def test_matched_statistic_matches_a_loop_and_both_sample_modes():
    gen = torch.Generator().manual_seed(0)
    B, T, L, n = 3, 7, 2, 4
    mu, delta, v = (torch.randn(*s, generator=gen, dtype=torch.float64) for s in ((B, T, L, n), (B, T, n), (B, T, n)))
    lags = [1, 3]
    pairs = dg.matched_statistic(mu, delta, v, lags, per_sequence=False)
    means = dg.matched_statistic(mu, delta, v, lags)
    for i, lag in enumerate(lags):
        # step t (1-based) pairs mu/delta at index t-1 with v at state t - lag (index t - lag - 1)
        loop = torch.tensor([[sum(float(mu[b, t - 1, i, q] * delta[b, t - 1, q] * v[b, t - lag - 1, q])
                                  for q in range(n)) for t in range(lag + 1, T + 1)] for b in range(B)])
        assert torch.allclose(pairs[i], loop.reshape(-1).double())
        assert torch.allclose(means[i], loop.double().mean(1))
    with pytest.raises(ValueError, match="lags must be"):
        dg.matched_statistic(mu, delta, v, [1, T])
    with pytest.raises(ValueError, match="need mu"):
        dg.matched_statistic(mu, delta[:, :-1], v, lags)


def test_lag_statistics_recover_a_known_stable_law():
    gen = torch.Generator().manual_seed(1)
    x = sample_sas(1.6, 200_000, scale=2.0, generator=gen, dtype=torch.float64) + 0.3
    st = dg.lag_statistics([x])
    assert abs(st["alpha"][0] - 1.6) < 0.03 and abs(st["sigma"][0] - 2.0) < 0.06 and abs(st["m"][0] - 0.3) < 0.05


def test_required_samples_solves_the_threshold_and_snaps_to_the_grid():
    m, sigma, alpha, eps = np.array([0.1, 0.02, 0.0]), np.array([1.0, 1.0, 1.0]), np.array([1.5, 2.0, 1.5]), 2.0
    N = dg.required_samples(m, sigma, alpha, eps)
    kappa = alpha[:2] / (alpha[:2] - 1)
    assert np.allclose(m[:2] * N[:2] ** (1 / kappa) / sigma[:2], eps)      # SNR exactly at the threshold
    assert N[2] == np.inf                                                  # no signal: never detectable
    assert dg.required_samples(0.1, 1.0, 0.9, 1.0) == np.inf               # alpha <= 1: means do not concentrate
    grid = dg.required_samples(m, sigma, alpha, eps, N_grid=[10, 1e4, 1e5])
    assert list(grid) == [1e4, 1e4, np.inf]                                # 8000 -> 1e4; exactly 1e4 stays
    with pytest.raises(ValueError):
        dg.required_samples(m, -sigma, alpha, eps)


def test_measured_window_max_versus_contiguous():
    lags = [1, 2, 3, 4, 5]
    N_req = [10, 20, 1e9, 40, 1e9]          # lag 3 undetectable, lag 4 detectable again
    assert dg.measured_window(lags, N_req, 50) == 4
    assert dg.measured_window(lags, N_req, 50, contiguous=True) == 2
    assert dg.measured_window(lags, N_req, 5) == 0


def test_fit_regimes_picks_the_generating_family():
    lags = np.arange(1, 80)
    assert dg.fit_regimes(lags, 2 * np.exp(-lags / 12.0))["best"] == "exponential"
    fit = dg.fit_regimes(lags, 3 * lags ** -0.7)
    assert fit["best"] == "power law" and abs(fit["fits"]["power law"]["beta"] - 0.7) < 1e-9
    tempered = lags ** -0.5 * np.exp(-(lags / 30.0) ** 0.5)
    assert dg.fit_regimes(lags, tempered)["best"] == "tempered power law"
    assert abs(dg.fit_regimes(lags, 2 * np.exp(-lags / 12.0))["fits"]["exponential"]["tau"] - 12) < 1e-9


def test_constgate_envelope_is_exactly_geometric_at_zero_order():
    s, lags = 0.05, list(range(1, 21))
    cell = make_cell("leaky", 2, 5, alpha=s, dtype=torch.float64, seed=0)
    xs = torch.randn(4, 30, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mu0 = effective_learning_rates(cell, xs, lags, order=0)
    f = envelope(mu0, lags)
    assert torch.allclose(f, 5 * (1 - s) ** torch.tensor(lags, dtype=torch.float64))
    taus = dg.unit_timescales(lags, torch.stack([mu0[:, lag - 1:, i].abs().mean((0, 1))
                                                 for i, lag in enumerate(lags)]).numpy())
    assert np.allclose(taus, -1 / math.log(1 - s))                          # 19.50 for every unit


def test_envelope_agreement_and_master_fit_on_exact_power_laws():
    lags = np.arange(2, 40)
    agree = dg.envelope_agreement(lags, lags ** -2.0, lags ** -1.0)
    assert agree["spearman"] == pytest.approx(1.0) and agree["slope_ratio"] == pytest.approx(2.0)
    f = np.exp(-lags / 10.0)
    alpha = np.full(lags.shape, 1.5)
    N_req = 7.0 * f ** (-3.0)                                               # N = C f^-kappa, kappa(1.5) = 3
    fit = dg.master_fit(f, N_req, alpha)
    assert fit["slope"] == pytest.approx(1.0) and fit["r2"] == pytest.approx(1.0)


def test_noise_floor_marks_exactly_the_detectable_lags():
    lags = np.arange(1, 30)
    f = np.exp(-lags / 8.0)
    alpha = np.full(lags.shape, 1.5)
    N_req = dg.required_samples(f * 0.3, np.ones_like(f), alpha, threshold=2.0)   # signal proportional to f
    for N in (1e3, 1e6):
        floor = dg.noise_floor(f, N_req, alpha, N)
        assert np.array_equal(f >= floor * (1 - 1e-12), N_req <= N * (1 + 1e-12))
        assert np.allclose(floor, floor[0])          # signal proportional to f: one level for every lag
    assert np.isnan(dg.noise_floor([1.0], [np.inf], [1.5], 10.0)[0])
