"""From a window-pipeline result to the quantities the Part II measurement chapters show: per-lag statistics,
N_hat(l), measured windows H_N, the sensitivity table and the retraining comparison. Estimators are those of
:mod:`learnability.diagnostics`; nothing here trains or re-runs a network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .diagnostics import (envelope_agreement, fit_regimes, lag_statistics, master_fit, measured_window,
                          required_samples)

N_GRID = tuple(int(v) for v in np.unique(np.geomspace(4, 1e6, 41).round()))


def main_run(result, architecture: str, seed: int | None = None) -> dict:
    """The diagnostics of ``architecture`` trained with the main optimizer on the full training set."""
    c = result.config
    return result.runs[(architecture, c.optimizer, c.n_train, c.seeds[0] if seed is None else seed)]


def statistics(run: dict, samples: str = "sequence", method: str = "ecf") -> dict[str, np.ndarray]:
    """alpha_hat, sigma_hat, m_hat per lag from the run's per-sequence means (``samples="sequence"``) or its
    (sequence, t) pairs (``"pairs"``)."""
    if samples not in ("sequence", "pairs"):
        raise ValueError(f"samples must be 'sequence' or 'pairs'; got {samples!r}")
    return lag_statistics(run["psi"] if samples == "sequence" else run["psi_pairs"], method)


def required(run: dict, threshold: float, *, sigma: str = "per lag", samples: str = "sequence",
             stats: dict | None = None) -> np.ndarray:
    """N_hat(l) for each lag of the grid (continuous form of eq-sample-size-measured). ``sigma="fixed"`` replaces
    sigma_hat(l) by its value at the smallest lag (the ablation of the lag-dependent noise scale)."""
    if sigma not in ("per lag", "fixed"):
        raise ValueError(f"sigma must be 'per lag' or 'fixed'; got {sigma!r}")
    st = stats or statistics(run, samples)
    s = st["sigma"] if sigma == "per lag" else np.full_like(st["sigma"], st["sigma"][0])
    return required_samples(st["m"], s, st["alpha"], threshold)


def horizons(run: dict, N_grid: Sequence[float], threshold: float, contiguous: bool = False, **options
             ) -> np.ndarray:
    """H_N over ``N_grid`` (eq-window-measured), largest detectable lag or (``contiguous``) first undetectable - 1."""
    N_req = required(run, threshold, **options)
    return np.array([measured_window(run["lags"], N_req, N, contiguous) for N in N_grid])


def theory_constants(run: dict, stats: dict | None = None) -> dict[str, float]:
    """The constants of the theory's window (eq-window) fitted to one run: alpha and sigma as the medians of
    alpha_hat(l) (clipped to [1.01, 2]) and sigma_hat(l), and c from m_hat = c f_hat (geometric mean of m_hat / f_hat
    over the lags where both are positive)."""
    st = stats or statistics(run)
    ok = (st["m"] > 0) & (run["f_first"] > 0)
    if not ok.any():
        raise ValueError("no lag with positive signal and envelope: c cannot be fitted")
    return {"alpha": float(np.clip(np.median(st["alpha"]), 1.01, 2.0)), "sigma": float(np.median(st["sigma"])),
            "c": float(np.exp(np.mean(np.log(st["m"][ok] / run["f_first"][ok]))))}


def theory_horizons(run: dict, N_grid: Sequence[float], threshold: float, stats: dict | None = None) -> np.ndarray:
    """H_N of the theory (eq-window, `window.learnability_window`) for the measured envelope f_hat (log-linear
    between grid lags) and the constants of :func:`theory_constants`: what the window would be if the noise scale,
    the tail index and the signal-to-envelope ratio did not depend on the lag."""
    from .window import learnability_window

    k = theory_constants(run, stats)
    lags, log_f = np.asarray(run["lags"], dtype=float), np.log(np.asarray(run["f_first"], dtype=float))
    values = np.exp(np.interp(np.arange(1, int(lags.max()) + 1), lags, log_f))
    return np.array([learnability_window(values, N, k["alpha"], threshold=threshold, sigma=k["sigma"], c=k["c"])
                     for N in N_grid])


def horizon_band(result, architecture: str, N_grid: Sequence[float], threshold: float, contiguous: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the config's seeds of H_N (main optimizer, full training set), the
    paper's figure 1 statistic; the deviation is 0 with one seed (book scale)."""
    H = np.array([horizons(main_run(result, architecture, seed), N_grid, threshold, contiguous)
                  for seed in result.config.seeds], dtype=float)
    return H.mean(0), H.std(0)


