"""Estimators of Part II's measured quantities (book/p2_envelopes.md, p2_tails.md, p2_window_measured.md):
the matched statistic, per-lag tail index / scale / signal, the sample size a lag needs, the measured window, regime
fits of an envelope, per-unit time scales, and the agreement of two envelopes.

All functions take plain tensors or arrays, so each can be checked on synthetic inputs with known answers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr
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
        raise ValueError(f"need delta, v (B, T, n), 1 <= lag < T and mu_lag (B, T - lag + 1, n); got "
                         f"{tuple(delta.shape)}, {tuple(v.shape)}, lag {lag}, {tuple(mu_lag.shape)}")
    psi = (mu_lag[:, 1:] * delta[:, lag:] * v[:, : T - lag]).sum(-1)          # t = lag+1..T
    return psi.mean(1) if per_sequence else psi.reshape(-1)


def matched_statistic(mu: Tensor, delta: Tensor, v: Tensor, lags: Sequence[int], per_sequence: bool = True
                      ) -> list[Tensor]:
    """:func:`matched_samples` for every lag, from mu (B, T, L, n) in the layout of
    ``effective_lr.effective_learning_rates`` (mu[:, t-1, i] is the window of lags[i] ending at t)."""
    if mu.dim() != 4 or delta.shape != v.shape or delta.shape != (mu.shape[0], mu.shape[1], mu.shape[3]):
        raise ValueError(f"need mu (B, T, L, n) and delta, v (B, T, n); got {tuple(mu.shape)}, "
                         f"{tuple(delta.shape)}, {tuple(v.shape)}")
    T = mu.shape[1]
    if len(lags) != mu.shape[2] or any(not 1 <= lag < T for lag in lags):
        raise ValueError(f"lags must be {mu.shape[2]} integers in [1, T - 1 = {T - 1}]; got {list(lags)}")
    return [matched_samples(mu[:, lag - 1:, i], delta, v, lag, per_sequence) for i, lag in enumerate(lags)]


def lag_statistics(samples: Sequence[Tensor | np.ndarray], method: str = "ecf") -> dict[str, np.ndarray]:
    """Per lag: tail index alpha_hat and scale sigma_hat of the samples (``stable.tail_index``), and the signal
    m_hat = |mean| (the mean of the matched statistic is the lag's systematic gradient component)."""
    alphas, sigmas, means = [], [], []
    for s in samples:
        x = np.asarray(s.detach().cpu().double() if isinstance(s, Tensor) else s, dtype=float)
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
    fits = {"exponential": {"C": float(np.exp(coef[0])), "tau": float(1 / coef[1]) if coef[1] else np.inf,
                            "rss": rss, "aic": aic(rss, 2)}}
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
    return {"spearman": float(spearmanr(a, e)[0]), "log_pearson": float(np.corrcoef(la, le)[0, 1]),
            "slope_ratio": float(np.polyfit(ll, la, 1)[0] / np.polyfit(ll, le, 1)[0])}


def noise_floor(f, N_req, alpha, N: float) -> np.ndarray:
    """The envelope level a lag needs to be detectable from N samples (eq-noise-floor): since
    N_hat(l) = (const / f(l))^kappa, the threshold on f at sample size N is eps_th(l; N) = f(l) (N_hat(l) / N)^{1/kappa};
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
