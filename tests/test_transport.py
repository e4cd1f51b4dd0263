"""transport: products of Jacobians against autograd, batched norms against the naive loop, BPTT by lag, Frechet."""

import math

import numpy as np
import pytest
import sympy as sp
import torch
from conftest import randomise_layer_norm
from hypothesis import given, settings
from hypothesis import strategies as st

from learnability import errata, transport
from learnability.cells import make_cell

ALL = ("plain", "leaky", "scalar", "multi", "gru", "lstm")


def inputs(B=2, T=6, m=3, seed=0):
    return torch.randn(B, T, m, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", ALL)
def test_transport_equals_autograd_of_the_unroll(kind):
    cell = make_cell(kind, 3, 4, dtype=torch.float64, seed=1)
    xs = inputs()
    flat = cell.states(xs)
    t, k = 5, 2

    def forward(s_k):  # state_k -> state_t for the first sequence
        s = cell.unflatten_state(s_k.unsqueeze(0))
        for j in range(k, t):
            s = cell(xs[:1, j], s)
        return cell.flatten_state(s)[0]

    expected = torch.autograd.functional.jacobian(forward, flat[0, k])
    assert (transport.transport(cell, xs, t, k)[0] - expected).abs().max() < 1e-12
    assert torch.equal(transport.transport(cell, xs, 3, 3), torch.eye(cell.state_size).expand(2, -1, -1))


def test_batched_norms_equal_naive_loop_and_transport():
    cell = make_cell("multi", 3, 5, dtype=torch.float64, seed=2)
    xs = inputs(T=7)
    J = transport.jacobians(cell, xs)
    threads = torch.get_num_threads()
    fast, slow = transport.transport_norms(J), transport.transport_norms_naive(J)
    assert torch.get_num_threads() == threads  # the streamed reduction restores torch's threads
    assert torch.allclose(fast, slow, equal_nan=True, atol=1e-12)
    assert torch.allclose(transport.transport_norms(J.float()), fast.float(), equal_nan=True, rtol=1e-5)
    phi = transport.transport(cell, xs, 6, 2)
    assert torch.allclose(fast[:, 6, 4], torch.linalg.matrix_norm(phi, ord=2))
    assert torch.isnan(fast[:, 2, 3]).all() and torch.allclose(fast[:, :, 0], torch.ones(2, 8))


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("layer_norm", [False, True])
def test_bptt_by_lag_sums_to_autograd(kind, layer_norm):
    cell = make_cell(kind, 3, 4, dtype=torch.float64, seed=3, layer_norm=layer_norm)
    randomise_layer_norm(cell, 3)
    xs, ys = inputs(T=5, seed=4), torch.randn(2, 5, generator=torch.Generator().manual_seed(5))
    w = torch.randn(4, generator=torch.Generator().manual_seed(6))
    hs = cell.unroll(xs)
    loss = 0.5 * ((hs @ w - ys) ** 2).sum()
    grads = torch.autograd.grad(loss, list(cell.parameters()))
    deltas = torch.zeros(2, 5, cell.state_size)
    deltas[..., :4] = ((hs @ w - ys).unsqueeze(-1) * w).detach()
    by_lag = transport.bptt_by_lag(cell, xs, deltas)
    for (name, _), g in zip(cell.named_parameters(), grads):
        assert by_lag[name].shape[0] == 5
        assert (by_lag[name].sum(0) - g).abs().max() < 1e-10, name


def test_frechet_symbolic_noncommutative():
    """For l = 2, 3 the eps-coefficient of prod (A_j + eps B_j) is the sum of single substitutions."""
    eps = sp.Symbol("epsilon")
    for lag in (2, 3):
        A = sp.symbols(f"A1:{lag + 1}", commutative=False)
        B = sp.symbols(f"B1:{lag + 1}", commutative=False)
        prod = sp.Integer(1)
        for j in range(lag):
            prod = (A[j] + eps * B[j]) * prod
        first = sp.expand(prod).coeff(eps, 1)
        claim = sum(
            (
                sp.Mul(*[A[i] for i in range(lag - 1, m, -1)]) * B[m] * sp.Mul(*[A[i] for i in range(m - 1, -1, -1)])
                for m in range(lag)
            ),
            sp.Integer(0),
        )
        assert sp.expand(first - claim) == 0


def test_frechet_numeric_against_finite_difference_and_bound():
    gen = torch.Generator().manual_seed(7)
    A = 0.5 * torch.randn(3, 6, 4, 4, generator=gen, dtype=torch.float64)
    B = 0.3 * torch.randn(3, 6, 4, 4, generator=gen, dtype=torch.float64)
    h = 1e-6
    fd = (transport.ordered_product(A + h * B) - transport.ordered_product(A - h * B)) / (2 * h)
    assert (fd - transport.frechet_first_order(A, B)).abs().max() < 1e-8
    a = float(torch.linalg.matrix_norm(A, ord=2).max())
    b = float(torch.linalg.matrix_norm(B, ord=2).max())
    for eps in (1e-3, 1e-1, 1.0):
        assert float(transport.expansion_error(A, B, eps).max()) <= transport.remainder_bound(a, b, eps, 6) * math.sqrt(
            4
        )
    errs = [float(transport.expansion_error(A, B, e).max()) for e in (1e-4, 1e-3)]
    assert math.log10(errs[1] / errs[0]) == pytest.approx(2.0, abs=0.01)


@pytest.mark.parametrize("split", ["gate", "retention"])
@pytest.mark.parametrize("kind", ["scalar", "multi"])
def test_jacobian_split_sums_to_jacobian(split, kind):
    cell = make_cell(kind, 3, 4, dtype=torch.float64, seed=8)
    xs = inputs()
    A, B = transport.jacobian_split(cell, xs, split)
    assert (A + B - transport.jacobians(cell, xs)).abs().max() < 1e-14
    if split == "retention":
        assert torch.equal(A, torch.diag_embed(torch.diagonal(A, dim1=-2, dim2=-1)))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda c, xs: transport.transport(c, xs, 2, 3), r"need 0 <= k <= t <= T"),
        (lambda c, xs: transport.transport(c, xs, 7, 0), r"need 0 <= k <= t <= T = 6"),
        (lambda c, xs: transport.transport_by_lag(torch.zeros(2, 3, 3), 1), r"shape \(B, T, d, d\)"),
        (lambda c, xs: transport.transport_by_lag(torch.zeros(1, 3, 2, 2), 4), "max_lag must be"),
        (lambda c, xs: transport.bptt_by_lag(c, xs, torch.zeros(2, 6, 5)), "deltas must have shape"),
        (lambda c, xs: transport.frechet_first_order(torch.zeros(2, 3, 3), torch.zeros(3, 3, 3)), "same shape"),
        (lambda c, xs: transport.remainder_bound(1.0, 1.0, 0.1, 0), "lag a positive integer"),
        (lambda c, xs: transport.jacobian_split(c, xs, "other"), "split must be"),
        (lambda c, xs: transport.jacobian_split(make_cell("gru", 3, 4), xs, "gate"), "gated family"),
    ],
)
def test_bad_arguments_raise(call, match):
    cell, xs = make_cell("multi", 3, 4), inputs().float()
    with pytest.raises(ValueError, match=match):
        call(cell, xs)


