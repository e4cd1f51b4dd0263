"""Learning a damped oscillator and a two-timescale target (book/p3_oscillator.md).

* ``pair_flow``, ``zero_bulk``, ``bulk``: the 5-variable pair flow (eq-pair-flow) from x0 = y0 = s0 / sqrt(2), and
  full gradient descent from W0 = 0 (where the pair manifold is exact) and from a random bulk of radius ``sigma``
  (where the bulk seeds the second direction), all for kappa e^{-c s} cos(omega s); eigenvalues over training;
* ``single``: the one-real-pole outlier ODE for the same target, the first stage of the pair dynamics;
* ``multi``, ``multi_ode``: full gradient descent on the two-timescale target sum_k e^{-c_k s}, its eigenvalues over
  training and the one-pole ODE for the same target.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from ..integrate.reduced import initial_conditions, outlier_ode, pair_ode
from ..linear_dynamics import gradient_descent, init_network
from . import Preset
from .cache import cached
from .trajectories import Descent, OutlierTrajectory, PairTrajectory


@dataclass(frozen=True)
class Config(Preset):
    """Defaults are the full scale; :meth:`book` uses N = 40 and a larger step."""

    c_star: float = 0.3
    omega: float = 2.0
    s0: float = 0.01
    sigma: float = 0.1
    N: int = 100
    lr: float = 0.01
    t_max: float = 250.0
    seeds: tuple[int, ...] = (0, 1, 2)
    multi_c: tuple[float, ...] = (0.2, 2.0)
    multi_kappa: tuple[float, ...] = (1.0, 1.0)
    multi_lr: float = 0.005
    multi_t: float = 40.0
    record: float = 0.5  # time between records

    def __post_init__(self) -> None:
        if not 0 <= self.sigma < 1 or self.N < 2 or self.lr <= 0 or self.t_max <= 0 or not self.seeds:
            raise ValueError("need sigma in [0, 1), N >= 2, lr > 0, t_max > 0 and at least one seed")
        if len(self.multi_c) != len(self.multi_kappa):
            raise ValueError("multi_c and multi_kappa must have the same length")

    @classmethod
    def book(cls) -> Config:
        """About 40 s on 2 CPU cores: N = 40, one seed, lr 0.02 (0.01 for the two-timescale target)."""
        return replace(cls(), N=40, lr=0.02, seeds=(0,), multi_lr=0.01, t_max=200.0)


@dataclass(frozen=True)
class Result:
    """The oscillator experiment (see the module docstring); targets kappa e^{-c s} cos(omega s) with kappa = 1 and
    (c, omega) = (``config.c_star``, ``config.omega``) unless said otherwise.

    * ``config``: the configuration run;
    * ``pair_flow``: the five-variable pair flow (eq-pair-flow) from x0 = y0 = s0 / sqrt(2) (eq-reduced-init);
    * ``zero_bulk``: full gradient descent (N = 8) from W0 = 0 and the same u0, v0, where the pair manifold
      (eq-pair-manifold) is exact;
    * ``bulk``: seed -> full gradient descent (N = ``config.N``) from a random bulk of radius ``config.sigma``;
    * ``single``: the one-pole outlier ODE (eq-outlier-ode) for the oscillator target, the first stage;
    * ``multi``, ``multi_ode``: full gradient descent on the two-timescale target sum_k kappa_k e^{-c_k s}
      (``config.multi_kappa``, ``config.multi_c``);
    * ``multi_ode``: the one-pole outlier ODE for the two-timescale target.
    """

    config: Config
    pair_flow: PairTrajectory
    zero_bulk: Descent
    bulk: dict[int, Descent]
    single: OutlierTrajectory
    multi: Descent
    multi_ode: OutlierTrajectory


def compute(config: Config) -> Result:
    cfg = config
    every = max(1, int(round(cfg.record / cfg.lr)))
    steps = int(round(cfg.t_max / cfg.lr))
    n_points = int(round(cfg.t_max / cfg.record)) + 1
    target = {"c_star": cfg.c_star, "omega": cfg.omega}
    # W0 = 0 with |u0| = |v0| = s0: the pair manifold is exact (any N; 8 is enough)
    rng = np.random.default_rng(cfg.seeds[0])
    u0, v0 = rng.normal(size=8), rng.normal(size=8)
    u0, v0 = u0 * cfg.s0 / np.linalg.norm(u0), v0 * cfg.s0 / np.linalg.norm(v0)
    ic = initial_conditions(u0, v0)
    reduced = pair_ode(ic["x0"], ic["y0"], t_max=cfg.t_max, n_points=n_points, **target)
    zero = gradient_descent(u0, v0, np.zeros((8, 8)), lr=cfg.lr, steps=steps, record_every=every, **target)
    bulk = {}
    for seed in tqdm(cfg.seeds, desc="oscillator", leave=False, disable=None):
        u, v, W = init_network(cfg.N, cfg.sigma, cfg.s0, seed)
        bulk[seed] = Descent.from_record(
            gradient_descent(u, v, W, lr=cfg.lr, steps=steps, record_every=every, **target)
        )
    single = outlier_ode(ic["p0"], 0.0, t_max=cfg.t_max, n_points=n_points, **target)
    u, v, W = init_network(cfg.N, cfg.sigma, cfg.s0, cfg.seeds[0])
    multi_every = max(1, int(round(0.1 / cfg.multi_lr)))
    gd = gradient_descent(
        u,
        v,
        W,
        cfg.multi_c,
        kappa=cfg.multi_kappa,
        lr=cfg.multi_lr,
        steps=int(round(cfg.multi_t / cfg.multi_lr)),
        record_every=multi_every,
    )
    ode = outlier_ode(
        initial_conditions(u, v)["p0"],
        0.0,
        cfg.multi_c,
        cfg.multi_t,
        kappa=cfg.multi_kappa,
        n_points=int(round(cfg.multi_t / 0.1)) + 1,
    )
    return Result(
        cfg,
        PairTrajectory.from_record(reduced),
        Descent.from_record(zero),
        bulk,
        OutlierTrajectory.from_record(single),
        Descent.from_record(gd),
        OutlierTrajectory.from_record(ode),
    )


def run(config: Config | None = None, *, force: bool = False) -> Result:
    """The cached result for ``config`` (default: book scale)."""
    return cached("oscillator", config or Config.book(), compute, force=force)
