"""cells: exact Jacobians against autograd, the gate-term ranks, unroll, and argument validation."""

import pytest
import torch
from conftest import random_point, randomise_layer_norm
from hypothesis import given, settings
from hypothesis import strategies as st

from learnability.cells import ALIASES, Cell, is_builtin, kinds, make_cell, missing_features, refused_options, register

ALL = ("plain", "leaky", "scalar", "multi", "gru", "lstm")


def test_registry_holds_the_six_cells_and_aliases():
    assert set(ALL) <= set(kinds())
    assert make_cell("const", 2, 3).kind == "leaky" and make_cell("diag", 2, 3).kind == "multi"
    assert ALIASES == {"const": "leaky", "diag": "multi"}


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(ALL),
    n=st.integers(1, 7),
    m=st.integers(1, 4),
    batch=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    layer_norm=st.booleans(),
    bias=st.booleans(),
)
def test_analytic_jacobian_equals_jacrev(kind, n, m, batch, seed, layer_norm, bias):
    if layer_norm and n == 1:
        n = 2
    cell = make_cell(kind, m, n, dtype=torch.float64, layer_norm=layer_norm, bias=bias, seed=seed)
    randomise_layer_norm(cell, seed)
    x, state = random_point(cell, batch, seed)
    J = cell.jacobian(x, state)
    assert J.shape == (batch, cell.state_size, cell.state_size)
    assert (J - cell.jacobian_autograd(x, state)).abs().max() < 1e-10
    # eq-jac-diagonal: the O(B n^2) diagonal equals the full Jacobian's (and, for the LSTM, each block's)
    assert (cell.jacobian_diagonal(x, state) - torch.diagonal(J, dim1=-2, dim2=-1)).abs().max() < 1e-13
    if kind == "lstm":
        blocks = cell.block_diagonals(x, state)
        for name, rows, cols in (
            ("hh", slice(None, n), slice(None, n)),
            ("hc", slice(None, n), slice(n, None)),
            ("ch", slice(n, None), slice(None, n)),
            ("cc", slice(n, None), slice(n, None)),
        ):
            assert (blocks[name] - torch.diagonal(J[:, rows, cols], dim1=-2, dim2=-1)).abs().max() < 1e-13


@pytest.mark.parametrize("kind", ALL)
def test_jacobian_against_finite_differences(kind):
    """A second, autograd-free reference: central differences of the step."""
    cell = make_cell(kind, 3, 4, dtype=torch.float64, seed=1)
    x, state = random_point(cell, 1, 2)
    flat = cell.flatten_state(state)
    eps = 1e-6
    cols = []
    for j in range(cell.state_size):
        e = torch.zeros_like(flat)
        e[0, j] = eps
        plus = cell.flatten_state(cell(x, cell.unflatten_state(flat + e)))
        minus = cell.flatten_state(cell(x, cell.unflatten_state(flat - e)))
        cols.append((plus - minus)[0] / (2 * eps))
    fd = torch.stack(cols, dim=1)
    assert (cell.jacobian(x, state)[0] - fd).abs().max() < 1e-8


@pytest.mark.parametrize("kind", ["plain", "leaky", "scalar", "multi"])
def test_jacobian_terms_sum_to_jacobian(kind):
    cell = make_cell(kind, 3, 5, dtype=torch.float64, seed=3)
    x, h = random_point(cell, 2, 4)
    terms = cell.jacobian_terms(x, h)
    assert set(terms) == {"retention", "candidate", "gate"}
    assert (sum(terms.values()) - cell.jacobian(x, h)).abs().max() < 1e-14


def test_gate_term_rank_scalar_one_multi_full():
    n = 8
    scalar = make_cell("scalar", 3, n, dtype=torch.float64, seed=5)
    multi = make_cell("multi", 3, n, dtype=torch.float64, seed=5)
    x, h = random_point(scalar, 4, 6)
    rank_s = torch.linalg.matrix_rank(scalar.jacobian_terms(x, h)["gate"])
    rank_m = torch.linalg.matrix_rank(multi.jacobian_terms(x, h)["gate"])
    assert rank_s.tolist() == [1] * 4
    assert rank_m.tolist() == [n] * 4


