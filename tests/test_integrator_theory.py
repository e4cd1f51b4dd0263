"""Each SymPy result of integrator_theory against an independent numeric computation (Gramian loss, exact
gradients of the full network, the reduced ODEs, gradient descent)."""

import numpy as np
import pytest
import sympy as sp
from scipy.linalg import expm
from scipy.optimize import minimize_scalar

from learnability import linear_dynamics as ld
from learnability.integrate import integrator_theory as it
from learnability.integrate import reduced

E = ld.ALIGNED_DIRECTION  # the unit direction of ld.aligned_network
aligned = ld.aligned_network


def numeric(expr, **values):
    symbols = {
        "p": it.p,
        "lam": it.lam,
        "c": it.c,
        "kappa": it.kappa,
        "sigma": it.sigma,
        "p0": it.p0,
        "omega": it.omega,
    }
    return float(expr.subs({symbols[k]: v for k, v in values.items()}))


def test_aligned_loss_is_the_population_loss_of_an_aligned_network():
    for p, lam, c, k in [(0.3, 0.2, 0.5, 1.0), (1.4, -0.5, 0.1, 0.7), (0.9, 0.85, 0.3, 1.2)]:
        assert numeric(it.aligned_loss(), p=p, lam=lam, c=c, kappa=k) == pytest.approx(
            ld.population_loss(*aligned(p, 1.0, lam), c, k), rel=1e-12
        )


def test_unique_optimum_and_hessian_against_finite_differences():
    assert it.aligned_optimum() == [{it.p: it.kappa, it.lam: 1 - it.c}]
    c, k, h = 0.4, 1.3, 1e-4
    H = np.array(it.aligned_hessian().subs({it.c: c, it.kappa: k}), dtype=float)
    L = lambda p, lam: ld.population_loss(*aligned(p, 1.0, lam), c, k)  # noqa: E731
    x0 = np.array([k, 1 - c])
    fd = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            fd[i, j] = (L(*(x0 + ei + ej)) - L(*(x0 + ei - ej)) - L(*(x0 - ei + ej)) + L(*(x0 - ei - ej))) / (4 * h * h)
    assert H == pytest.approx(fd, rel=1e-5)
    assert sp.simplify(it.stiffness() - it.kappa**2 / (4 * it.c**3)) == 0


def test_outlier_flow_is_the_projected_full_gradient():
    pdot, lamdot = it.outlier_flow()
    assert it.balance_rate() == 0
    for p, lam, c, k in [(0.04, 0.1, 0.3, 1.0), (0.8, 0.6, 0.5, 1.0), (1.2, -0.3, 0.2, 0.6)]:
        gu, gv, gW = ld.population_gradients(*aligned(np.sqrt(p), np.sqrt(p), lam), c, k)
        adot, bdot = -E @ gu, -E @ gv  # the projections written out once here
        assert numeric(pdot, p=p, lam=lam, c=c, kappa=k) == pytest.approx(np.sqrt(p) * (adot + bdot), rel=1e-10)
        assert numeric(lamdot, p=p, lam=lam, c=c, kappa=k) == pytest.approx(-E @ gW @ E, rel=1e-10)
        assert ld.aligned_flow(p, lam, c, k) == pytest.approx([np.sqrt(p) * (adot + bdot), -E @ gW @ E], rel=1e-12)
    other = np.ones(4) / 2  # any unit direction, any N
    assert ld.aligned_flow(0.8, 0.6, 0.5, 1.0, other) == pytest.approx(ld.aligned_flow(0.8, 0.6, 0.5, 1.0), rel=1e-10)
    with pytest.raises(ValueError, match="unit vector"):
        ld.aligned_network(1.0, 1.0, 0.2, np.ones(3))


def test_linear_rates_match_the_late_decay_of_the_ode():
    c = 0.5
    rates = sorted(float(r.subs({it.c: c, it.kappa: 1})) for r in it.linear_rates())
    ode = reduced.outlier_ode(1e-3, 0.0, c, 40.0, n_points=401)
    late = (ode["time"] > 20) & (ode["time"] < 30)
    slope = np.polyfit(ode["time"][late], np.log(np.abs(ode["lambda"][late] - (1 - c))), 1)[0]
    assert -slope == pytest.approx(rates[0], rel=1e-3)


