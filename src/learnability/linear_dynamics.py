"""Linear RNNs learning to integrate (arXiv 2503.18754): the exact population loss, its gradients and full
gradient descent on (u, v, W). Reduced models live in :mod:`learnability.integrate.reduced`, the SymPy derivations in
:mod:`learnability.integrate.integrator_theory`, sampled-noise training in :mod:`learnability.integrate.sampled_noise`.

Network (continuous time, book/p3_leaky_integrator.md): dh/ds = (W - I) h + u x(s), y = v^T h, white-noise x; its
filter is f(s) = v^T e^{(W - I) s} u. Target filter: a sum of modes f*(s) = sum_k kappa_k e^{-c_k s} cos(omega_k s)
(one mode with omega = 0 is the leaky integrator, eq-target-filter). ``c_star``, ``kappa`` and ``omega`` are numbers
(one mode) or sequences of equal length (several modes).

All the linear algebra goes through one real Schur form A = W - I = Q T Q^T per evaluation: both Lyapunov
equations are triangular Sylvester solves (LAPACK trsyl) on T, and the eigenvalues of W come for free (they also
drive the stability guard).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import get_lapack_funcs, schur
from threadpoolctl import threadpool_limits

Modes = tuple[np.ndarray, np.ndarray, np.ndarray]
Number = float | Sequence[float] | np.ndarray
SMALL = 256  # up to this N, one BLAS thread is faster (N = 100: 6 ms vs 19 ms per GD step on 2 cores)


def blas_threads(N: int):
    """Context that runs BLAS/LAPACK single-threaded for N <= SMALL: thread hand-offs cost more than the
    O(N^3) work of a 100 x 100 Schur form (measured on the 2-core CI machine), and default threading above."""
    return threadpool_limits(1, user_api="blas") if N <= SMALL else threadpool_limits(None)


def target_modes(c_star: Number, kappa: Number = 1.0, omega: Number = 0.0) -> Modes:
    """Validated (c, kappa, omega) arrays of the target's modes: c > 0, kappa != 0, omega >= 0, all finite."""
    c, k, w = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (c_star, kappa, omega))
    try:
        c, k, w = np.broadcast_arrays(c, k, w)
    except ValueError:
        raise ValueError(
            f"c_star, kappa and omega must have the same number of modes; got {c.size}, {k.size}, {w.size}"
        ) from None
    if c.ndim != 1:
        raise ValueError("c_star, kappa and omega must be numbers or 1-D sequences")
    if not (np.all(np.isfinite(c)) and np.all(c > 0)):
        raise ValueError(f"c_star must be positive and finite (a decaying target); got {c.tolist()}")
    if not (np.all(np.isfinite(k)) and np.all(k != 0)):
        raise ValueError(f"kappa must be finite and non-zero; got {k.tolist()}")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0)):
        raise ValueError(f"omega must be non-negative and finite; got {w.tolist()}")
    return c.copy(), k.copy(), w.copy()


def target_filter(s: np.ndarray, c_star: Number, kappa: Number = 1.0, omega: Number = 0.0) -> np.ndarray:
    """f*(s) = sum_k kappa_k e^{-c_k s} cos(omega_k s) (eq-target-filter)."""
    c, k, w = target_modes(c_star, kappa, omega)
    s = np.asarray(s, dtype=float)[..., None]
    return np.sum(k * np.exp(-c * s) * np.cos(w * s), axis=-1)


def target_transfer(
    q: np.ndarray, c_star: Number, kappa: Number = 1.0, omega: Number = 0.0, derivative: bool = False
) -> np.ndarray:
    """Laplace transform F*(q) = sum_k kappa_k (q + c_k) / ((q + c_k)^2 + omega_k^2) of the target, or its
    derivative dF*/dq, for real q > -min c."""
    c, k, w = target_modes(c_star, kappa, omega)
    x = np.asarray(q, dtype=float)[..., None] + c
    if derivative:
        return np.sum(k * (w**2 - x**2) / (x**2 + w**2) ** 2, axis=-1)
    return np.sum(k * x / (x**2 + w**2), axis=-1)


