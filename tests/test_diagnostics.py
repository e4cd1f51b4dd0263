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
        loop = torch.tensor(
            [
                [
                    sum(float(mu[b, t - 1, i, q] * delta[b, t - 1, q] * v[b, t - lag - 1, q]) for q in range(n))
                    for t in range(lag + 1, T + 1)
                ]
                for b in range(B)
            ]
        )
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
    assert np.allclose(m[:2] * N[:2] ** (1 / kappa) / sigma[:2], eps)  # SNR exactly at the threshold
    assert N[2] == np.inf  # no signal: never detectable
    assert dg.required_samples(0.1, 1.0, 0.9, 1.0) == np.inf  # alpha <= 1: means do not concentrate
    grid = dg.required_samples(m, sigma, alpha, eps, N_grid=[10, 1e4, 1e5])
    assert list(grid) == [1e4, 1e4, np.inf]  # 8000 -> 1e4; exactly 1e4 stays
    with pytest.raises(ValueError):
        dg.required_samples(m, -sigma, alpha, eps)


def test_measured_window_max_versus_contiguous():
    lags = [1, 2, 3, 4, 5]
    N_req = [10, 20, 1e9, 40, 1e9]  # lag 3 undetectable, lag 4 detectable again
    assert dg.measured_window(lags, N_req, 50) == 4
    assert dg.measured_window(lags, N_req, 50, contiguous=True) == 2
    assert dg.measured_window(lags, N_req, 5) == 0


def test_fit_regimes_picks_the_generating_family():
    lags = np.arange(1, 80)
    assert dg.fit_regimes(lags, 2 * np.exp(-lags / 12.0))["best"] == "exponential"
    fit = dg.fit_regimes(lags, 3 * lags**-0.7)
    assert fit["best"] == "power law" and abs(fit["fits"]["power law"]["beta"] - 0.7) < 1e-9
    tempered = lags**-0.5 * np.exp(-((lags / 30.0) ** 0.5))
    assert dg.fit_regimes(lags, tempered)["best"] == "tempered power law"
    assert abs(dg.fit_regimes(lags, 2 * np.exp(-lags / 12.0))["fits"]["exponential"]["tau"] - 12) < 1e-9


