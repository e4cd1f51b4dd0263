"""How fast do sample means of SaS noise concentrate, and how well do the tail-index estimators work?

Concentration (eq-mean-scale, book/p2_stable_means.md): the mean of N iid SaS(alpha, scale 1) variables is
SaS(alpha, N^(1/alpha - 1)), so its interquartile range is N^(1/alpha - 1) iqr(alpha), iqr(alpha) the IQR of the
standard law; for alpha > 1 that is N^(-1/kappa_alpha). The experiment measures IQR(mean) over ``reps`` repeated
means for each (alpha, N) and fits the log-log slope. Estimators: bias and mean absolute error of alpha_hat for
each method of :func:`learnability.stable.tail_index` over (alpha, n), ``est_reps`` samples each.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from tqdm import tqdm

from ..stable import mcculloch_table, sample_sas, sas_means, tail_index
from . import Preset
from .cache import cached


@dataclass(frozen=True)
class Config(Preset):
    """Defaults are the full scale; :meth:`book` shrinks repetitions and estimator samples."""

    alphas: tuple[float, ...] = (0.8, 1.0, 1.2, 1.5, 1.8, 2.0)
    sizes: tuple[int, ...] = (10, 30, 100, 300, 1000, 3000, 10000)
    reps: int = 4000
    est_alphas: tuple[float, ...] = (1.1, 1.3, 1.5, 1.7, 1.9)
    est_sizes: tuple[int, ...] = (1000, 10000, 100000, 200000)
    est_reps: int = 40
    methods: tuple[str, ...] = ("ecf", "mcculloch", "hill")
    seed: int = 0
    chunk: int = 4_000_000  # samples generated at once (memory bound)

    def __post_init__(self) -> None:
        if self.reps < 100 or self.est_reps < 1:
            raise ValueError("reps must be >= 100 (an IQR needs them) and est_reps >= 1")
        if any(n < 1 for n in self.sizes) or any(n < 200 for n in self.est_sizes):
            raise ValueError("sizes must be >= 1 and est_sizes >= 200 (the estimators' minimum)")

    @classmethod
    def book(cls) -> Config:
        """About 20 s on 2 CPU cores."""
        return replace(cls(), reps=1000, est_sizes=(1000, 10000, 100000), est_reps=4)


@dataclass(frozen=True)
class Result:
    """The stable-means experiment's output.

    Attributes:
        config: the config that produced it.
        iqr: {alpha: (len(sizes),)} the interquartile range of the mean of N SaS(alpha) variables, N over
            ``config.sizes``.
        iqr_theory: {alpha: (len(sizes),)} its prediction N^(1/alpha - 1) iqr(alpha) (eq-mean-scale).
        slope: {alpha: fitted d log IQR / d log N} (predicted 1/alpha - 1).
        estimators: table rows, one per (method, alpha, n) of the tail-index estimators: "method", "alpha", "n",
            "bias" (mean of alpha_hat - alpha) and "mae" (mean |alpha_hat - alpha|) over ``est_reps`` samples.
    """

    config: Config
    iqr: dict[float, np.ndarray]
    iqr_theory: dict[float, np.ndarray]
    slope: dict[float, float]
    estimators: list[dict] = field(default_factory=list)


def compute(config: Config) -> Result:
    gen = torch.Generator().manual_seed(config.seed)
    table = mcculloch_table()
    sizes = np.asarray(config.sizes, dtype=float)
    iqr, theory, slope = {}, {}, {}
    for alpha in tqdm(config.alphas, desc="concentration", leave=False, disable=None):
        values = []
        for n in config.sizes:
            q25, q75 = np.quantile(sas_means(alpha, n, config.reps, generator=gen, chunk=config.chunk), [0.25, 0.75])
            values.append(q75 - q25)
        iqr[alpha] = np.asarray(values)
        theory[alpha] = sizes ** (1 / alpha - 1) * float(np.interp(alpha, table["alpha"], table["iqr"]))
        slope[alpha] = float(np.polyfit(np.log(sizes), np.log(iqr[alpha]), 1)[0])
    rows = []
    grid = [(a, n) for a in config.est_alphas for n in config.est_sizes]
    for alpha, n in tqdm(grid, desc="estimators", leave=False, disable=None):
        samples = [sample_sas(alpha, n, generator=gen) for _ in range(config.est_reps)]
        for method in config.methods:
            err = np.array([tail_index(x, method)[0] - alpha for x in samples])
            rows.append(
                {"method": method, "alpha": alpha, "n": n, "bias": float(err.mean()), "mae": float(np.abs(err).mean())}
            )
    return Result(config, iqr, theory, slope, rows)


def run(config: Config | None = None, *, force: bool = False) -> Result:
    """The cached result for ``config`` (default: book scale)."""
    return cached("stable_means", config or Config.book(), compute, force=force)
