"""Numerical validation of the first-order (Frechet) expansion of Jacobian products (book/p1_frechet.md).

Setup of the appendix check of arXiv 2508.12121 (its public code): untrained cells, one trajectory, float64, weights
N(0, 0.2^2) and no biases, inputs u_k(t) = sin(f_k t + phase_k) + 0.05 N(0, 1) on t in linspace(0, 12, T) with
f_k in linspace(0.03, 0.09, m). For each split J_t = A_t + B_t (eq-splits) the product over the whole trajectory
F(eps) = prod (A_t + eps B_t) is compared with F_0 + eps L (eq-frechet): E(eps), its log-log slope on the smallest
five eps, C_2 = E / eps^2, and the per-step ratios r_t = ||B_t||_2 / ||A_t||_2.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from ..cells import make_cell
from ..transport import expansion_error, jacobian_split, ordered_product, spectral_norm
from . import Preset
from .cache import cached


@dataclass(frozen=True)
class Config(Preset):
    kinds: tuple[str, ...] = ("scalar", "multi")
    splits: tuple[str, ...] = ("gate", "retention")
    T: int = 100
    hidden: int = 64
    inputs: int = 3
    weight_std: float = 0.2
    eps: tuple[float, ...] = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
    seeds: tuple[int, ...] = tuple(range(20))

    def __post_init__(self) -> None:
        if len(self.eps) < 5 or min(self.eps) <= 0:
            raise ValueError("eps needs at least 5 positive values (the slope is fitted on the smallest five)")
        if self.T < 2 or self.hidden < 1 or self.inputs < 1 or not self.seeds:
            raise ValueError("T >= 2, hidden >= 1, inputs >= 1 and at least one seed are required")

    @classmethod
    def book(cls) -> Config:
        """A few seconds on 2 CPU cores."""
        return replace(cls(), T=60, hidden=32, seeds=(0, 1, 2))


@dataclass(frozen=True)
class Result:
    """The check of the first-order expansion, per cell kind of ``config.kinds`` and split J_t = A_t + B_t of
    ``config.splits`` (eq-splits); arrays are indexed by ``config.seeds`` first.

    Attributes:
        config: the configuration that produced this result.
        error: (kind, split) -> (seeds, eps) array, the remainder E(eps) = ||F(eps) - F_0 - eps L||_F of the
            product over the whole trajectory (eq-frechet-remainder), at each eps of ``config.eps``.
        slope: (kind, split) -> (seeds,) array, the log-log slope of E(eps) on the smallest five eps (2 when the
            expansion (eq-frechet) holds).
        ratio: (kind, split) -> (seeds * T,) array, every per-step ratio r_t = ||B_t||_2 / ||A_t||_2 of all seeds,
            seed after seed.
        relative: (kind, split) -> (seeds,) array, E(1) / ||F(1)||_F, the remainder at eps = 1 relative to the
            full product.
    """

    config: Config
    error: dict[tuple[str, str], np.ndarray]
    slope: dict[tuple[str, str], np.ndarray]
    ratio: dict[tuple[str, str], np.ndarray]
    relative: dict[tuple[str, str], np.ndarray]


def sinusoid_inputs(T: int, m: int, seed: int) -> torch.Tensor:
    """u_k(t) = sin(f_k t + phase_k) + 0.05 N(0, 1), t in linspace(0, 12, T), f_k in linspace(0.03, 0.09, m)."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 12, T, dtype=torch.float64).unsqueeze(1)
    f = torch.linspace(0.03, 0.09, m, dtype=torch.float64)
    phase = torch.randn(m, generator=gen, dtype=torch.float64)
    return (torch.sin(f * t + phase) + 0.05 * torch.randn(T, m, generator=gen, dtype=torch.float64)).unsqueeze(0)


def _cell(kind: str, config: Config, seed: int):
    cell = make_cell(kind, config.inputs, config.hidden, bias=False, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(config.weight_std * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return cell


def compute(config: Config) -> Result:
    eps = np.asarray(config.eps)
    small = np.argsort(eps)[:5]
    error, slope, ratio, relative = {}, {}, {}, {}
    for kind in config.kinds:
        for split in config.splits:
            errs, slopes, ratios, rel = [], [], [], []
            for seed in tqdm(config.seeds, desc=f"{kind}/{split}", leave=False, disable=None):
                cell = _cell(kind, config, seed)
                A, B = jacobian_split(cell, sinusoid_inputs(config.T, config.inputs, seed + 1000), split)
                e = np.array([float(expansion_error(A, B, float(x))[0]) for x in eps])
                errs.append(e)
                slopes.append(np.polyfit(np.log(eps[small]), np.log(e[small]), 1)[0])
                ratios.append((spectral_norm(B[0]) / spectral_norm(A[0])).numpy())
                F1 = torch.linalg.matrix_norm(ordered_product((A + B)[0]))
                rel.append(e[np.argmax(eps)] / float(F1))
            error[kind, split], slope[kind, split] = np.stack(errs), np.asarray(slopes)
            ratio[kind, split], relative[kind, split] = np.concatenate(ratios), np.asarray(rel)
    return Result(config, error, slope, ratio, relative)


def run(config: Config | None = None, *, force: bool = False) -> Result:
    return cached("frechet_check", config or Config.book(), compute, force=force)


def summary(result: Result) -> list[dict]:
    """One row per (cell, split): slope (median and range over seeds), median and p90 of r_t, median E(1)/||F||."""
    rows = []
    for (kind, split), s in result.slope.items():
        r = result.ratio[kind, split]
        rows.append(
            {
                "cell": kind,
                "split": split,
                "slope": float(np.median(s)),
                "slope_min": float(s.min()),
                "slope_max": float(s.max()),
                "r_median": float(np.median(r)),
                "r_p90": float(np.quantile(r, 0.9)),
                "rel_error_eps1": float(np.median(result.relative[kind, split])),
            }
        )
    return rows
