"""Gradient transport over lags: products of one-step Jacobians, and BPTT split by lag (book/p1_transport.md).

Phi(t, k) = d state_t / d state_k = J_t J_{t-1} ... J_{k+1} (eq-transport), chronological order, Phi(k, k) = I.
States are indexed 0..T with state_0 the initial state; J_t is evaluated at (x_t, state_{t-1}).

A lag profile needs only the median over (b, t) of ||Phi(t, t - l)||_2 at each lag, and :func:`lag_medians` computes
it exactly while evaluating the exact norm (:func:`spectral_norm`'s route) only where it can decide the median. Every
Gram matrix G = P P^T gets certified bounds lo <= lambda_max(G) <= hi from two power steps (eq-gram-bounds); the lower
median x_(k) of the lambda_max lies in [L, U], the k-th smallest lo and hi, so every matrix with hi < L lies below
it, every one with lo > U above it, and x_(k) is an order statistic of the rest alone (eq-median-bracket), the only
matrices whose exact value is computed. For multi-gate transports (T = 80, n = 64) that is about a quarter of them:
all at the shortest lags, where the top singular values cluster and the norms of all (b, t) lie within a few per
cent, and one or two per lag beyond.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from .cells import Cell
from .fastpaths.tridiagonal import largest_eigenvalues, split, streamed_largest_eigenvalues

BOUND_BLOCK = 64  # matrices per product-and-bounds block in lag_medians (each block's products are used in cache)


def jacobians(cell: Cell, xs: Tensor, state=None) -> Tensor:
    """J_1..J_T along the trajectory driven by xs (B, T, m): a (B, T, d, d) tensor, J[:, t-1] = J_t."""
    flat = cell.states(xs, state)
    return torch.stack([cell.jacobian(xs[:, t], cell.unflatten_state(flat[:, t])) for t in range(xs.shape[1])], 1)


def _check_pair(t: int, k: int, T: int) -> None:
    for name, v in (("t", t), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must be an integer; got {v!r}")
    if not 0 <= k <= t <= T:
        raise ValueError(f"need 0 <= k <= t <= T = {T}; got k = {k}, t = {t}")


def transport(cell: Cell, xs: Tensor, t: int, k: int, state=None) -> Tensor:
    """Phi(t, k) = J_t ... J_{k+1}, (B, d, d) (eq-transport); identity for t = k."""
    _check_pair(t, k, xs.shape[1] if isinstance(xs, Tensor) and xs.dim() == 3 else -1)
    J = jacobians(cell, xs[:, :t], state) if t > 0 else None
    eye = torch.eye(cell.state_size, dtype=xs.dtype).expand(xs.shape[0], -1, -1)
    out = eye.clone()
    for j in range(k + 1, t + 1):
        out = J[:, j - 1] @ out
    return out


def _lag_products(J: Tensor, max_lag: int, numpy: bool = False) -> Iterator[Tensor | np.ndarray]:
    """Phi(t, t - l) for l = 1..max_lag, step-major: entry l - 1 is a contiguous (T - l + 1, B, d, d) tensor whose
    index i holds Phi(l + i, i). The step-major layout keeps both factors of each batched product contiguous. With
    ``numpy`` (CPU only) the same recurrence runs on NumPy views of J and yields arrays: OpenBLAS multiplies these
    64 x 64 blocks about 1.8 times faster per thread than torch (measured; see :func:`transport_norms`)."""
    T = J.shape[1]
    Jt = J.transpose(0, 1).contiguous()
    if numpy:
        Jt = Jt.numpy()
    P = Jt  # Phi(t, t - 1) = J_t
    for lag in range(1, max_lag + 1):
        if lag > 1:
            # P holds Phi(t, t - lag + 1); multiply on the right by J_{t-lag+1}, for t = lag..T
            P = P[1:] @ Jt[: T - lag + 1]
        yield P


def _check_lag_args(J: Tensor, max_lag: int) -> None:
    if J.dim() != 4 or J.shape[-1] != J.shape[-2]:
        raise ValueError(f"J must have shape (B, T, d, d); got {tuple(J.shape)}")
    T = J.shape[1]
    if isinstance(max_lag, bool) or not isinstance(max_lag, int) or not 0 <= max_lag <= T:
        raise ValueError(f"max_lag must be an integer in [0, T = {T}]; got {max_lag!r}")


def iter_transport_by_lag(J: Tensor, max_lag: int) -> Iterator[Tensor]:
    """Yield Phi(t, t - l) for l = 0..max_lag, one lag at a time (see :func:`transport_by_lag`): memory for one lag."""
    _check_lag_args(J, max_lag)
    B, T, d, _ = J.shape
    yield torch.eye(d, dtype=J.dtype).expand(B, T + 1, d, d)
    for P in _lag_products(J, max_lag):
        yield P.transpose(0, 1)


def transport_by_lag(J: Tensor, max_lag: int) -> list[Tensor]:
    """All Phi(t, t - l) for l = 0..max_lag from one-step Jacobians J (B, T, d, d), by batched products:

    P_0[t] = I and P_{l+1}[t] = P_l[t] J_{t-l}, i.e. Phi(t, t-l-1) = Phi(t, t-l) J_{t-l}. Entry l is a
    (B, T - l + 1, d, d) tensor whose index i holds Phi(l + i, i) (end step t = l + i). Cost: max_lag batched
    matrix products instead of one product chain per (t, k) pair.
    """
    return list(iter_transport_by_lag(J, max_lag))


def transport_norms(J: Tensor, max_lag: int | None = None) -> Tensor:
    """Spectral norms ||Phi(t, t - l)||_2 for all t and l = 0..max_lag: a (B, T + 1, max_lag + 1) tensor,
    entry [b, t, l] (NaN where t < l, no such pair). Exact 2-norms (largest singular value), batched; lag 0 is the
    identity, norm 1. On the CPU (float32/64) this thread forms the products and Gram matrices lag by lag with NumPy
    (one BLAS thread), worker threads reduce each lag's Gram matrices to tridiagonal form meanwhile (eq-tridiagonal),
    and one vectorised Laguerre pass (eq-laguerre) over all lags gives the norms
    (:mod:`learnability.fastpaths.tridiagonal`)."""
    B, T = J.shape[:2]
    max_lag = T if max_lag is None else max_lag
    _check_lag_args(J, max_lag)
    out = torch.full((B, T + 1, max_lag + 1), float("nan"), dtype=J.dtype)
    out[:, :, 0] = 1.0
    if not _on_numpy(J):
        for lag, P in enumerate(_lag_products(J, max_lag), start=1):
            out[:, lag:, lag] = spectral_norm(P).T
        return out
    threads = torch.get_num_threads()
    with threadpool_limits(1, user_api="blas"):  # products on this thread, the reductions on the others
        grams = (P @ P.swapaxes(-1, -2) for P in _lag_products(J, max_lag, numpy=True))
        tops = streamed_largest_eigenvalues(grams, threads, overwrite=True)
    for lag, top in enumerate(tops, start=1):
        out[:, lag:, lag] = torch.from_numpy(top).clamp_min(0).sqrt().to(J.dtype).T
    return out


def spectral_norm(P: Tensor) -> Tensor:
    """Largest singular value of each matrix of P (..., d, d), as sqrt(lambda_max(P P^T)): exact to round-off
    (relative 1e-15 in float64 for the largest value). On the CPU, lambda_max comes from a tridiagonal reduction and
    Laguerre's iteration (:func:`learnability.fastpaths.tridiagonal.largest_eigenvalues`, float64, on threads), about
    1.7 times faster per 64 x 64 matrix than a full eigensolver and 3 times faster than
    ``torch.linalg.matrix_norm(P, ord=2)`` (an SVD); on CUDA, under autograd or in other dtypes, torch's
    ``eigvalsh``."""
    gram = P @ P.mT  # same eigenvalues as P^T P; this layout multiplies faster
    if not _on_numpy(gram):
        top = torch.linalg.eigvalsh(gram)[..., -1]
    else:
        flat = gram.reshape(-1, *gram.shape[-2:])
        top = torch.from_numpy(largest_eigenvalues(flat.numpy(), torch.get_num_threads(), overwrite=True))
    return top.clamp_min(0).sqrt().to(P.dtype).reshape(gram.shape[:-2])


def _on_numpy(x: Tensor) -> bool:
    """Whether the CPU path of the norms (NumPy views, LAPACK through ctypes) applies to x."""
    return not x.is_cuda and not x.requires_grad and x.dtype in (torch.float32, torch.float64)


def norm_bounds(P: np.ndarray, u: np.ndarray, steps: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Certified bounds lo <= lambda_max(G) = ||P||_2^2 <= hi for each matrix P (N, d, m) and its Gram matrix
    G = P P^T, after ``steps`` power steps u <- G u / |G u| from u (N, d) (non-zero rows; a zero row restarts from
    the all-ones vector). With the last unit iterate u, w = P^T u, rho = |w|^2 = u^T G u, r = P w - rho u and
    gamma = tr G - rho = ||P||_F^2 - rho:

        rho <= lambda_max(G) <= (rho + gamma) / 2 + sqrt(((rho - gamma) / 2)^2 + |r|^2)          (eq-gram-bounds)

    The left side is Rayleigh's quotient. For the right side write G in an orthonormal basis (u, V):
    G = [[rho, b^T], [b, C]] with b = V^T G u, |b| = |r|, and C = V^T G V positive semi-definite, so
    lambda_max(C) <= tr C = gamma; then x^T G x <= rho a^2 + 2 |r| a c + gamma c^2 for a unit x with a = |u^T x|,
    c = |V^T x|, whose maximum over a^2 + c^2 = 1 is the largest eigenvalue of [[rho, |r|], [|r|, gamma]]. The bound
    is tight (hi - rho ~ |r|^2 / (rho - gamma)) once one singular value dominates, rho > gamma, and valid (if
    loose) otherwise. Both sides are widened by 64 n^2 eps tr G + n^2 tiny (n = max(d, m)): more than the rounding
    of the dot products here (below 8 n eps tr G, u unit to n eps) plus the distance of the exact value they are
    compared with (:func:`spectral_norm`, or :func:`learnability.fastpaths.tridiagonal.streamed_largest_eigenvalues`
    with ``gram``) from lambda_max(P P^T): by Weyl's theorem, the rounding of the Gram matrix (n eps tr G), the backward
    error of the Householder reduction (c n^2 eps ||G||_F <= c n^2 eps tr G, a small constant c, say <= 50) and
    Laguerre's stopping rule (4 eps times Gershgorin's bound, <= 3 tr G); tiny covers underflow. Where overflow leaves
    no finite bound, (-inf, inf). Returns (lo, hi, v) with v = G u, the next iterate: a warm start."""
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 3 or np.shape(u) != P.shape[:2]:
        raise ValueError(f"need P (N, d, m) and u (N, d); got {P.shape} and {np.shape(u)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}")
    N, d, m = P.shape
    with np.errstate(all="ignore"):  # non-finite results are handled below
        trace = np.vecdot(P.reshape(N, d * m), P.reshape(N, d * m))
        v = np.asarray(u, dtype=np.float64)
        for _ in range(steps):
            size = np.sqrt(np.vecdot(v, v))
            restart = ~(np.isfinite(size) & (size > 0))
            u = v / np.where(restart, 1.0, size)[:, None]
            u[restart] = d**-0.5
            w = np.matmul(u[:, None, :], P)[:, 0]  # P^T u
            rho = np.vecdot(w, w)
            v = np.matmul(P, w[:, :, None])[:, :, 0]  # G u
        scale = np.where(trace > 0, trace, 1.0)  # |r| <= |G u| <= tr G: r / tr G cannot overflow
        r = (v - rho[:, None] * u) / scale[:, None]
        residual = scale * np.sqrt(np.vecdot(r, r))
        gamma = trace - rho
        hi = (rho + gamma) / 2 + np.hypot((rho - gamma) / 2, residual)
        n = max(d, m)
        margin = 64 * n * n * np.finfo(np.float64).eps * trace + n * n * np.finfo(np.float64).tiny
        lo, hi = rho - margin, hi + margin
    return np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi), v


