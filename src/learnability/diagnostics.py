"""Estimators of Part II's measured quantities (book/p2_calibration.md, p2_envelopes.md, p2_tails.md,
p2_window_measured.md): the matched statistic, the sample size a lag needs (calibrated, the authors' version, and a
nonparametric one by subsampling), the measured window, regime fits of an envelope, per-unit time scales, and the
agreement of two envelopes.

All functions take plain tensors or arrays, so each can be checked on synthetic inputs with known answers;
book/p2_calibration.md runs the sample-size estimators on such inputs (pure noise, and data obeying the law).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm, spearmanr
from torch import Tensor

from .stable import concentration_exponent, tail_index

TEMPERED_K = (0.25, 0.35, 0.5, 0.7, 1.0, 1.3, 1.6)


def matched_samples(mu_lag: Tensor, delta: Tensor, v: Tensor, lag: int, per_sequence: bool = True) -> Tensor:
    """Samples of the matched statistic at one lag (eq-matched-statistic):

    psi_{b,t}(l) = sum_q mu^{(q)}_{b,t,l} delta^{(q)}_{b,t} v^{(q)}_{b,t-l},  t = l + 1..T,

    with mu_lag (B, T - l + 1, n) the rates of the windows ending at t = l..T (the layout of
    ``effective_lr.windows``), the output-projected errors delta (B, T, n) and the JVP states v (B, T, n) at steps
    1..T. With ``per_sequence`` the samples are the B per-sequence means over t (one i.i.d. sample per sequence),
    otherwise all B (T - l) pairs (b, t)."""
    B, T, n = delta.shape
    if v.shape != delta.shape or not 1 <= lag < T or mu_lag.shape != (B, T - lag + 1, n):
        raise ValueError(
            f"need delta, v (B, T, n), 1 <= lag < T and mu_lag (B, T - lag + 1, n); got "
            f"{tuple(delta.shape)}, {tuple(v.shape)}, lag {lag}, {tuple(mu_lag.shape)}"
        )
    psi = (mu_lag[:, 1:] * delta[:, lag:] * v[:, : T - lag]).sum(-1)  # t = lag+1..T
    return psi.mean(1) if per_sequence else psi.reshape(-1)


def matched_statistic(
    mu: Tensor, delta: Tensor, v: Tensor, lags: Sequence[int], per_sequence: bool = True
) -> list[Tensor]:
    """:func:`matched_samples` for every lag, from mu (B, T, L, n) in the layout of
    ``effective_lr.effective_learning_rates`` (mu[:, t-1, i] is the window of lags[i] ending at t)."""
    if mu.dim() != 4 or delta.shape != v.shape or delta.shape != (mu.shape[0], mu.shape[1], mu.shape[3]):
        raise ValueError(
            f"need mu (B, T, L, n) and delta, v (B, T, n); got {tuple(mu.shape)}, "
            f"{tuple(delta.shape)}, {tuple(v.shape)}"
        )
    T = mu.shape[1]
    if len(lags) != mu.shape[2] or any(not 1 <= lag < T for lag in lags):
        raise ValueError(f"lags must be {mu.shape[2]} integers in [1, T - 1 = {T - 1}]; got {list(lags)}")
    return [matched_samples(mu[:, lag - 1 :, i], delta, v, lag, per_sequence) for i, lag in enumerate(lags)]


def _as_array(s: Tensor | np.ndarray) -> np.ndarray:
    x = np.asarray(s.detach().cpu().double() if isinstance(s, Tensor) else s, dtype=float).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or inf")
    return x


def lag_statistics(samples: Sequence[Tensor | np.ndarray], method: str = "ecf") -> dict[str, np.ndarray]:
    """Per lag: tail index alpha_hat and scale sigma_hat of the samples (``stable.tail_index``), and the signal
    m_hat = |mean| (the mean of the matched statistic is the lag's systematic gradient component)."""
    alphas, sigmas, means = [], [], []
    for s in samples:
        x = _as_array(s)
        a, sc = tail_index(x, method)
        alphas.append(a)
        sigmas.append(sc)
        means.append(abs(float(x.mean())))
    return {"alpha": np.array(alphas), "sigma": np.array(sigmas), "m": np.array(means)}


def required_samples(m, sigma, alpha, threshold: float, N_grid: Sequence[float] | None = None) -> np.ndarray:
    """N_hat(l): the number of i.i.d. samples at which the mean's signal-to-noise ratio m N^{1 - 1/alpha} / sigma
    exceeds ``threshold`` (eq-sample-size-measured): (threshold sigma / m)^{kappa_alpha}, kappa = alpha / (alpha - 1).
    With ``N_grid`` the smallest grid value that meets it (inf when none does), as the authors' pipeline reports.
    alpha_hat <= 1 (no concentration) gives inf."""
    m, sigma, alpha = (np.asarray(a, dtype=float) for a in (m, sigma, alpha))
    if threshold <= 0 or np.any(sigma <= 0) or np.any(m < 0):
        raise ValueError("threshold and sigma must be positive and m non-negative")
    out = np.full(np.broadcast(m, sigma, alpha).shape, np.inf)
    ok = (alpha > 1) & (m > 0)
    kappa = np.where(ok, np.divide(alpha, alpha - 1, where=ok, out=np.ones_like(alpha)), 1.0)
    with np.errstate(over="ignore"):
        out[ok] = (threshold * sigma / np.where(ok, m, 1.0))[ok] ** kappa[ok]
    if N_grid is None:
        return out
    grid = np.sort(np.asarray(N_grid, dtype=float))
    index = np.searchsorted(grid, out, side="left")
    return np.where(index < grid.size, grid[np.minimum(index, grid.size - 1)], np.inf)


def trimmed_location(x, trim: float = 0.2) -> tuple[float, float]:
    """The ``trim``-trimmed mean of the samples x and its standard error (Yuen 1974, eq-trimmed-mean):

    m_hat = mean of x_(g+1) .. x_(n-g),  se^2 = (n - 1) s_w^2 / (h (h - 1)),  g = floor(trim n), h = n - 2g,

    s_w^2 the variance of x winsorized at the same order statistics. For a symmetric law with a positive density at
    its centre m_hat is asymptotically normal around the centre whatever the tails (stable laws with alpha < 2
    included), which the sample mean is not: its fluctuations are themselves stable, with quantiles far above the
    normal ones at the small false-alarm rates a test over many lags needs."""
    x = np.sort(_as_array(x))
    if not 0 <= trim < 0.5:
        raise ValueError(f"trim must lie in [0, 0.5); got {trim!r}")
    n = x.size
    g = int(np.floor(trim * n))
    h = n - 2 * g
    if h < 3:
        raise ValueError(f"need at least 3 samples left after trimming; got n = {n}, trim = {trim}")
    winsorized = np.clip(x, x[g], x[n - g - 1])
    se = np.sqrt((n - 1) * winsorized.var(ddof=1) / (h * (h - 1)))
    return float(x[g : n - g].mean()), float(se)


def sample_size_estimates(
    samples: Sequence[Tensor | np.ndarray],
    threshold: float = 5.0,
    *,
    level: float = 0.01,
    trim: float = 0.2,
    method: str = "ecf",
) -> dict[str, np.ndarray]:
    """The calibrated N_hat(l) (eq-sample-size-calibrated) from per-lag i.i.d. samples X = m(l) + sigma(l) xi,
    xi ~ SaS(alpha, 1) (``samples``: one 1-D array per lag):

    1. signal: m_hat(l), the trimmed mean of :func:`trimmed_location`, and z(l) = m_hat / se;
    2. detection: lag l is detectable when |z(l)| > z_{1 - level / (2L)}, the normal quantile with Bonferroni's
       correction over the L lags, so that in pure noise the chance that *any* lag is called detectable is at most
       ``level``;
    3. tail index: alpha_hat pooled over the lags, the median of the per-lag ``stable.tail_index`` estimates (the
       theory's alpha does not depend on the lag; one lag's estimate is noisy and kappa = alpha / (alpha - 1)
       amplifies that noise); the scale sigma_hat(l) per lag;
    4. N_hat(l) = (threshold sigma_hat(l) / |m_hat(l)|)^kappa_hat at the detectable lags and inf at the others: a lag
       whose signal these samples cannot tell from zero gets no extrapolated N. A pooled alpha_hat <= 1 (means do not
       concentrate) makes every N_hat infinite.

    Returns arrays of shape (L,): "N", "alpha" and "kappa" (pooled, repeated), "sigma", "m" (signed), "se", "z",
    "detected" (bool), and the scalar "z_crit"."""
    if threshold <= 0 or not 0 < level < 1:
        raise ValueError(f"threshold must be positive and level in (0, 1); got {threshold!r}, {level!r}")
    xs = [_as_array(s) for s in samples]
    if not xs:
        raise ValueError("samples must hold at least one lag")
    L = len(xs)
    loc = np.array([trimmed_location(x, trim) for x in xs])
    m, se = loc[:, 0], loc[:, 1]
    z = np.divide(m, se, out=np.zeros_like(m), where=se > 0)
    z_crit = float(norm.isf(level / (2 * L)))
    detected = np.abs(z) > z_crit
    per_lag = np.array([tail_index(x, method) for x in xs])
    alpha = float(min(np.median(per_lag[:, 0]), 2.0))
    sigma = per_lag[:, 1]
    N = np.full(L, np.inf)
    kappa = alpha / (alpha - 1) if alpha > 1 else np.inf
    if alpha > 1:
        with np.errstate(over="ignore"):
            N[detected] = (threshold * sigma[detected] / np.abs(m[detected])) ** kappa
    return {
        "N": N,
        "alpha": np.full(L, alpha),
        "kappa": np.full(L, kappa),
        "sigma": sigma,
        "m": m,
        "se": se,
        "z": z,
        "detected": detected,
        "z_crit": z_crit,
    }


def signal_law_fit(f, m, se, level: float = 0.95, gammas: Sequence[float] | None = None) -> dict[str, float]:
    """Fit the signal law |m(l)| = c f(l)^gamma (eq-signal-law; the theory's gamma = 1) to the per-lag signal
    estimates m_hat (signed) and their standard errors, over *every* lag: m_hat(l) ~ N(m(l), se(l)^2), so |m_hat| is
    folded normal with log-likelihood log[phi((|m_hat| - mu) / se) + phi((|m_hat| + mu) / se)] - log se, mu = c f^gamma.
    No lag is selected by its own estimate, so the fit carries none of the selection bias of a fit over the detectable
    lags only. gamma_hat maximises the profile likelihood (c profiled out) on the grid ``gammas`` (default -1..5 in
    steps of 0.005; an interval that reaches the grid's edge is cut there); the interval holds the gammas whose
    likelihood ratio stays below the chi-square(1) quantile of ``level``. The interval assumes the law's shape;
    whether the shape holds at all is ``misfit``, the mean squared standardised residual
    sum ((|m_hat| - c f^gamma) / se)^2 / (L - 2) at the optimum: about 1 when it holds (a little above 1 where |m_hat|
    is folded near zero), far above 1 when no gamma describes the signal.
    Returns {"gamma", "gamma_low", "gamma_high", "c", "misfit", "lags_used"}."""
    from scipy.optimize import minimize_scalar
    from scipy.stats import chi2

    f, m, se = (np.asarray(v, dtype=float) for v in (f, m, se))
    keep = (f > 0) & (se > 0) & np.isfinite(f) & np.isfinite(m) & np.isfinite(se)
    if f.shape != m.shape or m.shape != se.shape or keep.sum() < 3:
        raise ValueError("need f, m and se of equal length with at least 3 lags where f > 0 and se > 0")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1); got {level!r}")
    log_f, y, s = np.log(f[keep]), np.abs(m[keep]), se[keep]
    grid = np.arange(-1.0, 5.0 + 1e-9, 0.005) if gammas is None else np.asarray(gammas, dtype=float)

    def nll(log_c: float, gamma: float) -> float:
        mu = np.exp(log_c + gamma * log_f)
        return -float(np.sum(np.logaddexp(-0.5 * ((y - mu) / s) ** 2, -0.5 * ((y + mu) / s) ** 2)))

    centre = float(np.log(max(np.median(y / f[keep]), 1e-300)))
    profile = [minimize_scalar(nll, args=(g,), bounds=(centre - 40, centre + 40), method="bounded") for g in grid]
    values = np.array([p.fun for p in profile])
    best = int(np.argmin(values))
    inside = grid[values - values[best] <= 0.5 * chi2.ppf(level, 1)]
    c = float(np.exp(profile[best].x))
    misfit = float(np.sum(((y - c * np.exp(grid[best] * log_f)) / s) ** 2) / max(y.size - 2, 1))
    return {
        "gamma": float(grid[best]),
        "gamma_low": float(inside.min()),
        "gamma_high": float(inside.max()),
        "c": c,
        "misfit": misfit,
        "lags_used": int(keep.sum()),
    }


