"""Benchmark: full gradient descent on a linear RNN (N = 100) vs the 2-D outlier ODE for the same trajectory.

Leaky-integrator target (c* = 0.3, kappa = 1), W0 with bulk radius sigma = 0.01, |u0| ~ |v0| ~ s0 = 0.01, GD with
lr = 0.0015 up to t = 15 (10000 exact population-gradient steps); the ODE starts from p0 = |u0 + v0|^2 / 4,
lambda0 = 0 and is integrated with LSODA (rtol 1e-10). Agreement: the largest gap in loss over the trajectory
relative to the initial loss, and in the outlier (largest real eigenvalue of W) relative to its target 1 - c*,
counted once the ODE's outlier has left the bulk (lambda > sigma). Each side is timed as the median of repeats.
Last line: `bench_reduced ratio=<GD seconds / ODE seconds> target=100`.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from learnability.linear_dynamics import gradient_descent, init_network
from learnability.reduced import initial_conditions, outlier_ode

N, SIGMA, S0, C, LR, T_MAX = 100, 0.01, 0.01, 0.3, 0.0015, 15.0


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    u0, v0, W0 = init_network(N, SIGMA, S0, seed=0)
    every = 40
    t_gd, gd = timed(lambda: gradient_descent(u0, v0, W0, C, lr=LR, steps=int(T_MAX / LR), record_every=every), 1)
    p0 = initial_conditions(u0, v0)["p0"]
    t_ode, ode = timed(lambda: outlier_ode(p0, 0.0, C, T_MAX, n_points=len(gd["time"])), 5)
    loss_gap = np.abs(gd["loss"] - ode["loss"]).max() / gd["loss"][0]
    outside = ode["lambda"] > SIGMA
    lam_gap = np.abs(gd["eigenvalues"].real.max(1) - ode["lambda"])[outside].max() / (1 - C)
    print(f"full GD (N = {N}, {int(T_MAX / LR)} steps): {t_gd:.2f} s; outlier ODE: {t_ode * 1e3:.1f} ms; "
          f"largest gap: loss {100 * loss_gap:.2f} % of L0, outlier {100 * lam_gap:.2f} % of 1 - c*")
    print(f"bench_reduced ratio={t_gd / t_ode:.0f} target=100")


if __name__ == "__main__":
    main()