def envelope_rows(result) -> list[dict]:
    """One row per architecture: agreement of the first-order envelope with the exact transport diagonal (same
    sequences), best regime of the first-order envelope by AIC, its exponential tau and power-law beta."""
    rows = []
    for arch in result.config.architectures:
        run = main_run(result, arch)
        agree = envelope_agreement(run["lags"], run["f_first_same"], run["f_transport"])
        fits = fit_regimes(run["lags"], run["f_first"])
        rows.append({"architecture": arch, "Spearman": agree["spearman"], "log-Pearson": agree["log_pearson"],
                     "slope ratio": agree["slope_ratio"], "best fit (AIC)": fits["best"],
                     "tau (exp)": fits["fits"]["exponential"]["tau"], "beta (power)": fits["fits"]["power law"]["beta"]})
    return rows


def master_fit_rows(result, threshold: float, stats: dict | None = None) -> list[dict]:
    """One row per architecture: the master proportionality fit (``diagnostics.master_fit``) of log N_hat on
    -kappa_hat log f_hat, slope predicted 1; NaN where fewer than 3 lags qualify. ``stats`` maps architectures to
    precomputed :func:`statistics`."""
    rows = []
    for arch in result.config.architectures:
        run = main_run(result, arch)
        st = (stats or {}).get(arch) or statistics(run)
        try:
            fit = master_fit(run["f_first"], required(run, threshold, stats=st), st["alpha"])
        except ValueError:
            fit = {"slope": float("nan"), "r2": float("nan"), "lags_used": 0}
        rows.append({"architecture": arch, "slope (predicted 1)": fit["slope"], "R^2": fit["r2"],
                     "lags used": fit["lags_used"]})
    return rows


def optimizer_rows(result, threshold: float, N: float = 1000) -> list[dict]:
    """One row per optimizer of the sweep: test MSE, H_N at ``N`` (largest detectable lag and first undetectable - 1)
    and the learned coefficients at the task lags."""
    c = result.config
    rows = []
    for opt in c.sweep_optimizers:
        run = result.runs[(c.sweep_architecture, opt, c.n_train, c.seeds[0])]
        rows.append({"optimizer": opt, "test MSE": run["mse"], f"H_{N:g}": int(horizons(run, [N], threshold)[0]),
                     f"H_{N:g} (first)": int(horizons(run, [N], threshold, contiguous=True)[0]),
                     "learned c_k": ", ".join(f"{v:.2f}" for v in run["learned"])})
    return rows


def sensitivity_rows(result, architecture: str, N: float, thresholds: Sequence[float] = (1, 5, 20)) -> list[dict]:
    """H_N of one architecture at one N under each combination of threshold, window definition (largest detectable
    lag / first undetectable), sigma per lag or fixed, and samples per sequence or (sequence, t) pairs."""
    run = main_run(result, architecture)
    rows = []
    for samples in ("sequence", "pairs"):
        stats = statistics(run, samples)
        for sigma in ("per lag", "fixed"):
            row: dict[str, object] = {"samples": samples, "sigma": sigma}
            for eps in thresholds:
                N_req = required(run, eps, sigma=sigma, stats=stats)
                row[f"eps={eps:g} max"] = measured_window(run["lags"], N_req, N)
                row[f"eps={eps:g} first"] = measured_window(run["lags"], N_req, N, contiguous=True)
            rows.append(row)
    return rows


def learned_horizon(learned: Sequence[float], task_lags: Sequence[int], coefficients: Sequence[float],
                    fraction: float = 0.5) -> int:
    """The largest task lag whose coefficient training recovered to at least ``fraction`` of its true value (0 when
    none): the learnable horizon measured on the trained network."""
    ok = [lag for lag, got, c in zip(task_lags, learned, coefficients) if got >= fraction * c]
    return max(ok, default=0)


def retraining_rows(result, threshold: float) -> list[dict]:
    """For every retrained (architecture, N): the measured horizon of the network trained on N sequences, the
    predicted H_N from the full-data run's diagnostics (largest detectable lag, and first undetectable - 1), and the
    learned coefficients at the task lags."""
    c = result.config
    rows = []
    for arch in c.retrain_architectures:
        full = main_run(result, arch)
        N_req = required(full, threshold)
        for N in c.retrain_N:
            run = result.runs[(arch, c.optimizer, N, c.seeds[0])]
            rows.append({"architecture": arch, "N": N,
                         "measured": learned_horizon(run["learned"], c.task_lags, c.coefficients),
                         "predicted max": measured_window(full["lags"], N_req, N),
                         "predicted first": measured_window(full["lags"], N_req, N, contiguous=True),
                         "learned c_k": ", ".join(f"{v:.2f}" for v in run["learned"])})
    return rows
