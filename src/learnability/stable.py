"""Symmetric alpha-stable (SaS) laws: sampling and tail-index / scale estimation.

Scale convention (DESIGN.md, eq-sas-cf in book/p2_stable_means.md): E exp(i u X) = exp(-(scale |u|)^alpha), so
alpha = 2 is Gaussian with variance 2 scale^2 and alpha = 1 is Cauchy with scale ``scale``. This is
``scipy.stats.levy_stable(alpha, beta=0, scale=scale)`` (for beta = 0 scipy's S0 and S1 parameterisations agree).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources

import numpy as np
import torch
from torch import Tensor

MIN_SAMPLES = {"ecf": 200, "mcculloch": 200, "hill": 50}
MCCULLOCH_QUANTILES = (0.05, 0.25, 0.75, 0.95)
_TABLE_FILE = "mcculloch_symmetric.json"


def _check_alpha(alpha: float, low_open: float = 0.0) -> float:
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float))
        or not math.isfinite(alpha)
        or not low_open < alpha <= 2
    ):
        raise ValueError(f"alpha (stability index) must lie in ({low_open:g}, 2]; got {alpha!r}")
    return float(alpha)


def sample_sas(
    alpha: float,
    size: int | tuple[int, ...],
    scale: float = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Symmetric alpha-stable samples by the Chambers-Mallows-Stuck method (eq-cms):

    X = scale * sin(alpha V) / cos(V)^(1/alpha) * (cos((1 - alpha) V) / E)^((1 - alpha)/alpha),
    V ~ U(-pi/2, pi/2), E ~ Exp(1); alpha = 1 reduces to scale * tan(V) (Cauchy).
    """
    alpha = _check_alpha(alpha)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number; got {scale!r}")
    shape = (size,) if isinstance(size, int) else tuple(size)
    if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape):
        raise ValueError(f"size must be a non-negative int or a tuple of them; got {size!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype!r}")
    tiny = torch.finfo(dtype).tiny
    v = torch.rand(shape, generator=generator, dtype=dtype).sub_(0.5).mul_(math.pi)
    if alpha == 1.0:
        return torch.tan(v).mul_(scale)
    # E = -log(1 - U) ~ Exp(1); torch's exponential_ is several times slower than one log of a uniform
    e = torch.rand(shape, generator=generator, dtype=dtype).neg_().log1p_().neg_().clamp_(min=tiny)
    # sin(alpha v) / cos(v)^(1/alpha) * (cos((1-alpha) v) / e)^((1-alpha)/alpha), in place where possible;
    # cos(v) is clamped at tiny because v = -pi/2 rounds to a slightly negative cosine
    out = torch.cos(v * (1 - alpha)).div_(e).pow_((1 - alpha) / alpha)
    out.mul_(torch.sin(v * alpha)).div_(torch.cos(v).clamp_(min=tiny).pow_(1 / alpha))
    return out.mul_(scale)


