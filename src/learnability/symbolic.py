"""SymPy models of the cells of :mod:`learnability.cells`; their Jacobians are derived by differentiation.

``cell_model(kind, n, m)`` writes one step of a cell element-wise for a small hidden size ``n``: the state,
input and every parameter are explicit symbols, named as the torch parameters are. ``model.jacobian`` is
``step.jacobian(state)``, i.e. SymPy's differentiation, never a typed-in formula.

``model.structure()`` gives the same Jacobian in the matrix form the book shows (eq-jac-plain ... eq-jac-lstm
in book/p1_jacobians.md), built from matrix symbols, together with the explicit matrix each symbol stands for;
``model.check_structure()`` proves symbolically that the matrix form equals the derived Jacobian.
``model.evaluate_jacobian(cell, x_t, state)`` lambdifies the derived Jacobian and evaluates it at a torch
cell's parameters, so tests can compare it with ``cell.jacobian`` and with autograd.

Parameters are held by name in a :class:`Parameters` mapping (here and in the SymPy steps a reader writes for
:func:`learnability.extension.cell_report`): a name the cell does not have raises :class:`ParameterError`, which lists
the names it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy as sp
import torch
from torch import Tensor

from .cells import LN_EPS, Cell, resolve_kind


class ParameterError(KeyError, ValueError):
    """A parameter name a cell does not have (a ``KeyError`` of a mapping and a ``ValueError`` of a bad argument);
    the message lists the names it has."""

    def __str__(self) -> str:
        return str(self.args[0])


class Parameters(dict):
    """A cell's parameters as SymPy matrices, by the torch parameter names; a missing name raises
    :class:`ParameterError` listing the names available."""

    def __missing__(self, name: str) -> sp.Matrix:
        raise ParameterError(f"the cell has no parameter {name!r}; its parameters: {', '.join(self) or 'none'}")


class sigmoid(sp.Function):  # noqa: N801  (reads as the math function)
    """The logistic function sigma(z) = 1 / (1 + exp(-z)), whose derivative SymPy writes as sigma (1 - sigma)."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, z: sp.Expr, **kwargs) -> sp.Expr:
        return 1 / (1 + sp.exp(-z))

    def _latex(self, printer) -> str:
        return r"\sigma\left(" + printer._print(self.args[0]) + r"\right)"


def _vector(name: str, size: int) -> sp.Matrix:
    return sp.Matrix(size, 1, lambda i, _: sp.Symbol(f"{name}_{i}", real=True))


def _matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))


def _diag(v: sp.Matrix) -> sp.Matrix:
    return sp.diag(*list(v))


def _tanh(v: sp.Matrix) -> sp.Matrix:
    return v.applyfunc(sp.tanh)


def _sig(v: sp.Matrix) -> sp.Matrix:
    return v.applyfunc(sigmoid)


def _hadamard(*vs: sp.Matrix) -> sp.Matrix:
    out = vs[0]
    for v in vs[1:]:
        out = out.multiply_elementwise(v)
    return out


