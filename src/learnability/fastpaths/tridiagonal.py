"""Largest eigenvalue of many small symmetric matrices, exact to round-off (book/p1_transport.md, "Computing the
norms exactly").

The transport norms ||Phi||_2 = sqrt(lambda_max(Phi Phi^T)) need one eigenvalue of each of some 40 000 Gram matrices
of size 64. A full symmetric eigensolver (LAPACK dsyevd, behind ``numpy.linalg.eigvalsh``) spends about half its time
on all n eigenvalues of the tridiagonal matrix it reduces to. Here the same backward-stable reduction is followed by
a root finder for the largest eigenvalue alone:

1. Householder reduction G = Q T Q^T with T tridiagonal (diagonal d, off-diagonal e; LAPACK dsytrd)  (eq-tridiagonal)
2. The pivots of the LDL^T factorisation of x I - T obey                                           (eq-sturm-pivots)

       u_1 = x - d_1,   u_i = x - d_i - e_{i-1}^2 / u_{i-1},   det(x I - T) = prod_i u_i,

   and all are positive iff x > lambda_max (Sylvester's law of inertia). Differentiating the recurrence gives
   G(x) = sum_j 1 / (x - lambda_j) = sum_i u_i' / u_i and H(x) = sum_j 1 / (x - lambda_j)^2
   = sum_i (u_i' / u_i)^2 - u_i'' / u_i without the eigenvalues.
3. Laguerre's iteration                                                                                (eq-laguerre)

       x <- x - n / (G + sqrt((n - 1) (n H - G^2)))

   from Gershgorin's upper bound. For a polynomial whose roots are all real (a characteristic polynomial of a
   symmetric matrix), each step from above the largest root stays above it and the iterates fall monotonically to
   it, cubically for a simple root. It stops when a step is below round-off or a pivot turns non-positive
   (x has reached lambda_max to round-off).

Step 1 runs LAPACK's dsytrd through the function pointer that ``scipy.linalg.cython_lapack`` exports (ctypes calls
release the GIL, so chunks run on threads); step 3 is vectorised over the batch in NumPy and takes at most 9 steps
on random 64 x 64 Gram matrices (tested). Measured on the 2-core CI machine, one thread, per 64 x 64 Gram matrix:
about 60 us for step 1 and 4-8 us for step 3, against about 110 us for ``numpy.linalg.eigvalsh`` (whose second
half, LAPACK dsterf for all 64 eigenvalues, costs as much as the reduction). Given the matrices P themselves
(``streamed_largest_eigenvalues(..., gram=True)``, the exact route of :func:`learnability.transport.lag_medians`),
the worker threads also form the Gram matrices P P^T, a block at a time, just before reducing them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import cython_lapack, eigvalsh_tridiagonal

if TYPE_CHECKING:
    import sympy as sp

MAX_ITER = 100  # Laguerre steps before a matrix falls back to SciPy's bisection (the tests force that path)
GRAM_BLOCK = 32  # matrices per Gram product on a worker: 32 x 64 x 64 float64 (1 MiB), reduced while in cache


@cache
def _dsytrd() -> ctypes._CFuncPtr:
    """LAPACK dsytrd(uplo, n, a, lda, d, e, tau, work, lwork, info) as a ctypes function (all arguments pointers),
    from the capsule that scipy.linalg.cython_lapack exports (its own prototypes, so ctypes.pythonapi is untouched)."""
    capsule = cython_lapack.__pyx_capi__["dsytrd"]
    name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", ctypes.pythonapi))
    pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_GetPointer", ctypes.pythonapi)
    )
    return ctypes.CFUNCTYPE(None, ctypes.c_char_p, *[ctypes.c_void_p] * 9)(pointer(capsule, name(capsule)))


def _reduce_chunk(G: np.ndarray, d: np.ndarray, e: np.ndarray) -> None:
    """dsytrd on each matrix of G (m, n, n), C-contiguous float64, overwritten; writes the rows of d (m, n) and
    e (m, n - 1)."""
    m, n, _ = G.shape
    n_c, info, lwork = ctypes.c_int(n), ctypes.c_int(0), ctypes.c_int(32 * n)
    tau, work = np.empty(n), np.empty(32 * n)
    args = [
        ctypes.byref(n_c),
        ctypes.byref(n_c),
        tau.ctypes.data,
        work.ctypes.data,
        ctypes.byref(lwork),
        ctypes.byref(info),
    ]
    dsytrd = _dsytrd()
    g0, d0, e0 = G.ctypes.data, d.ctypes.data, e.ctypes.data
    for i in range(m):
        # a symmetric C-ordered matrix is its own Fortran-ordered transpose, so "U" reads the C lower triangle
        dsytrd(b"U", args[0], g0 + i * G.strides[0], args[1], d0 + i * d.strides[0], e0 + i * e.strides[0], *args[2:])
        if info.value:
            raise RuntimeError(f"LAPACK dsytrd failed with info = {info.value}")


def _gram_reduce_chunk(P: np.ndarray, G: np.ndarray, d: np.ndarray, e: np.ndarray) -> None:
    """G = P P^T for each matrix of the chunk, then its tridiagonal form into the rows of d and e (dsytrd)."""
    for a in range(0, len(P), GRAM_BLOCK):
        block = slice(a, a + GRAM_BLOCK)
        np.matmul(P[block], P[block].swapaxes(-1, -2), out=G[block])
        if G.shape[-1] == 1:
            d[block] = G[block, 0]
        else:
            _reduce_chunk(G[block], d[block], e[block])


def tridiagonalize(G: np.ndarray, threads: int = 1, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Householder reduction (eq-tridiagonal) of each symmetric matrix of G (..., n, n): the diagonals d (..., n)
    and off-diagonals e (..., n - 1) of similar tridiagonal matrices (only one triangle of G is read). Runs
    ``threads`` chunks on as many threads. dsytrd works in place: with ``overwrite`` a C-contiguous float64 G is
    used as the workspace (its contents are destroyed), otherwise G is copied."""
    _check_positive_int("threads", threads)
    work, d, e = _workspace(G, overwrite)
    _map(_reduce_chunk, _chunks(work, d, e, threads))
    return _finite_tridiagonal(np.shape(G), d, e)