def sas_means(
    alpha: float, n: int, reps: int, *, generator: torch.Generator | None = None, chunk: int = 4_000_000
) -> np.ndarray:
    """``reps`` independent means of ``n`` iid SaS(alpha, scale 1) samples, drawn ``chunk`` samples at a time."""
    for name, v in (("n", n), ("reps", reps), ("chunk", chunk)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    n, reps = int(n), int(reps)
    per = max(1, int(chunk) // n)
    return torch.cat(
        [sample_sas(alpha, (min(per, reps - s), n), generator=generator).mean(1) for s in range(0, reps, per)]
    ).numpy()


def _as_samples(samples, method: str) -> np.ndarray:
    x = (
        torch.as_tensor(samples).detach().cpu().double().reshape(-1).numpy()
        if isinstance(samples, Tensor)
        else np.asarray(samples, dtype=float).reshape(-1)
    )
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or inf; stable samples are finite")
    if x.size < MIN_SAMPLES[method]:
        raise ValueError(f"method {method!r} needs at least {MIN_SAMPLES[method]} samples; got {x.size}")
    return x


def tail_index(samples, method: str = "ecf") -> tuple[float, float]:
    """Estimate (alpha, scale) of a symmetric alpha-stable sample (location removed by the median).

    - ``"ecf"``: regression on the empirical characteristic function (eq-ecf-regression), after Koutrouvelis
      (1980): log(-log|phi(u)|^2) = log 2 + alpha log scale + alpha log|u| on u_k = pi k / 25, k = 1..K, iterated
      twice on data standardised by the current scale estimate.
    - ``"mcculloch"``: McCulloch's (1986) quantile estimator, nu = (q95 - q05) / (q75 - q25) inverted through a
      table computed once from scipy and shipped with the package (:func:`mcculloch_table`).
    - ``"hill"``: Hill's estimator on the k = floor(sqrt(n)) largest |x|; biased for stable laws with alpha
      near 2 (their tails become Pareto only far out) and capped at 2. The scale comes from the Pareto tail
      P(|X| > x) ~ 2 C_alpha (scale / x)^alpha, C_alpha = Gamma(alpha) sin(pi alpha / 2) / pi (for alpha_hat
      >= 1.99, where C_alpha vanishes, the Gaussian scale std / sqrt(2)).

    Returns floats; alpha_hat is clipped to (0, 2].
    """
    if method not in MIN_SAMPLES:
        raise ValueError(f"unknown method {method!r}; allowed: {sorted(MIN_SAMPLES)}")
    x = _as_samples(samples, method)
    x = x - np.median(x)
    if not np.any(x != 0):
        raise ValueError("samples are constant: no spread to estimate a tail index from")
    return {"ecf": _ecf, "mcculloch": _mcculloch, "hill": _hill}[method](x)


def _ecf(x: np.ndarray) -> tuple[float, float]:
    q25, q75 = np.quantile(x, [0.25, 0.75])
    scale = max((q75 - q25) / 2.0, np.finfo(float).tiny)  # IQR/2 is the scale for alpha = 1, close for others
    alpha = 1.5
    for _ in range(2):
        z = x / scale
        # Koutrouvelis' grid: fewer points for heavier tails (their cf decays fast in u); K between 9 and 30
        k_max = int(np.clip(round(30 - 14 * alpha), 9, 30))
        u = np.pi * np.arange(1, k_max + 1) / 25.0
        phi = _ecf_modulus(u, z)
        keep = (phi > 0) & (phi < 1)
        if keep.sum() < 3:
            raise ValueError("the empirical characteristic function is degenerate (too few usable points)")
        y = np.log(-np.log(phi[keep] ** 2))
        w = np.log(u[keep])
        slope, intercept = np.polyfit(w, y, 1)
        alpha = float(np.clip(slope, 1e-3, 2.0))
        scale = scale * (np.exp(intercept) / 2.0) ** (1.0 / alpha)
    return alpha, float(scale)


def _ecf_modulus(u: np.ndarray, z: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """|mean_j exp(i u z_j)|, summing cos and sin over chunks of z (torch, float64; no complex temporaries)."""
    ut = torch.as_tensor(u, dtype=torch.float64).unsqueeze(1)
    zt = torch.as_tensor(z, dtype=torch.float64)
    c = torch.zeros(ut.shape[0], dtype=torch.float64)
    s = torch.zeros_like(c)
    for start in range(0, zt.numel(), chunk):
        arg = ut * zt[start : start + chunk]
        c += torch.cos(arg).sum(1)
        s += torch.sin(arg).sum(1)
    return (torch.hypot(c, s) / zt.numel()).numpy()


def _mcculloch(x: np.ndarray) -> tuple[float, float]:
    q05, q25, q75, q95 = np.quantile(x, MCCULLOCH_QUANTILES)
    nu = (q95 - q05) / (q75 - q25)
    table = mcculloch_table()
    alphas, nus, iqrs = table["alpha"], table["nu"], table["iqr"]
    # nu decreases in alpha: interpolate alpha(nu) on the reversed arrays, clip to the table's range
    nu_c = float(np.clip(nu, nus[-1], nus[0]))
    alpha = float(np.interp(nu_c, nus[::-1], alphas[::-1]))
    iqr_std = float(np.interp(alpha, alphas, iqrs))
    return alpha, float((q75 - q25) / iqr_std)


def _hill(x: np.ndarray) -> tuple[float, float]:
    a = np.sort(np.abs(x))[::-1]
    n = a.size
    k = int(math.floor(math.sqrt(n)))
    if a[k] <= 0:
        raise ValueError("too many zero samples for Hill's estimator")
    alpha = float(min(1.0 / float(np.mean(np.log(a[:k] / a[k]))), 2.0))
    if alpha >= 1.99:  # the Pareto tail constant C_alpha vanishes at alpha = 2: use the Gaussian scale instead
        return alpha, float(np.std(x) / math.sqrt(2.0))
    c_alpha = math.gamma(alpha) * math.sin(math.pi * alpha / 2) / math.pi
    scale = a[k] * (k / (n * 2 * c_alpha)) ** (1.0 / alpha)
    return alpha, float(scale)


@lru_cache(maxsize=1)
def mcculloch_table() -> dict[str, np.ndarray]:
    """The shipped table: alpha grid, nu(alpha) = (q95 - q05)/(q75 - q25) and q75 - q25 of SaS(alpha, scale 1)."""
    text = resources.files("learnability").joinpath("data", _TABLE_FILE).read_text()
    raw = json.loads(text)
    return {k: np.asarray(raw[k], dtype=float) for k in ("alpha", "nu", "iqr")}


def compute_mcculloch_table(alphas: np.ndarray | None = None) -> dict[str, list[float]]:
    """Recompute the McCulloch table from ``scipy.stats.levy_stable`` quantiles (slow-ish; run once, shipped)."""
    from scipy.stats import levy_stable

    alphas = np.round(np.arange(0.5, 2.0001, 0.01), 2) if alphas is None else np.asarray(alphas, dtype=float)
    nu, iqr = [], []
    for a in alphas:
        q05, q25, q75, q95 = levy_stable.ppf(MCCULLOCH_QUANTILES, float(a), 0.0)
        nu.append(float((q95 - q05) / (q75 - q25)))
        iqr.append(float(q75 - q25))
    return {"alpha": [float(a) for a in alphas], "nu": nu, "iqr": iqr}


def concentration_exponent(alpha: float) -> float:
    """kappa_alpha = alpha / (alpha - 1): the mean of N iid SaS(alpha) is SaS with scale N^(-1/kappa)
    (eq-mean-scale)."""
    alpha = _check_alpha(alpha, low_open=1.0)
    return alpha / (alpha - 1.0)
