"""Reduced models of a linear RNN learning a filter (book/p3_leaky_integrator.md, book/p3_oscillator.md).

* The outlier ODE (eq-outlier-ode): one real outlier eigenvalue lambda of W with residue p, valid on the aligned
  manifold u = a e, v = b e, W = W0 + lambda e e^T with balanced a = b (small initialisation, sigma -> 0).
* The finite-sigma plateau (eq-linear-phase, eq-escape-sigma): with a bulk of radius sigma the plateau's linear
  phase grows along the top singular directions of ((1 + c) I - W0)^{-1}, faster than the sigma -> 0 rate; the
  escape time follows from the singular-value law of eq-hermitized-edges, and the loss curve is the outlier ODE's,
  shifted by the escape time it gains.
* The pair system (eq-pair-manifold): for W0 = 0 the dynamics stay in span(u0, v0); with |u0| = |v0| they stay on
  u = x e+ + y e-, v = x e+ - y e-, W|_S = alpha I + beta J + gamma (e+ e+^T - e- e-^T), five variables that carry a
  real outlier, two colliding real eigenvalues or a complex-conjugate pair alpha +- sqrt(gamma^2 - beta^2).

Both are integrated with ``scipy.integrate.solve_ivp`` (LSODA); their right-hand sides are exact gradients of the
population loss, so the reduced models share no code with the SymPy derivations that check them.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq, minimize_scalar
from scipy.special import logsumexp

from ..linear_dynamics import Number, loss_and_gradients, target_modes, target_norm, target_transfer
from .integrator_theory import shifted_singular_density


def initial_conditions(u0, v0) -> dict[str, float]:
    """Reduced initial conditions from a network's read-in/read-out (eq-reduced-init): the growing mode u + v gives
    p0 = |u0 + v0|^2 / 4 and x0 = |u0 + v0| / 2; the decaying mode gives y0 = |u0 - v0| / 2."""
    u0, v0 = np.asarray(u0, dtype=float), np.asarray(v0, dtype=float)
    if u0.ndim != 1 or u0.shape != v0.shape:
        raise ValueError(f"u0 and v0 must be vectors of the same length; got {u0.shape} and {v0.shape}")
    plus, minus = np.linalg.norm(u0 + v0) / 2, np.linalg.norm(u0 - v0) / 2
    return {"p0": float(plus**2), "x0": float(plus), "y0": float(minus)}


def _integrate(rhs, y0, t_max: float, n_points: int, what: str):
    t = np.linspace(0.0, t_max, n_points)
    try:
        sol = solve_ivp(rhs, (0.0, t_max), y0, method="LSODA", t_eval=t, rtol=1e-10, atol=1e-12)
    except ValueError as err:
        raise ValueError(f"the {what} left the stable region: {err}") from None
    if not sol.success:
        raise ValueError(f"the {what} failed to integrate: {sol.message}")
    return sol.t, sol.y


def outlier_ode(
    p0: float,
    lambda0: float,
    c_star: Number,
    t_max: float,
    *,
    kappa: Number = 1.0,
    omega: Number = 0.0,
    n_points: int = 200,
) -> dict[str, np.ndarray]:
    """The 2-D outlier ODE (eq-outlier-ode) for any target with Laplace transform F*, d = 1 - lambda:

    dp/dt = 2 p [F*(d) - p / (2 d)],   dlambda/dt = -p^2 / (4 d^2) - p F*'(d),

    for the leaky integrator F*(d) = kappa / (d + c). Returns time, p, lambda and the aligned loss
    L = 1/2 [p^2 / (2 d) - 2 p F*(d) + ||f*||^2] (eq-aligned-loss).
    """
    modes = target_modes(c_star, kappa, omega)
    if not p0 > 0 or not lambda0 < 1 or not t_max > 0 or n_points < 2:
        raise ValueError(
            f"need p0 > 0, lambda0 < 1, t_max > 0 and n_points >= 2; got {p0!r}, {lambda0!r}, {t_max!r}, {n_points!r}"
        )

    def rhs(_, y):
        p, lam = y
        d = 1.0 - lam
        if not d > 0:
            raise ValueError(f"lambda = {lam:.6f} reached the stability edge 1")
        return [
            2 * p * (target_transfer(d, *modes) - p / (2 * d)),
            -(p**2) / (4 * d**2) - p * target_transfer(d, *modes, derivative=True),
        ]

    t, (p, lam) = _integrate(rhs, [p0, lambda0], t_max, n_points, "outlier ODE")
    d = 1.0 - lam
    loss = 0.5 * (p**2 / (2 * d) - 2 * p * target_transfer(d, *modes) + target_norm(*modes))
    return {"time": t, "p": p, "lambda": lam, "loss": loss}


def _leaky_mode(c_star: float, kappa: float) -> tuple[float, float]:
    c, k, w = target_modes(c_star, kappa)
    if c.size != 1 or w[0] != 0 or not k[0] > 0:
        raise ValueError("the finite-sigma plateau theory is for one leaky mode: a number c_star > 0 and kappa > 0")
    return float(c[0]), float(k[0])


def log_linear_phase(
    times, p0: float, c_star: float, sigma: float, *, kappa: float = 1.0, nodes: int = 400
) -> np.ndarray:
    """ln P_sigma(t) of the plateau's linear phase (eq-linear-phase): each singular pair of R = ((1 + c) I - W0)^{-1}
    grows as e^{kappa s t} (:func:`learnability.integrate.integrator_theory.linear_phase_mode`), and a random small
    initialisation puts equal weight on every pair, so the residue-like growth is

        P_sigma(t) = p0 integral e^{2 kappa s t} rho_R(ds),  s = 1 / (sigma sqrt(w)), w ~ eq-hermitized-edges at
        zeta = (1 + c) / sigma,

    and P_0(t) = p0 e^{2 kappa t / (1 + c)} for sigma = 0 (the outlier ODE's linearisation, eq-escape-time)."""
    c, k = _leaky_mode(c_star, kappa)
    times = np.asarray(times, dtype=float)
    if not p0 > 0 or not 0 <= sigma < 1 + c or np.any(times < 0):
        raise ValueError(
            f"need p0 > 0, 0 <= sigma < 1 + c_star (the point 1 + c outside the bulk) and times >= 0; "
            f"got {p0!r}, {sigma!r}"
        )
    if sigma == 0:
        return np.log(p0) + 2 * k * times / (1 + c)
    w_nodes, weights = shifted_singular_density((1 + c) / sigma, nodes)
    rates = 2 * k / (sigma * np.sqrt(w_nodes))
    return np.log(p0) + logsumexp(np.multiply.outer(times, rates), b=weights, axis=-1)


def escape_time_sigma(p0: float, c_star: float, sigma: float, *, kappa: float = 1.0) -> float:
    """The plateau escape time at bulk radius sigma (eq-escape-sigma): the t with P_sigma(t) = kappa, P_sigma the
    linear phase :func:`log_linear_phase`. At sigma = 0 it is eq-escape-time, (1 + c)/(2 kappa) ln(kappa / p0)."""
    c, k = _leaky_mode(c_star, kappa)
    if not 0 < p0 < k:
        raise ValueError(f"need 0 < p0 < kappa (a small initialisation); got p0 = {p0!r}, kappa = {k!r}")
    t_zero = (1 + c) / (2 * k) * np.log(k / p0)
    if sigma == 0:
        return float(t_zero)
    return float(brentq(lambda t: log_linear_phase(t, p0, c, sigma, kappa=k) - np.log(k), 0.0, t_zero))


def finite_sigma_loss(
    p0: float, c_star: float, sigma: float, t_max: float, *, kappa: float = 1.0, n_points: int = 200
) -> dict[str, np.ndarray]:
    """The loss curve at bulk radius sigma (eq-escape-sigma): once the outlier exists the aligned dynamics do not see
    the bulk (eq-outlier-birth: an outlier at theta for any sigma < |theta|), so the curve is the outlier ODE's
    (:func:`outlier_ode` from p0, lambda = 0) shifted earlier by the escape time the bulk gains,
    shift = t_sigma - t_0. Returns time, loss and the shift."""
    c, k = _leaky_mode(c_star, kappa)
    shift = escape_time_sigma(p0, c, sigma, kappa=k) - escape_time_sigma(p0, c, 0.0, kappa=k)
    ode = outlier_ode(p0, 0.0, c, t_max - shift, kappa=k, n_points=n_points)
    times = np.linspace(0.0, t_max, n_points)
    return {"time": times, "loss": np.interp(times - shift, ode["time"], ode["loss"]), "shift": shift}


def best_single_pole(c_star: Number, kappa: Number = 1.0, omega: Number = 0.0, *, d_max: float = 50.0) -> dict:
    """The best one-real-pole fit p e^{-d s} of the target, a fixed point of eq-outlier-ode: for fixed d the aligned
    loss is minimal at p = 2 d F*(d), leaving L = 1/2 (||f*||^2 - 2 d F*(d)^2), so d maximises d F*(d)^2 (the saddle
    the oscillator's first stage approaches). Returns d, lambda = 1 - d, p and the loss."""
    modes = target_modes(c_star, kappa, omega)
    if not d_max > 0:
        raise ValueError(f"d_max must be positive; got {d_max!r}")
    gain = lambda d: d * target_transfer(d, *modes) ** 2  # noqa: E731
    grid = np.geomspace(1e-4, d_max, 20001)
    i = int(np.argmax(gain(grid)))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    d = float(minimize_scalar(lambda x: -gain(x), bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).x)
    F = float(target_transfer(d, *modes))
    return {"d": d, "lambda": 1.0 - d, "p": 2 * d * F, "loss": 0.5 * (target_norm(*modes) - 2 * d * F**2)}


def pair_network(x: float, y: float, alpha: float, beta: float, gamma: float):
    """(u, v, W) in the basis (e+, e-) of the plane S: u = (x, y), v = (x, -y), W = [[alpha + gamma, -beta],
    [beta, alpha - gamma]] (eq-pair-manifold)."""
    return (np.array([x, y]), np.array([x, -y]), np.array([[alpha + gamma, -beta], [beta, alpha - gamma]]))


def pair_loss_and_gradient(q, c_star: Number, kappa: Number = 1.0, omega: Number = 0.0):
    """Population loss of :func:`pair_network` ``(*q)`` and its gradient in q = (x, y, alpha, beta, gamma), by the
    chain rule through the exact 2x2 network gradients."""
    u, v, W = pair_network(*q)
    loss, (gu, gv, gW), _ = loss_and_gradients(u, v, W, c_star, kappa, omega)
    grad = np.array([gu[0] + gv[0], gu[1] - gv[1], gW[0, 0] + gW[1, 1], gW[1, 0] - gW[0, 1], gW[0, 0] - gW[1, 1]])
    return loss, grad


def pair_eigenvalues(alpha, beta, gamma) -> np.ndarray:
    """Eigenvalues alpha +- sqrt(gamma^2 - beta^2) of W|_S (a conjugate pair iff beta^2 > gamma^2), shape (..., 2)."""
    root = np.sqrt(np.asarray(gamma, dtype=complex) ** 2 - np.asarray(beta, dtype=complex) ** 2)
    return np.stack([alpha + root, alpha - root], axis=-1)


def pair_ode(
    x0: float,
    y0: float,
    c_star: Number,
    t_max: float,
    *,
    kappa: Number = 1.0,
    omega: Number = 0.0,
    alpha0: float = 0.0,
    beta0: float = 0.0,
    gamma0: float = 0.0,
    n_points: int = 400,
) -> dict[str, np.ndarray]:
    """Gradient flow on the pair manifold, dq/dt = -1/2 dL/dq for q = (x, y, alpha, beta, gamma) (eq-pair-flow; the
    1/2 is the induced metric: each coordinate direction has squared norm 2). Returns time, the five variables,
    loss, the two eigenvalues of W|_S and the conserved quantity x y + 2 beta gamma (eq-pair-conservation)."""
    modes = target_modes(c_star, kappa, omega)
    if not t_max > 0 or n_points < 2:
        raise ValueError(f"need t_max > 0 and n_points >= 2; got {t_max!r}, {n_points!r}")
    t, Y = _integrate(
        lambda _, q: -0.5 * pair_loss_and_gradient(q, *modes)[1],
        [x0, y0, alpha0, beta0, gamma0],
        t_max,
        n_points,
        "pair system",
    )
    out = dict(zip(("x", "y", "alpha", "beta", "gamma"), Y))
    out["time"] = t
    out["loss"] = np.array([pair_loss_and_gradient(q, *modes)[0] for q in Y.T])
    out["eigenvalues"] = pair_eigenvalues(out["alpha"], out["beta"], out["gamma"])
    out["conserved"] = out["x"] * out["y"] + 2 * out["beta"] * out["gamma"]
    return out
