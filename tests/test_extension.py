"""extension: decay fits on exact families, Jacobian checks that catch a wrong Jacobian, and the report for a
cell registered here (with and without a retention), built-ins through the same path."""

import numpy as np
import pytest
import sympy as sp
import torch

from learnability import cells, extension


@pytest.mark.parametrize(
    "regime,f,rate",
    [
        ("exponential", lambda l: 2.0 * np.exp(-l / 7.0), 7.0),
        ("power law", lambda l: 3.0 * l**-1.3, 1.3),
        ("logarithmic", lambda l: 0.5 * np.log(l) ** -2.0, 2.0),
    ],
)
def test_fit_decay_recovers_each_family(regime, f, rate):
    lags = np.arange(2, 80)  # lag 1 is left out by the fit anyway (ln 1 = 0)
    fit = extension.fit_decay(lags, f(lags.astype(float)))
    assert fit["regime"] == regime and fit["rate"] == pytest.approx(rate, rel=1e-9)


@cells.register("ext_test_mgu")
class MinimalGatedUnit(cells.Cell):
    def __init__(self, input_size, hidden_size, **options):
        super().__init__(input_size, hidden_size, **options)
        n, m = hidden_size, input_size
        self.W_f, self.U_f = self.uniform_parameter(n, n), self.uniform_parameter(n, m)
        self.b_f = self.bias_parameter(n, value=-2.0)
        self.W, self.U, self.b = self.uniform_parameter(n, n), self.uniform_parameter(n, m), self.bias_parameter(n)

    def gate(self, x, h):
        return torch.sigmoid(self.affine(self.W_f, self.U_f, self.b_f, h, x))

    def step(self, x, h):
        f = self.gate(x, h)
        return (1 - f) * h + f * torch.tanh(self.affine(self.W, self.U, self.b, f * h, x))

    def retention(self, x, h):
        return 1 - self.gate(x, h)


def mgu_sympy(h, x, P):
    f = (P["W_f"] * h + P["U_f"] * x + P["b_f"]).applyfunc(lambda e: 1 / (1 + sp.exp(-e)))
    cand = (P["W"] * f.multiply_elementwise(h) + P["U"] * x + P["b"]).applyfunc(sp.tanh)
    return h + f.multiply_elementwise(cand - h)


@cells.register("ext_test_no_retention")
class NoRetention(cells.Cell):
    def __init__(self, input_size, hidden_size, **options):
        super().__init__(input_size, hidden_size, **options)
        self.W, self.U = (
            self.uniform_parameter(hidden_size, hidden_size),
            self.uniform_parameter(hidden_size, input_size),
        )

    def step(self, x, h):
        return 0.5 * h + 0.5 * torch.tanh(self.affine(self.W, self.U, None, h, x))


def test_report_for_a_registered_cell_with_sympy_form():
    rep = extension.cell_report("ext_test_mgu", hidden_size=6, T=30, sympy_step=mgu_sympy, sympy_size=3)
    assert rep["checks"]["fd"] < 1e-8 and rep["checks"]["sympy"] < 1e-12 and "analytic" not in rep["checks"]
    assert set(rep["envelopes"]) == {"order 0", "order 1", "exact"}
    assert rep["envelopes"]["exact"][0] == 1.0 and np.all(np.diff(rep["windows"]) >= 0)


def test_report_without_retention_keeps_the_exact_envelope():
    rep = extension.cell_report("ext_test_no_retention", hidden_size=5, T=20)
    assert set(rep["envelopes"]) == {"exact"}


