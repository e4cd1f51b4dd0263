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

from ..integrate import integrator_theory as theory
from ..integrate.reduced import finite_sigma_loss, initial_conditions, outlier_ode
from ..integrate.sampled_noise import bptt_descent
from ..linear_dynamics import gradient_descent, init_network, time_to_fraction
from . import Preset
from .cache import cached
from .trajectories import Descent, LossCurve, OutlierTrajectory, SampledDescent


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


@dataclass(frozen=True)
class MainRun:
    """One gradient-descent run against the outlier ODE from its own initial condition.

    * ``gd``: the full network's descent (N = ``config.N``);
    * ``ode``: the outlier ODE (eq-outlier-ode) from the run's p0 = |u0 + v0|^2 / 4 and lambda0 = 0
      (eq-reduced-init), on the same time grid;
    * ``W0_eigenvalues``: (N,) complex eigenvalues of the initial W0 (the bulk, radius ~ sigma);
    * ``dW_singular``: (4,) the largest singular values of W - W0 at the end (one dominant: a rank-one change).
    """

    gd: Descent
    ode: OutlierTrajectory
    W0_eigenvalues: np.ndarray
    dW_singular: np.ndarray


@dataclass(frozen=True)
class EscapeTime:
    """Time to half the initial loss for one initial scale and seed.

    * ``s0``: the norm of u0 and v0;
    * ``seed``: the initialisation's seed;
    * ``p0``: the initial residue |u0 + v0|^2 / 4 (eq-reduced-init);
    * ``t50_gd``, ``t50_ode``: times at which gradient descent and the outlier ODE (eq-outlier-ode) reach half their
      initial loss (to compare with eq-escape-time).
    """

    s0: float
    seed: int
    p0: float
    t50_gd: float
    t50_ode: float


@dataclass(frozen=True)
class FractionTimes:
    """Times at which a loss reaches one fraction of its initial value, per model.

    * ``gd``: gradient descent's;
    * ``ode``: the sigma -> 0 outlier ODE's (eq-outlier-ode);
    * ``theory``: the finite-sigma theory's (eq-escape-sigma).
    """

    gd: float
    ode: float
    theory: float


@dataclass(frozen=True)
class FiniteSigmaRun:
    """Gradient descent at one bulk radius and seed against the sigma -> 0 ODE and the finite-sigma theory.

    * ``sigma``: the bulk radius; ``seed``: the initialisation's seed;
    * ``p0``: the run's initial residue (eq-reduced-init), the start of both models;
    * ``gd``, ``ode``, ``theory``: loss curves of gradient descent, of the outlier ODE (eq-outlier-ode) and of the
      shifted ODE (eq-escape-sigma), each of ``round(sigma_t_max / 0.1) + 1`` points;
    * ``shift``: the theory's time shift t_sigma - t_esc (negative: the bulk speeds the escape);
    * ``t90``, ``t50``, ``t10``: times to 9/10, 1/2 and 1/10 of the initial loss.
    """

    sigma: float
    seed: int
    p0: float
    gd: LossCurve
    ode: LossCurve
    theory: LossCurve
    shift: float
    t90: FractionTimes
    t50: FractionTimes
    t10: FractionTimes


@dataclass(frozen=True)
class StiffRun:
    """Gradient descent at ``factor`` times the exact step bound (eq-stiffness).

    * ``factor``: the step as a multiple of the bound;
    * ``curve``: the loss over time, every step; None when descent diverged;
    * ``error``: the divergence's message, None when it did not diverge.
    """

    factor: float
    curve: LossCurve | None
    error: str | None


@dataclass(frozen=True)
class Stiffness:
    """Gradient descent just below and above the step bound, at ``config.stiff_c``.

    * ``bound``: the exact bound 2 / (largest Hessian eigenvalue) at the optimum (eq-stiffness,
      :func:`learnability.integrate.integrator_theory.gd_step_bound`);
    * ``runs``: one run per factor of ``config.stiff_factors``, in that order.
    """

    bound: float
    runs: tuple[StiffRun, ...]


@dataclass(frozen=True)
class Bptt:
    """SGD on sampled trials against population descent from the same initialisation (N = ``config.bptt_N``).

    * ``sgd``: SGD by backpropagation through Euler-Maruyama trials (eq-em-loss);
    * ``gd``: population gradient descent (eq-population-loss) with the same step and records.
    """

    sgd: SampledDescent
    gd: Descent


