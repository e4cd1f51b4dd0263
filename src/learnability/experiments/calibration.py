"""Calibrating the sample-size estimators (book/p2_calibration.md) on data with a known answer.

Per lag l = 1..L the samples are X_i(l) = c f(l) + xi_i, xi_i iid SaS(alpha, scale 1), f(l) = e^{-l/tau}: the law
N(l) = (eps / (c f(l)))^kappa_alpha holds by construction (eq-sample-complexity, sigma = 1). With c = 0 the same
draws are pure noise, where no lag is detectable from any number of samples. For every (alpha, n samples per lag)
and ``reps`` repetitions, both estimators run on both kinds of data:

- the authors' (``diagnostics.authors_sample_size``: per-lag alpha_hat, sigma_hat, m_hat = |mean|, N_hat at every
  lag), and
- the calibrated one (``diagnostics.sample_size_estimates``: trimmed-mean signal with a family-wise test, pooled
  alpha_hat, N_hat only at detectable lags), with the folded-normal fit of the signal law m = c f^gamma
  (``diagnostics.signal_law_fit``) and, on the first repetition, the subsampling N_emp
  (``diagnostics.empirical_sample_size``).

Recorded per repetition: the number of lags called detectable in pure noise, the window H_N both estimators measure
there (the true one is 0), N_hat / N_true at the lags whose true N is at most n/8, the master slope
(``diagnostics.master_fit``, predicted 1), gamma_hat with its interval, and the measured windows on the signal data
against the true H_N, at N = n/8 and N = n (a window at N far beyond the n samples measured is an extrapolation).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from ..diagnostics import (
    authors_sample_size,
    detection_threshold,
    empirical_sample_size,
    master_fit,
    measured_window,
    sample_size_estimates,
    signal_law_fit,
)
from ..stable import concentration_exponent, sample_sas
from . import Preset
from .cache import cached


@dataclass(frozen=True)
class Config(Preset):
    """Defaults are the full scale (100 repetitions); :meth:`book` takes 10."""

    alphas: tuple[float, ...] = (1.5, 1.8, 2.0)
    sizes: tuple[int, ...] = (1024, 4096, 8192)  # samples per lag: the pipeline's diagnostic sequences
    max_lag: int = 40
    tau: float = 10.0
    c: float = 0.5
    threshold: float = 5.0
    level: float = 0.01  # family-wise false-alarm rate of the detection test
    window_fractions: tuple[float, ...] = (0.125, 1.0)  # windows compared at N = these fractions of n
    false_alarm: float = 0.05  # of the subsampling detector
    reps: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if any(not 1 < a <= 2 for a in self.alphas):
            raise ValueError(f"alphas must lie in (1, 2]; got {self.alphas}")
        if any(n < 200 for n in self.sizes) or self.max_lag < 3 or self.reps < 1:
            raise ValueError("sizes must be >= 200 (the tail-index estimator's minimum), max_lag >= 3, reps >= 1")
        if min(self.tau, self.c, self.threshold) <= 0 or not 0 < self.level < 1:
            raise ValueError("tau, c and threshold must be positive and level in (0, 1)")

    @classmethod
    def book(cls) -> Config:
        """About 40 s on 2 CPU cores."""
        return replace(cls(), reps=10)

    @property
    def lags(self) -> np.ndarray:
        return np.arange(1, self.max_lag + 1)

    def envelope(self) -> np.ndarray:
        """f(l) = e^{-l / tau} on lags 1..max_lag."""
        return np.exp(-self.lags / self.tau)

    def true_N(self, alpha: float) -> np.ndarray:
        """N(l) = (threshold / (c f(l)))^kappa_alpha (sigma = 1)."""
        return (self.threshold / (self.c * self.envelope())) ** concentration_exponent(alpha)


@dataclass(frozen=True)
class Example:
    """The first repetition's estimates on the signal data of one (alpha, n), per lag l = 1..L (L = ``max_lag``).

    Attributes:
        authors: (L,) N_hat(l) of the authors' estimator (``diagnostics.authors_sample_size``).
        calibrated: (L,) N_hat(l) of the calibrated estimator (eq-sample-size-calibrated; inf where undetectable).
        N_true: (L,) the true N(l) = (threshold / (c f(l)))^kappa_alpha (eq-sample-complexity, sigma = 1).
        empirical: (L,) the subsampling N_emp(l) (eq-sample-size-empirical; inf beyond its N grid).
        parametric_q: (L,) the calibrated N_hat(l) at the threshold ``q`` instead of ``config.threshold``.
        q: the stable quantile at ``config.false_alarm`` of the pooled alpha_hat (eq-detection-quantile).
        N_true_q: (L,) the true N(l) at the threshold ``q``.
    """

    authors: np.ndarray
    calibrated: np.ndarray
    N_true: np.ndarray
    empirical: np.ndarray
    parametric_q: np.ndarray
    q: float
    N_true_q: np.ndarray


@dataclass(frozen=True)
class Result:
    """The calibration's output.

    Attributes:
        config: the config that produced it.
        rows: one table row per (alpha, n, repetition, estimator), rendered by :func:`summary`: "alpha", "n",
            "rep", "estimator" ("authors" or "calibrated"); on pure noise "noise_detected" (lags called detectable)
            and "noise_H" (the windows H_N there at N = ``window_fractions`` x n, truth 0); on signal data
            "within_2x" (share of the scored lags, true N <= n/8, with N_hat within a factor 2 of N), "slope" (master
            slope, predicted 1; NaN with fewer than 3 usable lags), "H" and "H_true" (measured and true windows at
            the same N, eq-window-measured), and the signal law's "gamma", "gamma_low", "gamma_high", "misfit"
            (eq-signal-law; NaN for the authors' estimator).
        examples: {(alpha, n): :class:`Example`} of the first repetition.
    """

    config: Config
    rows: list[dict]
    examples: dict[tuple[float, int], Example]


def _windows(lags: np.ndarray, N: np.ndarray, grid) -> list[int]:
    return [measured_window(lags, N, Nw) for Nw in grid]


def _sample(config: Config, alpha: float, n: int, gen: torch.Generator) -> np.ndarray:
    return sample_sas(alpha, (config.max_lag, n), generator=gen).numpy()


def compute(config: Config) -> Result:
    lags, f = config.lags, config.envelope()
    rows, examples = [], {}
    grid = [(a, n) for a in config.alphas for n in config.sizes]
    for alpha, n in tqdm(grid, desc="calibration", leave=False, disable=None):
        gen = torch.Generator().manual_seed(config.seed + int(1000 * alpha) + n)
        N_true = config.true_N(alpha)
        scored = N_true <= n / 8
        N_window = [fraction * n for fraction in config.window_fractions]
        H_true = _windows(lags, N_true, N_window)
        for rep in range(config.reps):
            noise = _sample(config, alpha, n, gen)
            signal = _sample(config, alpha, n, gen) + config.c * f[:, None]
            estimates = {
                "authors": (
                    authors_sample_size(noise, config.threshold),
                    authors_sample_size(signal, config.threshold),
                ),
                "calibrated": (
                    sample_size_estimates(noise, config.threshold, level=config.level),
                    sample_size_estimates(signal, config.threshold, level=config.level),
                ),
            }
            for name, (on_noise, on_signal) in estimates.items():
                ratio = on_signal["N"][scored] / N_true[scored]
                try:
                    slope = master_fit(f, on_signal["N"], on_signal["alpha"])["slope"]
                except ValueError:  # fewer than 3 usable lags
                    slope = np.nan
                row = {
                    "alpha": alpha,
                    "n": n,
                    "rep": rep,
                    "estimator": name,
                    "noise_detected": int(np.isfinite(on_noise["N"]).sum()),
                    "noise_H": _windows(lags, on_noise["N"], N_window),
                    "within_2x": float(np.mean((ratio <= 2) & (ratio >= 0.5))) if scored.any() else np.nan,
                    "slope": slope,
                    "H": _windows(lags, on_signal["N"], N_window),
                    "H_true": H_true,
                }
                fit = (
                    signal_law_fit(f, on_signal["m"], on_signal["se"])
                    if name == "calibrated"
                    else {"gamma": np.nan, "gamma_low": np.nan, "gamma_high": np.nan, "misfit": np.nan}
                )
                row.update(
                    gamma=fit["gamma"], gamma_low=fit["gamma_low"], gamma_high=fit["gamma_high"], misfit=fit["misfit"]
                )
                rows.append(row)
            if rep == 0:
                cal = estimates["calibrated"][1]
                q = detection_threshold(float(cal["alpha"][0]), config.false_alarm)
                N_grid = np.unique(np.geomspace(2, n // 8, 30).astype(int))
                examples[(alpha, n)] = Example(
                    authors=estimates["authors"][1]["N"],
                    calibrated=cal["N"],
                    N_true=N_true,
                    empirical=empirical_sample_size(signal, N_grid, false_alarm=config.false_alarm, seed=config.seed),
                    parametric_q=np.where(
                        cal["detected"], (q * cal["sigma"] / np.abs(cal["m"])) ** cal["kappa"], np.inf
                    ),
                    q=q,
                    N_true_q=(q / (config.c * f)) ** concentration_exponent(alpha),
                )
    return Result(config, rows, examples)


def summary(result: Result) -> list[dict]:
    """One row per (alpha, n, estimator): repetitions with a lag called detectable in pure noise and the mean window
    measured there at N = n (the truth is 0); on data obeying the law, the mean fraction of the scored lags (true
    N <= n/8) with N_hat within a factor 2, the master slope (mean and spread; predicted 1), gamma_hat of the signal
    law with the share of repetitions whose interval covers 1 and the fit's misfit (calibrated estimator only), and
    the mean H_N at N = n against the true one."""
    c = result.config
    out = []
    for alpha in c.alphas:
        for n in c.sizes:
            for name in ("authors", "calibrated"):
                rs = [r for r in result.rows if (r["alpha"], r["n"], r["estimator"]) == (alpha, n, name)]
                slopes = np.array([r["slope"] for r in rs], dtype=float)
                within = np.array([r["within_2x"] for r in rs], dtype=float)
                out.append(
                    {
                        "alpha": alpha,
                        "n": n,
                        "estimator": name,
                        "noise: reps with a detection": f"{sum(r['noise_detected'] > 0 for r in rs)}/{len(rs)}",
                        "noise: H_n": float(np.mean([r["noise_H"][-1] for r in rs])),
                        "N within 2x": _mean(within),
                        "slope": _mean(slopes),
                        "slope sd": float(np.nanstd(slopes)) if np.isfinite(slopes).any() else np.nan,
                        "gamma": _mean(np.array([r["gamma"] for r in rs], dtype=float)),
                        "gamma covers 1": (
                            float(np.mean([r["gamma_low"] <= 1 <= r["gamma_high"] for r in rs]))
                            if name == "calibrated"
                            else np.nan
                        ),
                        "misfit": _mean(np.array([r["misfit"] for r in rs], dtype=float)),
                        "H_n": float(np.mean([r["H"][-1] for r in rs])),
                        "true H_n": rs[0]["H_true"][-1],
                    }
                )
    return out


def _mean(values: np.ndarray) -> float:
    """Mean over the finite entries; NaN when there are none (e.g. no lag was scored at this n)."""
    return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else np.nan


def run(config: Config | None = None, *, force: bool = False) -> Result:
    """The cached result for ``config`` (default: book scale)."""
    return cached("calibration", config or Config.book(), compute, force=force)
