"""tridiagonal: largest eigenvalues by Householder reduction + Laguerre, against LAPACK's full solver and SymPy."""

import numpy as np
import pytest
import sympy as sp

from learnability.fastpaths import tridiagonal


def symmetric(kind, shape, n, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((*shape, n, n))
    if kind == "gram":
        return A @ np.swapaxes(A, -1, -2)
    if kind == "negative":
        return -(A @ np.swapaxes(A, -1, -2)) - np.eye(n)
    return A + np.swapaxes(A, -1, -2)


def reference(G):
    values = np.linalg.eigvalsh(G)
    return values[..., -1], np.abs(values).max(-1)


@pytest.mark.parametrize("n", [1, 2, 5, 64])
@pytest.mark.parametrize("kind", ["gram", "indefinite", "negative"])
def test_largest_eigenvalues_equal_the_full_solver(kind, n):
    G = symmetric(kind, (3, 4), n, seed=n)
    top, size = reference(G)
    got = tridiagonal.largest_eigenvalues(G)
    assert got.shape == (3, 4)
    assert np.all(np.abs(got - top) <= 1e-13 * size)


def with_spectrum(values, seed=0):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(values), len(values))))
    return Q @ np.diag(values) @ Q.T


@pytest.mark.parametrize(
    "G",
    [
        np.eye(8),
        np.zeros((8, 8)),
        np.diag(np.arange(8.0)),
        np.diag(np.arange(8.0))[::-1, ::-1].copy(),
        with_spectrum([3.0, 3.0, 3.0, 1.0, -2.0, 0.5]),  # a triple top eigenvalue
        with_spectrum([1.0, 1.0 - 1e-12, 0.3, 0.2, -1.0]),  # a gap at round-off
        with_spectrum([-1.0, -2.0, -3.0, -4.0]),
        np.kron(np.eye(3), [[2.0, 1.0], [1.0, 2.0]]),  # reducible: zero off-diagonals after reduction
        1e-250 * symmetric("gram", (), 16),
        1e250 * symmetric("gram", (), 16),
    ],
    ids=["identity", "zero", "diagonal", "reversed", "triple", "near-double", "negative", "blocks", "tiny", "huge"],
)
def test_degenerate_and_extreme_spectra(G):
    top, size = reference(G)
    assert abs(tridiagonal.largest_eigenvalues(G) - top) <= 4e-15 * max(size, np.finfo(float).tiny)


def test_threads_streaming_and_overwrite_give_identical_results():
    G = symmetric("gram", (600,), 12, seed=3)
    copy = G.copy()
    one = tridiagonal.largest_eigenvalues(G, threads=1)
    assert np.array_equal(G, copy)  # overwrite=False leaves the input alone
    assert np.array_equal(tridiagonal.largest_eigenvalues(G, threads=3), one)
    assert np.array_equal(tridiagonal.largest_eigenvalues(copy, threads=2, overwrite=True), one)
    batches = [G[:100].reshape(4, 25, 12, 12), G[100:101], G[101:]]
    for threads, in_flight in [(1, 1), (2, 4)]:
        streamed = tridiagonal.streamed_largest_eigenvalues((b.copy() for b in batches), threads, in_flight=in_flight)
        assert [s.shape for s in streamed] == [(4, 25), (1,), (499,)]
        assert np.array_equal(np.concatenate([s.reshape(-1) for s in streamed]), one)
    assert tridiagonal.streamed_largest_eigenvalues(iter([])) == []
    scalars = tridiagonal.streamed_largest_eigenvalues([np.full((2, 1, 1), 3.0), np.full((1, 1), -1.0)])
    assert np.array_equal(scalars[0], [3.0, 3.0]) and np.array_equal(scalars[1], -1.0)


@pytest.mark.parametrize("n,m", [(1, 3), (5, 5), (6, 2), (64, 64)])
def test_streamed_gram_eigenvalues_equal_the_full_solver_of_the_gram_matrices(n, m):
    rng = np.random.default_rng(n + m)
    batches = [rng.standard_normal((40, n, m)), rng.standard_normal((3, 7, n, m)), np.zeros((2, n, m))]
    batches[0][:5] *= 1e-150  # Gram entries near underflow, still exact
    for threads in (1, 2):
        got = tridiagonal.streamed_largest_eigenvalues((P for P in batches), threads, gram=True)
        assert [g.shape for g in got] == [(40,), (3, 7), (2,)]
        for P, top in zip(batches, got):
            exact = np.linalg.eigvalsh(P @ np.swapaxes(P, -1, -2))[..., -1]
            assert np.all(np.abs(top - exact) <= 1e-13 * exact + np.finfo(float).tiny)  # per matrix, relative
    with pytest.raises(ValueError, match="one size"):
        tridiagonal.streamed_largest_eigenvalues([np.zeros((2, n, m)), np.zeros((2, n + 1, m))], gram=True)
    with pytest.raises(ValueError, match=r"matrices \(\.\.\., n, m\)"):
        tridiagonal.streamed_largest_eigenvalues([np.zeros((2, n, m), dtype=int)], gram=True)
    with pytest.raises(ValueError, match="must be finite"):
        tridiagonal.streamed_largest_eigenvalues([np.full((2, n, m), np.inf)], gram=True)


def test_float32_input_is_solved_in_float64():
    G = symmetric("gram", (10,), 6, seed=4)
    assert np.allclose(
        tridiagonal.largest_eigenvalues(G.astype(np.float32)),
        np.linalg.eigvalsh(G.astype(np.float32).astype(np.float64))[:, -1],
        rtol=1e-13,
    )