@dataclass(frozen=True)
class Result:
    """The experiment's four parts (see the module docstring).

    * ``config``: the configuration run;
    * ``main``: one run against the outlier ODE;
    * ``escape``: half-loss times over ``config.s0_sweep`` x ``config.seeds`` (s0 outer);
    * ``sigmas``: finite-sigma runs over ``config.sigmas`` x ``config.seeds`` (sigma outer);
    * ``stiffness``: descent at factors of the step bound;
    * ``bptt``: the sampled-noise check.
    """

    config: Config
    main: MainRun
    escape: tuple[EscapeTime, ...]
    sigmas: tuple[FiniteSigmaRun, ...]
    stiffness: Stiffness
    bptt: Bptt


def _run(N: int, sigma: float, s0: float, c: float, lr: float, t_max: float, seed: int, every: float = 0.1):
    u0, v0, W0 = init_network(N, sigma, s0, seed)
    gd = gradient_descent(
        u0, v0, W0, c, lr=lr, steps=int(round(t_max / lr)), record_every=max(1, int(round(every / lr)))
    )
    ic = initial_conditions(u0, v0)
    ode = outlier_ode(ic["p0"], 0.0, c, t_max, n_points=int(round(t_max / every)) + 1)
    return u0, v0, W0, gd, ode, ic


def _finite_sigma_run(cfg: Config, sigma: float, seed: int) -> FiniteSigmaRun:
    """GD at bulk radius sigma against the sigma -> 0 ODE and the finite-sigma theory (eq-escape-sigma), all from the
    run's own p0: loss curves and the times to 9/10, 1/2 and 1/10 of the initial loss."""
    _, _, _, g, o, ic = _run(cfg.N, sigma, cfg.s0, cfg.c_star, cfg.lr, cfg.sigma_t_max, seed)
    th = finite_sigma_loss(ic["p0"], cfg.c_star, sigma, cfg.sigma_t_max, n_points=o["time"].size)
    curves = {"gd": LossCurve.from_record(g), "ode": LossCurve.from_record(o), "theory": LossCurve.from_record(th)}
    times = {
        key: FractionTimes(**{name: time_to_fraction(c.time, c.loss, frac) for name, c in curves.items()})
        for frac, key in ((0.9, "t90"), (0.5, "t50"), (0.1, "t10"))
    }
    return FiniteSigmaRun(sigma, seed, ic["p0"], **curves, shift=th["shift"], **times)


def compute(config: Config) -> Result:
    cfg = config
    u0, v0, W0, gd, ode, _ = _run(cfg.N, cfg.sigma, cfg.s0, cfg.c_star, cfg.lr, cfg.t_max, cfg.seeds[0])
    main = MainRun(
        Descent.from_record(gd),
        OutlierTrajectory.from_record(ode),
        np.linalg.eigvals(W0),
        np.linalg.svd(gd["W"] - W0, compute_uv=False)[:4],
    )
    escape = []
    grid = [(s0, seed) for s0 in cfg.s0_sweep for seed in cfg.seeds]
    for s0, seed in tqdm(grid, desc="escape times", leave=False, disable=None):
        t_max = cfg.t_max + (1 + cfg.c_star) / 2 * 2 * np.log(max(1.0, cfg.s0 / s0))  # later escapes need longer
        _, _, _, g, o, ic = _run(cfg.N, cfg.sigma, s0, cfg.c_star, cfg.lr, t_max, seed, every=0.05)
        t50_gd, t50_ode = time_to_fraction(g["time"], g["loss"]), time_to_fraction(o["time"], o["loss"])
        escape.append(EscapeTime(s0, seed, ic["p0"], t50_gd, t50_ode))
    sigmas = tuple(
        _finite_sigma_run(cfg, sigma, seed)
        for sigma, seed in tqdm(
            [(s, seed) for s in cfg.sigmas for seed in cfg.seeds], desc="bulk radius", leave=False, disable=None
        )
    )
    bound = theory.gd_step_bound(cfg.stiff_c)
    runs = []
    u0, v0, W0 = init_network(cfg.N, cfg.sigma, 0.1, cfg.seeds[0])
    for factor in cfg.stiff_factors:
        lr = factor * bound
        try:
            g = gradient_descent(u0, v0, W0, cfg.stiff_c, lr=lr, steps=int(round(cfg.stiff_t / lr)), record_every=1)
            runs.append(StiffRun(factor, LossCurve.from_record(g), None))
        except ValueError as err:
            runs.append(StiffRun(factor, None, str(err)))
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
    bptt = Bptt(SampledDescent.from_record(sgd), Descent.from_record(pop))
    return Result(cfg, main, tuple(escape), sigmas, Stiffness(bound, tuple(runs)), bptt)


def run(config: Config | None = None, *, force: bool = False) -> Result:
    """The cached result for ``config`` (default: book scale)."""
    return cached("leaky_integrator", config or Config.book(), compute, force=force)
