"""From a window-pipeline result to the quantities the Part II measurement chapters show: per-lag estimates,
N_hat(l), measured windows H_N, the law's tests (master slope, signal-law exponent), the sensitivity table and the
retraining comparison. The estimator is the calibrated one of :mod:`learnability.diagnostics`
(``sample_size_estimates``, validated in book/p2_calibration.md); ``estimator="authors"`` gives the authors' for
comparison. Nothing here trains or re-runs a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .diagnostics import (
    authors_sample_size,
    detection_threshold,
    empirical_sample_size,
    envelope_agreement,
    fit_regimes,
    master_fit,
    measured_window,
    sample_size_estimates,
    signal_law_fit,
)

if TYPE_CHECKING:
    from .experiments.window_pipeline import Result, RunDiagnosis

N_GRID = tuple(int(v) for v in np.unique(np.geomspace(4, 1e6, 41).round()))
ESTIMATORS = ("calibrated", "authors")
SAMPLES = {"sequence": "psi", "pairs": "psi_pairs", "optimizer": "psi_optimizer"}  # -> RunDiagnosis field


def main_run(result: Result, architecture: str, seed: int | None = None) -> RunDiagnosis:
    """The diagnostics of ``architecture`` trained with the main optimizer on the full training set."""
    c = result.config
    return result.runs[(architecture, c.optimizer, c.n_train, c.seeds[0] if seed is None else seed)]


def estimates(
    run: RunDiagnosis, threshold: float, *, samples: str = "sequence", estimator: str = "calibrated"
) -> dict[str, np.ndarray]:
    """Per-lag estimates from the run's matched statistic: its per-sequence means (``samples="sequence"``), its
    (sequence, t) pairs (``"pairs"``) or the per-sequence means of the optimizer-aware statistic with Lambda inside
    psi (``"optimizer"``), through the calibrated estimator (eq-sample-size-calibrated) or the authors'
    (``estimator="authors"``). Both return "N", "alpha", "sigma", "m"; the calibrated one also "se", "z",
    "detected", "kappa"."""
    if samples not in SAMPLES:
        raise ValueError(f"samples must be one of {SAMPLES}; got {samples!r}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}; got {estimator!r}")
    data = getattr(run, SAMPLES[samples])
    if data is None:
        raise ValueError("this run has no optimizer-aware statistic (it was diagnosed without an optimizer)")
    if estimator == "authors":
        return authors_sample_size(data, threshold)
    return sample_size_estimates(data, threshold)


def required(
    run: RunDiagnosis, threshold: float, *, sigma: str = "per lag", est: dict | None = None, **options
) -> np.ndarray:
    """N_hat(l) for each lag of the grid (``options``: ``samples``, ``estimator`` of :func:`estimates`).
    ``sigma="fixed"`` replaces sigma_hat(l) by its value at the smallest lag (the ablation of the lag-dependent noise
    scale): N_hat = (threshold sigma_hat(l_min) / |m_hat|)^kappa_hat at the lags the estimator measured."""
    if sigma not in ("per lag", "fixed"):
        raise ValueError(f"sigma must be 'per lag' or 'fixed'; got {sigma!r}")
    est = est or estimates(run, threshold, **options)
    if sigma == "per lag":
        return est["N"]
    measured = np.isfinite(est["N"])
    alpha = est["alpha"]
    kappa = np.divide(alpha, alpha - 1, out=np.full_like(alpha, np.inf), where=alpha > 1)
    N = np.full(measured.shape, np.inf)
    with np.errstate(over="ignore"):
        N[measured] = (threshold * est["sigma"][0] / np.abs(est["m"][measured])) ** kappa[measured]
    return N


def horizons(
    run: RunDiagnosis, N_grid: Sequence[float], threshold: float, contiguous: bool = False, **options
) -> np.ndarray:
    """H_N over ``N_grid`` (eq-window-measured), largest detectable lag or (``contiguous``) first undetectable - 1;
    ``options`` as for :func:`required`."""
    N_req = required(run, threshold, **options)
    return np.array([measured_window(run.lags, N_req, N, contiguous) for N in N_grid])


def law_fit(run: RunDiagnosis, threshold: float, est: dict | None = None) -> dict[str, float]:
    """The two tests of the law on one run (calibrated estimates): the master slope over the detectable lags
    (``diagnostics.master_fit``, predicted 1, biased low by the selection at the detection boundary) and the
    exponent gamma of the signal law |m| = c f^gamma over every lag (eq-signal-law, ``diagnostics.signal_law_fit``,
    predicted 1) with its 95 % interval and its misfit (about 1 when the law's shape holds). The slope is NaN when
    fewer than 3 lags are detectable."""
    est = est or estimates(run, threshold)
    try:
        fit = master_fit(run.f_first, est["N"], est["alpha"])
    except ValueError:
        fit = {"slope": np.nan, "r2": np.nan, "lags_used": int(np.isfinite(est["N"]).sum())}
    law = signal_law_fit(run.f_first, est["m"], est["se"])
    return {
        "slope": fit["slope"],
        "r2": fit["r2"],
        "detected": int(est["detected"].sum()),
        "gamma": law["gamma"],
        "gamma_low": law["gamma_low"],
        "gamma_high": law["gamma_high"],
        "misfit": law["misfit"],
        "alpha": float(est["alpha"][0]),
    }


def theory_constants(run: RunDiagnosis, threshold: float, est: dict | None = None) -> dict[str, float]:
    """The constants of the theory's window (eq-window) fitted to one run: alpha the pooled alpha_hat (clipped to
    [1.01, 2]), sigma the median of sigma_hat(l), and c the maximum-likelihood constant of the signal law with
    gamma = 1 (|m| = c f, eq-signal-law, over every lag)."""
    est = est or estimates(run, threshold)
    c = signal_law_fit(run.f_first, est["m"], est["se"], gammas=[1.0])["c"]
    return {"alpha": float(np.clip(est["alpha"][0], 1.01, 2.0)), "sigma": float(np.median(est["sigma"])), "c": c}


def theory_horizons(
    run: RunDiagnosis, N_grid: Sequence[float], threshold: float, est: dict | None = None
) -> np.ndarray:
    """H_N of the theory (eq-window, `window.learnability_window`) for the measured envelope f_hat (log-linear
    between grid lags) and the constants of :func:`theory_constants`: what the window would be if the noise scale,
    the tail index and the signal-to-envelope ratio did not depend on the lag."""
    from .window import learnability_window

    k = theory_constants(run, threshold, est)
    lags, log_f = np.asarray(run.lags, dtype=float), np.log(np.asarray(run.f_first, dtype=float))
    values = np.exp(np.interp(np.arange(1, int(lags.max()) + 1), lags, log_f))
    return np.array(
        [learnability_window(values, N, k["alpha"], threshold=threshold, sigma=k["sigma"], c=k["c"]) for N in N_grid]
    )


def empirical(
    run: RunDiagnosis,
    threshold: float,
    *,
    false_alarm: float = 0.05,
    est: dict | None = None,
    points: int = 24,
    reps: int = 400,
) -> dict[str, np.ndarray]:
    """The subsampling N_emp(l) of the run's per-sequence samples (eq-sample-size-empirical, N up to an eighth of the
    diagnostic set) next to the calibrated parametric N_hat at the matching threshold q = the stable quantile at
    ``false_alarm`` (eq-detection-quantile): {"empirical", "parametric", "q"}."""
    est = est or estimates(run, threshold)
    n = len(run.psi[0])
    grid = np.unique(np.geomspace(2, max(2, n // 8), points).astype(int))
    q = detection_threshold(float(np.clip(est["alpha"][0], 1.01, 2.0)), false_alarm)
    parametric = np.where(est["detected"], (q * est["sigma"] / np.abs(est["m"])) ** est["kappa"], np.inf)
    return {
        "empirical": empirical_sample_size(run.psi, grid, false_alarm=false_alarm, reps=reps),
        "parametric": parametric,
        "q": np.float64(q),
    }


def horizon_band(
    result: Result, architecture: str, N_grid: Sequence[float], threshold: float, contiguous: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the config's seeds of H_N (main optimizer, full training set), the
    paper's figure 1 statistic; the deviation is 0 with one seed (book scale)."""
    H = np.array(
        [horizons(main_run(result, architecture, seed), N_grid, threshold, contiguous) for seed in result.config.seeds],
        dtype=float,
    )
    return H.mean(0), H.std(0)