def _workspace(G: np.ndarray, overwrite: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (m, n, n) float64 matrices dsytrd reduces in place, and empty d (m, n), e (m, n - 1) for its output."""
    G = np.asarray(G)
    if G.ndim < 2 or G.shape[-1] != G.shape[-2] or G.shape[-1] < 1:
        raise ValueError(f"need a batch of square matrices (..., n, n) with n >= 1; got shape {G.shape}")
    if not np.issubdtype(G.dtype, np.floating):
        raise ValueError(f"need real floating-point matrices; got dtype {G.dtype}")
    n = G.shape[-1]
    flat = G.reshape(-1, n, n)
    work = np.ascontiguousarray(flat, dtype=np.float64) if overwrite else np.array(flat, dtype=np.float64, order="C")
    return work, np.empty((work.shape[0], n)), np.empty((work.shape[0], n - 1))


def _gram_workspace(P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """P as C-contiguous float64 (m, n, k), and empty Gram matrices (m, n, n), d (m, n), e (m, n - 1)."""
    P = np.asarray(P)
    if P.ndim < 2 or P.shape[-2] < 1 or not np.issubdtype(P.dtype, np.floating):
        raise ValueError(
            f"need a batch of real floating-point matrices (..., n, m) with n >= 1; got {P.dtype} {P.shape}"
        )
    n = P.shape[-2]
    flat = np.ascontiguousarray(P.reshape(-1, n, P.shape[-1]), dtype=np.float64)
    return flat, np.empty((len(flat), n, n)), np.empty((len(flat), n)), np.empty((len(flat), n - 1))


def _chunks(work: np.ndarray, d: np.ndarray, e: np.ndarray, threads: int) -> list[tuple]:
    """Split a workspace into at most ``threads`` chunks of at least 16 matrices (a 1 x 1 matrix is its own d)."""
    if work.shape[-1] == 1:
        d[:] = work[:, 0]
        return []
    return [(work[part], d[part], e[part]) for part in split(len(work), threads)]


def split(m: int, threads: int) -> list[slice]:
    """range(m) in at most ``threads`` contiguous slices of at least 16 items each (one slice if m is small)."""
    bounds = np.linspace(0, m, max(1, min(threads, m // 16)) + 1).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _finite_tridiagonal(shape: tuple, d: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d and e in the batch shape of matrices of ``shape``; NaN and inf in G propagate to them (cheaper to check)."""
    if not (np.isfinite(d).all() and np.isfinite(e).all()):
        raise ValueError("matrices must be finite (no NaN or inf entries in the triangle read)")
    return d.reshape(*shape[:-1]), e.reshape(*shape[:-2], shape[-1] - 1)


def streamed_largest_eigenvalues(
    batches: Iterable[np.ndarray], threads: int = 1, overwrite: bool = False, in_flight: int = 4, gram: bool = False
) -> list[np.ndarray]:
    """:func:`largest_eigenvalues` of each batch that ``batches`` yields, the reduction (eq-tridiagonal) of one batch
    running on ``threads`` worker threads while the caller's thread produces the next (at most ``in_flight``
    batches wait), then one Laguerre pass (eq-laguerre) over all. The producer should then use one thread itself
    (see :func:`learnability.transport.transport_norms`). With ``gram`` the batches hold matrices P (..., n, m)
    and the result is lambda_max(P P^T) = ||P||_2^2: the workers form each Gram matrix (NumPy, float64, ``GRAM_BLOCK``
    at a time, so that it is reduced while in cache)."""
    _check_positive_int("threads", threads)
    _check_positive_int("in_flight", in_flight)
    shapes, outputs, pending = [], [], []
    with ThreadPoolExecutor(threads) as pool:
        for batch in batches:
            if gram:
                P, work, d, e = _gram_workspace(batch)
                shape = np.shape(batch)[:-1] + (work.shape[-1],)
                tasks = [
                    (_gram_reduce_chunk, (P[part], work[part], d[part], e[part])) for part in split(len(work), threads)
                ]
            else:
                work, d, e = _workspace(batch, overwrite)
                shape = np.shape(batch)
                tasks = [(_reduce_chunk, chunk) for chunk in _chunks(work, d, e, threads)]
            if shapes and work.shape[-1] != shapes[0][-1]:
                raise ValueError(
                    f"all batches must hold matrices of one size; got sizes {shapes[0][-1]} and {work.shape[-1]}"
                )
            shapes.append(shape)
            outputs.append((d, e))
            pending.append([pool.submit(task, *args) for task, args in tasks])
            if len(pending) > in_flight:
                for future in pending.pop(0):
                    future.result()
        for futures in pending:
            for future in futures:
                future.result()
    tridiagonals = [_finite_tridiagonal(shape, d, e) for shape, (d, e) in zip(shapes, outputs)]
    if not tridiagonals:
        return []
    n = shapes[0][-1]
    flat_d = np.concatenate([d.reshape(-1, n) for d, _ in tridiagonals])
    flat_e = np.concatenate([e.reshape(d.size // n, n - 1) for d, e in tridiagonals])
    top = largest_tridiagonal_eigenvalues(flat_d, flat_e, threads)
    sizes = np.cumsum([d.size // n for d, _ in tridiagonals])[:-1]
    return [part.reshape(shape[:-2]) for part, shape in zip(np.split(top, sizes), shapes)]


def largest_tridiagonal_eigenvalues(d: np.ndarray, e: np.ndarray, threads: int = 1) -> np.ndarray:
    """Largest eigenvalue of each symmetric tridiagonal matrix (diagonal d (..., n), off-diagonal e (..., n - 1)) by
    Laguerre's iteration (eq-laguerre) on the pivot recurrence (eq-sturm-pivots), vectorised over the batch and
    split into ``threads`` chunks (NumPy releases the GIL inside each array operation)."""
    d, e = np.asarray(d, dtype=np.float64), np.asarray(e, dtype=np.float64)
    if d.ndim < 1 or d.shape[-1] < 1 or e.shape != (*d.shape[:-1], d.shape[-1] - 1):
        raise ValueError(f"need d of shape (..., n), n >= 1, and e of shape (..., n - 1); got {d.shape} and {e.shape}")
    _check_positive_int("threads", threads)
    if not (np.isfinite(d).all() and np.isfinite(e).all()):
        raise ValueError("tridiagonal entries must be finite")
    batch, n = d.shape[:-1], d.shape[-1]
    m = d.size // n
    d, e = d.reshape(m, n).T, e.reshape(m, n - 1).T  # (n, m): one row of the recurrence per step
    radius = np.abs(d)
    radius[1:] += np.abs(e)
    radius[:-1] += np.abs(e)
    scale = radius.max(0)  # Gershgorin: >= |lambda| for all eigenvalues
    top = np.zeros(m)  # the zero matrix has lambda_max = 0
    live = np.flatnonzero(scale > 0)
    d, e2 = d[:, live] / scale[live], (e[:, live] / scale[live]) ** 2  # scaled: eigenvalues in [-1, 1]
    bounds = np.linspace(0, live.size, max(1, min(threads, live.size // 256)) + 1).astype(int)
    parts = [(d[:, a:b], e2[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    top[live] = np.concatenate(_map(_laguerre, parts)) * scale[live]
    return top.reshape(batch)


def pivot_sums(d: np.ndarray, e: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For symmetric tridiagonal matrices T (diagonal d (..., n), off-diagonal e (..., n - 1)) and points x (...):
    G(x) = sum_j 1 / (x - lambda_j), H(x) = sum_j 1 / (x - lambda_j)^2 and the smallest pivot min_i u_i of
    x I - T, all from the pivot recurrence (eq-sturm-pivots) without the eigenvalues lambda_j."""
    d, e = np.asarray(d, dtype=np.float64), np.asarray(e, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if d.ndim < 1 or d.shape[-1] < 1 or e.shape != (*d.shape[:-1], d.shape[-1] - 1) or x.shape != d.shape[:-1]:
        raise ValueError(f"need d (..., n), e (..., n - 1) and x (...); got {d.shape}, {e.shape} and {x.shape}")
    n = d.shape[-1]
    m = d.size // n
    dT, e2T = d.reshape(m, n).T, (e * e).reshape(m, n - 1).T
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return tuple(v.reshape(x.shape) for v in _pivot_sums(dT, e2T, x.reshape(-1)))


def symbolic_pivots(n: int = 3) -> tuple[sp.Symbol, sp.Matrix, list[sp.Expr]]:
    """x, the symbolic n x n tridiagonal T (diagonal d1..dn, off-diagonal e1..e(n-1)) and the pivots u_1..u_n of
    x I - T by the recurrence (eq-sturm-pivots), each as one fraction: the SymPy side of the book's and the tests'
    check that prod u_i = det(x I - T)."""
    import sympy as sp  # here, not at module level: importing SymPy costs ~0.8 s that only this check needs

    _check_positive_int("n", n)
    x = sp.Symbol("x")
    d, e = sp.symbols(f"d1:{n + 1}"), sp.symbols(f"e1:{n}")
    T = sp.diag(*d) + sp.Matrix(n, n, lambda i, j: e[min(i, j)] if abs(i - j) == 1 else 0)
    pivots = [x - d[0]]
    for i in range(1, n):
        pivots.append(sp.together(x - d[i] - e[i - 1] ** 2 / pivots[-1]))
    return x, T, pivots


def _pivot_sums(d: np.ndarray, e2: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pivot_sums` for diagonals d (n, m), squared off-diagonals e2 (n - 1, m) and x (m,)."""
    u = x - d[0]
    r, s = 1 / u, np.zeros_like(x)  # r = u'/u, s = u''/u
    rr = r * r
    G, H, smallest = r.copy(), rr.copy(), u.copy()  # G = sum r, H = sum (r^2 - s)
    for i in range(1, d.shape[0]):
        c = e2[i - 1] / u
        u = x - d[i] - c  # u_i, and its x-derivatives:
        r, s = (1 + c * r) / u, c * (s - rr - rr) / u  # u_i' = 1 + c r, u_i'' = c (s - 2 r^2)
        rr = r * r
        np.minimum(smallest, u, out=smallest)
        G += r
        H += rr - s
    return G, H, smallest


def _laguerre(d: np.ndarray, e2: np.ndarray) -> np.ndarray:
    """Largest eigenvalue of tridiagonal matrices with diagonals d (n, m) and squared off-diagonals e2 (n - 1, m),
    all eigenvalues in [-1, 1]: Laguerre's iteration (eq-laguerre) from x = 1 + 2^-10, while all pivots are
    positive (x > lambda_max) and the step is above round-off."""
    n, m = d.shape
    x = np.full(m, 1 + 2.0**-10)
    active = np.arange(m)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(MAX_ITER):
            if not active.size:
                break
            xa = x[active]
            G, H, smallest = _pivot_sums(d[:, active], e2[:, active], xa)
            step = n / (G + np.sqrt(np.maximum((n - 1) * (n * H - G * G), 0)))
            moving = (smallest > 0) & (step > 4 * np.finfo(np.float64).eps * xa)
            x[active[moving]] = (xa - step)[moving]
            active = active[moving]
    for j in active:  # not converged: SciPy's bisection
        x[j] = eigvalsh_tridiagonal(d[:, j], np.sqrt(e2[:, j]), select="i", select_range=(n - 1, n - 1))[0]
    return x


def largest_eigenvalues(G: np.ndarray, threads: int = 1, overwrite: bool = False) -> np.ndarray:
    """lambda_max of each symmetric matrix of G (..., n, n) (one triangle is read): tridiagonal reduction
    (eq-tridiagonal, ``threads`` and ``overwrite`` as in :func:`tridiagonalize`) then Laguerre's iteration
    (eq-laguerre). Relative error a few float64 round-offs of the largest |eigenvalue|, as for LAPACK's full
    solvers."""
    return largest_tridiagonal_eigenvalues(*tridiagonalize(G, threads, overwrite), threads)


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


def _map(function: Callable, parts: list[tuple]) -> list:
    """function(*part) for each part, on one thread per part (in the caller's thread for a single part)."""
    if len(parts) <= 1:
        return [function(*part) for part in parts]
    with ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(lambda part: function(*part), parts))