def median_bracket(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, int]:
    """For N values x_i known to lie in [lo_i, hi_i]: the indices S of those that can decide their lower median x_(k),
    k = (N - 1) // 2 (the element ``torch.median`` returns), and its rank r in S, so that x_(k) is the r-th smallest
    (from 0) of the x_i, i in S. With L = lo_(k) and U = hi_(k), the k-th smallest bounds,

        L <= x_(k) <= U,   S = {i : hi_i >= L, lo_i <= U},   r = k - #{i : hi_i < L}          (eq-median-bracket)

    Order statistics are monotone (lo_i <= x_i <= hi_i for all i gives lo_(k) <= x_(k) <= hi_(k)), so a value with
    hi_i < L lies below x_(k) and one with lo_i > U above it: x_(k) is one of S, and exactly r of S lie below it."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0 or np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError(f"need bounds lo, hi of one non-empty shape (N,) without NaN; got {lo.shape} and {hi.shape}")
    k = (lo.size - 1) // 2
    L, U = np.partition(lo, k)[k], np.partition(hi, k)[k]
    below = hi < L
    return np.flatnonzero(~below & (lo <= U)), k - int(below.sum())


def lag_medians(J: Tensor, max_lag: int, steps: int = 2) -> np.ndarray:
    """m(l) = median_{b,t} ||Phi(t, t - l)||_2 for l = 1..max_lag (the lower median, as ``torch.median``), exactly:
    equal to the median of :func:`spectral_norm` over each lag's products of :func:`iter_transport_by_lag`, to
    round-off. On the CPU in float64 the products Phi(t, t - l) = Phi(t, t - l + 1) J_{t-l+1} (NumPy, step-major)
    and their bounds (eq-gram-bounds, ``steps`` power steps started from the iterate of the same end step t at
    lag l - 1, whose left singular vector it approaches) are formed block by block on torch's number of threads;
    the matrices the bracket (eq-median-bracket) cannot exclude go to
    :func:`learnability.fastpaths.tridiagonal.streamed_largest_eigenvalues`, whose workers reduce them (Gram matrix and
    eq-tridiagonal) while the next lag is formed, and one Laguerre pass (eq-laguerre) gives their exact lambda_max.
    Elsewhere (CUDA, other dtypes) it is the median of :func:`spectral_norm` over each lag. J is detached."""
    _check_lag_args(J, max_lag)
    J = J.detach()
    if not _on_numpy(J) or J.dtype != torch.float64:
        return np.array(
            [float(torch.median(spectral_norm(P))) for P in islice(iter_transport_by_lag(J, max_lag), 1, None)]
        )
    B, T, d, _ = J.shape
    Jt = J.transpose(0, 1).contiguous().numpy().reshape(T * B, d, d)  # flat index i B + b holds J_{i+1} of b
    if not np.isfinite(Jt).all():
        raise ValueError("J must be finite (no NaN or inf entries)")
    threads, ranks = torch.get_num_threads(), []

    def undecided() -> Iterator[np.ndarray]:
        P, u = Jt, np.ones(((T + 1) * B, d))  # lag 0: start vectors, index i B + b for end step t = i
        with ThreadPoolExecutor(threads) as pool:
            for lag in range(1, max_lag + 1):
                M = (T - lag + 1) * B  # index i B + b: Phi(lag + i, i) of b
                new = Jt if lag == 1 else np.empty((M, d, d))
                bounds = np.empty(M), np.empty(M), np.empty((M, d))
                list(
                    pool.map(
                        lambda part: _products_and_bounds(part, P, Jt, new, u, bounds, B, steps), split(M, threads)
                    )
                )
                P, u = new, bounds[2]
                idx, rank = median_bracket(*bounds[:2])
                ranks.append(rank)
                yield P if idx.size == M else P[idx]

    with threadpool_limits(1, user_api="blas"):
        tops = streamed_largest_eigenvalues(undecided(), threads, gram=True)
    return np.sqrt(np.maximum([np.partition(top, rank)[rank] for top, rank in zip(tops, ranks)], 0.0))


def _products_and_bounds(
    part: slice,
    previous: np.ndarray,
    Jt: np.ndarray,
    new: np.ndarray,
    u: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray, np.ndarray],
    B: int,
    steps: int,
) -> None:
    """One worker's share of a lag in :func:`lag_medians`, block by block: new[j] = previous[j + B] Jt[j] (unless
    ``new`` is ``Jt``, lag 1), then :func:`norm_bounds` of new[j] from u[j + B], the iterate of the same end step at
    the previous lag, into the rows j of ``bounds`` (lo, hi, next iterates)."""
    lo, hi, start = bounds
    for a in range(part.start, part.stop, BOUND_BLOCK):
        block = slice(a, min(a + BOUND_BLOCK, part.stop))
        shifted = slice(block.start + B, block.stop + B)
        if new is not Jt:
            np.matmul(previous[shifted], Jt[block], out=new[block])
        lo[block], hi[block], start[block] = norm_bounds(new[block], u[shifted], steps)


def transport_norms_naive(
    J: Tensor,
    max_lag: int | None = None,
    ends: Iterable[int] | None = None,
    norm: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """The same as :func:`transport_norms`, one (b, t, k) at a time with its own product chain: the baseline of
    bench/bench_transport.py. ``ends`` restricts the end steps t (others stay NaN); ``norm`` defaults to
    ``torch.linalg.matrix_norm(P, ord=2)``."""
    B, T, d, _ = J.shape
    max_lag = T if max_lag is None else max_lag
    norm = norm or (lambda P: torch.linalg.matrix_norm(P, ord=2))
    out = torch.full((B, T + 1, max_lag + 1), float("nan"), dtype=J.dtype)
    eye = torch.eye(d, dtype=J.dtype)
    for t in range(T + 1) if ends is None else ends:
        for lag in range(min(t, max_lag) + 1):
            for b in range(B):
                P = eye
                for j in range(t - lag + 1, t + 1):
                    P = J[b, j - 1] @ P
                out[b, t, lag] = norm(P)
    return out


def lag_profile(products: Iterable[Tensor], max_lag: int, norm: Callable[[Tensor], Tensor] = None) -> np.ndarray:
    """prof(l) = median_{b,t} ||P_l|| / median_{b,t} ||P_1|| for l = 1..max_lag (eq-power-fit), from products by lag
    in the layout of :func:`iter_transport_by_lag` (entry 0, the identity, is skipped); ``norm`` defaults to
    :func:`spectral_norm`."""
    norm = norm or spectral_norm
    medians = []
    for lag, P in enumerate(products):
        if lag > max_lag:
            break
        if lag:
            medians.append(float(torch.median(norm(P))))
    if len(medians) != max_lag or max_lag < 1:
        raise ValueError(f"need products for lags 0..max_lag = {max_lag}; got {len(medians) + 1}")
    out = np.asarray(medians)
    return out / out[0]


def bptt_by_lag(cell: Cell, xs: Tensor, deltas: Tensor, state=None) -> dict[str, Tensor]:
    """BPTT split by lag (eq-bptt-lag): for every parameter theta of ``cell``,

    grad_theta = sum_{l >= 0} G_l,  G_l = sum_t (d+ state_{t-l} / d theta)^T Phi(t, t-l)^T delta_t,

    where delta_t (B, T, d) is the direct derivative of the loss with respect to state_t (t = 1..T) and d+ the
    immediate derivative of one step at fixed inputs. Returns {name: (T, *shape)} with G_l at index l.
    """
    if not isinstance(deltas, Tensor) or deltas.shape != (xs.shape[0], xs.shape[1], cell.state_size):
        raise ValueError(f"deltas must have shape (B, T, d) = ({xs.shape[0]}, {xs.shape[1]}, {cell.state_size})")
    flat = cell.states(xs, state).detach()
    J = jacobians(cell, xs, state).detach()
    B, T = xs.shape[:2]
    params = dict(cell.named_parameters())
    names = list(params)
    out = {name: torch.zeros((T, *p.shape), dtype=p.dtype) for name, p in params.items()}

    def step(p: dict, x: Tensor, s: Tensor) -> Tensor:
        new = torch.func.functional_call(cell, p, (x, cell.unflatten_state(s)))
        return cell.flatten_state(new)

    for lag, P in enumerate(transport_by_lag(J, T - 1)):
        # cotangent at step k = t - lag for t = lag+1..T: Phi(t, k)^T delta_t, P[:, i] = Phi(lag + i, i)
        Phi = P[:, 1:]  # t = lag+1..T, k = 1..T-lag
        cot = (Phi.transpose(-1, -2) @ deltas[:, lag:].unsqueeze(-1)).squeeze(-1)  # (B, T-lag, d)
        k_idx = torch.arange(1, T - lag + 1)
        x_k = xs[:, k_idx - 1].reshape(-1, xs.shape[-1])
        s_prev = flat[:, k_idx - 1].reshape(-1, flat.shape[-1])
        _, vjp = torch.func.vjp(lambda p: step(p, x_k, s_prev), params)
        grads = vjp(cot.reshape(-1, cot.shape[-1]))[0]
        for name in names:
            out[name][lag] = grads[name].detach()
    return out


# ----- the first-order (Frechet) expansion of an ordered product ------------------------------------------------
def ordered_product(mats: Tensor) -> Tensor:
    """A_l ... A_2 A_1 for mats (..., l, d, d) holding A_1..A_l in time order (eq-transport)."""
    if mats.dim() < 3 or mats.shape[-1] != mats.shape[-2] or mats.shape[-3] < 1:
        raise ValueError(f"mats must have shape (..., l >= 1, d, d); got {tuple(mats.shape)}")
    out = mats[..., 0, :, :]
    for j in range(1, mats.shape[-3]):
        out = mats[..., j, :, :] @ out
    return out


def frechet_first_order(A: Tensor, B: Tensor) -> Tensor:
    """L = sum_m (A_l ... A_{m+1}) B_m (A_{m-1} ... A_1), the derivative of prod_j (A_j + eps B_j) at eps = 0
    (eq-frechet). A, B: (..., l, d, d) in time order; prefix and suffix products make it O(l) matrix products."""
    if A.shape != B.shape:
        raise ValueError(f"A and B must have the same shape; got {tuple(A.shape)} and {tuple(B.shape)}")
    ordered_product(A)  # validates the shape
    lag, d = A.shape[-3], A.shape[-1]
    eye = torch.eye(d, dtype=A.dtype).expand(*A.shape[:-3], d, d)
    prefix = [eye]  # prefix[m] = A_m ... A_1 (prefix[0] = I)
    for j in range(lag):
        prefix.append(A[..., j, :, :] @ prefix[-1])
    out = torch.zeros_like(eye)
    suffix = eye  # A_l ... A_{m+1}, built from the end
    for m in range(lag - 1, -1, -1):
        out = out + suffix @ B[..., m, :, :] @ prefix[m]
        suffix = suffix @ A[..., m, :, :]
    return out


def expansion_error(A: Tensor, B: Tensor, eps: float) -> Tensor:
    """E(eps) = ||prod (A_j + eps B_j) - prod A_j - eps L||_F, per leading index (eq-frechet-remainder)."""
    full = ordered_product(A + eps * B)
    return torch.linalg.matrix_norm(full - ordered_product(A) - eps * frechet_first_order(A, B))


def remainder_bound(a: float, b: float, eps: float, lag: int) -> float:
    """(a + eps b)^l - a^l - l eps b a^(l-1): bound on ||R_2|| for ||A_j|| <= a, ||B_j|| <= b (eq-frechet-remainder)."""
    if min(a, b, eps) < 0 or isinstance(lag, bool) or not isinstance(lag, int) or lag < 1:
        raise ValueError("a, b, eps must be non-negative and lag a positive integer")
    return (a + eps * b) ** lag - a**lag - lag * eps * b * a ** (lag - 1)


def jacobian_split(cell: Cell, xs: Tensor, split: str = "gate", state=None) -> tuple[Tensor, Tensor]:
    """Split J_t = A_t + B_t along the trajectory, (B, T, n, n) each, for the gated family (eq-splits):

    ``"gate"``: A = diag(1 - g) + diag(g) D L W (gate values), B = the gate-sensitivity term (2508.12121 appendix);
    ``"retention"``: A = diag(retention), B = everything else (the split of 2512.05790).
    """
    if split not in ("gate", "retention"):
        raise ValueError(f"split must be 'gate' or 'retention'; got {split!r}")
    if not hasattr(cell, "jacobian_terms"):
        raise ValueError(
            f"jacobian_split needs a cell of the gated family (plain, leaky, scalar, multi); got {cell.kind!r}"
        )
    with torch.no_grad():
        flat = cell.states(xs, state)
        terms = [cell.jacobian_terms(xs[:, t], flat[:, t]) for t in range(xs.shape[1])]
    stack = {key: torch.stack([tm[key] for tm in terms], 1) for key in ("retention", "candidate", "gate")}
    if split == "gate":
        return stack["retention"] + stack["candidate"], stack["gate"]
    return stack["retention"], stack["candidate"] + stack["gate"]
