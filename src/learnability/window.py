"""Sample complexity N(l) and the learnability window H_N (book/p2_window.md).

Detection model (eq-detection): a lag-l dependency contributes a mean signal c f(l) to a statistic whose noise is
SaS(alpha) with scale sigma; the mean of N samples has noise scale sigma N^(-1/kappa_alpha) (eq-mean-scale), and the
dependency counts as detected when c f(l) >= threshold * sigma * N^(-1/kappa_alpha).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import brentq
from torch import Tensor

from .stable import concentration_exponent


def _positive(**values: float) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive finite number; got {v!r}")


def _kappa(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 1 < alpha <= 2:
        raise ValueError(f"alpha must lie in (1, 2]: sample means do not concentrate for alpha <= 1; got {alpha!r}")
    return concentration_exponent(alpha)


def sample_complexity(f, alpha: float, *, threshold: float, sigma: float, c: float) -> Tensor:
    """N(l) = (threshold * sigma / (c f(l)))^kappa_alpha, elementwise over envelope values f (eq-sample-complexity)."""
    kappa = _kappa(alpha)
    _positive(threshold=threshold, sigma=sigma, c=c)
    f = torch.as_tensor(f, dtype=torch.float64)
    if f.numel() == 0 or not bool(torch.all(torch.isfinite(f) & (f > 0))):
        raise ValueError("f (envelope values) must be non-empty, finite and positive")
    return (threshold * sigma / (c * f)) ** kappa


def _envelope_values(f, max_lag: int | None) -> Tensor:
    if callable(f):
        if isinstance(max_lag, bool) or not isinstance(max_lag, int) or max_lag < 1:
            raise ValueError(f"a callable f needs max_lag, a positive integer (lags 1..max_lag); got {max_lag!r}")
        return torch.as_tensor([float(f(lag)) for lag in range(1, max_lag + 1)], dtype=torch.float64)
    values = torch.as_tensor(f, dtype=torch.float64)
    if values.dim() != 1:
        raise ValueError(f"f must be a callable or a 1-D array over lags 1..L; got shape {tuple(values.shape)}")
    return values


def learnability_window(
    f,
    N: float,
    alpha: float,
    *,
    threshold: float,
    sigma: float,
    c: float,
    max_lag: int | None = None,
    contiguous: bool = False,
) -> int:
    """H_N = max{l : N(l) <= N} over lags 1..L (eq-window); 0 if no lag is detectable.

    ``f``: callable lag -> envelope value (then ``max_lag`` = L is required) or a 1-D array over lags 1..L.
    ``contiguous=True`` gives the first undetectable lag minus one instead (the two agree for decreasing f).
    """
    _positive(N=N)
    n_l = sample_complexity(_envelope_values(f, max_lag), alpha, threshold=threshold, sigma=sigma, c=c)
    ok = (n_l <= N).numpy()
    if contiguous:
        return int(np.argmin(ok)) if not ok.all() else int(ok.size)
    hits = np.flatnonzero(ok)
    return int(hits[-1] + 1) if hits.size else 0


def detection_level(N: float, alpha: float, *, threshold: float, sigma: float, c: float) -> float:
    """The smallest detectable envelope value f* = threshold sigma N^(-1/kappa) / c (eq-window)."""
    _positive(N=N, threshold=threshold, sigma=sigma, c=c)
    return threshold * sigma * N ** (-1.0 / _kappa(alpha)) / c


def window_exponential(
    N: float, alpha: float, *, tau: float, C: float = 1.0, threshold: float, sigma: float, c: float
) -> float:
    """f = C e^(-l/tau): H_N = tau ln(C c / (threshold sigma)) + (tau / kappa_alpha) ln N (eq-window-exp)."""
    _positive(tau=tau, C=C)
    return tau * math.log(C / detection_level(N, alpha, threshold=threshold, sigma=sigma, c=c))


def window_power(
    N: float, alpha: float, *, beta: float, C: float = 1.0, threshold: float, sigma: float, c: float
) -> float:
    """f = C l^(-beta): H_N = (C c N^(1/kappa) / (threshold sigma))^(1/beta) (eq-window-power)."""
    _positive(beta=beta, C=C)
    return (C / detection_level(N, alpha, threshold=threshold, sigma=sigma, c=c)) ** (1.0 / beta)


def window_log(
    N: float, alpha: float, *, gamma: float, C: float = 1.0, threshold: float, sigma: float, c: float
) -> float:
    """f = C (ln l)^(-gamma), l > 1: H_N = exp((C c N^(1/kappa) / (threshold sigma))^(1/gamma)) (eq-window-log)."""
    _positive(gamma=gamma, C=C)
    return math.exp((C / detection_level(N, alpha, threshold=threshold, sigma=sigma, c=c)) ** (1.0 / gamma))


def window_numeric(
    f: Callable[[float], float],
    N: float,
    alpha: float,
    *,
    threshold: float,
    sigma: float,
    c: float,
    lower: float,
    upper: float,
) -> float:
    """Continuous H_N: the root in [lower, upper] of f(l) = f* (eq-window), by Brent's method (f decreasing)."""
    level = detection_level(N, alpha, threshold=threshold, sigma=sigma, c=c)

    def g(lag: float) -> float:
        value = float(f(lag))
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"the envelope must be finite and non-negative; f({lag}) = {value}")
        return value - level

    if not (lower < upper) or g(lower) * g(upper) > 0:
        raise ValueError(f"f - f* must change sign on [lower, upper] = [{lower}, {upper}]; widen the bracket")
    return brentq(g, lower, upper, xtol=1e-14, rtol=1e-15, maxiter=500)
