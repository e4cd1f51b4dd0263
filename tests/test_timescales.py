"""timescales: eq-timescale against a simulated impulse response, and validation."""

import math

import pytest
import sympy as sp
import torch

from learnability.cells import make_cell
from learnability.gates import timescales


@pytest.mark.parametrize("alpha", [0.05, 0.3, 0.8, 0.95])
def test_euler_timescale_matches_simulated_decay(alpha):
    """A leaky cell with W = 0 and zero input after a pulse forgets as (1 - alpha)^l: fit tau, compare."""
    assert abs(timescales.simulated_leaky_timescale(alpha) - timescales.euler_timescale(alpha)) < 1e-9 * max(
        1.0, timescales.euler_timescale(alpha)
    )


def test_euler_timescale_series_is_one_over_alpha_minus_half():
    a = sp.Symbol("alpha", positive=True)
    series = sp.series(-1 / sp.log(1 - a), a, 0, 2).removeO()
    assert sp.simplify(series - (1 / a - sp.Rational(1, 2) - a / 12)) == 0
    assert abs(timescales.euler_timescale(0.01) - (100 - 0.5 - 0.01 / 12)) < 1e-4


def test_known_values_and_edges():
    assert abs(timescales.euler_timescale(0.05) - 19.4957) < 1e-4
    assert timescales.euler_timescale(1.0) == 0.0
    r = torch.tensor([0.0, 0.5, 0.95])
    assert torch.allclose(timescales.retention_timescale(r), torch.tensor([0.0, 1 / math.log(2), 19.4957]), atol=1e-4)


def test_gate_timescales_shape_and_values():
    cell = make_cell("multi", 2, 3, gate_init=0.05, seed=0, dtype=torch.float64)
    xs = torch.randn(4, 5, 2, generator=torch.Generator().manual_seed(0))
    tau = timescales.gate_timescales(cell, xs)
    assert tau.shape == (4, 5, 3) and bool((tau > 0).all())
    ret = timescales.retention_trajectory(cell, xs)
    assert torch.allclose(tau, -1 / torch.log(ret))


def test_effective_time_is_cumulative_gate():
    g = torch.tensor([[0.1], [0.2], [0.7]])
    assert torch.allclose(timescales.effective_time(g), torch.tensor([[0.1], [0.3], [1.0]]))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: timescales.euler_timescale(0.0), r"alpha \(update gate\) must lie in \(0, 1\]"),
        (lambda: timescales.euler_timescale(float("nan")), "must lie in"),
        (lambda: timescales.retention_timescale(torch.tensor([1.0])), r"retentions must lie in \[0, 1\)"),
        (lambda: timescales.effective_time(torch.tensor([0.5])), "must have a time axis"),
        (lambda: timescales.effective_time(torch.tensor([[1.5]])), r"gate values must lie in \[0, 1\]"),
        (lambda: timescales.fitted_timescale(torch.tensor([1.0, 2.0])), "does not decay"),
        (lambda: timescales.fitted_timescale(torch.tensor([1.0, -2.0])), "positive values"),
        (lambda: timescales.simulated_leaky_timescale(0.5, steps=1), "steps must be an integer >= 2"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