def authors_sample_size(
    samples: Sequence[Tensor | np.ndarray], threshold: float = 5.0, method: str = "ecf"
) -> dict[str, np.ndarray]:
    """The authors' estimator (their ``compute_snr``), kept for the comparison of book/p2_calibration.md: per lag
    alpha_hat, sigma_hat and m_hat = |mean| (:func:`lag_statistics`) and N_hat = (threshold sigma_hat /
    m_hat)^kappa_hat (:func:`required_samples`) at every lag, with no test of whether m_hat differs from zero."""
    st = lag_statistics(samples, method)
    return {**st, "N": required_samples(st["m"], st["sigma"], st["alpha"], threshold)}


def detection_threshold(alpha: float, false_alarm: float) -> float:
    """q: the (1 - false_alarm / 2) quantile of SaS(alpha, scale 1), the threshold on |mean| / (sigma N^{-1/kappa})
    of a two-sided test at that false-alarm rate (eq-detection-quantile); scipy's ``levy_stable`` (for beta = 0 its
    parameterisations agree with this book's convention, alpha = 2 being N(0, 2))."""
    from scipy.stats import levy_stable

    if not 0 < false_alarm < 1:
        raise ValueError(f"false_alarm must lie in (0, 1); got {false_alarm!r}")
    if not 1 < alpha <= 2:
        raise ValueError(f"alpha must lie in (1, 2]; got {alpha!r}")
    if alpha == 2:
        return float(np.sqrt(2) * norm.isf(false_alarm / 2))
    return float(levy_stable.isf(false_alarm / 2, alpha, 0.0))


