"""Rich and lazy learning of a leaky integrator (book/p3_rich_lazy.md).

* ``crossover``: read-out-only gradient flow (exact, eq-readout-flow) from v = 0 with |u| = 1 and W = W0 frozen,
  for bulk radii ``sigmas`` and target rates ``c_grid``: loss relative to its start and |v|^2 at the times
  ``times``, against the kernel prediction |v|^2 -> sigma^2 / (sigma^2 - (1 - c)^2) inside the bulk
  (eq-rkhs-norm); the grid covers both sides of the bulk, c < 1 - sigma and c > 1 + sigma;
* ``regimes``: full gradient descent on (u, v, W) for a rich (small sigma) and a lazy (sigma near 1) network on the
  same target: spectra before and after, the top real eigenvalue over time, the top singular values of W - W0;
* ``scaled``: the lazy network again with read-in and read-out at the bulk's scale (|u0| ~ |v0| ~ sigma instead of
  ``s0``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from ..linear_dynamics import gradient_descent, init_network, readout_flow, target_norm
from . import Preset
from .cache import cached


@dataclass(frozen=True)
class Config(Preset):
    """Defaults are the full scale; :meth:`book` shrinks N and the seeds."""

    N: int = 800
    sigmas: tuple[float, ...] = (0.3, 0.5, 0.7)
    c_grid: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 41))
    times: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 10000.0)
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    regime_N: int = 100
    regime_sigmas: tuple[float, ...] = (0.1, 0.9)
    regime_c: float = 0.3
    s0: float = 0.01
    lr: float = 0.01
    t_max: float = 12.0

    def __post_init__(self) -> None:
        if any(not 0 < s < 1 for s in self.sigmas + self.regime_sigmas):
            raise ValueError("bulk radii must lie in (0, 1)")
        if not self.seeds or self.N < 2 or self.regime_N < 2:
            raise ValueError("need at least one seed and N >= 2")

    @classmethod
    def book(cls) -> Config:
        """About 40 s on 2 CPU cores: N = 300 and two seeds for the crossover, N = 60 for the regimes."""
        c_grid = tuple(round(0.1 * i - 0.05, 2) for i in range(1, 11)) + (1.0, 1.25, 1.5, 1.75, 2.0)
        return replace(cls(), N=300, seeds=(0, 1), c_grid=c_grid, regime_N=60)


@dataclass(frozen=True)
class FullTraining:
    """Full gradient descent on (u, v, W) at one bulk radius, on the target e^{-c s} with c = ``config.regime_c``
    (N = ``config.regime_N``, T records).

    * ``time``: (T,) gradient-flow time;
    * ``loss``: (T,) the population loss (eq-population-loss);
    * ``top``: (T,) the largest real part of the eigenvalues of W;
    * ``u_norm0``: |u0|, the initial read-in's norm;
    * ``W0_eigenvalues``: (N,) complex eigenvalues of W0 (the bulk);
    * ``final_eigenvalues``: (N,) complex eigenvalues of W at the end;
    * ``dW_singular``: (6,) the largest singular values of W - W0 at the end (one dominant: rank one, rich).
    """

    time: np.ndarray
    loss: np.ndarray
    top: np.ndarray
    u_norm0: float
    W0_eigenvalues: np.ndarray
    final_eigenvalues: np.ndarray
    dW_singular: np.ndarray


@dataclass(frozen=True)
class Result:
    """The rich/lazy experiment (see the module docstring).

    * ``config``: the configuration run;
    * ``rel_loss``: sigma -> (len(seeds), len(c_grid), len(times)) array, the read-out flow's loss
      (eq-readout-flow) at ``config.times`` over its initial loss ||f*||^2 / 2, for each seed and target rate c;
    * ``v_norm2``: sigma -> array of the same shape, |v|^2 along the same flow (-> eq-rkhs-norm inside the bulk);
    * ``regimes``: sigma -> full training from read-in and read-out of norm ``config.s0``, for
      ``config.regime_sigmas`` (rich: small sigma; lazy: sigma near 1);
    * ``scaled``: full training at the lazy (largest) radius with read-in and read-out of norm sigma.
    """

    config: Config
    rel_loss: dict[float, np.ndarray]
    v_norm2: dict[float, np.ndarray]
    regimes: dict[float, FullTraining]
    scaled: FullTraining


def compute(config: Config) -> Result:
    cfg = config
    rel_loss, v_norm2 = {}, {}
    for sigma in tqdm(cfg.sigmas, desc="crossover", leave=False, disable=None):
        L = np.empty((len(cfg.seeds), len(cfg.c_grid), len(cfg.times)))
        V = np.empty_like(L)
        for i, seed in enumerate(cfg.seeds):
            u, _, W = init_network(cfg.N, sigma, 1.0, seed)
            u = u / np.linalg.norm(u)
            for j, c in enumerate(cfg.c_grid):
                flow = readout_flow(u, W, c, cfg.times)
                L[i, j] = flow["loss"] / (target_norm(c) / 2)
                V[i, j] = flow["v_norm2"]
        rel_loss[sigma], v_norm2[sigma] = L, V
    regimes = {
        sigma: _full_training(cfg, sigma, cfg.s0)
        for sigma in tqdm(cfg.regime_sigmas, desc="regimes", leave=False, disable=None)
    }
    lazy = max(cfg.regime_sigmas)
    return Result(cfg, rel_loss, v_norm2, regimes, _full_training(cfg, lazy, lazy))


def _full_training(cfg: Config, sigma: float, s0: float) -> FullTraining:
    """Full gradient descent on (u, v, W) from bulk radius sigma and read-in/read-out scale s0."""
    u0, v0, W0 = init_network(cfg.regime_N, sigma, s0, cfg.seeds[0])
    gd = gradient_descent(
        u0,
        v0,
        W0,
        cfg.regime_c,
        lr=cfg.lr,
        steps=int(round(cfg.t_max / cfg.lr)),
        record_every=max(1, int(round(0.1 / cfg.lr))),
    )
    return FullTraining(
        time=gd["time"],
        loss=gd["loss"],
        top=gd["eigenvalues"].real.max(1),
        u_norm0=float(gd["u_norm"][0]),
        W0_eigenvalues=np.linalg.eigvals(W0),
        final_eigenvalues=gd["eigenvalues"][-1],
        dW_singular=np.linalg.svd(gd["W"] - W0, compute_uv=False)[:6],
    )


def run(config: Config | None = None, *, force: bool = False) -> Result:
    """The cached result for ``config`` (default: book scale)."""
    return cached("rich_lazy", config or Config.book(), compute, force=force)