def test_code_compat_gate_term_is_scaled_by_retention_and_wrong():
    cell = make_cell("multi", 3, 5, dtype=torch.float64, seed=7)
    x, h = random_point(cell, 3, 8)
    exact, code = cell.jacobian_terms(x, h), cell.jacobian_terms(x, h, code_compat=True)
    g = 1 - torch.diagonal(exact["retention"], dim1=-2, dim2=-1)
    assert (code["gate"] - (1 - g).unsqueeze(-1) * exact["gate"]).abs().max() < 1e-14
    wrong = code["retention"] + code["candidate"] + code["gate"]
    assert (wrong - cell.jacobian_autograd(x, h)).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ALL)
def test_unroll_equals_repeated_steps(kind):
    cell = make_cell(kind, 2, 3, dtype=torch.float64, seed=9)
    xs = torch.randn(2, 6, 2, generator=torch.Generator().manual_seed(1))
    state = cell.initial_state(2)
    hs = []
    for t in range(6):
        state = cell(xs[:, t], state)
        hs.append(cell.hidden(state))
    assert torch.equal(cell.unroll(xs), torch.stack(hs, 1))  # the step loop itself: bit for bit
    flat = cell.states(xs)
    assert flat.shape == (2, 7, cell.state_size) and torch.equal(flat[:, -1], cell.flatten_state(state))


@pytest.mark.parametrize("kind", ["leaky", "scalar", "multi", "gru", "lstm"])
def test_retention_is_diagonal_of_zeroth_order(kind):
    """With all weights that act on h set to zero, J is diagonal and equals the retention (LSTM: the c-block)."""
    cell = make_cell(kind, 2, 4, dtype=torch.float64, seed=11, bias=True)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            if name.startswith("W") or name == "w_g":
                p.zero_()
    x, state = random_point(cell, 3, 12)
    J = cell.jacobian(x, state)
    n = cell.hidden_size
    block = J[:, n:, n:] if kind == "lstm" else J
    assert torch.allclose(torch.diagonal(block, dim1=-2, dim2=-1), cell.retention(x, state), atol=1e-14)


@pytest.mark.parametrize("kind,expected", [("scalar", 0.05), ("multi", 0.05), ("gru", 0.05), ("lstm", 0.05)])
def test_gate_init_sets_retention(kind, expected):
    cell = make_cell(kind, 2, 4, gate_init=expected, dtype=torch.float64, seed=0)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            if name.startswith(("W", "U", "w_", "u_")):
                p.zero_()
    x = torch.zeros(1, 2)
    r = cell.retention(x, cell.initial_state(1))
    assert torch.allclose(r, torch.full_like(r, 1 - expected), atol=1e-12)


def test_leaky_alpha_is_the_gate():
    cell = make_cell("leaky", 2, 3, alpha=0.3, dtype=torch.float64)
    x, h = random_point(cell, 2, 0)
    assert torch.allclose(cell.retention(x, h), torch.full((2, 3), 0.7))


