"""Benchmark: full gradient descent on a linear RNN (N = 100) vs the 2-D outlier ODE for the same trajectory.

Leaky-integrator target (c* = 0.3, kappa = 1), W0 with bulk radius sigma = 0.01, |u0| ~ |v0| ~ s0 = 0.01, GD with
lr = 0.0015 up to t = 15 (10000 exact population-gradient steps); the ODE starts from p0 = |u0 + v0|^2 / 4,
lambda0 = 0 and is integrated with LSODA (rtol 1e-10). Agreement: the largest gap in loss over the trajectory
relative to the initial loss, and in the outlier (largest real eigenvalue of W) relative to its target 1 - c*,
counted once the ODE's outlier has left the bulk (lambda > sigma). Each side is timed as the median of repeats.
Last line: `bench_reduced ratio=<GD seconds / ODE seconds> target=100`.
"""

from learnability.support.benchmarks import reduced

if __name__ == "__main__":
    print(reduced().report())