def test_gradient_descent_step_bound_of_the_full_network():
    """GD on (u, v, W) near the optimum: stable just below 2 / lambda_max(H), unstable just above; the bound
    tends to 8 c^3 / kappa^2 as c -> 0."""
    c = 0.3
    bound = it.gd_step_bound(c)
    rng = np.random.default_rng(0)
    u, v, W = aligned(1.0, 1.0, 1 - c)
    kick = [1e-4 * rng.normal(size=x.shape) for x in (u, v, W)]
    start = [x + dx for x, dx in zip((u, v, W), kick)]
    below = ld.gradient_descent(*start, c, lr=0.95 * bound, steps=1500, record_every=1500)
    assert below["loss"][-1] < 1e-14
    try:
        above = ld.gradient_descent(*start, c, lr=1.05 * bound, steps=1500, record_every=1500)["loss"][-1]
    except ValueError:  # the oscillation grew until W became unstable
        above = np.inf
    assert above > 1e-3
    assert it.gd_step_bound(0.01) == pytest.approx(8e-6, rel=0.02)


def test_escape_time_per_decade_matches_the_ode():
    t_esc = it.escape_time()
    for c in (0.5, 0.1):
        t50 = []
        for p0 in (1e-4, 1e-6):
            ode = reduced.outlier_ode(p0, 0.0, c, 25.0, n_points=25001)
            t50.append(ode["time"][np.argmax(ode["loss"] < 0.5 * ode["loss"][0])])
        predicted = numeric(t_esc, c=c, kappa=1, p0=1e-6) - numeric(t_esc, c=c, kappa=1, p0=1e-4)
        assert t50[1] - t50[0] == pytest.approx(predicted, rel=5e-3)


def test_slow_manifold_minimises_the_loss_in_p():
    sm = it.slow_manifold()
    c, k = 0.3, 1.0
    for lam in (0.0, 0.4, 0.65):
        best = minimize_scalar(
            lambda p: ld.population_loss(*aligned(p, 1.0, lam), c, k),
            bounds=(0, 5),
            method="bounded",
            options={"xatol": 1e-10},
        ).x
        assert numeric(sm["p"], lam=lam, c=c, kappa=k) == pytest.approx(best, rel=1e-6)
        assert numeric(sm["loss"], lam=lam, c=c, kappa=k) == pytest.approx(
            ld.population_loss(*aligned(best, 1.0, lam), c, k), rel=1e-9
        )


@pytest.mark.parametrize("omega", [0.0, 2.0])
def test_pair_loss_and_gradient_equal_the_gramian_ones(omega):
    L = it.pair_loss().subs({it.c: 0.3, it.kappa: 1, it.omega: omega})
    qs = (it.x, it.y, it.alpha, it.beta, it.gamma)
    f = sp.lambdify(qs, L)
    g = sp.lambdify(qs, [sp.diff(L, q) for q in qs])
    rng = np.random.default_rng(1)
    for _ in range(5):
        q = rng.normal(size=5) * [0.7, 0.3, 0.2, 0.5, 0.2]
        loss, grad = reduced.pair_loss_and_gradient(q, 0.3, 1.0, omega)
        assert f(*q) == pytest.approx(loss, rel=1e-10)
        assert np.array(g(*q)) == pytest.approx(grad, rel=1e-8, abs=1e-12)


def test_pair_fixed_point_hessian_and_conservation():
    loss, grad = it.pair_gradient_at_fixed_point()
    assert loss == 0 and grad == [0, 0, 0, 0, 0]
    u, v, W = reduced.pair_network(1.0, 0.0, 0.7, 2.0, 0.0)
    assert ld.population_loss(u, v, W, 0.3, 1.0, 2.0) < 1e-14
    eig = it.pair_hessian_eigenvalues(0.3, 2.0)
    h, q0 = 1e-5, np.array([1.0, 0.0, 0.7, 2.0, 0.0])
    fd = np.array(
        [
            (
                reduced.pair_loss_and_gradient(q0 + h * e, 0.3, 1.0, 2.0)[1]
                - reduced.pair_loss_and_gradient(q0 - h * e, 0.3, 1.0, 2.0)[1]
            )
            / (2 * h)
            for e in np.eye(5)
        ]
    )
    assert eig == pytest.approx(np.linalg.eigvalsh((fd + fd.T) / 2), abs=1e-6)
    assert abs(eig[0]) < 1e-12
    rate = sp.lambdify(
        (it.x, it.y, it.alpha, it.beta, it.gamma),
        it.pair_conservation_rate().subs({it.c: 0.3, it.kappa: 1, it.omega: 2.0}),
    )
    rng = np.random.default_rng(2)
    for _ in range(3):
        assert abs(rate(*(rng.normal(size=5) * 0.3))) < 1e-12