@dataclass
class SymbolicCell:
    """One step of a cell, written with explicit symbols (see the module docstring)."""

    kind: str
    hidden_size: int
    input_size: int
    layer_norm: bool
    bias: bool
    state: sp.Matrix
    x: sp.Matrix
    params: Parameters
    step_in_zeta: sp.Matrix  # the step with the candidate pre-activation z written as symbols zeta
    pieces: dict[str, sp.Matrix] = field(default_factory=dict)  # named sub-expressions (a, g, d, ...)

    @cached_property
    def jacobian_in_zeta(self) -> sp.Matrix:
        """d step / d state by the chain rule through the candidate pre-activation z(state), written as symbols zeta:

        J = dS/d state + dS/d zeta . dz/d state, each factor by SymPy's differentiation (still a function of zeta).
        """
        zeta, z, S = self.pieces["zeta"], self.pieces["z"], self.step_in_zeta
        return S.jacobian(self.state) + S.jacobian(zeta) * z.jacobian(self.state)

    @cached_property
    def jacobian(self) -> sp.Matrix:
        """d step / d state, derived by SymPy: (d, d) with d = n (2n for the LSTM).

        It is :attr:`jacobian_in_zeta` with zeta -> z(state), i.e. the derivative of :attr:`step` (a test checks
        that the two agree). Going through zeta avoids differentiating LayerNorm's square root of an expression
        full of sigmoids, which takes SymPy about a minute for the GRU.
        """
        return self.jacobian_in_zeta.xreplace(self._zeta_to_z)

    @cached_property
    def _zeta_to_z(self) -> dict:
        return dict(zip(self.pieces["zeta"], self.pieces["z"]))

    @cached_property
    def step(self) -> sp.Matrix:
        """One step as an explicit expression of state, input and parameters."""
        return self.step_in_zeta.xreplace(self._zeta_to_z)

    @cached_property
    def symbols(self) -> list[sp.Symbol]:
        """All symbols in a fixed order: input, state, then the parameters in ``params`` order."""
        out = list(self.x) + list(self.state)
        for value in self.params.values():
            out += list(value)
        return out

    @cached_property
    def _jacobian_fn(self):
        return sp.lambdify(self.symbols, self.jacobian, modules=[{"sigmoid": _expit}, "numpy"])

    def parameter_values(self, cell: Cell) -> list[float]:
        """The torch cell's parameter values, flattened in the order of :attr:`symbols` (after x and state)."""
        if (
            resolve_kind(cell.kind) != self.kind
            or cell.hidden_size != self.hidden_size
            or cell.input_size != self.input_size
            or cell.layer_norm != self.layer_norm
            or cell.use_bias != self.bias
        ):
            raise ValueError(
                f"the torch cell ({cell.kind}, n={cell.hidden_size}, m={cell.input_size}, "
                f"layer_norm={cell.layer_norm}, bias={cell.use_bias}) does not match this model "
                f"({self.kind}, n={self.hidden_size}, m={self.input_size}, "
                f"layer_norm={self.layer_norm}, bias={self.bias})"
            )
        values: list[float] = []
        for name, sym in self.params.items():
            value = cell.alpha if name == "alpha" else getattr(cell, name)
            flat = torch.as_tensor(value, dtype=torch.float64).detach().reshape(-1).tolist()
            if len(flat) != len(sym):
                raise ValueError(f"parameter {name} has {len(flat)} entries, the model expects {len(sym)}")
            values += flat
        return values

    def evaluate_jacobian(self, cell: Cell, x_t: Tensor, state: Tensor | tuple[Tensor, Tensor]) -> np.ndarray:
        """The derived Jacobian at the cell's parameters and each batch element: (B, d, d) float64 array."""
        params = self.parameter_values(cell)
        xs = x_t.detach().double().numpy()
        ss = cell.flatten_state(state).detach().double().numpy()
        if xs.shape != (ss.shape[0], self.input_size) or ss.shape[1] != len(self.state):
            raise ValueError(
                f"x_t must be (B, {self.input_size}) and the flat state (B, {len(self.state)}); "
                f"got {xs.shape} and {ss.shape}"
            )
        return np.stack([np.asarray(self._jacobian_fn(*x, *s, *params), dtype=float) for x, s in zip(xs, ss)])

    # ----- the matrix form ----------------------------------------------------------------------------
    def structure(self) -> tuple[sp.Expr, dict]:
        """(matrix expression of J in the book's notation, {matrix symbol: explicit matrix})."""
        return _STRUCTURES[self.kind](self)

    def structure_latex(self) -> str:
        """LaTeX of the matrix form, ``J_t = ...``."""
        expr, _ = self.structure()
        return r"J_t = " + sp.latex(expr)

    def check_structure(self) -> bool:
        """Exact proof that the matrix form, each symbol replaced by its explicit matrix, equals the derived Jacobian.

        Both sides are compared as functions of zeta (see :attr:`jacobian_in_zeta`), where the identity holds
        for every zeta; with LayerNorm, var + eps is written S^2 (S > 0) so that its powers cancel by expansion.
        """
        expr, mapping = self.structure()
        diff = sp.Matrix(expr.xreplace(mapping).doit()) - self.jacobian_in_zeta
        if self.layer_norm:
            diff = diff.xreplace({self.pieces["var_eps"][0]: sp.Symbol("S", positive=True) ** 2})
        return all(_is_zero(e) for e in diff)


