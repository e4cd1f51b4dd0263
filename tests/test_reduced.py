"""Reduced models against full gradient descent and against each other."""

import numpy as np
import pytest

from learnability import linear_dynamics as ld
from learnability.integrate import reduced


def equal_norm_pair(N=8, s0=0.05, seed=0):
    rng = np.random.default_rng(seed)
    u0, v0 = rng.normal(size=N), rng.normal(size=N)
    return u0 * s0 / np.linalg.norm(u0), v0 * s0 / np.linalg.norm(v0)


def test_pair_network_loss_matches_the_full_network_in_the_plane():
    """The 5 variables embed into R^N via e+ = (u0 + v0)/|u0 + v0|, e- = (u0 - v0)/|u0 - v0|; the loss is equal."""
    u0, v0 = equal_norm_pair()
    ep, em = (u0 + v0) / np.linalg.norm(u0 + v0), (u0 - v0) / np.linalg.norm(u0 - v0)
    q = (0.8, 0.1, 0.3, 0.6, -0.2)
    x, y, al, be, ga = q
    u, v = x * ep + y * em, x * ep - y * em
    W = (
        al * (np.outer(ep, ep) + np.outer(em, em))
        + be * (np.outer(em, ep) - np.outer(ep, em))
        + ga * (np.outer(ep, ep) - np.outer(em, em))
    )
    for omega in (0.0, 2.0):
        assert reduced.pair_loss_and_gradient(q, 0.3, 1.0, omega)[0] == pytest.approx(
            ld.population_loss(u, v, W, 0.3, 1.0, omega), rel=1e-12
        )


@pytest.mark.parametrize("omega,t_max", [(0.0, 15.0), (2.0, 150.0)])
def test_full_descent_from_w0_zero_follows_the_pair_flow(omega, t_max):
    """W0 = 0 and |u0| = |v0|: full GD stays on the pair manifold; the gap to the flow is O(lr)."""
    u0, v0 = equal_norm_pair()
    ic = reduced.initial_conditions(u0, v0)
    flow = reduced.pair_ode(ic["x0"], ic["y0"], 0.3, t_max, omega=omega, n_points=int(t_max) + 1)
    gaps = []
    for lr in (0.04, 0.02):
        gd = ld.gradient_descent(
            u0, v0, np.zeros((8, 8)), 0.3, omega=omega, lr=lr, steps=int(t_max / lr), record_every=int(round(1 / lr))
        )
        gaps.append(np.abs(gd["loss"] - flow["loss"]).max())
    assert gaps[1] < 0.6 * gaps[0] and gaps[1] < 0.02  # first order in lr, and small
    top = gd["eigenvalues"][-1][np.argsort(-np.abs(gd["eigenvalues"][-1]))[:2]]
    assert np.sort_complex(top) == pytest.approx(np.sort_complex(flow["eigenvalues"][-1]), abs=1e-4)
    assert np.ptp(flow["conserved"]) < 1e-8


def test_outlier_ode_is_the_pair_flow_without_the_antisymmetric_seed():
    """y -> 0: the pair flow's real outlier and loss follow the 2-D outlier ODE (p = x^2)."""
    x0 = 0.03
    pair = reduced.pair_ode(x0, 1e-9, 0.3, 15.0, n_points=31)
    ode = reduced.outlier_ode(x0**2, 0.0, 0.3, 15.0, n_points=31)
    assert np.abs(pair["loss"] - ode["loss"]).max() < 1e-7
    assert np.abs(pair["eigenvalues"][:, 0].real - ode["lambda"]).max() < 1e-6
    assert np.abs(pair["x"] ** 2 - ode["p"]).max() < 1e-6


