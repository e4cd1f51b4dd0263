"""SymPy derivations for Part III (book/p3_leaky_integrator.md, p3_rich_lazy.md, p3_oscillator.md).

Every function derives its result from a definition (an integral, a gradient, a series) rather than stating it;
the tests compare each with an independent numeric computation (the Gramian loss of
:mod:`learnability.linear_dynamics`, the reduced ODEs of :mod:`learnability.integrate.reduced`, full gradient descent).
Symbols: p residue, lam outlier eigenvalue, d = 1 - lam, c target decay rate, kappa target amplitude, omega target
frequency, sigma bulk radius, p0 initial residue; z a point of the complex plane, theta a rank-one strength, zeta a real
shift, m a Stieltjes transform, w a squared singular value.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp
from scipy.special import i0

p, lam, s, t = sp.symbols("p lambda s t", real=True)
c, kappa, sigma, p0 = sp.symbols("c kappa sigma p_0", positive=True)
omega = sp.symbols("omega", nonnegative=True)
a, b = sp.symbols("a b", real=True)
z, theta = sp.symbols("z theta")
zeta, m, w = sp.symbols("zeta m w", positive=True)
k_sum = sp.symbols("k", integer=True, nonnegative=True)
x, y, alpha, beta, gamma = sp.symbols("x y alpha beta gamma", real=True)


@cache
def aligned_loss() -> sp.Expr:
    """L(p, lambda) = 1/2 integral_0^inf (p e^{-(1 - lambda) s} - kappa e^{-c s})^2 ds on the aligned manifold,
    evaluated by SymPy for lambda < 1 (eq-aligned-loss)."""
    d = sp.symbols("d", positive=True)
    integral = sp.integrate((p * sp.exp(-d * s) - kappa * sp.exp(-c * s)) ** 2, (s, 0, sp.oo), conds="none") / 2
    return sp.simplify(integral.subs(d, 1 - lam))


def aligned_optimum() -> list[dict]:
    """Critical points of :func:`aligned_loss` with p != 0 (eq-aligned-optimum); the result is [(kappa, 1 - c)]."""
    L = aligned_loss()
    sols = sp.solve([sp.diff(L, p), sp.diff(L, lam)], [p, lam], dict=True)
    return [sol for sol in sols if sp.simplify(sol[p]) != 0]


def aligned_hessian() -> sp.Matrix:
    """Hessian of :func:`aligned_loss` in (p, lambda) at the optimum (kappa, 1 - c) (eq-aligned-hessian)."""
    L = aligned_loss()
    H = sp.hessian(L, (p, lam)).subs({p: kappa, lam: 1 - c})
    return sp.simplify(H)


def outlier_flow() -> tuple[sp.Expr, sp.Expr]:
    """(dp/dt, dlambda/dt) from gradient flow on u = a e, v = b e, W = lambda e e^T, L = L(a b, lambda):
    da/dt = -dL/da, db/dt = -dL/db, dlambda/dt = -dL/dlambda, then dp/dt = b da/dt + a db/dt with the balanced
    a = b = sqrt(p) (eq-outlier-ode)."""
    La = aligned_loss().subs(p, a * b)
    adot, bdot, lamdot = -sp.diff(La, a), -sp.diff(La, b), -sp.diff(La, lam)
    balanced = {a: sp.sqrt(p), b: sp.sqrt(p)}
    pdot = sp.simplify((b * adot + a * bdot).subs(balanced))
    return pdot, sp.simplify(lamdot.subs(balanced))


def balance_rate() -> sp.Expr:
    """d/dt (a^2 - b^2) under the aligned flow; it simplifies to 0 (eq-aligned-conservation)."""
    La = aligned_loss().subs(p, a * b)
    return sp.simplify(2 * a * (-sp.diff(La, a)) - 2 * b * (-sp.diff(La, b)))


def linear_rates() -> list[sp.Expr]:
    """Relaxation rates at the optimum: minus the eigenvalues of the Jacobian of :func:`outlier_flow` at
    (kappa, 1 - c) (eq-linear-rates)."""
    pdot, lamdot = outlier_flow()
    J = sp.Matrix([pdot, lamdot]).jacobian([p, lam]).subs({p: kappa, lam: 1 - c})
    return [sp.simplify(-ev) for ev in J.eigenvals()]


def stiffness() -> sp.Expr:
    """The stiffest curvature d^2 L / d lambda^2 at the optimum, kappa^2 / (4 c^3); plain gradient descent on W
    needs lr < 2 / that = 8 c^3 / kappa^2 (eq-stiffness)."""
    return sp.simplify(sp.diff(aligned_loss(), lam, 2).subs({p: kappa, lam: 1 - c}))


def gd_step_bound(c_star: float, kappa_value: float = 1.0) -> float:
    """The exact largest stable step of gradient descent in (a, b, lambda) at the optimum, 2 / lambda_max(H_abl),
    with H_abl the Hessian of L(a b, lambda) at a = b = sqrt(kappa), lambda = 1 - c (numeric; its c -> 0 limit is
    eq-stiffness)."""
    if not c_star > 0 or not kappa_value > 0:
        raise ValueError(f"c_star and kappa must be positive; got {c_star!r}, {kappa_value!r}")
    La = aligned_loss().subs(p, a * b)
    H = sp.hessian(La, (a, b, lam)).subs({a: sp.sqrt(kappa), b: sp.sqrt(kappa), lam: 1 - c})
    Hn = np.array(H.subs({c: c_star, kappa: kappa_value}).evalf(), dtype=float)
    return float(2 / np.linalg.eigvalsh(Hn).max())


def escape_time() -> sp.Expr:
    """Plateau escape time: the linearised flow at (p, lambda) = (0, 0) is dp/dt = 2 kappa p / (1 + c), so p reaches
    kappa at t = (1 + c) / (2 kappa) ln(kappa / p0) (eq-escape-time)."""
    pdot, _ = outlier_flow()
    rate = sp.simplify(sp.diff(pdot, p).subs({p: 0, lam: 0}))
    p_of_t = sp.Function("P")
    sol = sp.dsolve(sp.Eq(p_of_t(t).diff(t), rate * p_of_t(t)), p_of_t(t), ics={p_of_t(0): p0}).rhs
    t_esc = sp.solve(sp.Eq(sol, kappa), t)[0]
    return sp.factor(sp.expand_log(t_esc, force=True))


def slow_manifold() -> dict[str, sp.Expr]:
    """p*(lambda) solving dL/dp = 0, the reduced loss L(p*(lambda), lambda) and the flow dlambda/dt on it
    (eq-slow-manifold)."""
    L = aligned_loss()
    pstar = sp.solve(sp.diff(L, p), p)[0]
    return {
        "p": sp.simplify(pstar),
        "loss": sp.simplify(L.subs(p, pstar)),
        "lambda_dot": sp.factor(sp.simplify(-sp.diff(L, lam).subs(p, pstar))),
    }


@cache
def pair_loss() -> sp.Expr:
    """Population loss on the pair manifold (eq-pair-manifold) for the target kappa e^{-c s} cos(omega s):
    Sigma from the 2x2 Lyapunov equation solved as a linear system, the cross term Re v^T (z I - W)^{-1} u with
    z = 1 + c - i omega written as a real rational function (eq-pair-loss)."""
    u = sp.Matrix([x, y])
    v = sp.Matrix([x, -y])
    W = sp.Matrix([[alpha + gamma, -beta], [beta, alpha - gamma]])
    A = W - sp.eye(2)
    s11, s12, s22 = sp.symbols("s11 s12 s22")
    S = sp.Matrix([[s11, s12], [s12, s22]])
    eqs = A * S + S * A.T + u * u.T
    Ssol = sp.solve([eqs[0, 0], eqs[0, 1], eqs[1, 1]], [s11, s12, s22], dict=True)[0]
    quad = sp.factor((v.T * S.subs(Ssol) * v)[0])
    re_z = 1 + c
    # Re(z) I - W; z I - W = M - i omega I
    M = sp.Matrix([[re_z - (alpha + gamma), beta], [-beta, re_z - (alpha - gamma)]])
    # (M - i w I)^{-1} = adj(M - i w I) / det(M - i w I); split numerator and denominator into real and imaginary
    adj = sp.Matrix([[M[1, 1], -M[0, 1]], [-M[1, 0], M[0, 0]]]) - sp.I * omega * sp.eye(2)
    num = sp.expand((v.T * adj * u)[0])
    det = sp.expand(M.det() - sp.I * omega * M.trace() - omega**2)
    num_r, num_i = sp.re(num), sp.im(num)
    det_r, det_i = sp.re(det), sp.im(det)
    cross = (num_r * det_r + num_i * det_i) / (det_r**2 + det_i**2)
    norm = kappa**2 * (1 / (4 * c) + c / (4 * (c**2 + omega**2)))
    return (quad - 2 * kappa * cross + norm) / 2


def pair_fixed_point() -> dict[sp.Symbol, sp.Expr]:
    """The learned point (x, y, alpha, beta, gamma) = (sqrt(kappa), 0, 1 - c, omega, 0): u = v = sqrt(kappa) e+,
    W|_S = (1 - c) I + omega J (eq-pair-fixed-point)."""
    return {x: sp.sqrt(kappa), y: 0, alpha: 1 - c, beta: omega, gamma: 0}


def pair_gradient_at_fixed_point() -> tuple[sp.Expr, list[sp.Expr]]:
    """(loss, gradient) of :func:`pair_loss` at :func:`pair_fixed_point`, simplified: (0, [0, 0, 0, 0, 0])."""
    L = pair_loss()
    point = pair_fixed_point()
    grad = [sp.simplify(sp.diff(L, q).subs(point)) for q in (x, y, alpha, beta, gamma)]
    return sp.simplify(L.subs(point)), grad


def pair_hessian_eigenvalues(c_star: float, omega_star: float, kappa_value: float = 1.0) -> np.ndarray:
    """Eigenvalues of the Hessian of :func:`pair_loss` in (x, y, alpha, beta, gamma) at the fixed point, ascending;
    one is zero: the direction of the conserved quantity x y + 2 beta gamma."""
    L = pair_loss()
    values = {c: c_star, omega: omega_star, kappa: kappa_value}
    point = {q: sp.sympify(val).subs(values) for q, val in pair_fixed_point().items()}
    H = sp.hessian(L, (x, y, alpha, beta, gamma)).subs(values).subs(point)
    return np.linalg.eigvalsh(np.array(H.evalf(), dtype=float))


def pair_conservation_rate() -> sp.Expr:
    """d/dt (x y + 2 beta gamma) under dq/dt = -1/2 dL/dq on the pair manifold, exactly 0 by the invariance of the
    filter under u -> G u, v -> G^{-T} v, W -> G W G^{-1} (eq-pair-conservation). Returned unsimplified: the
    tests evaluate it at random points."""
    L = pair_loss()
    flow = {q: -sp.diff(L, q) / 2 for q in (x, y, alpha, beta, gamma)}
    return flow[x] * y + x * flow[y] + 2 * flow[beta] * gamma + 2 * beta * flow[gamma]


def rkhs_norm() -> tuple[sp.Expr, sp.Expr]:
    """The lazy-regime argument (eq-rkhs-norm): with phi_k(s) = sigma^k s^k e^{-s} / k!, the target expands as
    e^{-c s} = sum_k ((1 - c)/sigma)^k phi_k(s); returns (that series summed, the RKHS norm
    sum_k ((1 - c)/sigma)^{2k}). The norm keeps SymPy's convergence condition: a Piecewise equal to
    sigma^2 / (sigma^2 - (1 - c)^2) where (1 - c)^2 / sigma^2 < 1 (|1 - c| < sigma, inside the bulk) and infinite
    elsewhere (the closed form alone would turn negative there)."""
    k = k_sum
    q = (1 - c) / sigma
    series = sp.simplify(sp.summation(q**k * sigma**k * s**k * sp.exp(-s) / sp.factorial(k), (k, 0, sp.oo)))
    summed = sp.summation(q ** (2 * k), (k, 0, sp.oo))
    if not isinstance(summed, sp.Piecewise):
        raise ValueError(f"SymPy returned the geometric series without its convergence condition: {summed}")
    (closed, condition), *_ = summed.args
    return series, sp.Piecewise((sp.simplify(closed), condition), (sp.oo, True))


@cache
def lazy_kernel_series() -> sp.Expr:
    """The N -> infinity read-out kernel derived (eq-lazy-kernel): expanding both exponentials,
    K(s, s') = u^T e^{(W0 - I)^T s} e^{(W0 - I) s'} u = e^{-(s + s')} sum_{j,k} s^j s'^k / (j! k!) u^T (W0^T)^j W0^k u,
    and with the moments u^T (W0^T)^j W0^k u -> delta_{jk} sigma^{2k} for |u| = 1 and W0 with iid N(0, sigma^2/N)
    entries (eq-lazy-moments: only matched powers survive, each squared entry contributes sigma^2/N over N
    indices), SymPy sums the double series to e^{-(s + s')} I_0(2 sigma sqrt(s s')). Symbols: s, s' = ``sp``."""
    j = sp.symbols("j", integer=True, nonnegative=True)
    s_prime = sp.symbols("s'", positive=True)
    s_pos = sp.symbols("s", positive=True)
    moment = sp.KroneckerDelta(j, k_sum) * sigma ** (2 * k_sum)
    inner = sp.summation(s_pos**j / sp.factorial(j) * moment, (j, 0, sp.oo))
    double = sp.summation(inner * s_prime**k_sum / sp.factorial(k_sum), (k_sum, 0, sp.oo))
    return sp.exp(-(s_pos + s_prime)) * double


def lazy_kernel(s_value: float, s_prime: float, sigma_value: float) -> float:
    """The N -> infinity read-out kernel u^T e^{A^T s} e^{A s'} u for |u| = 1 and W0 with iid N(0, sigma^2/N)
    entries: e^{-(s + s')} I_0(2 sigma sqrt(s s')) = sum_k phi_k(s) phi_k(s') (eq-lazy-kernel)."""
    return float(np.exp(-(s_value + s_prime)) * i0(2 * sigma_value * np.sqrt(s_value * s_prime)))


def outlier_birth() -> dict[str, sp.Expr]:
    """The outlier of W0 + theta e e^T (eq-outlier-birth), e a unit vector independent of W0 with iid N(0, sigma^2/N)
    entries. For |z| > sigma the resolvent's diagonal element is the Neumann series
    g(z) = e^T (z - W0)^{-1} e = sum_k z^{-k-1} e^T W0^k e, and the moments e^T W0^k e -> delta_{k0} as N -> infinity
    (W0^k has no preferred direction), so SymPy sums g = 1/z. An eigenvalue z outside the bulk solves
    det(z - W0 - theta e e^T) = 0, i.e. 1 = theta g(z) (matrix determinant lemma): z = theta. It is an outlier iff it
    lies where the series converges, |theta| > sigma; otherwise no eigenvalue leaves the disk.
    Returns {"g": g(z), "outlier": the root z(theta), "condition": |theta| > sigma}."""
    moment = sp.KroneckerDelta(k_sum, 0)
    g = sp.summation(moment * z ** (-k_sum - 1), (k_sum, 0, sp.oo))
    (root,) = sp.solve(sp.Eq(theta * g, 1), z)
    return {"g": g, "outlier": root, "condition": sp.Abs(theta) > sigma}


@cache
def shifted_singular_edges() -> dict[str, sp.Expr]:
    """Edges of the squared singular values of zeta - X (eq-hermitized-edges), X an N x N matrix of iid entries of
    variance 1/N, N -> infinity: their Stieltjes transform m(w) solves 1/m = -w (1 + m) + zeta^2 / (1 + m) (the
    Hermitization of the circular law; Bai 1997, Bourgade, Yau and Yin 2014). Solved for w, w(m) = zeta^2/(1 + m)^2
    - 1/(m (1 + m)); the support's edges are its critical values, dw/dm = 0 <=> 2 (1 - zeta^2) m^2 + 3 m + 1 = 0.
    Returns {"w_of_m": w(m), "critical": the quadratic, "edges": (w_-, w_+) for zeta > 1 (sorted)}."""
    w_of_m = zeta**2 / (1 + m) ** 2 - 1 / (m * (1 + m))
    critical = sp.factor(sp.numer(sp.together(sp.diff(w_of_m, m))))
    roots = sp.solve(critical, m)
    edges = [sp.simplify(w_of_m.subs(m, r)) for r in roots]
    at_two = [float(e_.subs(zeta, 2)) for e_ in edges]
    return {
        "w_of_m": w_of_m,
        "critical": sp.collect(sp.expand(critical), m),
        "edges": tuple(edges) if at_two[0] <= at_two[1] else tuple(reversed(edges)),
    }


def linear_phase_mode() -> sp.Expr:
    """The plateau's linear phase for one singular pair (eq-linear-phase): near u = v = 0 with W = W0 frozen the
    population gradients are dL/du = -kappa R^T v, dL/dv = -kappa R u to first order, R = ((1 + c) I - W0)^{-1}, so
    the components alpha = r.u, beta = l.v along a singular pair R r = s l obey dalpha/dt = kappa s beta,
    dbeta/dt = kappa s alpha. Returns (alpha + beta)(t) / (alpha + beta)(0) solved by SymPy: e^{kappa s t}."""
    s_val = sp.symbols("s_R", positive=True)
    A, B = sp.Function("A"), sp.Function("B")
    alpha0, beta0 = sp.symbols("alpha_0 beta_0", real=True)
    sol = sp.dsolve(
        [sp.Eq(A(t).diff(t), kappa * s_val * B(t)), sp.Eq(B(t).diff(t), kappa * s_val * A(t))],
        [A(t), B(t)],
        ics={A(0): alpha0, B(0): beta0},
    )
    total = sum(eq.rhs for eq in sol)
    return sp.simplify(total / (alpha0 + beta0))


def shifted_singular_density(zeta_value: float, nodes: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature of the law of eq-hermitized-edges for a real shift zeta_value > 1: nodes w_i in (w_-, w_+) and
    weights q_i with sum_i q_i h(w_i) ~ integral h(w) rho(w) dw, rho(w) = Im m(w + i0) / pi from the cubic
    w m^3 + 2 w m^2 + (w + 1 - zeta^2) m + 1 = 0 (eq-hermitized-edges multiplied out). Gauss-Chebyshev nodes suit the
    square-root edges; the weights sum to 1 up to the quadrature error."""
    if not zeta_value > 1 or nodes < 2:
        raise ValueError(
            f"need a shift zeta > 1 (the point outside the bulk) and nodes >= 2; got {zeta_value!r}, {nodes!r}"
        )
    lo, hi = (float(e_.subs(zeta, zeta_value)) for e_ in shifted_singular_edges()["edges"])
    angle = (np.arange(nodes) + 0.5) * np.pi / nodes
    w_nodes = (lo + hi) / 2 - (hi - lo) / 2 * np.cos(angle)
    jac = (hi - lo) / 2 * np.sin(angle) * np.pi / nodes
    density = np.array([np.roots([wi, 2 * wi, wi + 1 - zeta_value**2, 1]).imag.max() / np.pi for wi in w_nodes])
    return w_nodes, density * jac