def test_constgate_envelope_is_exactly_geometric_at_zero_order():
    s, lags = 0.05, list(range(1, 21))
    cell = make_cell("leaky", 2, 5, alpha=s, dtype=torch.float64, seed=0)
    xs = torch.randn(4, 30, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mu0 = effective_learning_rates(cell, xs, lags, order=0)
    f = envelope(mu0, lags)
    assert torch.allclose(f, 5 * (1 - s) ** torch.tensor(lags, dtype=torch.float64))
    taus = dg.unit_timescales(
        lags, torch.stack([mu0[:, lag - 1 :, i].abs().mean((0, 1)) for i, lag in enumerate(lags)]).numpy()
    )
    assert np.allclose(taus, -1 / math.log(1 - s))  # 19.50 for every unit


def test_envelope_agreement_and_master_fit_on_exact_power_laws():
    lags = np.arange(2, 40)
    agree = dg.envelope_agreement(lags, lags**-2.0, lags**-1.0)
    assert agree["spearman"] == pytest.approx(1.0) and agree["slope_ratio"] == pytest.approx(2.0)
    f = np.exp(-lags / 10.0)
    alpha = np.full(lags.shape, 1.5)
    N_req = 7.0 * f ** (-3.0)  # N = C f^-kappa, kappa(1.5) = 3
    fit = dg.master_fit(f, N_req, alpha)
    assert fit["slope"] == pytest.approx(1.0) and fit["r2"] == pytest.approx(1.0)


def test_noise_floor_marks_exactly_the_detectable_lags():
    lags = np.arange(1, 30)
    f = np.exp(-lags / 8.0)
    alpha = np.full(lags.shape, 1.5)
    N_req = dg.required_samples(f * 0.3, np.ones_like(f), alpha, threshold=2.0)  # signal proportional to f
    for N in (1e3, 1e6):
        floor = dg.noise_floor(f, N_req, alpha, N)
        assert np.array_equal(f >= floor * (1 - 1e-12), N_req <= N * (1 + 1e-12))
        assert np.allclose(floor, floor[0])  # signal proportional to f: one level for every lag
    assert np.isnan(dg.noise_floor([1.0], [np.inf], [1.5], 10.0)[0])


# ----- the calibrated sample-size estimator (book/p2_calibration.md) -----------------------------------------------
LAGS = np.arange(1, 41)
F = np.exp(-LAGS / 10.0)


def stable_lags(alpha: float, signal: float, seed: int, n: int = 8192) -> np.ndarray:
    """(40, n) samples: signal * e^{-l/10} plus SaS(alpha, scale 1) noise at lags 1..40 (the issue's synthetic set)."""
    return (
        sample_sas(alpha, (LAGS.size, n), generator=torch.Generator().manual_seed(seed)).numpy() + signal * F[:, None]
    )


def test_trimmed_location_is_yuens_trimmed_mean_and_standard_error():
    from scipy.stats import mstats, trim_mean

    x = np.random.default_rng(0).standard_t(3, 2001)
    m, se = dg.trimmed_location(x, 0.2)
    assert m == pytest.approx(trim_mean(x, 0.2), rel=1e-12)
    assert se == pytest.approx(float(mstats.trimmed_stde(x, limits=(0.2, 0.2))), rel=2e-3)
    # the z-statistic is standard normal in heavy-tailed noise: 2,000 lags of SaS(1.5) noise
    noise = sample_sas(1.5, (2000, 1024), generator=torch.Generator().manual_seed(4)).numpy()
    z = np.array([np.divide(*dg.trimmed_location(row)) for row in noise])
    assert abs(z.std() - 1) < 0.05 and abs(np.mean(np.abs(z) > 1.96) - 0.05) < 0.015
    with pytest.raises(ValueError, match="trim"):
        dg.trimmed_location(x, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        dg.trimmed_location([1.0, np.nan, 2.0])


@pytest.mark.parametrize("alpha", [1.8, 2.0])
def test_calibrated_estimator_contract(alpha):
    """The issue's contract: no detectable lag in pure noise in >= 9 of 10 repetitions; N_hat within a factor 2 of
    (eps sigma / (c f))^kappa at >= 80 % of the lags whose true N <= n/8; master slope 1 +- 0.25 on average."""
    eps, n = 5.0, 8192
    noise_hits = sum(
        dg.sample_size_estimates(stable_lags(alpha, 0.0, 100 + rep), eps)["detected"].any() for rep in range(10)
    )
    assert noise_hits <= 1
    N_true = (eps / (0.5 * F)) ** (alpha / (alpha - 1))
    scored = N_true <= n / 8
    fractions, slopes = [], []
    for rep in range(4):
        est = dg.sample_size_estimates(stable_lags(alpha, 0.5, rep), eps)
        assert est["N"].shape == est["alpha"].shape == (40,) and abs(est["alpha"][0] - alpha) < 0.05
        ratio = est["N"][scored] / N_true[scored]
        fractions.append(np.mean((ratio >= 0.5) & (ratio <= 2)))
        slopes.append(dg.master_fit(F, est["N"], est["alpha"])["slope"])
        assert np.all(np.isinf(est["N"][~est["detected"]]))
    assert min(fractions) >= 0.8 and abs(np.mean(slopes) - 1) <= 0.25


def test_the_authors_estimator_finds_windows_in_pure_noise():
    """The defect the calibrated estimator removes: with no signal at any lag, |mean| is still positive, so every lag
    gets a finite N_hat (about n eps^2 / z^2, z the mean's noise in standard errors), and the window at N = 10^6
    reaches the end of the grid."""
    noise = stable_lags(1.8, 0.0, 3)
    authors = dg.authors_sample_size(noise, 5.0)
    assert np.all(np.isfinite(authors["N"])) and dg.measured_window(LAGS, authors["N"], 1e6) > 30
    assert not np.any(np.isfinite(dg.sample_size_estimates(noise, 5.0)["N"]))


def test_signal_law_fit_recovers_gamma_and_its_interval():
    data = stable_lags(1.8, 0.5, 7)
    loc = np.array([dg.trimmed_location(row) for row in data])
    fit = dg.signal_law_fit(F, loc[:, 0], loc[:, 1])
    assert fit["gamma_low"] <= 1 <= fit["gamma_high"] and fit["gamma_high"] - fit["gamma_low"] < 0.3
    assert fit["c"] == pytest.approx(0.5, rel=0.15)
    squared = sample_sas(1.8, (40, 8192), generator=torch.Generator().manual_seed(8)).numpy() + F[:, None] ** 2
    loc2 = np.array([dg.trimmed_location(row) for row in squared])
    fit2 = dg.signal_law_fit(F, -loc2[:, 0], loc2[:, 1])  # a negative signal: the law is on |m|
    assert fit2["gamma_low"] <= 2 <= fit2["gamma_high"] and not fit2["gamma_low"] <= 1 <= fit2["gamma_high"]
    noise = np.array([dg.trimmed_location(row) for row in stable_lags(1.8, 0.0, 5)])
    wide = dg.signal_law_fit(F, noise[:, 0], noise[:, 1])
    assert wide["gamma_high"] - wide["gamma_low"] > 1  # no signal: gamma is not identified
    with pytest.raises(ValueError, match="at least 3 lags"):
        dg.signal_law_fit(F[:2], loc[:2, 0], loc[:2, 1])


def test_detection_threshold_is_the_stable_quantile():
    from scipy.stats import norm

    assert dg.detection_threshold(2.0, 0.05) == pytest.approx(np.sqrt(2) * norm.isf(0.025))
    draws = sample_sas(1.5, 400_000, generator=torch.Generator().manual_seed(1)).numpy()
    q = dg.detection_threshold(1.5, 0.05)
    assert np.mean(np.abs(draws) > q) == pytest.approx(0.05, abs=0.002)
    with pytest.raises(ValueError, match="alpha"):
        dg.detection_threshold(1.0, 0.05)


def test_empirical_sample_size_matches_the_quantile_law_for_gaussian_noise():
    """With power 1/2 the subsampling detector fires at N = (q sigma / m)^kappa (eq-sample-size-empirical), with m and
    sigma the sample's own mean and scale (Gaussian: sd / sqrt 2)."""
    data = stable_lags(2.0, 0.5, 11)
    grid = np.unique(np.geomspace(2, 1024, 30).astype(int))
    emp = dg.empirical_sample_size(data, grid, reps=400, seed=0)
    q = dg.detection_threshold(2.0, 0.05)
    predicted = (q * data.std(1) / np.sqrt(2) / np.abs(data.mean(1))) ** 2
    ok = predicted <= 512
    assert ok.sum() >= 10 and np.all(np.isfinite(emp[ok]))
    assert np.all(np.abs(np.log(emp[ok] / predicted[ok])) < np.log(1.4))
    assert np.all(np.isinf(emp[predicted > 4096]))  # beyond n/8: censored
    with pytest.raises(ValueError, match="false_alarm"):
        dg.empirical_sample_size(data, grid, false_alarm=0.7)