def target_norm(c_star: Number, kappa: Number = 1.0, omega: Number = 0.0) -> float:
    """||f*||^2 = integral_0^inf f*(s)^2 ds = sum_{k,l} kappa_k kappa_l / 2 [a/(a^2 + (w_k - w_l)^2)
    + a/(a^2 + (w_k + w_l)^2)], a = c_k + c_l (one mode: kappa^2 (1/(4c) + c/(4(c^2 + omega^2))))."""
    c, k, w = target_modes(c_star, kappa, omega)
    a = c[:, None] + c[None, :]
    dm, dp = w[:, None] - w[None, :], w[:, None] + w[None, :]
    return float(np.sum(np.outer(k, k) * 0.5 * (a / (a**2 + dm**2) + a / (a**2 + dp**2))))


def _as_network(u, v, W) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, v, W = (np.asarray(a, dtype=float) for a in (u, v, W))
    if u.ndim != 1 or v.shape != u.shape or W.shape != (u.size, u.size):
        raise ValueError(f"need u, v of shape (N,) and W of shape (N, N); got {u.shape}, {v.shape}, {W.shape}")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(v)) and np.all(np.isfinite(W))):
        raise ValueError("u, v and W must be finite")
    return u, v, W


def _schur_eigenvalues(T: np.ndarray) -> np.ndarray:
    """Eigenvalues of a real quasi-triangular Schur factor (1x1 and 2x2 diagonal blocks)."""
    n = T.shape[0]
    out = np.empty(n, dtype=complex)
    i = 0
    while i < n:
        if i + 1 < n and T[i + 1, i] != 0.0:
            a, b, c, d = T[i, i], T[i, i + 1], T[i + 1, i], T[i + 1, i + 1]
            mean, disc = (a + d) / 2, np.sqrt(complex(((a - d) / 2) ** 2 + b * c))
            out[i], out[i + 1] = mean + disc, mean - disc
            i += 2
        else:
            out[i] = T[i, i]
            i += 1
    return out


