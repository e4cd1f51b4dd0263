"""The exponent question (book/p2_window.md): does detecting a signal f in SaS(alpha) noise need N ~ f^(-kappa_alpha)
samples (v4+ of arXiv 2512.05790) or N ~ f^(-alpha) (its v1-v2 abstracts)?

Detector: the sample mean M_N of N observations X_i = f + noise_i, noise iid SaS(alpha, scale 1), declares
"signal" when M_N > t_N, with t_N the empirical (1 - false_alarm) quantile of ``reps`` simulated null means (f = 0):
no stable-law theory enters the detector. For each alpha and each f on a grid, N*(f) is the smallest N (on a
geometric grid, interpolated in log N) at which the detection probability P(f + M_N > t_N) reaches ``power``.
The slope of log N* against -log f is then compared with alpha and with kappa_alpha = alpha / (alpha - 1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from ..stable import concentration_exponent, sas_means
from . import Preset
from .cache import cached


@dataclass(frozen=True)
class Config(Preset):
    alphas: tuple[float, ...] = (1.2, 1.5, 1.8)
    n_min: int = 10
    n_max: int = 10000
    n_points: int = 25  # geometric grid of N
    f_points: int = 8  # signal sizes per alpha
    reps: int = 4000  # simulated means per (alpha, N), for the null and for the signal
    false_alarm: float = 0.05
    power: float = 0.9
    seed: int = 0
    chunk: int = 4_000_000

    def __post_init__(self) -> None:
        if not (0 < self.false_alarm < 0.5 and 0.5 < self.power < 1):
            raise ValueError("false_alarm must lie in (0, 0.5) and power in (0.5, 1)")
        if not (1 <= self.n_min < self.n_max) or self.n_points < 4 or self.f_points < 3 or self.reps < 200:
            raise ValueError("need 1 <= n_min < n_max, n_points >= 4, f_points >= 3, reps >= 200")
        if any(not 1 < a <= 2 for a in self.alphas):
            raise ValueError("alphas must lie in (1, 2]: below 1 the mean does not concentrate")

    @classmethod
    def book(cls) -> Config:
        """About 15 s on 2 CPU cores."""
        return replace(cls(), n_max=3000, n_points=16, reps=1200)

    @classmethod
    def full(cls) -> Config:
        return replace(cls(), n_max=100000, n_points=40, f_points=12, reps=20000)


@dataclass(frozen=True)
class Result:
    """The exponent experiment's output, per alpha of ``config.alphas``.

    Attributes:
        config: the config that produced it.
        f: {alpha: (f_points,)} the signal sizes f, geometric and decreasing.
        n_required: {alpha: (f_points,)} N*(f), the smallest N at which the detection probability reaches
            ``config.power`` (NaN where the N grid does not reach it).
        slope: {alpha: d log N* / d(-log f)}, the fitted exponent, to compare with alpha and with kappa_alpha
            (eq-sample-complexity).
    """

    config: Config
    f: dict[float, np.ndarray]
    n_required: dict[float, np.ndarray]
    slope: dict[float, float]


def compute(config: Config) -> Result:
    gen = torch.Generator().manual_seed(config.seed)
    ns = np.unique(np.round(np.geomspace(config.n_min, config.n_max, config.n_points)).astype(int))
    f_out, n_out, slope = {}, {}, {}
    for alpha in tqdm(config.alphas, desc="alpha", leave=False, disable=None):
        thresholds, signal_means = [], []
        for n in ns:
            null = sas_means(alpha, n, config.reps, generator=gen, chunk=config.chunk)
            thresholds.append(np.quantile(null, 1 - config.false_alarm))
            signal_means.append(sas_means(alpha, n, config.reps, generator=gen, chunk=config.chunk))
        # signal sizes: from the threshold at 2 n_min down to the one at n_max / 2 (so N* lies inside the grid)
        t_hi, t_lo = np.interp(np.log([2 * ns[0], ns[-1] / 2]), np.log(ns), thresholds)
        f_grid = np.geomspace(2 * t_hi, 2 * t_lo, config.f_points)
        n_req = []
        for f in f_grid:
            power = np.array([np.mean(f + m > t) for m, t in zip(signal_means, thresholds)])
            above = np.flatnonzero(power >= config.power)
            i = above[0] if above.size else len(ns) - 1
            if i == 0 or not above.size:
                n_req.append(np.nan)
                continue
            # interpolate log N linearly in power between grid points i-1 and i
            p0, p1 = power[i - 1], power[i]
            w = (config.power - p0) / (p1 - p0) if p1 > p0 else 1.0
            n_req.append(float(np.exp(np.log(ns[i - 1]) + w * (np.log(ns[i]) - np.log(ns[i - 1])))))
        n_req = np.asarray(n_req)
        ok = np.isfinite(n_req)
        if ok.sum() < 3:
            raise ValueError(f"alpha={alpha}: fewer than 3 signal sizes reached power {config.power} on the N grid")
        f_out[alpha], n_out[alpha] = f_grid, n_req
        slope[alpha] = float(np.polyfit(-np.log(f_grid[ok]), np.log(n_req[ok]), 1)[0])
    return Result(config, f_out, n_out, slope)


def run(config: Config | None = None, *, force: bool = False) -> Result:
    return cached("exponent", config or Config.book(), compute, force=force)


def summary(result: Result) -> list[dict]:
    """One row per alpha: fitted slope, alpha, kappa_alpha, and which is closer."""
    rows = []
    for a, s in result.slope.items():
        k = concentration_exponent(a)
        rows.append({"alpha": a, "slope": s, "kappa": k, "closer": "κ_α" if abs(s - k) < abs(s - a) else "α"})
    return rows