def ordering_rows(result: Result, threshold: float, N: float) -> list[dict]:
    """The architectures ranked by their measured window at ``N`` (mean over seeds, largest first), with the seeds'
    standard deviation: the ordering the paper's claim 10 of our notes predicts has ConstGate (one time scale) below
    the cells with per-unit gates."""
    rows = []
    for arch in result.config.architectures:
        mean, std = horizon_band(result, arch, [N], threshold)
        rows.append({"architecture": arch, f"H_{N:g}": float(mean[0]), "seed sd": float(std[0])})
    return sorted(rows, key=lambda r: -r[f"H_{N:g}"])


def _seeds_needed(result: Result, what: str) -> None:
    if len(result.config.seeds) < 2:
        raise ValueError(
            f"{what} needs a result with at least 2 seeds (the medium preset has 3); this one has "
            f"{len(result.config.seeds)}"
        )


def permutation_p(low: Sequence[float], high: Sequence[float]) -> float:
    """One-sided exact permutation p-value for "``high`` lies above ``low``": the fraction of all relabellings of
    the pooled values into groups of the same sizes whose difference of means is at least the observed one. Valid
    with ties (saturated windows tie at the grid's edge); the smallest attainable value is 1 / C(n_low + n_high,
    n_high), 0.05 for three seeds against three."""
    from itertools import combinations

    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if (
        low.ndim != 1
        or high.ndim != 1
        or low.size < 1
        or high.size < 1
        or not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)))
    ):
        raise ValueError("low and high must be non-empty 1-D arrays of finite values")
    pooled, k = np.concatenate([low, high]), high.size
    observed = high.mean() - low.mean()
    total = pooled.sum()
    stats = [
        (pooled[list(c)].sum() / k) - (total - pooled[list(c)].sum()) / low.size
        for c in combinations(range(pooled.size), k)
    ]
    return float(np.mean(np.array(stats) >= observed - 1e-12))