def _stable_schur(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, Q, eigenvalues of W) with W - I = Q T Q^T; raises if max Re eig(W) >= 1 (no stationary loss)."""
    T, Q = schur(W - np.eye(W.shape[0]), output="real")
    eigs = _schur_eigenvalues(T) + 1.0
    top = float(np.max(eigs.real))
    if not top < 1:
        raise ValueError(f"unstable network: max Re eig(W) = {top:.6f} >= 1, the stationary loss is infinite")
    return T, Q, eigs


def _lyapunov(T: np.ndarray, Q: np.ndarray, b: np.ndarray, transpose: bool) -> np.ndarray:
    """X with A X + X A^T + b b^T = 0 (transpose=False) or A^T X + X A + b b^T = 0 (True), A = Q T Q^T."""
    trsyl = get_lapack_funcs("trsyl", (T,))
    c = Q.T @ b
    Y, scale, info = trsyl(T, T, -np.outer(c, c), trana="T" if transpose else "N", tranb="N" if transpose else "T")
    if info < 0:
        raise ValueError(f"LAPACK trsyl rejected argument {-info}")
    return Q @ (Y / scale) @ Q.T


def _resolvent(W: np.ndarray, b: np.ndarray, c: np.ndarray, w: np.ndarray) -> list[np.ndarray]:
    """(z_k I - W)^{-1} b for each target mode, z_k = 1 + c_k - i omega_k (complex vectors)."""
    eye = np.eye(W.shape[0])
    return [np.linalg.solve(z * eye - W, b) for z in 1.0 + c - 1j * w]


def loss_and_gradients(u, v, W, c_star: Number, kappa: Number = 1.0, omega: Number = 0.0, *, gradients: bool = True):
    """(loss, (dL/du, dL/dv, dL/dW) or None, eigenvalues of W) of the population loss (eq-population-loss):

    L = 1/2 [v^T Sigma v - 2 sum_k kappa_k Re v^T (z_k I - W)^{-1} u + ||f*||^2],  z_k = 1 + c_k - i omega_k,
    (W - I) Sigma + Sigma (W - I)^T + u u^T = 0,
    dL/du = P u - sum_k kappa_k Re R_k^T v,  dL/dv = Sigma v - sum_k kappa_k Re R_k u,
    dL/dW = P Sigma - sum_k kappa_k Re (R_k^T v)(R_k u)^T,  (W - I)^T P + P (W - I) + v v^T = 0,
    R_k = (z_k I - W)^{-1}.
    """
    u, v, W = _as_network(u, v, W)
    c, k, w = target_modes(c_star, kappa, omega)
    T, Q, eigs = _stable_schur(W)
    Sigma = _lyapunov(T, Q, u, transpose=False)
    Ru = _resolvent(W, u, c, w)
    cross = sum(kk * np.real(v @ ru) for kk, ru in zip(k, Ru))
    loss = 0.5 * float(v @ Sigma @ v - 2 * cross + target_norm(c, k, w))
    if not gradients:
        return loss, None, eigs
    P = _lyapunov(T, Q, v, transpose=True)
    RTv = _resolvent(W.T, v, c, w)
    gu = P @ u - sum(kk * np.real(x) for kk, x in zip(k, RTv))
    gv = Sigma @ v - sum(kk * np.real(x) for kk, x in zip(k, Ru))
    gW = P @ Sigma - sum(kk * np.real(np.outer(a, b)) for kk, a, b in zip(k, RTv, Ru))
    return loss, (gu, gv, gW), eigs


def population_loss(u, v, W, c_star: Number, kappa: Number = 1.0, omega: Number = 0.0) -> float:
    """1/2 integral_0^inf (v^T e^{(W-I)s} u - f*(s))^2 ds, exactly (eq-population-loss); see
    :func:`loss_and_gradients`."""
    return loss_and_gradients(u, v, W, c_star, kappa, omega, gradients=False)[0]


def population_gradients(u, v, W, c_star: Number, kappa: Number = 1.0, omega: Number = 0.0):
    """(dL/du, dL/dv, dL/dW) of :func:`population_loss` (eq-population-gradients)."""
    return loss_and_gradients(u, v, W, c_star, kappa, omega)[1]


def init_network(N: int, sigma: float, s0: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u0, v0, W0): W_ij ~ N(0, sigma^2 / N) (bulk spectrum in the disk of radius sigma), u_i, v_i ~ N(0, s0^2 / N)
    (|u0| ~ |v0| ~ s0). ``sigma = 0`` gives W0 = 0, where the dynamics stay in span(u0, v0) exactly."""
    if isinstance(N, bool) or not isinstance(N, int) or N < 2:
        raise ValueError(f"N must be an integer >= 2; got {N!r}")
    if not 0 <= sigma < 1:
        raise ValueError(f"sigma must be in [0, 1) (W0 - I must be stable); got {sigma!r}")
    if not s0 > 0:
        raise ValueError(f"s0 must be positive; got {s0!r}")
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(N, N)) * sigma / np.sqrt(N)
    return rng.normal(size=N) * s0 / np.sqrt(N), rng.normal(size=N) * s0 / np.sqrt(N), W


ALIGNED_DIRECTION = np.array([1.0, 2.0, -2.0]) / 3.0
"""The unit vector e of R^3 on which :func:`aligned_network` places its networks by default."""


def aligned_network(
    a: float, b: float, lam: float, direction: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, W) = (a e, b e, lam e e^T): a network on the aligned manifold with W_0 = 0, whose filter is
    p e^{-(1 - lam) s} with residue p = a b (eq-aligned-loss); e a unit vector (default :data:`ALIGNED_DIRECTION`)."""
    e = ALIGNED_DIRECTION if direction is None else np.asarray(direction, dtype=float)
    if e.ndim != 1 or e.size < 2 or not np.isclose(np.linalg.norm(e), 1.0):
        raise ValueError(f"direction must be a unit vector of length >= 2; got {direction!r}")
    return a * e, b * e, lam * np.outer(e, e)


def aligned_flow(
    p: float, lam: float, c_star: Number, kappa: Number = 1.0, direction: np.ndarray | None = None
) -> np.ndarray:
    """(dp/dt, dlambda/dt) of the full gradient flow at the balanced aligned network a = b = sqrt(p) (eq-outlier-ode
    is its closed form): from the exact gradients, dp/dt = sqrt(p) e^T (-dL/du - dL/dv) and dlambda/dt =
    -e^T (dL/dW) e, the projections of the flow on the manifold's coordinates."""
    if not p > 0:
        raise ValueError(f"p must be positive (a = b = sqrt(p)); got {p!r}")
    a = float(np.sqrt(p))
    u, v, W = aligned_network(a, a, lam, direction)
    e = u / a
    gu, gv, gW = population_gradients(u, v, W, c_star, kappa)
    return np.array([-a * (e @ gu + e @ gv), -e @ gW @ e])