def test_builtin_cells_take_the_same_path_and_a_wrong_sympy_form_is_caught():
    rep = extension.cell_report("multi", hidden_size=6, T=20, cell_options={"gate_init": 0.1})
    assert rep["checks"]["analytic"] < 1e-12 and rep["checks"]["fd"] < 1e-8
    wrong = lambda h, x, P: mgu_sympy(h, x, P) * 1.01  # noqa: E731
    cell = cells.make_cell("ext_test_mgu", 2, 3, dtype=torch.float64, seed=0)
    xs = torch.randn(2, 8, 2, dtype=torch.float64)
    assert extension.jacobian_checks(cell, xs, wrong)["sympy"] > 1e-4


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: extension.fit_decay([1, 2], [1.0, 0.5]), "equal length >= 3"),
        (lambda: extension.jacobian_checks(cells.make_cell("multi", 2, 3), torch.zeros(1, 4, 2)), "float64"),
        (lambda: extension.cell_report("no_such_cell"), "unknown cell kind"),
        (
            lambda: extension.jacobian_checks(
                cells.make_cell("multi", 2, 3, dtype=torch.float64),
                torch.zeros(1, 4, 2, dtype=torch.float64),
                steps=(9,),
            ),
            r"steps \(where the Jacobians are compared\) must lie in \[0, T\) for xs of T = 4 steps; got 9",
        ),
        (
            lambda: extension.cell_report("multi", T=4),
            r"T \(the sequence length\) must be an integer >= 8: .*; got T=4",
        ),
        (lambda: extension.cell_report("multi", T=20, tol=0.0), "tol .* must be a positive number"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@cells.register("ext_test_wrong_jacobian", replace=True)
class WrongJacobian(MinimalGatedUnit):
    """The MGU with a hand-written Jacobian that forgets the gate's terms: diag(1 - f) + diag(f phi') W diag(f)."""

    def jacobian(self, x, h):
        f = self.gate(x, h)
        phi = torch.tanh(self.affine(self.W, self.U, self.b, f * h, x))
        return torch.diag_embed(1 - f) + (f * (1 - phi**2)).unsqueeze(-1) * self.W * f.unsqueeze(-2)


def test_a_failed_jacobian_check_raises_with_the_gap_and_tol_decides():
    with pytest.raises(
        ValueError,
        match=r"Jacobian check failed for cell kind 'ext_test_wrong_jacobian': the "
        r"cell's jacobian vs autograd: gap \d\.\d\de-\d\d \(tol = 1e-06\)",
    ):
        extension.cell_report("ext_test_wrong_jacobian", hidden_size=6, T=20)
    rep = extension.cell_report("ext_test_wrong_jacobian", hidden_size=6, T=20, tol=1.0)
    assert 1e-3 < rep["checks"]["analytic"] < 1.0 and rep["checks"]["fd"] < 1e-8
    wrong = lambda h, x, P: mgu_sympy(h, x, P) * 1.01  # noqa: E731
    with pytest.raises(ValueError, match="the SymPy step's Jacobian vs autograd: gap"):
        extension.cell_report("ext_test_mgu", hidden_size=6, T=20, sympy_step=wrong, sympy_size=2)


def test_a_misspelled_parameter_in_a_sympy_step_names_the_parameters():
    misspelled = lambda h, x, P: P["W_g"] * h  # noqa: E731
    cell = cells.make_cell("ext_test_mgu", 2, 2, dtype=torch.float64, seed=0)
    with pytest.raises(ValueError, match=r"the cell has no parameter 'W_g'; its parameters: W_f, U_f, b_f, W, U, b$"):
        extension.sympy_jacobian(cell, misspelled)
    with pytest.raises(KeyError):  # still a mapping's error, for code that catches KeyError
        extension.sympy_jacobian(cell, misspelled)


def test_registered_jacobian_checks_cover_the_readers_cells_and_say_what_they_skip():
    rows, skipped = extension.registered_jacobian_checks()
    by_kind = {row["kind"]: row for row in rows}
    assert not any(cells.is_builtin(kind) for kind in by_kind)
    assert by_kind["ext_test_mgu"]["fd"] < 1e-8 and by_kind["ext_test_mgu"]["analytic"] is None
    assert by_kind["ext_test_wrong_jacobian"]["analytic"] > 1e-3
    assert skipped["ext_test_mgu"].startswith("no analytic check") and "ext_test_wrong_jacobian" not in skipped
    rows, skipped = extension.registered_jacobian_checks(layer_norm=True)  # these cells apply no LayerNorm
    assert "ext_test_mgu" not in {row["kind"] for row in rows}
    assert "layer_norm=True, but its step does not apply the LayerNorm" in skipped["ext_test_mgu"]


def test_compare_cells_puts_a_cell_beside_the_others_in_one_call():
    settings = dict(hidden_size=6, T=24, batch=4, seed=0, Ns=(1e2, 1e4, 1e6))
    comparison = extension.compare_cells(
        "scalar",
        cell_options=dict(gate_init=0.2),
        others={"leaky": dict(alpha=0.2), "gru": dict(gate_init=0.2)},
        table_Ns=(1e2, 1e6),
        **settings,
    )
    assert list(comparison.reports) == ["scalar", "leaky", "gru"]
    alone = extension.cell_report("leaky", cell_options=dict(alpha=0.2), **settings)
    assert np.array_equal(comparison.reports["leaky"]["windows"], alone["windows"])
    row = comparison.rows[1]
    assert row["cell"] == "leaky" and row["regime"] == alone["fit"]["regime"]
    assert row["H at N=1e2"] == alone["windows"][0] and row["H at N=1e6"] == alone["windows"][2]
    fig = comparison.figure()
    assert len(fig.axes) == 2 and len(fig.axes[1].get_lines()) == 3
    with pytest.raises(ValueError, match="not among the sample sizes"):
        extension.compare_cells("scalar", others={"leaky": dict(alpha=0.2)}, table_Ns=(1e3,), **settings)
    with pytest.raises(ValueError, match="also among the others"):
        extension.compare_cells("leaky", **settings)