def _is_zero(expr: sp.Expr) -> bool:
    """Exact zero test: expansion first (cheap, enough for these polynomials in tanh and sigma), then simplify."""
    expr = sp.expand(expr)
    return expr == 0 or sp.simplify(expr) == 0


def layernorm_jacobian(n: int = 3) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """(z, LN(z), d LN / d z derived by SymPy) for LN(z) = gamma * (z - mean) / sqrt(var + eps) + beta."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (a LayerNorm over one unit is constant); got {n!r}")
    z, gamma, beta = _vector("z", n), _vector("gamma", n), _vector("beta", n)
    mean = sum(z) / n
    s = sp.sqrt(sum((zi - mean) ** 2 for zi in z) / n + sp.Symbol("epsilon", positive=True))
    ln = _hadamard((z - sp.ones(n, 1) * mean) / s, gamma) + beta
    return z, ln, ln.jacobian(z)


def check_layernorm_jacobian(n: int = 3) -> bool:
    """Exact proof of eq-jac-layernorm: d LN/dz = diag(gamma) (I - 1 1^T / n - zhat zhat^T / n) / s."""
    z, ln, derived = layernorm_jacobian(n)
    mean = sum(z) / n
    var_eps = sum((zi - mean) ** 2 for zi in z) / n + sp.Symbol("epsilon", positive=True)
    s = sp.sqrt(var_eps)
    zhat = (z - sp.ones(n, 1) * mean) / s
    gamma = _vector("gamma", n)
    claimed = _diag(gamma) * (sp.eye(n) - sp.ones(n, n) / n - zhat * zhat.T / n) / s
    S = sp.Symbol("S", positive=True)
    return all(_is_zero(e) for e in (claimed - derived).xreplace({var_eps: S**2}))


def _expit(z):
    return 1.0 / (1.0 + np.exp(-z))


def cell_model(
    kind: str, hidden_size: int = 2, input_size: int = 1, *, layer_norm: bool = False, bias: bool = True
) -> SymbolicCell:
    """SymPy model of one step of ``kind`` (see :func:`learnability.cells.make_cell`) with symbolic parameters.

    Small sizes keep the expressions readable: the derivation is the same for every n.
    """
    kind = resolve_kind(kind)
    if kind not in _BUILDERS:
        raise ValueError(f"no symbolic model for cell kind {kind!r}; available: {sorted(_BUILDERS)}")
    for name, value in (("hidden_size", hidden_size), ("input_size", input_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if layer_norm and hidden_size < 2:
        raise ValueError("layer_norm needs hidden_size >= 2 (a LayerNorm over one unit is constant)")
    n, m = hidden_size, input_size
    x, params, pieces = _vector("x", m), Parameters(), {}

    def affine(prefix: str, h: sp.Matrix, rows: int = n, bias_name: str | None = None) -> sp.Matrix:
        W, U = _matrix(f"W{prefix}", rows, n), _matrix(f"U{prefix}", rows, m)
        params[f"W{prefix}"], params[f"U{prefix}"] = W, U
        out = W * h + U * x
        if bias:
            b = _vector(bias_name or f"b{prefix}", rows)
            params[bias_name or f"b{prefix}"] = b
            out = out + b
        return out

    def candidate(z_expr: sp.Matrix) -> sp.Matrix:
        pieces["z"] = z_expr
        pieces["zeta"] = z = _vector("zeta", n)
        if not layer_norm:
            pieces["a"] = z
            return _tanh(z)
        gamma, beta = _vector("ln_weight", n), _vector("ln_bias", n)
        params["ln_weight"], params["ln_bias"] = gamma, beta
        mean = sum(z) / n
        var_eps = sum((zi - mean) ** 2 for zi in z) / n + sp.Float(LN_EPS)
        s = sp.sqrt(var_eps)
        pieces["var_eps"] = sp.Matrix([var_eps])
        zhat = (z - sp.ones(n, 1) * mean) / s
        pieces["zhat"], pieces["s"] = zhat, sp.Matrix([s])
        pieces["a"] = _hadamard(zhat, gamma) + beta
        return _tanh(pieces["a"])

    build = _BUILDERS[kind]
    state, step = build(n, x, params, pieces, affine, candidate, bias)
    return SymbolicCell(kind, n, m, layer_norm, bias, state, x, params, step, pieces)


# ----- the cells, element-wise (each mirrors the torch step in cells.py) ---------------------------------
def _build_family(gate_kind: str):
    def build(n, x, params, pieces, affine, candidate, bias):
        h = _vector("h", n)
        phi = candidate(affine("", h))
        if gate_kind == "plain":
            g = sp.ones(n, 1)
        elif gate_kind == "leaky":
            alpha = sp.Symbol("alpha", positive=True)
            params["alpha"] = sp.Matrix([alpha])
            g = sp.ones(n, 1) * alpha
        elif gate_kind == "scalar":
            w_g, u_g = _vector("w_g", n), _vector("u_g", x.rows)
            params["w_g"], params["u_g"] = w_g, u_g
            pre = (w_g.T * h + u_g.T * x)[0]
            if bias:
                params["b_g"] = sp.Matrix([sp.Symbol("b_g_0", real=True)])
                pre += params["b_g"][0]
            g = sp.ones(n, 1) * sigmoid(pre)
        else:  # multi
            g = _sig(affine("_g", h, bias_name="b_g"))
        pieces.update(h=h, phi=phi, g=g, d=phi - h)
        return h, _hadamard(sp.ones(n, 1) - g, h) + _hadamard(g, phi)

    return build


def _build_gru(n, x, params, pieces, affine, candidate, bias):
    h = _vector("h", n)
    z = _sig(affine("_z", h))
    r = _sig(affine("_r", h))
    rh = _hadamard(r, h)
    # the candidate's recurrent weights act on r * h: build W_h (r * h) + U_h x + b_h by hand
    W, U = _matrix("W_h", n, n), _matrix("U_h", n, x.rows)
    params["W_h"], params["U_h"] = W, U
    pre = W * rh + U * x
    if bias:
        params["b_h"] = _vector("b_h", n)
        pre = pre + params["b_h"]
    cand = candidate(pre)
    pieces.update(h=h, update=z, r=r, cand=cand)
    return h, _hadamard(sp.ones(n, 1) - z, h) + _hadamard(z, cand)


def _build_lstm(n, x, params, pieces, affine, candidate, bias):
    h, c = _vector("h", n), _vector("c", n)
    i, f, o = _sig(affine("_i", h)), _sig(affine("_f", h)), _sig(affine("_o", h))
    cand = candidate(affine("_c", h))
    c_new = _hadamard(f, c) + _hadamard(i, cand)
    h_new = _hadamard(o, _tanh(c_new))
    pieces.update(h=h, c=c, i=i, f=f, o=o, cand=cand, c_new=c_new)
    return sp.Matrix.vstack(h, c), sp.Matrix.vstack(h_new, c_new)


_BUILDERS = {
    "plain": _build_family("plain"),
    "leaky": _build_family("leaky"),
    "scalar": _build_family("scalar"),
    "multi": _build_family("multi"),
    "gru": _build_gru,
    "lstm": _build_lstm,
}


# ----- the matrix forms the book shows --------------------------------------------------------------------
def _M(name: str, rows: int, cols: int | None = None) -> sp.MatrixSymbol:
    return sp.MatrixSymbol(name, rows, rows if cols is None else cols)


def _candidate_factor(model: SymbolicCell, mapping: dict) -> sp.MatrixExpr:
    """D_t (L_t): diag(phi'(a_t)), times the LayerNorm Jacobian L_t (eq-jac-layernorm) when present."""
    n, p = model.hidden_size, model.pieces
    D = _M("D_t", n)
    mapping[D] = _diag(p["a"].applyfunc(lambda a: 1 - sp.tanh(a) ** 2))
    if not model.layer_norm:
        return D
    L = _M("L_t", n)
    zhat, s = p["zhat"], p["s"][0]
    mapping[L] = _diag(model.params["ln_weight"]) * (sp.eye(n) - sp.ones(n, n) / n - zhat * zhat.T / n) / s
    return D * L


def _structure_family(model: SymbolicCell) -> tuple[sp.Expr, dict]:
    n, p, kind = model.hidden_size, model.pieces, model.kind
    mapping: dict = {}
    W = _M("W", n)
    mapping[W] = model.params["W"]
    DL = _candidate_factor(model, mapping)
    if kind == "plain":
        return DL * W, mapping
    if kind in ("leaky", "scalar"):
        g = sp.Symbol("alpha" if kind == "leaky" else "g_t", positive=True)
        value = model.params["alpha"][0] if kind == "leaky" else p["g"][0]
        I = sp.Identity(n)
        expr = (1 - g) * I + g * DL * W
        if kind == "scalar":
            d, w_g = _M("d_t", n, 1), _M("w_g", n, 1)
            mapping[d], mapping[w_g] = p["d"], model.params["w_g"]
            expr = expr + g * (1 - g) * d * w_g.T
        return expr, {**mapping, g: value}
    # multi
    R, G = _M(r"\operatorname{diag}(1 - g_t)", n), _M(r"\operatorname{diag}(g_t)", n)
    S, W_g = _M(r"\operatorname{diag}(d_t \odot g_t \odot (1 - g_t))", n), _M("W_g", n)
    g, d = p["g"], p["d"]
    mapping.update(
        {
            R: _diag(sp.ones(n, 1) - g),
            G: _diag(g),
            W_g: model.params["W_g"],
            S: _diag(_hadamard(d, g, sp.ones(n, 1) - g)),
        }
    )
    return R + G * DL * W + S * W_g, mapping


def _structure_gru(model: SymbolicCell) -> tuple[sp.Expr, dict]:
    n, p = model.hidden_size, model.pieces
    z, r, h, cand = p["update"], p["r"], p["h"], p["cand"]
    one = sp.ones(n, 1)
    mapping: dict = {}
    DL = _candidate_factor(model, mapping)
    R, Z = _M(r"\operatorname{diag}(1 - z_t)", n), _M(r"\operatorname{diag}(z_t)", n)
    Sz = _M(r"\operatorname{diag}((\tilde h_t - h_{t-1}) \odot z_t \odot (1 - z_t))", n)
    Rr, Sr = _M(r"\operatorname{diag}(r_t)", n), _M(r"\operatorname{diag}(h_{t-1} \odot r_t \odot (1 - r_t))", n)
    W_z, W_h, W_r = _M("W_z", n), _M("W_h", n), _M("W_r", n)
    mapping.update(
        {
            R: _diag(one - z),
            Z: _diag(z),
            Sz: _diag(_hadamard(cand - h, z, one - z)),
            Rr: _diag(r),
            Sr: _diag(_hadamard(h, r, one - r)),
            W_z: model.params["W_z"],
            W_h: model.params["W_h"],
            W_r: model.params["W_r"],
        }
    )
    return R + Sz * W_z + Z * DL * W_h * (Rr + Sr * W_r), mapping


def _structure_lstm(model: SymbolicCell) -> tuple[sp.Expr, dict]:
    """Block form: J = [[A, B], [C, F]] with C = dc'/dh, F = diag(f), B = diag(o tanh'(c') f), A = ... (eq-jac-lstm)."""
    n, p = model.hidden_size, model.pieces
    i, f, o, c, cand, c_new = (p[k] for k in ("i", "f", "o", "c", "cand", "c_new"))
    one = sp.ones(n, 1)
    mapping: dict = {}
    DL = _candidate_factor(model, mapping)
    tc = _tanh(c_new)
    dtc = one - _hadamard(tc, tc)
    Sf = _M(r"\operatorname{diag}(c_{t-1} \odot f_t \odot (1 - f_t))", n)
    Si = _M(r"\operatorname{diag}(\tilde c_t \odot i_t \odot (1 - i_t))", n)
    I_ = _M(r"\operatorname{diag}(i_t)", n)
    So = _M(r"\operatorname{diag}(\tanh(c_t) \odot o_t \odot (1 - o_t))", n)
    E = _M(r"\operatorname{diag}(o_t \odot \tanh'(c_t))", n)
    F = _M(r"\operatorname{diag}(f_t)", n)
    W_f, W_i, W_c, W_o = (_M(f"W_{k}", n) for k in "fico")
    mapping.update(
        {
            Sf: _diag(_hadamard(c, f, one - f)),
            Si: _diag(_hadamard(cand, i, one - i)),
            I_: _diag(i),
            So: _diag(_hadamard(tc, o, one - o)),
            E: _diag(_hadamard(o, dtc)),
            F: _diag(f),
            W_f: model.params["W_f"],
            W_i: model.params["W_i"],
            W_c: model.params["W_c"],
            W_o: model.params["W_o"],
        }
    )
    C = Sf * W_f + Si * W_i + I_ * DL * W_c
    return sp.BlockMatrix([[So * W_o + E * C, E * F], [C, F]]), mapping


_STRUCTURES = {
    "plain": _structure_family,
    "leaky": _structure_family,
    "scalar": _structure_family,
    "multi": _structure_family,
    "gru": _structure_gru,
    "lstm": _structure_lstm,
}


def jacobian_errors(
    kinds: tuple[str, ...] = ("plain", "leaky", "scalar", "multi", "gru", "lstm"),
    *,
    layer_norm: bool = False,
    batch: int = 4,
    seed: int = 0,
) -> list[dict]:
    """Max abs differences between the SymPy-derived, the analytic and the autograd Jacobian, per cell kind.

    Float64 cells of hidden size 3 and input size 2, seeded weights, a random state and input (scale 1).
    Returns one row per kind: ``{"kind", "sympy_vs_cell", "cell_vs_autograd", "sympy_vs_autograd"}``.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
        raise ValueError(f"batch must be a positive integer; got {batch!r}")
    from .cells import make_cell

    rows = []
    gen = torch.Generator().manual_seed(seed)
    for kind in kinds:
        model = cell_model(kind, 3, 2, layer_norm=layer_norm)
        cell = make_cell(kind, 2, 3, dtype=torch.float64, layer_norm=layer_norm, seed=seed)
        if layer_norm:
            with torch.no_grad():
                cell.ln_weight.copy_(0.5 + torch.rand(3, generator=gen, dtype=torch.float64))
                cell.ln_bias.copy_(0.3 * torch.randn(3, generator=gen, dtype=torch.float64))
        x = torch.randn(batch, 2, generator=gen, dtype=torch.float64)
        state = cell.unflatten_state(torch.randn(batch, cell.state_size, generator=gen, dtype=torch.float64))
        j_sym = torch.from_numpy(model.evaluate_jacobian(cell, x, state))
        j_cell, j_auto = cell.jacobian(x, state).detach(), cell.jacobian_autograd(x, state).detach()
        rows.append(
            {
                "kind": kind,
                "sympy_vs_cell": float((j_sym - j_cell).abs().max()),
                "cell_vs_autograd": float((j_cell - j_auto).abs().max()),
                "sympy_vs_autograd": float((j_sym - j_auto).abs().max()),
            }
        )
    return rows