def test_outlier_ode_fixed_point_for_several_targets():
    ode = reduced.outlier_ode(1e-3, 0.0, 0.5, 60.0)
    assert ode["lambda"][-1] == pytest.approx(0.5, abs=1e-7) and ode["loss"][-1] < 1e-12
    # the oscillator's best single real pole: the ODE settles where d F*(d)^2 is maximal (a saddle of the pair flow)
    osc = reduced.outlier_ode(1e-3, 0.0, 0.3, 1000.0, omega=2.0)  # slow final approach
    best = reduced.best_single_pole(0.3, 1.0, 2.0)
    assert osc["lambda"][-1] == pytest.approx(best["lambda"], rel=1e-5)
    assert osc["p"][-1] == pytest.approx(best["p"], rel=1e-5)
    assert osc["loss"][-1] == pytest.approx(best["loss"], rel=1e-8)
    # the leaky integrator's best single pole is the target itself
    assert reduced.best_single_pole(0.5)["lambda"] == pytest.approx(0.5, abs=1e-8)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: reduced.initial_conditions(np.ones(3), np.ones(2)), "same length"),
        (lambda: reduced.outlier_ode(0.1, 1.5, 0.5, 10.0), "lambda0 < 1"),
        (lambda: reduced.outlier_ode(0.1, 0.0, -0.5, 10.0), "c_star must be positive"),
        (lambda: reduced.pair_ode(0.1, 0.1, 0.5, -1.0), "t_max > 0"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_linear_phase_and_escape_time_at_finite_sigma():
    c, p0 = 0.3, 1e-4
    t = np.array([0.0, 1.0, 3.0])
    assert reduced.log_linear_phase(t, p0, c, 0.0) == pytest.approx(np.log(p0) + 2 * t / (1 + c), rel=1e-14)
    assert reduced.log_linear_phase(t, p0, c, 1e-3) == pytest.approx(np.log(p0) + 2 * t / (1 + c), rel=1e-5)
    N, sigma = 800, 0.5  # the law against the singular values of one sampled W0
    _, _, W0 = ld.init_network(N, sigma, 1.0, seed=4)
    rates = 2 / np.linalg.svd((1 + c) * np.eye(N) - W0, compute_uv=False)
    sampled = np.log(p0 * np.mean(np.exp(np.outer(t, rates)), axis=1))
    assert reduced.log_linear_phase(t, p0, c, sigma) == pytest.approx(sampled, abs=0.03)
    t0 = (1 + c) / 2 * np.log(1 / p0)
    assert reduced.escape_time_sigma(p0, c, 0.0) == pytest.approx(t0, rel=1e-14)
    times = [reduced.escape_time_sigma(p0, c, s) for s in (0.1, 0.3, 0.5)]
    assert t0 > times[0] > times[1] > times[2]  # a larger bulk escapes earlier
    curve = reduced.finite_sigma_loss(p0, c, 0.5, 10.0)
    ode = reduced.outlier_ode(p0, 0.0, c, 10.0)
    assert ld.time_to_fraction(curve["time"], curve["loss"]) == pytest.approx(
        ld.time_to_fraction(ode["time"], ode["loss"]) + curve["shift"], abs=0.06
    )


def test_finite_sigma_theory_predicts_the_escape_of_gradient_descent():
    """At sigma = 0.5 the sigma -> 0 ODE escapes ~50 % too late; the finite-sigma theory is within 10 %."""
    c, sigma = 0.3, 0.5
    u0, v0, W0 = ld.init_network(60, sigma, 0.01, seed=0)
    p0 = reduced.initial_conditions(u0, v0)["p0"]
    gd = ld.gradient_descent(u0, v0, W0, c, lr=0.01, steps=700, record_every=5)
    t_gd = ld.time_to_fraction(gd["time"], gd["loss"])
    theory = reduced.finite_sigma_loss(p0, c, sigma, 7.0, n_points=141)
    ode = reduced.outlier_ode(p0, 0.0, c, 9.0, n_points=181)
    assert ld.time_to_fraction(theory["time"], theory["loss"]) == pytest.approx(t_gd, rel=0.1)
    assert ld.time_to_fraction(ode["time"], ode["loss"]) > 1.3 * t_gd


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: reduced.log_linear_phase(1.0, 1e-4, [0.3, 0.5], 0.2), "one leaky mode"),
        (lambda: reduced.log_linear_phase(1.0, 1e-4, 0.3, 0.2, kappa=-1.0), "one leaky mode"),
        (lambda: reduced.log_linear_phase(1.0, 1e-4, 0.3, 1.5), "sigma < 1 \\+ c_star"),
        (lambda: reduced.escape_time_sigma(2.0, 0.3, 0.2), "0 < p0 < kappa"),
    ],
)
def test_finite_sigma_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
