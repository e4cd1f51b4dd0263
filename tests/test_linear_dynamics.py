"""linear_dynamics: the Gramian loss against quadrature, exact gradients against finite differences, the guard,
the conservation law, and gradient descent against the outlier ODE."""

import numpy as np
import pytest
import sympy as sp
from scipy import integrate
from scipy.linalg import expm

from learnability import linear_dynamics as ld
from learnability.integrate import reduced


def random_net(N=6, scale=0.3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=N) * 0.5, rng.normal(size=N) * 0.5, rng.normal(size=(N, N)) * scale / np.sqrt(N)


@pytest.mark.parametrize("c,kappa,omega", [(0.4, 1.3, 0.0), (0.4, 1.3, 2.0), ([0.2, 2.0], [1.0, -0.5], [0.0, 1.0])])
def test_population_loss_equals_time_quadrature(c, kappa, omega):
    u, v, W = random_net()
    A = W - np.eye(6)
    f = lambda s: (v @ expm(A * s) @ u - ld.target_filter(s, c, kappa, omega)) ** 2  # noqa: E731
    quad = 0.5 * integrate.quad(f, 0, 80, limit=400, epsabs=1e-13, epsrel=1e-11)[0]
    assert ld.population_loss(u, v, W, c, kappa, omega) == pytest.approx(quad, rel=1e-8)


def test_target_norm_and_transfer_against_quadrature():
    c, k, w = [0.3, 1.1], [1.0, -0.7], [2.0, 0.0]
    norm = integrate.quad(lambda s: ld.target_filter(s, c, k, w) ** 2, 0, 200, limit=400)[0]
    assert ld.target_norm(c, k, w) == pytest.approx(norm, rel=1e-9)
    for q in (0.0, 0.7):
        F = integrate.quad(lambda s: np.exp(-q * s) * ld.target_filter(s, c, k, w), 0, 200, limit=400)[0]
        assert ld.target_transfer(q, c, k, w) == pytest.approx(F, rel=1e-9)
        h = 1e-6
        fd = (ld.target_transfer(q + h, c, k, w) - ld.target_transfer(q - h, c, k, w)) / (2 * h)
        assert ld.target_transfer(q, c, k, w, derivative=True) == pytest.approx(fd, rel=1e-7)


def test_conserved_matrix_is_exactly_stationary_along_the_gradient():
    """dC/dt = -(g_u u^T + u g_u^T) + (g_v v^T + v g_v^T) - (g_W W^T + W g_W^T) + (g_W^T W + W^T g_W) = 0."""
    u, v, W = random_net(seed=5)
    gu, gv, gW = ld.population_gradients(u, v, W, [0.3, 1.0], [1.0, 0.5], [2.0, 0.0])
    Cdot = (
        -(np.outer(gu, u) + np.outer(u, gu))
        + np.outer(gv, v)
        + np.outer(v, gv)
        - (gW @ W.T + W @ gW.T)
        + gW.T @ W
        + W.T @ gW
    )
    assert np.abs(Cdot).max() < 1e-12 * max(1.0, np.abs(gW).max())


def test_readout_flow_equals_small_step_descent_on_v():
    u, _, W = random_net(seed=6)
    times = [0.0, 0.5, 2.0]
    exact = ld.readout_flow(u, W, 0.5, times)
    lr = 1e-3
    gd = ld.gradient_descent(u, np.zeros_like(u), W, 0.5, lr=lr, steps=2000, record_every=500, train="v")
    assert exact["loss"][0] == pytest.approx(ld.target_norm(0.5) / 2)
    assert np.interp(times, gd["time"], gd["loss"]) == pytest.approx(exact["loss"], rel=2e-3)
    assert gd["v_norm"][-1] ** 2 == pytest.approx(exact["v_norm2"][-1], rel=5e-3)


def test_residue_of_an_aligned_network():
    """u = a e, v = b e, W = W0 + lambda e e^T with W0 = 0: one pole at lambda with residue a b."""
    e = np.ones(5) / np.sqrt(5)
    res = ld.residue(0.7 * e, 1.3 * e, 0.4 * np.outer(e, e))
    assert res == pytest.approx(0.7 * 1.3)


@pytest.mark.parametrize("omega", [0.0, 1.5])
def test_gradients_equal_finite_differences(omega):
    u, v, W = random_net(seed=1)
    gu, gv, gW = ld.population_gradients(u, v, W, 0.3, 1.0, omega)
    h = 1e-6
    for grad, arr in ((gu, u), (gv, v), (gW, W)):
        for idx in [(0,), (3,)] if arr.ndim == 1 else [(0, 1), (4, 2)]:
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            args = lambda a: (a, v, W) if arr is u else ((u, a, W) if arr is v else (u, v, a))  # noqa: E731
            fd = (
                ld.population_loss(*args(plus), 0.3, 1.0, omega) - ld.population_loss(*args(minus), 0.3, 1.0, omega)
            ) / (2 * h)
            assert grad[idx] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_conserved_matrix_under_small_step_descent():
    """C = u u^T - v v^T + W W^T - W^T W is conserved by gradient flow: GD drifts only at O(lr^2) per step."""
    u, v, W = random_net(seed=2, scale=0.2)
    C = lambda u, v, W: np.outer(u, u) - np.outer(v, v) + W @ W.T - W.T @ W  # noqa: E731
    drift = []
    for lr in (2e-3, 1e-3):
        out = ld.gradient_descent(u, v, W, 0.5, lr=lr, steps=int(0.5 / lr), record_every=10**9)
        drift.append(np.abs(C(out["u"], out["v"], out["W"]) - C(u, v, W)).max())
    assert np.log2(drift[0] / drift[1]) == pytest.approx(1.0, abs=0.15)  # O(lr) over a fixed time