def empirical_sample_size(
    samples: Sequence[Tensor | np.ndarray],
    N_grid: Sequence[int],
    *,
    false_alarm: float = 0.05,
    power: float = 0.5,
    reps: int = 400,
    max_fraction: float = 0.125,
    seed: int = 0,
) -> np.ndarray:
    """N_emp(l), measured by subsampling, without any stable-law theory (eq-sample-size-empirical).

    For each lag (n samples) and each N of ``N_grid`` with N <= ``max_fraction`` n: ``reps`` random subsets of N
    samples (nested: the first N of one random permutation per repetition). The detector fires when the subset's
    |mean| exceeds t_N, the (1 - false_alarm) quantile of |mean - x_bar| over the same subsets (the null
    distribution: the subsets' means around the whole sample's mean x_bar). N_emp(l) is the smallest N whose
    detection rate reaches ``power`` (log-linear interpolation between grid points); inf when no admissible N does.
    Subsets without replacement shrink the null spread by the finite-population factor, ~sqrt(1 - N/n); N <= n/8
    keeps that within 7 %.

    With ``power`` 1/2 the detector fires once |m| ~ t_N = q sigma N^{-1/kappa}, so N_emp = (q sigma / |m|)^kappa:
    the parametric N at the threshold q = :func:`detection_threshold` (alpha, false_alarm)."""
    if not 0 < false_alarm < 0.5 or not 0 < power < 1 or reps < 20 or not 0 < max_fraction <= 1:
        raise ValueError("need false_alarm in (0, 0.5), power in (0, 1), reps >= 20 and max_fraction in (0, 1]")
    grid = np.unique(np.asarray(N_grid, dtype=int))
    if grid.size == 0 or grid[0] < 1:
        raise ValueError("N_grid must hold positive integers")
    rng = np.random.default_rng(seed)
    out = np.full(len(samples), np.inf)
    for i, s in enumerate(samples):
        x = _as_array(s)
        sizes = grid[grid <= max_fraction * x.size]
        if sizes.size == 0:
            continue
        subsets = rng.permuted(np.broadcast_to(x, (reps, x.size)), axis=1)[:, : sizes[-1]]
        means = np.cumsum(subsets, axis=1)[:, sizes - 1] / sizes  # (reps, len(sizes))
        t = np.quantile(np.abs(means - x.mean()), 1 - false_alarm, axis=0)
        rate = (np.abs(means) > t).mean(0)
        hit = np.flatnonzero(rate >= power)
        if hit.size == 0:
            continue
        j = hit[0]
        if j == 0:
            out[i] = sizes[0]
        else:
            w = (power - rate[j - 1]) / (rate[j] - rate[j - 1])
            out[i] = float(np.exp(np.log(sizes[j - 1]) + w * (np.log(sizes[j]) - np.log(sizes[j - 1]))))
    return out