def test_seed_makes_initialisation_deterministic():
    a, b = make_cell("gru", 3, 4, seed=42), make_cell("gru", 3, 4, seed=42)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: make_cell("tanh", 2, 3), "unknown cell kind 'tanh'; allowed"),
        (lambda: make_cell("leaky", 2, 3, alpha=0.0), r"alpha .* must lie in \(0, 1\]"),
        (lambda: make_cell("leaky", 2, 3, alpha=1.5), r"alpha .* must lie in \(0, 1\]"),
        (lambda: make_cell("multi", 0, 3), "input_size must be a positive integer"),
        (lambda: make_cell("multi", 2, -1), "hidden_size must be a positive integer"),
        (lambda: make_cell("multi", 2, 2.5), "hidden_size must be a positive integer"),
        (lambda: make_cell("scalar", 2, 3, gate_init=1.0), r"gate_init .* must lie in \(0, 1\)"),
        (lambda: make_cell("gru", 2, 3, gate_init=0.1, bias=False), "needs bias=True"),
        (lambda: make_cell("leaky", 2, 3, gate_init=0.1), "bad options for cell kind 'leaky'"),
        (lambda: make_cell("plain", 2, 3, dtype=torch.int64), "dtype must be"),
    ],
)
def test_bad_construction_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("kind", ALL)
def test_bad_shapes_raise(kind):
    cell = make_cell(kind, 3, 4)
    good_state = cell.initial_state(2)
    with pytest.raises(ValueError, match=r"x_t must be a tensor of shape \(batch, 3\)"):
        cell(torch.zeros(2, 5), good_state)
    with pytest.raises(ValueError, match="x_t must be"):
        cell.jacobian(torch.zeros(3), good_state)
    with pytest.raises(ValueError, match="state"):
        cell(torch.zeros(2, 3), torch.zeros(2, 4) if kind == "lstm" else (torch.zeros(2, 4), torch.zeros(2, 4)))
    with pytest.raises(ValueError, match=r"shape \(batch, hidden_size\) = \(2, 4\)"):
        cell(torch.zeros(2, 3), cell.initial_state(3))
    with pytest.raises(ValueError, match=r"xs must be a tensor of shape \(batch, T >= 1, 3\)"):
        cell.unroll(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        cell.initial_state(0)


def test_registered_cell_uses_the_same_path_and_autograd_jacobian():
    """A reader's cell: only a step. make_cell builds it; jacobian falls back to autograd."""

    @register("test_minimal_gate")
    class MinimalGate(Cell):
        def __init__(self, input_size, hidden_size, **options):
            super().__init__(input_size, hidden_size, **options)
            n, m = hidden_size, input_size
            self.W, self.U = self.uniform_parameter(n, n), self.uniform_parameter(n, m)
            self.W_f, self.U_f = self.uniform_parameter(n, n), self.uniform_parameter(n, m)

        def step(self, x_t, h):
            f = torch.sigmoid(self.affine(self.W_f, self.U_f, None, h, x_t))
            return f * h + (1 - f) * torch.tanh(self.affine(self.W, self.U, None, f * h, x_t))

    cell = make_cell("test_minimal_gate", 2, 3, dtype=torch.float64, seed=0)
    x, h = random_point(cell, 2, 1)
    assert cell.jacobian(x, h).shape == (2, 3, 3)
    with pytest.raises(ValueError, match=r"already registered; .* register\('test_minimal_gate', replace=True\)"):
        register("test_minimal_gate")(MinimalGate)
    with pytest.raises(ValueError, match="only subclasses"):
        register("not_a_cell")(int)


def test_register_replace_re_registers_a_readers_kind_but_never_a_built_in_one():
    """Re-running a notebook cell that registers a kind: replace=True swaps the class make_cell builds."""

    class First(Cell):
        def step(self, x_t, h):
            return h

    class Second(First):
        def step(self, x_t, h):
            return 2 * h

    register("test_replaced", replace=True)(First)
    register("test_replaced", replace=True)(Second)
    cell = make_cell("test_replaced", 1, 2)
    assert type(cell) is Second and torch.equal(cell(torch.zeros(1, 1), torch.ones(1, 2)), torch.full((1, 2), 2.0))
    assert not is_builtin("test_replaced") and is_builtin("gru") and is_builtin("const")
    for kind in ("gru", "const"):
        with pytest.raises(ValueError, match=f"cell kind '{kind}' is built in; pick another name"):
            register(kind, replace=True)(Second)


class _Reader(Cell):
    """A reader's cell built from the public blocks: f = sigma(W_f h + U_f x + b_f) is the update gate and
    ``candidate`` carries the LayerNorm; ``plain_tanh=True`` (a class attribute) skips ``candidate``."""

    plain_tanh = False

    def __init__(self, input_size, hidden_size, **options):
        super().__init__(input_size, hidden_size, **options)
        n, m = hidden_size, input_size
        self.W_f, self.U_f, self.b_f = (
            self.uniform_parameter(n, n),
            self.uniform_parameter(n, m),
            self.gate_bias_parameter(n),
        )
        self.W, self.U, self.b = self.uniform_parameter(n, n), self.uniform_parameter(n, m), self.bias_parameter(n)

    def step(self, x_t, h):
        f = torch.sigmoid(self.affine(self.W_f, self.U_f, self.b_f, h, x_t))
        z = self.affine(self.W, self.U, self.b, h, x_t)
        return torch.lerp(h, torch.tanh(z) if self.plain_tanh else self.candidate(z), f)


register("test_reader", replace=True)(_Reader)
register("test_reader_without_ln", replace=True)(type("ReaderWithoutLN", (_Reader,), {"plain_tanh": True}))
register("test_no_gate", replace=True)(type("NoGate", (Cell,), {"step": lambda self, x_t, h: h}))


def test_public_building_blocks_honour_bias_gate_init_and_layer_norm():
    cell = make_cell("test_reader", 2, 3, gate_init=0.2, layer_norm=True, dtype=torch.float64, seed=1)
    assert torch.allclose(torch.sigmoid(cell.b_f), torch.full((3,), 0.2)) and cell.gate_init == 0.2
    x, h = random_point(cell, 2, 3)
    randomise_layer_norm(cell, 3)
    a = torch.nn.functional.layer_norm(
        cell.affine(cell.W, cell.U, cell.b, h, x), (3,), cell.ln_weight, cell.ln_bias, 1e-5
    )
    f = torch.sigmoid(h @ cell.W_f.T + x @ cell.U_f.T + cell.b_f)
    assert torch.allclose(cell(x, h), (1 - f) * h + f * torch.tanh(a), atol=1e-14)
    bare = make_cell("test_reader", 2, 3, bias=False, dtype=torch.float64, seed=1)
    assert bare.b is None and bare.b_f is None and bare.bias_parameter(3) is None
    assert torch.allclose(bare.affine(bare.W, bare.U, None, h, x), h @ bare.W.T + x @ bare.U.T, atol=1e-14)
    lstm = make_cell("lstm", 2, 3, gate_init=0.2, dtype=torch.float64, seed=0)
    assert torch.allclose(torch.sigmoid(lstm.b_f), torch.full((3,), 0.8))  # gate_bias_parameter(retention=True)


@pytest.mark.parametrize(
    "kind,options,match",
    [
        ("test_reader_without_ln", {"layer_norm": True}, "layer_norm=True, but its step does not apply the LayerNorm"),
        ("test_reader", {"gate_init": 0.1, "bias": False}, "gate_init is carried by the gate bias: it needs bias=True"),
        ("test_no_gate", {"gate_init": 0.1}, "gate_init=0.1 was given, but the cell makes no gate bias"),
        ("test_reader", {"layer_norm": True, "alpha": 0.5}, "bad options for cell kind 'test_reader'"),
    ],
)
def test_an_option_a_cell_cannot_honour_is_refused(kind, options, match):
    with pytest.raises(ValueError, match=match):
        make_cell(kind, 2, 3, **options)


def test_missing_features_name_what_a_class_lacks():
    assert missing_features("multi") == {} and missing_features("const") == {}
    assert set(missing_features("gru")) == {"jacobian_terms"}
    assert set(missing_features("test_reader")) == {"retention", "jacobian_terms"}
    assert "cell kind 'test_reader' defines no retention" in missing_features("test_reader")["retention"]


def test_refused_options_give_make_cells_reason_per_option():
    refused = refused_options("test_reader_without_ln", 2, 3, layer_norm=True, gate_init=0.1, bias=False)
    assert set(refused) == {"layer_norm"} and "does not apply the LayerNorm" in refused["layer_norm"]
    assert refused_options("test_no_gate", 2, 3, gate_init=0.1, layer_norm=False) == {
        "gate_init": "bad options for cell kind 'test_no_gate': gate_init=0.1 was given, but the cell makes no gate "
        "bias (Cell.gate_bias_parameter) to carry it"
    }
    assert refused_options("lstm", 2, 3, gate_init=0.1, layer_norm=True) == {}