def ordering_test(
    result: Result, threshold: float, N: float, narrowest: str = "ConstGate", contiguous: bool = False
) -> list[dict]:
    """The architecture ordering the theory predicts (claim 10 of our notes: ``narrowest``, with one time scale,
    has the smallest window), tested seed by seed: for every other architecture, the seeds' measured H_N at ``N``
    (:func:`horizons`) against those of ``narrowest`` by the one-sided exact permutation test of
    :func:`permutation_p` (alternative: the other architecture's window is wider). Rows: the two seed means and
    the p-value."""
    _seeds_needed(result, "the ordering test")
    c = result.config
    if narrowest not in c.architectures:
        raise ValueError(f"{narrowest!r} is not among the result's architectures {list(c.architectures)}")

    def H(arch: str) -> np.ndarray:
        return np.array(
            [horizons(main_run(result, arch, s), [N], threshold, contiguous)[0] for s in c.seeds], dtype=float
        )

    base = H(narrowest)
    rows = []
    for arch in c.architectures:
        if arch != narrowest:
            other = H(arch)
            rows.append(
                {
                    "architecture": arch,
                    f"H_{N:g}": float(other.mean()),
                    f"H_{N:g} ({narrowest})": float(base.mean()),
                    "p (wider)": permutation_p(base, other),
                }
            )
    return rows