def measured_window(lags: Sequence[int], N_req, N: float, contiguous: bool = False) -> int:
    """H_N = the largest lag with N_hat(l) <= N (eq-window-measured; 0 if none), or with ``contiguous`` the last lag
    before the first undetectable one (every lag up to it detectable)."""
    lags, N_req = np.asarray(lags), np.asarray(N_req, dtype=float)
    if lags.shape != N_req.shape:
        raise ValueError("lags and N_req must have the same length")
    order = np.argsort(lags)
    lags, ok = lags[order], N_req[order] <= N
    if contiguous:
        bad = np.flatnonzero(~ok)
        ok = np.arange(lags.size) < (bad[0] if bad.size else lags.size)
    return int(lags[ok].max()) if ok.any() else 0


def _ls(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    coef, *_ = np.linalg.lstsq(z, y, rcond=None)
    return coef, float(np.sum((y - z @ coef) ** 2))


def fit_regimes(lags: Sequence[int], f) -> dict:
    """Fit log f against exponential C e^{-l/tau}, power law C l^{-beta} and tempered power law
    C l^{-beta} e^{-(l/l_c)^k} (k on a grid, l_c on 40 log-spaced values, C and beta by least squares) and compare
    them by AIC = n log(RSS / n) + 2p (p = 2, 2, 4). Returns {"best", "fits": {name: {..., "aic"}}}."""
    lags, f = np.asarray(lags, dtype=float), np.asarray(f, dtype=float)
    keep = (f > 0) & np.isfinite(f)
    if lags.shape != f.shape or keep.sum() < 5:
        raise ValueError("need lags and f of equal length with at least 5 positive envelope values")
    x, y = lags[keep], np.log(f[keep])
    n, ones = x.size, np.ones_like(x)
    aic = lambda rss, p: n * np.log(max(rss, 1e-300) / n) + 2 * p  # noqa: E731
    coef, rss = _ls(np.stack([ones, -x], 1), y)
    fits = {
        "exponential": {
            "C": float(np.exp(coef[0])),
            "tau": float(1 / coef[1]) if coef[1] else np.inf,
            "rss": rss,
            "aic": aic(rss, 2),
        }
    }
    coef, rss = _ls(np.stack([ones, -np.log(x)], 1), y)
    fits["power law"] = {"C": float(np.exp(coef[0])), "beta": float(coef[1]), "rss": rss, "aic": aic(rss, 2)}
    best = None
    for k in TEMPERED_K:
        for lc in np.geomspace(0.5 * x.min(), 2 * x.max(), 40):
            coef, rss = _ls(np.stack([ones, -np.log(x)], 1), y + (x / lc) ** k)
            if best is None or rss < best["rss"]:
                best = {"C": float(np.exp(coef[0])), "beta": float(coef[1]), "l_c": float(lc), "k": k, "rss": rss}
    best["aic"] = aic(best["rss"], 4)
    fits["tempered power law"] = best
    return {"best": min(fits, key=lambda name: fits[name]["aic"]), "fits": fits}


def unit_timescales(lags: Sequence[int], mu_unit) -> np.ndarray:
    """tau_q = -1 / slope of log mu_bar^{(q)}(l) against l (least squares over the lags where it is positive), one per
    unit from the per-unit mean |mu| (L, n); inf for a unit whose envelope does not decay."""
    lags, mu_unit = np.asarray(lags, dtype=float), np.asarray(mu_unit, dtype=float)
    if mu_unit.ndim != 2 or mu_unit.shape[0] != lags.size:
        raise ValueError(f"mu_unit must be (len(lags), n); got {mu_unit.shape}")
    taus = []
    for col in mu_unit.T:
        keep = col > 0
        if keep.sum() < 2:
            taus.append(0.0)
            continue
        slope = np.polyfit(lags[keep], np.log(col[keep]), 1)[0]
        taus.append(-1 / slope if slope < 0 else np.inf)
    return np.array(taus)


def envelope_agreement(lags: Sequence[int], f_approx, f_exact) -> dict[str, float]:
    """Spearman rank correlation of two envelopes over the lags, Pearson correlation of their logs, and the ratio of
    their log-log slopes (approx / exact); > 1 means the approximation decays faster."""
    lags, a, e = (np.asarray(v, dtype=float) for v in (lags, f_approx, f_exact))
    keep = (a > 0) & (e > 0)
    if keep.sum() < 3:
        raise ValueError("need at least 3 lags where both envelopes are positive")
    la, le, ll = np.log(a[keep]), np.log(e[keep]), np.log(lags[keep])
    return {
        "spearman": float(spearmanr(a, e)[0]),
        "log_pearson": float(np.corrcoef(la, le)[0, 1]),
        "slope_ratio": float(np.polyfit(ll, la, 1)[0] / np.polyfit(ll, le, 1)[0]),
    }


def noise_floor(f, N_req, alpha, N: float) -> np.ndarray:
    """The envelope level a lag needs to be detectable from N samples (eq-noise-floor): since
    N_hat(l) = (const / f(l))^kappa, the threshold on f at sample size N is
    eps_th(l; N) = f(l) (N_hat(l) / N)^{1/kappa};
    lags with f above it are detectable. NaN where N_hat is infinite or alpha_hat <= 1."""
    f, N_req, alpha = (np.asarray(v, dtype=float) for v in (f, N_req, alpha))
    if N <= 0:
        raise ValueError(f"N must be positive; got {N}")
    ok = np.isfinite(N_req) & (alpha > 1)
    kappa = np.where(ok, alpha / np.where(ok, alpha - 1, 1.0), np.nan)
    return np.where(ok, f * (np.where(ok, N_req, 1.0) / N) ** (1 / kappa), np.nan)


def master_fit(f, N_req, alpha) -> dict[str, float]:
    """The master proportionality fit log N_hat = a + b (-kappa_hat log f_hat) over the lags with finite N_hat and
    alpha_hat > 1.01 (predicted slope b = 1); returns b, a, R^2 and the number of lags used."""
    f, N_req, alpha = (np.asarray(v, dtype=float) for v in (f, N_req, alpha))
    keep = np.isfinite(N_req) & (N_req > 0) & (alpha > 1.01) & (f > 0)
    if keep.sum() < 3:
        raise ValueError("need at least 3 lags with finite N_hat, alpha_hat > 1.01 and positive f")
    kappa = np.array([concentration_exponent(float(a)) for a in alpha[keep]])
    x, y = -kappa * np.log(f[keep]), np.log(N_req[keep])
    b, a = np.polyfit(x, y, 1)
    r2 = 1 - np.sum((y - a - b * x) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-300)
    return {"slope": float(b), "intercept": float(a), "r2": float(r2), "lags_used": int(keep.sum())}