def test_rkhs_series_and_the_lazy_kernel_at_large_n():
    series, norm = it.rkhs_norm()
    assert sp.simplify(series - sp.exp(-it.c * it.s)) == 0
    closed = it.sigma**2 / (it.sigma**2 - (1 - it.c) ** 2)
    for c, sigma in [(0.75, 0.5), (1.2, 0.5), (0.6, 0.9)]:  # inside the bulk, either side of 1
        direct = sum(((1 - c) / sigma) ** (2 * j) for j in range(400))
        at = {it.c: c, it.sigma: sigma}
        assert float(norm.subs(at)) == pytest.approx(direct, rel=1e-12)
        assert float(norm.subs(at)) == pytest.approx(float(closed.subs(at)), rel=1e-12)
    for c, sigma in [(0.25, 0.5), (1.75, 0.5)]:  # outside: the series diverges
        assert norm.subs({it.c: c, it.sigma: sigma}) == sp.oo
    sigma, N, pairs = 0.5, 300, [(0.5, 0.5), (1.0, 2.0), (3.0, 3.0)]
    values = []
    for seed in range(8):
        u, _, W = ld.init_network(N, sigma, 1.0, seed=seed)
        u /= np.linalg.norm(u)
        A = W - np.eye(N)
        values.append([(expm(A * s) @ u) @ (expm(A * s2) @ u) for s, s2 in pairs])
    values = np.array(values)
    mean, se = values.mean(0), values.std(0, ddof=1) / np.sqrt(len(values))
    theory = np.array([it.lazy_kernel(s, s2, sigma) for s, s2 in pairs])
    assert np.all(np.abs(mean - theory) < 4 * se + 1e-3 * theory)


def test_lazy_kernel_derived_from_the_moments_is_the_bessel_form():
    K = it.lazy_kernel_series()
    s_, sp_, sigma_ = sorted(K.free_symbols, key=str)
    for s, s2, sigma in [(0.5, 0.5, 0.5), (1.0, 2.0, 0.3), (3.0, 0.7, 0.9)]:
        value = float(K.subs({s_: s, sp_: s2, sigma_: sigma}))
        assert value == pytest.approx(it.lazy_kernel(s, s2, sigma), rel=1e-12)
    sigma, N = 0.5, 1000  # eq-lazy-moments: matched powers only, sigma^{2k}
    u, _, W = ld.init_network(N, sigma, 1.0, seed=7)
    u /= np.linalg.norm(u)
    powers = [u, W @ u, W @ W @ u]
    gram = np.array([[a @ b for b in powers] for a in powers])
    assert np.abs(gram - np.diag(sigma ** (2 * np.arange(3)))).max() < 0.05


def test_outlier_birth_condition_against_sampled_rank_one_perturbations():
    birth = it.outlier_birth()
    assert birth["g"] == 1 / it.z and birth["outlier"] == it.theta
    sigma, N = 0.5, 600
    _, _, W0 = ld.init_network(N, sigma, 1.0, seed=1)
    e = np.random.default_rng(2).normal(size=N)
    e /= np.linalg.norm(e)
    for theta in (-0.8, 0.65, 0.9):  # |theta| > sigma: an outlier at theta
        eigs = np.linalg.eigvals(W0 + theta * np.outer(e, e))
        spread = sigma / np.sqrt(N * (1 - sigma**2 / theta**2))  # sd of sum_k e^T W0^k e / theta^(k-1)
        assert np.min(np.abs(eigs - theta)) < 4 * spread
        assert np.sum(np.abs(eigs) > sigma + 0.05) == 1
    for theta in (-0.3, 0.35):  # |theta| < sigma: none leaves the disk
        assert np.abs(np.linalg.eigvals(W0 + theta * np.outer(e, e))).max() < sigma + 0.05


def test_shifted_singular_edges_and_density_against_sampled_matrices():
    edges = it.shifted_singular_edges()
    assert sp.simplify(edges["critical"] - (2 * (1 - it.zeta**2) * it.m**2 + 3 * it.m + 1)) == 0
    N, c = 800, 0.3
    for sigma in (0.2, 0.5, 0.7):
        _, _, W0 = ld.init_network(N, sigma, 1.0, seed=3)
        sv = np.linalg.svd((1 + c) * np.eye(N) - W0, compute_uv=False)
        lo, hi = (sigma * np.sqrt(float(e.subs(it.zeta, (1 + c) / sigma))) for e in edges["edges"])
        assert sv.min() == pytest.approx(lo, rel=0.02) and sv.max() == pytest.approx(hi, rel=0.02)
        w, q = it.shifted_singular_density((1 + c) / sigma)
        assert q.sum() == pytest.approx(1.0, abs=1e-6)
        assert np.sum(q * w) * sigma**2 == pytest.approx(np.mean(sv**2), rel=0.01)  # second moment
        assert np.sum(q / w) / sigma**2 == pytest.approx(np.mean(sv**-2.0), rel=0.02)  # the rates' moment
    with pytest.raises(ValueError, match="zeta > 1"):
        it.shifted_singular_density(0.9)


def test_linear_phase_mode_grows_at_the_singular_value():
    s_R = sp.Symbol("s_R", positive=True)
    assert it.linear_phase_mode() == sp.exp(it.kappa * s_R * it.t)
