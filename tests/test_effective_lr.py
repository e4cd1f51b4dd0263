"""effective_lr: mu against the transport diagonal, the envelope, the state-parameter coupling identities."""

import math

import numpy as np
import pytest
import sympy as sp
import torch

from learnability import effective_lr as elr
from learnability.cells import make_cell


def inputs(B=2, T=8, m=3, seed=0):
    return torch.randn(B, T, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def zero_recurrence(cell):
    """Zero every weight that acts on h: the Jacobian becomes diagonal, diag(J) = retention."""
    with torch.no_grad():
        for name, p in cell.named_parameters():
            if name.startswith("W") or name == "w_g":
                p.zero_()
    return cell


@pytest.mark.parametrize("kind", ["leaky", "scalar", "multi", "gru", "lstm"])
def test_all_orders_equal_transport_diagonal_when_jacobian_is_diagonal(kind):
    cell = zero_recurrence(make_cell(kind, 3, 4, dtype=torch.float64, seed=1))
    xs, lags = inputs(), [1, 2, 5, 8]
    truth = elr.transport_diagonal(cell, xs, lags)
    for order in (0, 1, "exact"):
        mu = elr.effective_learning_rates(cell, xs, lags, order=order)
        assert mu.shape == (2, 8, 4, 4)
        assert (mu - truth).abs().max() < 1e-12, order
    assert torch.equal(mu[:, :4, 2], torch.zeros(2, 4, 4))  # t < lag: no window


def test_constgate_zero_order_envelope_is_exactly_geometric():
    cell = make_cell("leaky", 3, 5, alpha=0.05, dtype=torch.float64, seed=2)
    lags = [1, 3, 10, 30]
    mu = elr.effective_learning_rates(cell, inputs(T=40), lags, order=0)
    f = elr.envelope(mu, lags, reduce="mean")
    assert torch.allclose(f, torch.tensor([0.95**lag for lag in lags], dtype=torch.float64), rtol=1e-12)
    assert torch.allclose(elr.envelope(mu, lags), 5 * f)


def test_first_order_error_is_second_order_in_the_off_retention_part():
    """Scale the weights acting on h by s: mu0 misses diag(Phi) by O(s), mu1 by O(s^2), the exact product by O(s^2)."""
    base = make_cell("multi", 3, 6, dtype=torch.float64, seed=3)
    xs, lags = inputs(T=10, seed=4), [4, 8]
    errors = {0: [], 1: []}
    for s in (1e-2, 1e-3):
        cell = make_cell("multi", 3, 6, dtype=torch.float64, seed=3)
        with torch.no_grad():
            for (name, p), (_, q) in zip(cell.named_parameters(), base.named_parameters()):
                if name in ("W", "W_g"):
                    p.copy_(s * q)
        truth = elr.transport_diagonal(cell, xs, lags)
        for order in errors:
            errors[order].append(float((elr.effective_learning_rates(cell, xs, lags, order) - truth).abs().max()))
    slope = {o: math.log10(e[0] / e[1]) for o, e in errors.items()}
    assert slope[0] == pytest.approx(1.0, abs=0.1)
    assert slope[1] == pytest.approx(2.0, abs=0.1)


def test_exact_order_handles_negative_diagonals_and_long_sequences():
    r = torch.full((1, 4096, 2), 0.9, dtype=torch.float64)
    rt = torch.tensor([0.0, -1.5], dtype=torch.float64).expand(1, 4096, 2).clone()  # second neuron: 0.9 - 1.5 < 0
    mu = elr.window_products(r, rt, [1, 2, 3, 4000], order="exact")
    assert torch.isfinite(mu).all()
    assert mu[0, -1, 0, 1] == pytest.approx(-0.6) and mu[0, -1, 1, 1] == pytest.approx(0.36)
    assert mu[0, -1, 3, 0] == pytest.approx(0.9**4000, rel=1e-9)


def test_telescoping_identity_symbolic():
    for t in range(1, 6):
        g = sp.symbols(f"g1:{t + 1}")
        lhs = sum(g[k] * sp.Mul(*[1 - g[j] for j in range(k + 1, t)]) for k in range(t))
        assert sp.expand(lhs - (1 - sp.Mul(*[1 - gj for gj in g]))) == 0


@pytest.mark.parametrize("kind", ["plain", "leaky", "scalar", "multi"])
def test_state_is_the_gate_filter_of_candidates(kind):
    cell = make_cell(kind, 3, 4, dtype=torch.float64, seed=5)
    xs = inputs(T=12, seed=6)
    h0 = torch.randn(2, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert (elr.state_filter(cell, xs, h0) - cell.unroll(xs, h0)).abs().max() < 1e-12
    g = torch.rand(2, 12, 4, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    w = elr.state_kernel(g)
    assert torch.allclose(w.sum(2), 1 - torch.cumprod(1 - g, 1))  # telescoping, numerically


def test_kernel_equals_zeroth_order_mu_times_gate():
    """w_{t,k} = g_k mu0_{t, t-k}: the state's filter is the zeroth-order effective learning rate (coupling)."""
    cell = make_cell("multi", 3, 4, dtype=torch.float64, seed=9)
    xs = inputs(T=9, seed=10)
    flat = cell.states(xs)
    g = torch.stack([cell.gate_and_candidate(xs[:, t], flat[:, t])[0] for t in range(9)], 1)
    w = elr.state_kernel(g)
    lags = list(range(1, 9))
    mu0 = elr.effective_learning_rates(cell, xs, lags, order=0)
    t = 9
    for lag in lags:
        k = t - lag
        assert torch.allclose(w[:, t - 1, k - 1], g[:, k - 1] * mu0[:, t - 1, lag - 1])


def test_constant_gate_small_alpha_expansion():
    """prod [(1-a) I + a D_j W] = (1-a)^l I + a (1-a)^(l-1) sum_j D_j W + O(a^2)."""
    gen = torch.Generator().manual_seed(11)
    W = torch.randn(5, 5, generator=gen, dtype=torch.float64) / math.sqrt(5)
    D = torch.rand(6, 5, generator=gen, dtype=torch.float64)
    residual = []
    for a in (1e-2, 1e-3):
        prod = torch.eye(5, dtype=torch.float64)
        for j in range(6):
            prod = ((1 - a) * torch.eye(5, dtype=torch.float64) + a * torch.diag(D[j]) @ W) @ prod
        approx = (1 - a) ** 6 * torch.eye(5, dtype=torch.float64) + a * (1 - a) ** 5 * (torch.diag(D.sum(0)) @ W)
        residual.append(float((prod - approx).abs().max()))
    assert math.log10(residual[0] / residual[1]) == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: elr.effective_learning_rates(make_cell("multi", 3, 4), inputs().float(), [0]), "positive integers"),
        (lambda: elr.effective_learning_rates(make_cell("multi", 3, 4), inputs().float(), [9]), "cannot exceed"),
        (
            lambda: elr.effective_learning_rates(make_cell("multi", 3, 4), inputs().float(), [1], order=2),
            "order must be",
        ),
        (lambda: elr.envelope(torch.zeros(2, 3, 1, 4), [1], reduce="max"), "reduce must be"),
        (lambda: elr.envelope(torch.zeros(2, 3, 2, 4), [1]), "holds 2 lags"),
        (lambda: elr.state_filter(make_cell("gru", 3, 4), inputs().float()), "gated family"),
        (lambda: elr.window_products(torch.ones(1, 3, 2), torch.ones(1, 3, 3), [1]), "same shape|both have shape"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_scalar_gate_mu0_is_shared_by_all_neurons_multi_is_not():
    """thm-schedule: a scalar gate gives one zeroth-order mu for every neuron; per-neuron gates do not."""
    xs = inputs(T=12, seed=12)
    mu_s = elr.effective_learning_rates(make_cell("scalar", 3, 6, dtype=torch.float64, seed=13), xs, [1, 4], 0)
    mu_m = elr.effective_learning_rates(make_cell("multi", 3, 6, dtype=torch.float64, seed=13), xs, [1, 4], 0)
    assert torch.equal(mu_s, mu_s[..., :1].expand_as(mu_s))
    assert (mu_m[:, 3:].amax(-1) / mu_m[:, 3:].amin(-1)).min() > 1.01


def test_gate_product_profile_of_constant_gates():
    g = torch.full((2, 12, 3), 0.7, dtype=torch.float64)
    assert np.allclose(elr.gate_product_profile(g, 6), 0.7 ** np.arange(6))
    assert np.allclose(elr.gate_product_profile(g, 6, extra=1), 0.7 ** np.arange(6))  # the off-by-one cancels
    with pytest.raises(ValueError, match=r"shape \(B, T, n\)"):
        elr.gate_product_profile(torch.ones(3, 4), 2)


def test_window_envelope_equals_the_envelope_of_the_full_mu_tensor():
    cell = make_cell("gru", 3, 5, dtype=torch.float64, seed=4)
    xs = torch.randn(4, 25, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    lags = [1, 3, 7, 24]
    for order in (0, 1, "exact"):
        full = elr.envelope(elr.effective_learning_rates(cell, xs, lags, order=order), lags)
        assert torch.allclose(elr.cell_envelope(cell, xs, lags, order=order), full, rtol=1e-12)
    r = torch.rand(2, 9, 3, dtype=torch.float64)
    assert torch.allclose(
        elr.window_envelope(r, 0 * r, [2], order=0, reduce="mean"),
        elr.envelope(elr.window_products(r, 0 * r, [2]), [2], reduce="mean"),
    )
    with pytest.raises(ValueError, match="order must be"):
        elr.window_envelope(r, r, [2], order=2)


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru", "multi", "scalar"])
def test_trajectory_diagonals_equal_step_by_step(kind, layer_norm):
    """All (sequence, step) pairs at once give each step's own r and diag(J) - r of the full Jacobian."""
    cell = make_cell(kind, 3, 4, dtype=torch.float64, seed=0, layer_norm=layer_norm)
    xs = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r, rt = elr.trajectory_diagonals(cell, xs)
    flat = cell.states(xs)
    for t in range(7):
        s = cell.unflatten_state(flat[:, t])
        d = torch.diagonal(cell.jacobian(xs[:, t], s), dim1=-2, dim2=-1)[..., -4:]
        torch.testing.assert_close(r[:, t], cell.retention(xs[:, t], s), rtol=0, atol=1e-14)
        torch.testing.assert_close(rt[:, t], d - r[:, t], rtol=0, atol=1e-14)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_lstm_code_rates_are_the_cell_state_map_through_h(layer_norm):
    """f_j + r_j is the diagonal of c_{j-1} -> c_j when h_{j-1} = o_{j-1} tanh(c_{j-1}) follows c_{j-1} (o held at
    its value), by autograd; e_j = o_j (1 - tanh^2 c_j); and without LayerNorm r_j is the authors' formula
    c~_j e_{j-1}, c~ = c f(1-f) W_f + i (1 - g^2) W_c + g i(1-i) W_i on the diagonals (eq-lstm-code-rates)."""
    cell = make_cell("lstm", 3, 4, dtype=torch.float64, seed=2, layer_norm=layer_norm)
    xs = inputs(B=2, T=6)
    f, r, e = elr.lstm_code_diagonals(cell, xs)
    assert torch.allclose(f, elr.trajectory_diagonals(cell, xs)[0]) and torch.all(r[:, 0] == 0)
    flat = cell.states(xs)
    n = 4
    h, c = flat[..., :n], flat[..., n:]
    with torch.no_grad():
        o = torch.stack([cell._parts(xs[:, t], h[:, t], c[:, t])[2] for t in range(6)], 1)
    assert torch.allclose(e, o * (1 - torch.tanh(c[:, 1:]) ** 2))
    for b in range(2):
        for j in range(1, 6):  # step j + 1 (0-based j) starts from state j

            def c_next(c_prev, b=b, j=j):
                h_prev = o[b, j - 1] * torch.tanh(c_prev)
                return cell.step(xs[b : b + 1, j], (h_prev[None], c_prev[None]))[1][0]

            J = torch.autograd.functional.jacobian(c_next, c[b, j].clone())
            assert torch.allclose(torch.diagonal(J), f[b, j] + r[b, j], atol=1e-12)
    if not layer_norm:
        with torch.no_grad():
            i, fg, _, g, _, _ = zip(*[cell._parts(xs[:, t], h[:, t], c[:, t]) for t in range(6)])
        i, fg, g = (torch.stack(v, 1) for v in (i, fg, g))
        tilde = (
            c[:, :-1] * fg * (1 - fg) * torch.diagonal(cell.W_f)
            + i * (1 - g**2) * torch.diagonal(cell.W_c)
            + g * i * (1 - i) * torch.diagonal(cell.W_i)
        )
        e_prev = torch.cat([torch.zeros_like(e[:, :1]), e[:, :-1]], 1)
        assert torch.allclose(r, tilde * e_prev)
    lags = [1, 3]
    mu = dict((lag, m) for _, lag, m in elr.lstm_code_windows(f, r, e, lags))
    t, lag = 5, 3  # window j = 3..5 (1-based), ending at step 5
    window = slice(t - lag, t)
    expected = e[:, t - 1] * f[:, window].prod(1) * (1 + (r[:, window] / f[:, window]).sum(1))
    assert torch.allclose(mu[3][:, t - lag], expected)
    with pytest.raises(ValueError, match="LSTM"):
        elr.lstm_code_diagonals(make_cell("gru", 3, 4, dtype=torch.float64), xs)


@pytest.mark.parametrize("kind", ["multi", "lstm"])
def test_sampled_transport_windows_are_the_dense_diagonal_at_their_starts(kind):
    """transport_diagonal_windows(stride=s) holds the diagonal of Phi(k + l, k) for the starts k = 0, s, 2s, ...:
    the dense layout's windows ending at t = k + l, i.e. mu-layout index k taken every s-th; bad strides raise."""
    cell = make_cell(kind, 3, 4, dtype=torch.float64, seed=5, gate_init=0.2)
    xs = torch.randn(2, 11, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    lags = [1, 3, 7]
    dense = elr.transport_diagonal(cell, xs, lags)
    for i, lag, d in elr.transport_diagonal_windows(cell, xs, lags, stride=3):
        starts = list(range(0, 11 - lag + 1, 3))
        assert d.shape == (2, len(starts), 4)
        torch.testing.assert_close(d, dense[:, [k + lag - 1 for k in starts], i], rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        next(elr.transport_diagonal_windows(cell, xs, lags, stride=0))
