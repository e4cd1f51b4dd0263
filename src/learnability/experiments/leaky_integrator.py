"""Learning a leaky integrator (book/p3_leaky_integrator.md): full gradient descent on a linear RNN against the
2-D outlier ODE (eq-outlier-ode).

Four parts, one config:
* ``main``: one run (N, sigma, s0, c_star) and the ODE started from its p0 = |u0 + v0|^2 / 4 (eq-reduced-init);
* ``escape``: time to half loss vs s0 (GD over seeds, ODE, and the formula eq-escape-time);
* ``sigmas``: the same run over a grid of bulk radii and the seeds: GD's loss curve and its times to 1/2 and 1/10 of
  the initial loss against the sigma -> 0 outlier ODE and the finite-sigma theory (eq-escape-sigma), which holds
  while the target lies outside the bulk (sigma < 1 - c_star, eq-outlier-birth);
* ``stiffness``: GD at factors of the exact step bound (eq-stiffness) at a smaller c_star;
* ``bptt``: SGD on sampled Euler-Maruyama trials vs population GD (the realism check).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from .. import integrator_theory as theory
from ..linear_dynamics import gradient_descent, init_network, time_to_fraction
from ..reduced import finite_sigma_loss, initial_conditions, outlier_ode
from ..sampled_noise import bptt_descent
from . import Preset
from .cache import cached


@dataclass(frozen=True)
class Config(Preset):
    """Defaults are the full scale; :meth:`book` shrinks N, seeds and the sampled-noise run."""

    N: int = 200
    sigma: float = 0.1
    s0: float = 0.01
    c_star: float = 0.3
    lr: float = 0.005
    t_max: float = 14.0
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    s0_sweep: tuple[float, ...] = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
    sigmas: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))
    sigma_t_max: float = 9.0
    stiff_c: float = 0.2
    stiff_factors: tuple[float, ...] = (0.8, 1.25)
    stiff_t: float = 30.0
    bptt_N: int = 40
    bptt_s0: float = 0.3
    bptt_lr: float = 0.02
    bptt_batch: int = 256
    bptt_dt: float = 0.05
    bptt_trial: float = 30.0
    bptt_burn_in: float = 15.0

    def __post_init__(self) -> None:
        if not 0 <= self.sigma < 1 or any(not 0 <= s < 1 for s in self.sigmas):
            raise ValueError("bulk radii sigma must lie in [0, 1)")
        if self.N < 2 or self.lr <= 0 or self.t_max <= 0 or not self.seeds:
            raise ValueError("need N >= 2, lr > 0, t_max > 0 and at least one seed")

    @classmethod
    def book(cls) -> Config:
        """About 70 s on 2 CPU cores: N = 60, two seeds, lr 0.01, seven bulk radii, a smaller sampled-noise run."""
        return replace(
            cls(),
            N=60,
            lr=0.01,
            seeds=(0, 1),
            s0_sweep=(0.1, 0.01, 0.001),
            bptt_N=20,
            sigmas=(0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9),
            bptt_batch=64,
            bptt_lr=0.05,
            bptt_trial=20.0,
            bptt_burn_in=10.0,
        )


@dataclass
class Result:
    config: Config
    main: dict  # gd: trajectory, ode: trajectory, W0 eigenvalues, final eigenvalues, dW singular values
    escape: list[dict]  # {s0, seed, p0, t50_gd, t50_ode}
    sigmas: list[dict]  # {sigma, seed, p0, gd: {time, loss}, ode: {time, loss}, theory: {time, loss, shift},
    #  t90/t50/t10: {gd, ode, theory}} over the grid of bulk radii and the seeds
    stiffness: dict  # factor -> {time, loss} or {error}; plus bound
    bptt: dict  # {sgd: trajectory, gd: trajectory}


def _run(N: int, sigma: float, s0: float, c: float, lr: float, t_max: float, seed: int, every: float = 0.1):
    u0, v0, W0 = init_network(N, sigma, s0, seed)
    gd = gradient_descent(
        u0, v0, W0, c, lr=lr, steps=int(round(t_max / lr)), record_every=max(1, int(round(every / lr)))
    )
    ic = initial_conditions(u0, v0)
    ode = outlier_ode(ic["p0"], 0.0, c, t_max, n_points=int(round(t_max / every)) + 1)
    return u0, v0, W0, gd, ode, ic


def _finite_sigma_run(cfg: Config, sigma: float, seed: int) -> dict:
    """GD at bulk radius sigma against the sigma -> 0 ODE and the finite-sigma theory (eq-escape-sigma), all from the
    run's own p0: loss curves and the times to 9/10, 1/2 and 1/10 of the initial loss."""
    _, _, _, g, o, ic = _run(cfg.N, sigma, cfg.s0, cfg.c_star, cfg.lr, cfg.sigma_t_max, seed)
    th = finite_sigma_loss(ic["p0"], cfg.c_star, sigma, cfg.sigma_t_max, n_points=o["time"].size)
    curves = {"gd": {k: g[k] for k in ("time", "loss")}, "ode": {k: o[k] for k in ("time", "loss")}, "theory": th}
    out = {"sigma": sigma, "seed": seed, "p0": ic["p0"], **curves}
    for frac, key in ((0.9, "t90"), (0.5, "t50"), (0.1, "t10")):
        out[key] = {name: time_to_fraction(c["time"], c["loss"], frac) for name, c in curves.items()}
    return out