def test_lag_profile_of_a_constant_contraction_and_the_naive_subset():
    J = 0.5 * torch.eye(3, dtype=torch.float64).expand(2, 10, 3, 3)
    prof = transport.lag_profile(transport.iter_transport_by_lag(J, 6), 6)
    assert np.allclose(prof, 0.5 ** np.arange(6))
    some = transport.transport_norms_naive(J, 6, ends=[6, 9])
    assert torch.isnan(some[:, 5]).all() and torch.allclose(
        some[:, 9, :7], 0.5 ** torch.arange(7.0, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="need products for lags 0..max_lag"):
        transport.lag_profile(transport.iter_transport_by_lag(J, 2), 4)


# ----- exact lag medians through certified bounds (eq-gram-bounds, eq-median-bracket) ----------------------------
def squared_norms(P):
    """The reference: the exact spectral norms of :func:`transport.spectral_norm`, squared."""
    return transport.spectral_norm(torch.as_tensor(P)).numpy() ** 2


def reference_medians(J, max_lag, products=None):
    products = transport.iter_transport_by_lag(J, max_lag) if products is None else products
    return np.array([float(torch.median(transport.spectral_norm(P))) for P in list(products)[1 : max_lag + 1]])


def rotations(count, n, seed):
    return torch.linalg.qr(torch.randn(count, n, n, generator=torch.Generator().manual_seed(seed)))[0]


@st.composite
def bounded_matrices(draw):
    """Batches that stress the bounds: Gaussian, rank one plus noise, equal singular values (rotations), a top pair
    split at 1e-9, zeros, at scales from 1e-150 to 1e150, from random, zero or all-ones start vectors."""
    seed, N = draw(st.integers(0, 10**6)), draw(st.integers(1, 6))
    d, m = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    gen = torch.Generator().manual_seed(seed)
    kind = draw(st.sampled_from(["gauss", "rank1", "rotation", "pair", "zero"]))
    if kind in ("rotation", "pair"):
        m = d
    P = torch.randn(N, d, m, generator=gen)
    if kind == "rank1":
        P = 10 * torch.randn(N, d, 1, generator=gen) @ torch.randn(N, 1, m, generator=gen) + 1e-3 * P
    elif kind == "rotation":
        P = rotations(N, d, seed)
    elif kind == "pair":
        s = torch.linspace(0.5, 0.1, d).repeat(N, 1)
        s[:, 0], s[:, min(1, d - 1)] = 1.0, 1.0 - 1e-9
        P = rotations(N, d, seed) @ torch.diag_embed(s) @ rotations(N, d, seed + 1)
    elif kind == "zero":
        P = torch.zeros(N, d, m)
    start = draw(st.sampled_from(["random", "zero", "ones"]))
    u = {"random": torch.randn(N, d, generator=gen), "zero": torch.zeros(N, d), "ones": torch.ones(N, d)}[start]
    return (10.0 ** draw(st.sampled_from([-150, -3, 0, 3, 150]))) * P.numpy(), u.numpy(), draw(st.integers(1, 4))


@settings(max_examples=300, deadline=None)
@given(bounded_matrices())
def test_norm_bounds_enclose_the_exact_squared_norm(case):
    P, u, steps = case
    lo, hi, nxt = transport.norm_bounds(P, u, steps)
    exact = squared_norms(P)
    svd = np.linalg.svd(P, compute_uv=False)[:, 0] ** 2
    assert np.all(lo <= exact) and np.all(exact <= hi) and np.all(lo <= svd) and np.all(svd <= hi)
    assert nxt.shape == u.shape and np.isfinite(nxt).all()


def test_norm_bounds_are_tight_when_one_singular_value_dominates():
    gen = torch.Generator().manual_seed(0)
    P = (
        torch.randn(20, 16, 1, generator=gen) @ torch.randn(20, 1, 16, generator=gen)
        + 0.05 * torch.randn(20, 16, 16, generator=gen)
    ).numpy()
    lo, hi, u = transport.norm_bounds(P, np.ones((20, 16)), 1)
    for _ in range(3):  # warm starts, as lag_medians chains them
        lo, hi, u = transport.norm_bounds(P, u, 1)
    assert np.all(hi - lo <= 1e-9 * squared_norms(P))
    lo, hi, _ = transport.norm_bounds(rotations(3, 5, 1).numpy(), np.ones((3, 5)), 4)  # all singular values 1:
    assert np.all(lo <= 1) and np.allclose(hi, 4)  # valid, but only tr G - rho: no gap, no use
    lo, hi, v = transport.norm_bounds(np.diag([2.0, 0, 0])[None], np.array([[0.0, 1, 0]]), 1)  # start in the kernel
    assert lo[0] <= 4 <= hi[0] and np.all(v == 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=1, max_size=40), st.integers(0, 10**6))