def test_aligned_loss_and_fixed_point_symbolically():
    p, lam, c, k, s = sp.symbols("p lambda c kappa s", positive=True)
    d = 1 - lam
    integral = sp.integrate((p * sp.exp(-d * s) - k * sp.exp(-c * s)) ** 2, (s, 0, sp.oo), conds="none") / 2
    claim = (p**2 / (2 * d) - 2 * k * p / (d + c) + k**2 / (2 * c)) / 2
    assert sp.simplify(integral - claim) == 0
    sols = sp.solve([sp.diff(claim, p), sp.diff(claim, lam)], [p, lam], dict=True)
    assert {sp.simplify(sol[p]) for sol in sols if sol[p] != 0} == {k}
    assert {sp.simplify(sol[lam]) for sol in sols if sol[p] != 0} == {1 - c}


def test_gradient_descent_learns_the_outlier_and_matches_the_ode():
    N, sigma, s0, c = 60, 0.1, 0.05, 0.5
    rng = np.random.default_rng(3)
    W0 = rng.normal(size=(N, N)) * sigma / np.sqrt(N)
    u0, v0 = rng.normal(size=N) * s0 / np.sqrt(N), rng.normal(size=N) * s0 / np.sqrt(N)
    gd = ld.gradient_descent(u0, v0, W0, c, lr=0.02, steps=800, record_every=50)
    outlier = gd["eigenvalues"][-1].real.max()
    assert outlier == pytest.approx(1 - c, abs=5e-3) and gd["loss"][-1] < 1e-4
    ode = reduced.outlier_ode(np.sum((u0 + v0) ** 2) / 4, 0.0, c, t_max=40.0)
    assert ode["lambda"][-1] == pytest.approx(1 - c, abs=1e-6) and ode["p"][-1] == pytest.approx(1.0, abs=1e-6)
    t_half_gd = gd["time"][np.argmax(gd["loss"] < 0.5 * gd["loss"][0])]
    t_half_ode = ode["time"][np.argmax(ode["loss"] < 0.5 * ode["loss"][0])]
    assert abs(t_half_gd - t_half_ode) < 1.5  # same escape time scale (finite sigma escapes a bit earlier)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ld.population_loss(np.ones(3), np.ones(2), np.zeros((3, 3)), 0.5), "need u, v of shape"),
        (lambda: ld.population_loss(np.ones(2), np.ones(2), 1.5 * np.eye(2), 0.5), "unstable network"),
        (lambda: ld.population_loss(np.ones(2), np.ones(2), np.zeros((2, 2)), -0.5), "c_star must be positive"),
        (lambda: ld.population_loss(np.ones(2), np.ones(2), np.zeros((2, 2)), 0.5, omega=-1.0), "omega must be"),
        (
            lambda: ld.gradient_descent(np.full(2, 0.1), np.full(2, 0.1), 0.9 * np.eye(2), 0.02, lr=0.1, steps=3),
            "step 1 made W unstable",
        ),
        (lambda: reduced.outlier_ode(-1.0, 0.0, 0.5, 10.0), "need p0 > 0"),
        (
            lambda: ld.population_loss(np.ones(2), np.ones(2), np.zeros((2, 2)), [0.5, 0.2], [1.0, 1.0, 1.0]),
            "same number of modes",
        ),
        (lambda: ld.population_loss(np.ones(2), np.ones(2), np.zeros((2, 2)), 0.5, kappa=0.0), "kappa must be"),
        (lambda: ld.init_network(10, 1.2, 0.1), "sigma must be in"),
        (lambda: ld.init_network(1, 0.1, 0.1), "N must be an integer"),
        (
            lambda: ld.gradient_descent(np.ones(2), np.ones(2), np.zeros((2, 2)), 0.5, lr=0.1, steps=1, train="x"),
            "train must be",
        ),
        (lambda: ld.readout_flow(np.ones(2), np.zeros((2, 2)), 0.5, [-1.0]), "non-negative"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pair_formation_time():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    z = np.array(
        [
            [0.05 + 0.04j, 0.05 - 0.04j, 0.3],
            [0.05 + 0.04j, 0.05 - 0.04j, 0.4],
            [0.05 + 0.04j, 0.5 + 0.2j, 0.5 - 0.2j],
            [0.1, 0.7 + 2j, 0.7 - 2j],
        ]
    )
    assert ld.pair_formation_time(t, z) == 0.0  # the complex bulk counts at radius 0
    assert ld.pair_formation_time(t, z, radius=0.2) == 2.0
    with pytest.raises(ValueError, match="no conjugate pair"):
        ld.pair_formation_time(t, z.real)
