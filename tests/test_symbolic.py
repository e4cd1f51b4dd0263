"""symbolic: SymPy-derived Jacobians == cell.jacobian == autograd, and the book's matrix forms are exact."""

from functools import cache

import numpy as np
import pytest
import sympy as sp
import torch
from conftest import random_point, randomise_layer_norm
from hypothesis import given, settings
from hypothesis import strategies as st

from learnability import symbolic
from learnability.cells import make_cell

ALL = ("plain", "leaky", "scalar", "multi", "gru", "lstm")
SIZES = {False: (2, 2), True: (3, 2)}  # (hidden, input); LayerNorm needs n >= 2, 3 avoids the degenerate n = 2


@cache
def model(kind, layer_norm):
    n, m = SIZES[layer_norm]
    return symbolic.cell_model(kind, n, m, layer_norm=layer_norm)


@settings(max_examples=24, deadline=None)
@given(kind=st.sampled_from(ALL), layer_norm=st.booleans(), seed=st.integers(0, 10_000))
def test_sympy_jacobian_equals_cell_and_autograd(kind, layer_norm, seed):
    n, m = SIZES[layer_norm]
    mdl = model(kind, layer_norm)
    cell = make_cell(kind, m, n, dtype=torch.float64, layer_norm=layer_norm, seed=seed)
    randomise_layer_norm(cell, seed)
    x, state = random_point(cell, 3, seed)
    J_sym = mdl.evaluate_jacobian(cell, x, state)
    J_cell = cell.jacobian(x, state).detach().numpy()
    J_auto = cell.jacobian_autograd(x, state).detach().numpy()
    assert np.abs(J_sym - J_cell).max() < 1e-10
    assert np.abs(J_sym - J_auto).max() < 1e-10


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("layer_norm", [False, True])
def test_matrix_form_is_exactly_the_derived_jacobian(kind, layer_norm):
    assert model(kind, layer_norm).check_structure()


@pytest.mark.parametrize("kind", ALL)
def test_matrix_form_check_can_fail(kind):
    """Perturb the explicit matrix behind one symbol: the exact check must then say False."""
    mdl = model(kind, False)
    expr, mapping = mdl.structure()
    key = next(k for k in mapping if isinstance(k, sp.MatrixSymbol) and k.name.startswith("W"))
    wrong = dict(mapping)
    wrong[key] = mapping[key] * 2
    diff = sp.Matrix(expr.xreplace(wrong).doit()) - mdl.jacobian_in_zeta
    assert not all(sp.expand(e) == 0 for e in diff)


@pytest.mark.parametrize("kind", ["plain", "scalar", "gru", "lstm"])
def test_chain_rule_jacobian_equals_direct_derivative(kind):
    mdl = model(kind, False)
    direct = mdl.step.jacobian(mdl.state)
    assert all(sp.expand(e) == 0 for e in (direct - mdl.jacobian))


def test_layernorm_jacobian_exact():
    assert symbolic.check_layernorm_jacobian(3)
    assert symbolic.check_layernorm_jacobian(4)


def test_sigmoid_derivative_and_numeric_value():
    z = sp.Symbol("z")
    assert sp.simplify(sp.diff(symbolic.sigmoid(z), z) - symbolic.sigmoid(z) * (1 - symbolic.sigmoid(z))) == 0
    as_exp = symbolic.sigmoid(z).rewrite(sp.exp)
    assert abs(float(as_exp.subs(z, 0.3)) - 1 / (1 + np.exp(-0.3))) < 1e-15


def test_structure_latex_names_the_terms():
    assert r"\operatorname{diag}(d_t \odot g_t \odot (1 - g_t)) W_{g}" in model("multi", False).structure_latex()
    assert r"d_{t} w_{g}^{T}" in model("scalar", False).structure_latex()


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: symbolic.cell_model("nope"), "unknown cell kind"),
        (lambda: symbolic.cell_model("gru", 0), "hidden_size must be a positive integer"),
        (lambda: symbolic.cell_model("gru", 1, layer_norm=True), "layer_norm needs hidden_size >= 2"),
        (lambda: symbolic.layernorm_jacobian(1), "n must be an integer >= 2"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_mismatched_cell_raises():
    mdl = model("multi", False)
    cell = make_cell("multi", 2, 3, dtype=torch.float64)
    x, h = random_point(cell, 1, 0)
    with pytest.raises(ValueError, match="does not match this model"):
        mdl.evaluate_jacobian(cell, x, h)


def test_a_parameter_name_the_model_lacks_lists_the_names_it_has():
    params = symbolic.cell_model("scalar", 2, 1).params
    with pytest.raises(ValueError, match=r"the cell has no parameter 'W_g'; its parameters: W, U, b, w_g, u_g, b_g$"):
        params["W_g"]
    assert params["w_g"].shape == (2, 1)