def law_summary_rows(result: Result, threshold: float, level: float = 0.95) -> list[dict]:
    """One row per architecture over the seeds: the mean of gamma_hat (the signal law's exponent, predicted 1) and
    of the master slope (predicted 1) with Student-t intervals at ``level`` over seeds, how many seeds' profile
    intervals on gamma contain 1, and the median misfit (about 1 when the law's shape holds, :func:`law_fit`)."""
    from scipy.stats import t as student

    _seeds_needed(result, "a summary over seeds")
    c = result.config
    q = float(student.ppf(0.5 + level / 2, len(c.seeds) - 1))

    def interval(values: list[float]) -> tuple[float, str]:
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]  # the master slope is NaN where < 3 lags are detectable
        if v.size < 2:
            return float(v.mean()) if v.size else float("nan"), "fewer than 2 seeds with a value"
        half = q * v.std(ddof=1) / np.sqrt(v.size)
        return float(v.mean()), f"[{v.mean() - half:.2f}, {v.mean() + half:.2f}]"

    rows = []
    for arch in c.architectures:
        fits = [law_fit(main_run(result, arch, s), threshold) for s in c.seeds]
        gamma, gamma_ci = interval([f["gamma"] for f in fits])
        slope, slope_ci = interval([f["slope"] for f in fits])
        rows.append(
            {
                "architecture": arch,
                "seeds": len(fits),
                "gamma": gamma,
                f"gamma {level:.0%} (seeds)": gamma_ci,
                "seeds with 1 in gamma's interval": sum(f["gamma_low"] <= 1 <= f["gamma_high"] for f in fits),
                "master slope": slope,
                f"slope {level:.0%} (seeds)": slope_ci,
                "misfit (median)": float(np.median([f["misfit"] for f in fits])),
            }
        )
    return rows


def envelope_rows(result: Result) -> list[dict]:
    """One row per architecture: agreement of the first-order envelope with the exact transport diagonal (same
    sequences), best regime of the first-order envelope by AIC, its exponential tau and power-law beta."""
    rows = []
    for arch in result.config.architectures:
        run = main_run(result, arch)
        agree = envelope_agreement(run.lags, run.f_first_same, run.f_transport)
        fits = fit_regimes(run.lags, run.f_first)
        rows.append(
            {
                "architecture": arch,
                "Spearman": agree["spearman"],
                "log-Pearson": agree["log_pearson"],
                "slope ratio": agree["slope_ratio"],
                "best fit (AIC)": fits["best"],
                "tau (exp)": fits["fits"]["exponential"]["tau"],
                "beta (power)": fits["fits"]["power law"]["beta"],
            }
        )
    return rows


def law_rows(result: Result, threshold: float) -> list[dict]:
    """One row per architecture and seed: :func:`law_fit` (lags detectable, pooled alpha_hat, master slope and its
    R^2, gamma_hat with its 95 % interval and the signal law's misfit)."""
    rows = []
    for arch in result.config.architectures:
        for seed in result.config.seeds:
            fit = law_fit(main_run(result, arch, seed), threshold)
            rows.append(
                {
                    "architecture": arch,
                    "seed": seed,
                    "lags detected": fit["detected"],
                    "alpha_hat": fit["alpha"],
                    "master slope": fit["slope"],
                    "R^2": fit["r2"],
                    "gamma": fit["gamma"],
                    "gamma 95% interval": f"[{fit['gamma_low']:.2f}, {fit['gamma_high']:.2f}]",
                    "misfit": fit["misfit"],
                }
            )
    return rows


def optimizer_rows(result: Result, threshold: float, N: float = 1000) -> list[dict]:
    """One row per optimizer of the sweep: test MSE, H_N at ``N`` from the plain matched statistic (largest
    detectable lag and first undetectable - 1) and from the optimizer-aware one (Lambda inside psi), and the learned
    coefficients at the task lags."""
    c = result.config
    rows = []
    for opt in c.sweep_optimizers:
        run = result.runs[(c.sweep_architecture, opt, c.n_train, c.seeds[0])]
        rows.append(
            {
                "optimizer": opt,
                "test MSE": run.mse,
                f"H_{N:g}": int(horizons(run, [N], threshold)[0]),
                f"H_{N:g} (first)": int(horizons(run, [N], threshold, contiguous=True)[0]),
                f"H_{N:g} (Lambda in psi)": int(horizons(run, [N], threshold, samples="optimizer")[0]),
                "learned c_k": ", ".join(f"{v:.2f}" for v in run.learned),
            }
        )
    return rows