def compute(config: Config) -> Result:
    cfg = config
    u0, v0, W0, gd, ode, _ = _run(cfg.N, cfg.sigma, cfg.s0, cfg.c_star, cfg.lr, cfg.t_max, cfg.seeds[0])
    main = {
        "gd": {k: gd[k] for k in ("time", "loss", "eigenvalues", "uv", "u_norm", "v_norm", "drift")},
        "ode": ode,
        "W0_eigs": np.linalg.eigvals(W0),
        "dW_singular": np.linalg.svd(gd["W"] - W0, compute_uv=False)[:4],
    }
    escape = []
    grid = [(s0, seed) for s0 in cfg.s0_sweep for seed in cfg.seeds]
    for s0, seed in tqdm(grid, desc="escape times", leave=False, disable=None):
        t_max = cfg.t_max + (1 + cfg.c_star) / 2 * 2 * np.log(max(1.0, cfg.s0 / s0))  # later escapes need longer
        _, _, _, g, o, ic = _run(cfg.N, cfg.sigma, s0, cfg.c_star, cfg.lr, t_max, seed, every=0.05)
        escape.append(
            {
                "s0": s0,
                "seed": seed,
                "p0": ic["p0"],
                "t50_gd": time_to_fraction(g["time"], g["loss"]),
                "t50_ode": time_to_fraction(o["time"], o["loss"]),
            }
        )
    sigmas = [
        _finite_sigma_run(cfg, sigma, seed)
        for sigma, seed in tqdm(
            [(s, seed) for s in cfg.sigmas for seed in cfg.seeds], desc="bulk radius", leave=False, disable=None
        )
    ]
    bound = theory.gd_step_bound(cfg.stiff_c)
    stiffness: dict = {"bound": bound, "runs": {}}
    u0, v0, W0 = init_network(cfg.N, cfg.sigma, 0.1, cfg.seeds[0])
    for factor in cfg.stiff_factors:
        lr = factor * bound
        try:
            g = gradient_descent(u0, v0, W0, cfg.stiff_c, lr=lr, steps=int(round(cfg.stiff_t / lr)), record_every=1)
            stiffness["runs"][factor] = {"time": g["time"], "loss": g["loss"], "error": None}
        except ValueError as err:
            stiffness["runs"][factor] = {"time": None, "loss": None, "error": str(err)}
    u0, v0, W0 = init_network(cfg.bptt_N, cfg.sigma, cfg.bptt_s0, cfg.seeds[0])
    steps = int(round(cfg.t_max / cfg.bptt_lr))
    every = max(1, int(round(0.25 / cfg.bptt_lr)))
    sgd = bptt_descent(
        u0,
        v0,
        W0,
        cfg.c_star,
        lr=cfg.bptt_lr,
        steps=steps,
        batch=cfg.bptt_batch,
        dt=cfg.bptt_dt,
        trial=cfg.bptt_trial,
        burn_in=cfg.bptt_burn_in,
        record_every=every,
        seed=cfg.seeds[0],
    )
    pop = gradient_descent(u0, v0, W0, cfg.c_star, lr=cfg.bptt_lr, steps=steps, record_every=every)
    bptt = {
        "sgd": {k: sgd[k] for k in ("time", "sampled", "loss", "eigenvalues")},
        "gd": {k: pop[k] for k in ("time", "loss", "eigenvalues")},
    }
    return Result(cfg, main, escape, sigmas, stiffness, bptt)


def run(config: Config | None = None, *, force: bool = False) -> Result:
    """The cached result for ``config`` (default: book scale)."""
    return cached("leaky_integrator", config or Config.book(), compute, force=force)
