"""Linear RNNs learning to integrate (arXiv 2503.18754): exact population loss, its gradients, gradient descent,
and the reduced outlier ODE. Chapters for Part III are not written yet; equations follow the notes in
shared/papers/learning-to-integrate.md (continuous time, stationary white-noise input, factor 1/2).

Network: dh/ds = (W - I) h + u x(s), y = v^T h; its filter is v^T e^{(W - I) s} u. Target filter:
kappa e^{-c s} cos(omega s) (omega = 0: a leaky integrator).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import solve_continuous_lyapunov


def _check(u: np.ndarray, v: np.ndarray, W: np.ndarray, c_star: float, kappa: float, omega: float):
    u, v, W = (np.asarray(a, dtype=float) for a in (u, v, W))
    if u.ndim != 1 or v.shape != u.shape or W.shape != (u.size, u.size):
        raise ValueError(f"need u, v of shape (N,) and W of shape (N, N); got {u.shape}, {v.shape}, {W.shape}")
    for name, value in (("c_star", c_star), ("kappa", kappa)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    if not np.isfinite(omega) or omega < 0:
        raise ValueError(f"omega must be a non-negative finite number; got {omega!r}")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(v)) and np.all(np.isfinite(W))):
        raise ValueError("u, v and W must be finite")
    top = float(np.max(np.linalg.eigvals(W).real))
    if top >= 1:
        raise ValueError(f"unstable network: max Re eig(W) = {top:.6f} >= 1, the stationary loss is infinite")
    return u, v, W


def _pieces(u, v, W, c_star, kappa, omega):
    N = u.size
    A = W - np.eye(N)
    Sigma = solve_continuous_lyapunov(A, -np.outer(u, u))      # A S + S A^T + u u^T = 0
    z = 1.0 + c_star - 1j * omega
    R = np.linalg.inv(z * np.eye(N) - W)                       # integral of e^{A s} e^{-(c - i w) s} ds
    target = kappa**2 * (1 / (4 * c_star) + c_star / (4 * (c_star**2 + omega**2)))
    return A, Sigma, R, target


def population_loss(u, v, W, c_star: float, kappa: float = 1.0, omega: float = 0.0) -> float:
    """1/2 integral_0^inf (v^T e^{(W-I)s} u - kappa e^{-c s} cos(omega s))^2 ds, exactly:

    1/2 [v^T Sigma v - 2 kappa Re v^T (z I - W)^{-1} u + kappa^2 (1/(4c) + c/(4(c^2 + omega^2)))], z = 1 + c - i omega,
    with the controllability Gramian (W - I) Sigma + Sigma (W - I)^T + u u^T = 0.
    """
    u, v, W = _check(u, v, W, c_star, kappa, omega)
    _, Sigma, R, target = _pieces(u, v, W, c_star, kappa, omega)
    return 0.5 * float(v @ Sigma @ v - 2 * kappa * np.real(v @ R @ u) + target)


def population_gradients(u, v, W, c_star: float, kappa: float = 1.0, omega: float = 0.0):
    """(dL/du, dL/dv, dL/dW) of :func:`population_loss`: P u - kappa Re R^T v, Sigma v - kappa Re R u,
    P Sigma - kappa Re R^T v u^T R^T, with the observability Gramian (W-I)^T P + P (W-I) + v v^T = 0."""
    u, v, W = _check(u, v, W, c_star, kappa, omega)
    A, Sigma, R, _ = _pieces(u, v, W, c_star, kappa, omega)
    P = solve_continuous_lyapunov(A.T, -np.outer(v, v))
    gu = P @ u - kappa * np.real(R.T @ v)
    gv = Sigma @ v - kappa * np.real(R @ u)
    gW = P @ Sigma - kappa * np.real(np.outer(R.T @ v, R @ u))
    return gu, gv, gW


def gradient_descent(u, v, W, c_star: float, *, lr: float, steps: int, kappa: float = 1.0, omega: float = 0.0,
                     record_every: int = 1) -> dict[str, np.ndarray]:
    """Full-batch gradient descent on (u, v, W) with step ``lr``; time t = lr * step. Records time, loss and the
    eigenvalues of W every ``record_every`` steps. A step that would make W unstable raises ``ValueError`` (the
    stationary loss does not exist there), naming the step and suggesting a smaller learning rate."""
    if lr <= 0 or steps < 0 or record_every < 1:
        raise ValueError("lr must be positive, steps non-negative and record_every >= 1")
    u, v, W = (np.array(a, dtype=float) for a in _check(u, v, W, c_star, kappa, omega))
    times, losses, eigs = [], [], []
    for step in range(steps + 1):
        if step % record_every == 0 or step == steps:
            times.append(lr * step)
            losses.append(population_loss(u, v, W, c_star, kappa, omega))
            eigs.append(np.linalg.eigvals(W))
        if step == steps:
            break
        gu, gv, gW = population_gradients(u, v, W, c_star, kappa, omega)
        u, v, W = u - lr * gu, v - lr * gv, W - lr * gW
        top = float(np.max(np.linalg.eigvals(W).real))
        if not np.isfinite(top) or top >= 1:
            raise ValueError(f"gradient step {step + 1} made W unstable (max Re eig = {top:.4f}); "
                             f"use a smaller lr (stiffness bound ~ 8 c^3 / kappa^2 = {8 * c_star**3 / kappa**2:.2e})")
    return {"time": np.asarray(times), "loss": np.asarray(losses), "eigenvalues": np.asarray(eigs),
            "u": u, "v": v, "W": W}


def outlier_ode(p0: float, lambda0: float, c_star: float, t_max: float, *, kappa: float = 1.0,
                n_points: int = 200) -> dict[str, np.ndarray]:
    """The 2-D reduced dynamics of the outlier eigenvalue lambda and its residue p:

    dp/dt = 2 p [kappa / (1 - lambda + c) - p / (2 (1 - lambda))],
    dlambda/dt = kappa p / (1 - lambda + c)^2 - p^2 / (4 (1 - lambda)^2),
    integrated with LSODA; the loss on the aligned manifold is 1/2 [p^2/(2d) - 2 kappa p/(d + c) + kappa^2/(2c)].
    """
    if p0 <= 0 or not lambda0 < 1 or c_star <= 0 or t_max <= 0 or kappa <= 0:
        raise ValueError("need p0 > 0, lambda0 < 1, c_star > 0, kappa > 0 and t_max > 0")

    def rhs(_, y):
        p, lam = y
        d = 1 - lam
        return [2 * p * (kappa / (d + c_star) - p / (2 * d)), kappa * p / (d + c_star) ** 2 - p**2 / (4 * d**2)]

    t = np.linspace(0, t_max, n_points)
    sol = solve_ivp(rhs, (0, t_max), [p0, lambda0], method="LSODA", t_eval=t, rtol=1e-10, atol=1e-12)
    if not sol.success:
        raise ValueError(f"the outlier ODE failed to integrate: {sol.message}")
    p, lam = sol.y
    d = 1 - lam
    loss = 0.5 * (p**2 / (2 * d) - 2 * kappa * p / (d + c_star) + kappa**2 / (2 * c_star))
    return {"time": t, "p": p, "lambda": lam, "loss": loss}