def conserved_matrix(u, v, W) -> np.ndarray:
    """C = u u^T - v v^T + W W^T - W^T W, constant under gradient flow (eq-conserved-matrix)."""
    u, v, W = _as_network(u, v, W)
    return np.outer(u, u) - np.outer(v, v) + W @ W.T - W.T @ W


def gradient_descent(
    u,
    v,
    W,
    c_star: Number,
    *,
    lr: float,
    steps: int,
    kappa: Number = 1.0,
    omega: Number = 0.0,
    record_every: int = 1,
    train: str = "uvW",
) -> dict[str, np.ndarray]:
    """Full-batch gradient descent on the population loss; time t = lr * step (gradient-flow time).

    ``train`` names the parameters that move (a subset of "uvW"). Records, every ``record_every`` steps and at the
    end: time, loss, all eigenvalues of W, u.v, |u|, |v|, and the largest entry of |C(t) - C(0)| (eq-conserved-matrix).
    A step that makes W unstable raises ``ValueError`` naming the step and the stiffness bound 8 c^3 / kappa^2
    (eq-stiffness) of the slowest mode.
    """
    if not lr > 0 or isinstance(steps, bool) or not isinstance(steps, int) or steps < 0 or record_every < 1:
        raise ValueError(
            f"need lr > 0, an integer steps >= 0 and record_every >= 1; got {lr!r}, {steps!r}, {record_every!r}"
        )
    if not train or set(train) - set("uvW"):
        raise ValueError(f"train must be a non-empty subset of 'uvW'; got {train!r}")
    c, k, w = target_modes(c_star, kappa, omega)
    u, v, W = (a.copy() for a in _as_network(u, v, W))
    bound = 8 * float(np.min(c)) ** 3 / float(np.max(np.abs(k))) ** 2
    with blas_threads(u.size):
        return _descend(u, v, W, (c, k, w), lr, steps, record_every, train, bound)


def _descend(u, v, W, modes: Modes, lr: float, steps: int, record_every: int, train: str, bound: float):
    c, k, w = modes
    C0 = conserved_matrix(u, v, W)
    rec: dict[str, list] = {key: [] for key in ("time", "loss", "eigenvalues", "uv", "u_norm", "v_norm", "drift")}
    for step in range(steps + 1):
        try:
            loss, grads, eigs = loss_and_gradients(u, v, W, c, k, w, gradients=step < steps)
        except ValueError as err:
            if step == 0:
                raise
            raise ValueError(
                f"gradient step {step} made W unstable ({err}); use a smaller lr (stiffness bound "
                f"~ 8 c^3 / kappa^2 = {bound:.2e})"
            ) from None
        if step % record_every == 0 or step == steps:
            for key, value in (
                ("time", lr * step),
                ("loss", loss),
                ("eigenvalues", eigs),
                ("uv", u @ v),
                ("u_norm", np.linalg.norm(u)),
                ("v_norm", np.linalg.norm(v)),
                ("drift", np.abs(conserved_matrix(u, v, W) - C0).max()),
            ):
                rec[key].append(value)
        if step == steps:
            break
        gu, gv, gW = grads
        u, v, W = (
            u - lr * gu if "u" in train else u,
            v - lr * gv if "v" in train else v,
            W - lr * gW if "W" in train else W,
        )
        if not (np.all(np.isfinite(u)) and np.all(np.isfinite(v)) and np.all(np.isfinite(W))):
            raise ValueError(f"gradient step {step + 1} overflowed; use a smaller lr (stiffness bound ~ {bound:.2e})")
    out = {key: np.asarray(val) for key, val in rec.items()}
    out.update(u=u, v=v, W=W)
    return out