def test_median_bracket_keeps_the_values_that_decide_the_lower_median(ints, seed):
    x = np.asarray(ints, dtype=float) / 4  # many ties
    rng = np.random.default_rng(seed)
    width = rng.choice([0.0, 0.1, 1.0, np.inf], size=(2, x.size))
    lo, hi = x - width[0], x + width[1]
    idx, rank = transport.median_bracket(lo, hi)
    assert np.partition(x[idx], rank)[rank] == float(torch.median(torch.as_tensor(x)))
    tight_idx, tight_rank = transport.median_bracket(x, x)
    assert x[tight_idx][tight_rank] == np.sort(x)[(x.size - 1) // 2] and np.all(x[tight_idx] == x[tight_idx][0])


def multi_gate_jacobians(T=30, B=3, n=10, seed=5):
    cell = make_cell("multi", 3, n, dtype=torch.float64, seed=seed)
    with torch.no_grad():
        return transport.jacobians(cell, inputs(B=B, T=T, seed=seed))


def count_exact(monkeypatch):
    """Spy on the exact route of lag_medians: the number of matrices whose lambda_max it computes, per call."""
    counts = []
    streamed = transport.streamed_largest_eigenvalues

    def spy(batches, *args, **kwargs):
        batches = list(batches)
        counts.append(sum(np.prod(P.shape[:-2]) for P in batches))
        return streamed(iter(batches), *args, **kwargs)

    monkeypatch.setattr(transport, "streamed_largest_eigenvalues", spy)
    return counts


@pytest.mark.parametrize("case", ["multi", "random", "rotations", "contraction"])
def test_lag_medians_equal_the_medians_of_the_exact_norms(case, monkeypatch):
    if case == "multi":  # real transports: clustered tops at short lags, one dominant value later
        J = multi_gate_jacobians()
    elif case == "random":
        J = torch.randn(4, 25, 8, 8, generator=torch.Generator().manual_seed(1)) / 8**0.5
    elif case == "rotations":  # every product 0.9^l times a rotation: all singular values tie
        J = 0.9 * rotations(4 * 25, 8, 2).reshape(4, 25, 8, 8)
    else:  # every product the same matrix 0.5^l I: all norms tie
        J = 0.5 * torch.eye(3).expand(2, 12, 3, 3)
    T = J.shape[1]
    counts = count_exact(monkeypatch)
    got, expected = transport.lag_medians(J, T), reference_medians(J, T)
    assert np.all(np.abs(got - expected) <= 1e-13 * expected)
    pairs = J.shape[0] * T * (T + 1) // 2
    if case == "multi":
        assert counts[0] < pairs / 2  # the bracket excluded most matrices ...
    if case in ("rotations", "contraction"):
        assert counts[0] == pairs  # ... and falls back to all of them here
        assert np.allclose(got, {"rotations": 0.9, "contraction": 0.5}[case] ** np.arange(1, T + 1), rtol=1e-13)


def test_lag_medians_on_threads_on_other_dtypes_and_reversed_products():
    J = multi_gate_jacobians(T=20)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = transport.lag_medians(J, 12)
        torch.set_num_threads(2)
        assert np.array_equal(transport.lag_medians(J, 12), one)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(transport.lag_medians(J.float(), 12), reference_medians(J.float(), 12))  # reference route
    assert np.array_equal(transport.lag_medians(J.clone().requires_grad_(), 12), one)
    # ||J_{k+1} ... J_{k+l}|| = ||J_{k+l}^T ... J_{k+1}^T||: the code's reversed products through transposes
    reversed_ = reference_medians(J, 12, errata.reversed_products_by_lag(J, 12))
    assert np.all(np.abs(transport.lag_medians(J.mT, 12) - reversed_) <= 1e-13 * reversed_)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: transport.lag_medians(torch.zeros(2, 3, 3), 1), r"shape \(B, T, d, d\)"),
        (lambda: transport.lag_medians(torch.zeros(1, 3, 2, 2), 4), "max_lag must be"),
        (lambda: transport.lag_medians(torch.full((1, 3, 2, 2), float("nan")), 2), "J must be finite"),
        (lambda: transport.norm_bounds(np.zeros((2, 3, 3)), np.zeros((2, 4))), r"need P \(N, d, m\) and u \(N, d\)"),
        (lambda: transport.norm_bounds(np.zeros((2, 3, 3)), np.zeros((2, 3)), 0), "steps must be a positive integer"),
        (lambda: transport.median_bracket(np.zeros(3), np.zeros(4)), "one non-empty shape"),
        (lambda: transport.median_bracket(np.zeros(0), np.zeros(0)), "one non-empty shape"),
        (lambda: transport.median_bracket(np.array([0.0, np.nan]), np.ones(2)), "without NaN"),
    ],
)
def test_certified_median_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
