"""transport: products of Jacobians against autograd, batched norms against the naive loop, BPTT by lag, Frechet."""

import math

import numpy as np
import pytest
import sympy as sp
import torch
from conftest import randomise_layer_norm

from learnability import transport
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
    assert torch.get_num_threads() == threads                       # the streamed reduction restores torch's threads
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
        claim = sum((sp.Mul(*[A[i] for i in range(lag - 1, m, -1)]) * B[m] * sp.Mul(*[A[i] for i in range(m - 1, -1, -1)])
                     for m in range(lag)), sp.Integer(0))
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
        assert float(transport.expansion_error(A, B, eps).max()) <= transport.remainder_bound(a, b, eps, 6) * math.sqrt(4)
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


@pytest.mark.parametrize("call,match", [
    (lambda c, xs: transport.transport(c, xs, 2, 3), r"need 0 <= k <= t <= T"),
    (lambda c, xs: transport.transport(c, xs, 7, 0), r"need 0 <= k <= t <= T = 6"),
    (lambda c, xs: transport.transport_by_lag(torch.zeros(2, 3, 3), 1), r"shape \(B, T, d, d\)"),
    (lambda c, xs: transport.transport_by_lag(torch.zeros(1, 3, 2, 2), 4), "max_lag must be"),
    (lambda c, xs: transport.bptt_by_lag(c, xs, torch.zeros(2, 6, 5)), "deltas must have shape"),
    (lambda c, xs: transport.frechet_first_order(torch.zeros(2, 3, 3), torch.zeros(3, 3, 3)), "same shape"),
    (lambda c, xs: transport.remainder_bound(1.0, 1.0, 0.1, 0), "lag a positive integer"),
    (lambda c, xs: transport.jacobian_split(c, xs, "other"), "split must be"),
    (lambda c, xs: transport.jacobian_split(make_cell("gru", 3, 4), xs, "gate"), "gated family"),
])
def test_bad_arguments_raise(call, match):
    cell, xs = make_cell("multi", 3, 4), inputs().float()
    with pytest.raises(ValueError, match=match):
        call(cell, xs)


def test_lag_profile_of_a_constant_contraction_and_the_naive_subset():
    J = 0.5 * torch.eye(3, dtype=torch.float64).expand(2, 10, 3, 3)
    prof = transport.lag_profile(transport.iter_transport_by_lag(J, 6), 6)
    assert np.allclose(prof, 0.5 ** np.arange(6))
    some = transport.transport_norms_naive(J, 6, ends=[6, 9])
    assert torch.isnan(some[:, 5]).all() and torch.allclose(some[:, 9, :7], 0.5 ** torch.arange(7.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="need products for lags 0..max_lag"):
        transport.lag_profile(transport.iter_transport_by_lag(J, 2), 4)