def readout_flow(
    u, W, c_star: Number, times: Sequence[float], kappa: Number = 1.0, omega: Number = 0.0
) -> dict[str, np.ndarray]:
    """Exact read-out-only gradient flow from v = 0 with u and W frozen (the lazy/kernel picture, eq-readout-flow):

    dv/dt = -(Sigma v - b), b = sum_k kappa_k Re R_k u, so v(t) = Q [(1 - e^{-Lambda t}) / Lambda] Q^T b with
    Sigma = Q Lambda Q^T. Returns the loss and |v|^2 at each time (no time stepping, no step-size error).
    """
    u, _, W = _as_network(u, np.zeros_like(np.asarray(u, dtype=float)), W)
    c, k, w = target_modes(c_star, kappa, omega)
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or np.any(times < 0):
        raise ValueError("times must be a 1-D sequence of non-negative numbers")
    T, Q, _ = _stable_schur(W)
    Sigma = _lyapunov(T, Q, u, transpose=False)
    b = sum(kk * np.real(x) for kk, x in zip(k, _resolvent(W, u, c, w)))
    lam, vecs = np.linalg.eigh(Sigma)
    lam = np.clip(lam, 0.0, None)
    beta = vecs.T @ b
    # (1 - e^{-lam t}) / lam, = t where lam = 0
    gain = np.where(
        lam[None, :] > 0, -np.expm1(-np.outer(times, lam)) / np.where(lam > 0, lam, 1.0)[None, :], times[:, None]
    )
    coef = gain * beta[None, :]  # v(t) in the eigenbasis of Sigma
    loss = 0.5 * (np.sum(lam * coef**2, axis=1) - 2 * coef @ beta + target_norm(c, k, w))
    return {"time": times, "loss": loss, "v_norm2": np.sum(coef**2, axis=1)}


def residue(u, v, W, index: int | None = None) -> complex:
    """Residue (v^T r)(l^T u) of the pole of eigenvalue ``index`` (default: the largest real part) in the
    network's transfer function, with right/left eigenvectors normalised by l^T r = 1."""
    u, v, W = _as_network(u, v, W)
    eigs, R = np.linalg.eig(W)
    i = int(np.argmax(eigs.real)) if index is None else index
    L = np.linalg.inv(R)  # rows: left eigenvectors with L R = I
    return complex((v @ R[:, i]) * (L[i] @ u))


def time_to_fraction(time: np.ndarray, loss: np.ndarray, fraction: float = 0.5) -> float:
    """First time at which loss <= fraction * loss[0], linearly interpolated between records (eq-escape-time
    measures escapes this way, fraction 1/2); NaN-free: raises if the loss never gets there."""
    time, loss = np.asarray(time, dtype=float), np.asarray(loss, dtype=float)
    if time.shape != loss.shape or time.ndim != 1 or not 0 < fraction < 1:
        raise ValueError("time and loss must be 1-D of equal length and fraction in (0, 1)")
    level = fraction * loss[0]
    hit = np.flatnonzero(loss <= level)
    if hit.size == 0:
        raise ValueError(
            f"the loss never fell to {fraction} of its initial value (min {loss.min() / loss[0]:.3g}); train longer"
        )
    i = int(hit[0])
    if i == 0:
        return float(time[0])
    return float(np.interp(level, [loss[i], loss[i - 1]], [time[i], time[i - 1]]))


def pair_formation_time(time: np.ndarray, eigenvalues: np.ndarray, radius: float = 0.0, tol: float = 1e-6) -> float:
    """First recorded time at which W has a non-real eigenvalue (|Im| > tol) of modulus above ``radius``: the moment a
    conjugate pair of outliers exists (radius = 0 for the reduced system, ~ 2 sigma to ignore the complex bulk)."""
    time, z = np.asarray(time, dtype=float), np.asarray(eigenvalues, dtype=complex)
    if z.ndim != 2 or z.shape[0] != time.size or radius < 0:
        raise ValueError(f"eigenvalues must have shape (len(time), n) and radius >= 0; got {z.shape}, {radius!r}")
    hit = ((np.abs(z.imag) > tol) & (np.abs(z) > radius)).any(axis=1)
    if not hit.any():
        raise ValueError("no conjugate pair outside the given radius was recorded; train longer")
    return float(time[np.argmax(hit)])