def sensitivity_rows(
    result: Result, architecture: str, N: float, thresholds: Sequence[float] = (1, 5, 20)
) -> list[dict]:
    """H_N of one architecture at one N under each combination of estimator (calibrated, authors'), threshold,
    window definition (largest detectable lag / first undetectable), sigma per lag or fixed, and samples per
    sequence or (sequence, t) pairs."""
    run = main_run(result, architecture)
    rows = []
    for estimator in ESTIMATORS:
        for samples in ("sequence", "pairs"):
            for sigma in ("per lag", "fixed"):
                row: dict[str, object] = {"estimator": estimator, "samples": samples, "sigma": sigma}
                for eps in thresholds:
                    N_req = required(run, eps, sigma=sigma, samples=samples, estimator=estimator)
                    row[f"eps={eps:g} max"] = measured_window(run.lags, N_req, N)
                    row[f"eps={eps:g} first"] = measured_window(run.lags, N_req, N, contiguous=True)
                rows.append(row)
    return rows


def stage_rows(result: Result, threshold: float) -> list[dict]:
    """One row per architecture (first seed) and stage of training (the fractions of ``config.stages``, then the
    final network): lags detectable, the signal law's gamma with its interval and misfit (:func:`law_fit`), and the
    measured H_N at N = the diagnostic set's size."""
    c = result.config
    rows = []
    for arch in c.architectures:
        final = main_run(result, arch)
        for stage, run in [*sorted(final.stages.items()), (1.0, final)]:
            fit = law_fit(run, threshold)
            rows.append(
                {
                    "architecture": arch,
                    "stage": "initial" if stage == 0 else f"{stage:.0%} of training",
                    "lags detected": fit["detected"],
                    "gamma": fit["gamma"],
                    "gamma 95% interval": f"[{fit['gamma_low']:.2f}, {fit['gamma_high']:.2f}]",
                    "misfit": fit["misfit"],
                    f"H_{c.n_diag}": int(horizons(run, [c.n_diag], threshold)[0]),
                }
            )
    return rows


def learned_horizon(
    learned: Sequence[float], task_lags: Sequence[int], coefficients: Sequence[float], fraction: float = 0.5
) -> int:
    """The largest task lag whose coefficient training recovered to at least ``fraction`` of its true value (0 when
    none): the learnable horizon measured on the trained network."""
    ok = [lag for lag, got, c in zip(task_lags, learned, coefficients) if got >= fraction * c]
    return max(ok, default=0)


def retraining_rows(result: Result, threshold: float) -> list[dict]:
    """For every retrained (architecture, N): the measured horizon of the network trained on N sequences, and two
    predictions of H_N: from the diagnostics of the *initial* network (stage 0, the same initialisation the
    retraining starts from, where the residual still carries every task lag: like with like) and from the final
    network trained on all sequences (the authors' post-hoc reading); largest detectable lag, and first
    undetectable - 1 for the initial one. The learned coefficients at the task lags close the row."""
    c = result.config
    rows = []
    for arch in c.retrain_architectures:
        final = main_run(result, arch)
        initial = final.stages.get(0.0)
        N_final = required(final, threshold)
        N_init = None if initial is None else required(initial, threshold)
        for N in c.retrain_N:
            run = result.runs[(arch, c.optimizer, N, c.seeds[0])]
            row = {
                "architecture": arch,
                "N": N,
                "measured": learned_horizon(run.learned, c.task_lags, c.coefficients),
            }
            if N_init is not None:
                row["predicted (initial)"] = measured_window(initial.lags, N_init, N)
                row["predicted (initial, first)"] = measured_window(initial.lags, N_init, N, contiguous=True)
            row["predicted (final)"] = measured_window(final.lags, N_final, N)
            row["learned c_k"] = ", ".join(f"{v:.2f}" for v in run.learned)
            rows.append(row)
    return rows