def test_tridiagonal_reduction_is_a_similarity():
    G = symmetric("indefinite", (5,), 7, seed=5)
    d, e = tridiagonal.tridiagonalize(G)
    T = np.zeros_like(G)
    idx = np.arange(7)
    T[:, idx, idx] = d
    T[:, idx[1:], idx[:-1]] = T[:, idx[:-1], idx[1:]] = e
    assert np.allclose(np.linalg.eigvalsh(T), np.linalg.eigvalsh(G), atol=1e-13)


def test_pivot_sums_equal_sums_over_the_eigenvalues():
    rng = np.random.default_rng(6)
    d, e = rng.standard_normal((20, 9)), rng.standard_normal((20, 8))
    T = np.stack([np.diag(a) + np.diag(b, 1) + np.diag(b, -1) for a, b in zip(d, e)])
    lam = np.linalg.eigvalsh(T)
    for x in (lam[:, -1] + 0.3, lam[:, -1] + 1e-3, lam[:, -1] - 0.2, (lam[:, 3] + lam[:, 4]) / 2):
        G, H, smallest = tridiagonal.pivot_sums(d, e, x)
        gap = x[:, None] - lam
        assert np.allclose(G, (1 / gap).sum(1), rtol=1e-9)
        assert np.allclose(H, (1 / gap**2).sum(1), rtol=1e-9)
        assert np.array_equal(smallest > 0, x > lam[:, -1])  # Sylvester: all pivots > 0 iff x > lambda_max


def test_pivot_recurrence_symbolically():
    """(eq-sturm-pivots) for n = 3: prod u_i = det(x I - T) and sum u_i'/u_i = d/dx log det(x I - T)."""
    x, T, u = tridiagonal.symbolic_pivots(3)
    det = (x * sp.eye(3) - T).det()
    assert sp.cancel(sp.prod(u) - det) == 0
    assert sp.cancel(sp.together(sum(sp.diff(ui, x) / ui for ui in u)) - sp.diff(det, x) / det) == 0
    assert T[0, 1] == T[1, 0] == sp.Symbol("e1") and T[0, 2] == 0


def test_laguerre_falls_back_to_bisection_when_it_runs_out_of_steps(monkeypatch):
    G = symmetric("indefinite", (30,), 10, seed=7)
    top, size = reference(G)
    monkeypatch.setattr(tridiagonal, "MAX_ITER", 1)
    assert np.all(np.abs(tridiagonal.largest_eigenvalues(G) - top) <= 1e-13 * size)


def test_laguerre_converges_in_a_few_steps(monkeypatch):
    """Cubic convergence: random 64 x 64 Gram matrices need at most 9 steps (the last one confirms the stop)."""

    def no_fallback(*args, **kwargs):
        raise AssertionError("Laguerre's iteration did not converge within MAX_ITER steps")

    monkeypatch.setattr(tridiagonal, "MAX_ITER", 10)
    monkeypatch.setattr(tridiagonal, "eigvalsh_tridiagonal", no_fallback)
    G = symmetric("gram", (200,), 64, seed=9)
    top, size = reference(G)
    assert np.all(np.abs(tridiagonal.largest_eigenvalues(G) - top) <= 1e-13 * size)


def test_laguerre_iterates_fall_monotonically_from_above():
    G = symmetric("gram", (50,), 16, seed=8)
    d, e = tridiagonal.tridiagonalize(G)
    scale = np.abs(d).max(1) + 2 * np.abs(e).max(1)  # >= Gershgorin's bound: eigenvalues in [-1, 1]
    top = np.linalg.eigvalsh(G)[:, -1] / scale
    x = np.full(50, 1 + 2.0**-10)
    for _ in range(8):
        G_, H_, smallest = tridiagonal.pivot_sums(d / scale[:, None], e / scale[:, None], x)
        above = smallest > 0
        assert np.all(np.abs(x - top)[~above] <= 1e-15)  # a pivot <= 0 only once x is at round-off
        with np.errstate(divide="ignore", invalid="ignore"):
            step = 16 / (G_ + np.sqrt(np.maximum(15 * (16 * H_ - G_**2), 0)))
        new = np.where(above, x - step, x)
        assert np.all(new <= x) and np.all(new >= top - 1e-15)
        x = new
    assert np.all(np.abs(x - top) <= 1e-15)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: tridiagonal.largest_eigenvalues(np.zeros((3, 4))), r"square matrices"),
        (lambda: tridiagonal.largest_eigenvalues(np.zeros(4)), r"square matrices"),
        (lambda: tridiagonal.largest_eigenvalues(np.eye(3, dtype=int)), "real floating-point"),
        (lambda: tridiagonal.largest_eigenvalues(np.full((3, 3), np.nan)), "must be finite"),
        (lambda: tridiagonal.largest_eigenvalues(np.eye(3), threads=0), "threads must be a positive integer"),
        (lambda: tridiagonal.largest_eigenvalues(np.eye(3), threads=True), "threads must be a positive integer"),
        (lambda: tridiagonal.largest_tridiagonal_eigenvalues(np.zeros((2, 3)), np.zeros((2, 3))), r"e of shape"),
        (lambda: tridiagonal.largest_tridiagonal_eigenvalues([1.0, np.inf], [0.0]), "must be finite"),
        (lambda: tridiagonal.pivot_sums(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros(3)), r"and x \(...\)"),
        (lambda: tridiagonal.streamed_largest_eigenvalues([np.eye(2)], in_flight=0), "in_flight"),
        (lambda: tridiagonal.streamed_largest_eigenvalues([np.eye(2), np.eye(3)]), "one size"),
        (lambda: tridiagonal.symbolic_pivots(0), "n must be a positive integer"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
