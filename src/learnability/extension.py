"""Everything the book says about a cell, for any registered cell kind (book/extending.md).

A reader registers a new cell with :func:`learnability.cells.register` (a ``step`` and a ``retention``; a
``jacobian`` and a SymPy form are optional; the cell contract is in :mod:`learnability.cells`) and calls
:func:`cell_report`. Built-in cells go through exactly the same path. The report holds:

* Jacobian checks: autograd against central finite differences (always), the cell's own ``jacobian`` against
  autograd (when the cell overrides it), a SymPy Jacobian against autograd (when a SymPy step is given); a gap above
  the tolerance raises ``ValueError``;
* effective learning rates at orders 0 and 1 and the exact diagonal transport (eq-mu), and their envelopes
  (eq-envelope);
* the decay regime of the exact envelope, by least squares in log f (:func:`fit_decay`: exponential, power law or
  logarithmic, the three regimes of eq-window-exp, eq-window-power, eq-window-log);
* the learnability window H_N over a grid of N (eq-window).

:func:`compare_cells` puts a reader's cell beside the built-in ones in one call: the reports of all, a table (regime,
rate, H_N at a few N, the Jacobian check) and a figure of envelopes and windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
import torch
from torch import Tensor

from .cells import Cell, is_builtin, kinds, make_cell
from .effective_lr import effective_learning_rates, envelope, transport_diagonal
from .symbolic import Parameters
from .window import learnability_window

SympyStep = Callable[[sp.Matrix, sp.Matrix, Parameters], sp.Matrix]
CHECK_STEPS = (0, 5)  # the Jacobians are compared at the states reached after these steps
TOL = 1e-6  # the largest Jacobian gap a check accepts (float64; finite differences reach ~1e-9)
CHECKS = {
    "fd": "autograd vs central finite differences",
    "analytic": "the cell's jacobian vs autograd",
    "sympy": "the SymPy step's Jacobian vs autograd",
}


def finite_difference_jacobian(cell: Cell, x_t: Tensor, state: Tensor, eps: float = 1e-6) -> Tensor:
    """Central differences of the flat state map, (B, d, d); float64 cells give ~1e-10 accuracy."""
    flat = cell.flatten_state(state)
    cols = []
    with torch.no_grad():
        for j in range(flat.shape[1]):
            step = torch.zeros_like(flat)
            step[:, j] = eps
            plus = cell.flatten_state(cell.step(x_t, cell.unflatten_state(flat + step)))
            minus = cell.flatten_state(cell.step(x_t, cell.unflatten_state(flat - step)))
            cols.append((plus - minus) / (2 * eps))
    return torch.stack(cols, -1)


def sympy_jacobian(cell: Cell, sympy_step: SympyStep) -> Callable[[Tensor, Tensor], Tensor]:
    """The Jacobian of a reader's SymPy step as a function of (x_t, state), evaluated like the torch cell's:
    ``sympy_step(h, x, params)`` gets symbol vectors h (d) and x (input_size) and the cell's parameters as SymPy
    matrices of their current values (a :class:`learnability.symbolic.Parameters` mapping by parameter name: a name
    the cell lacks raises a ``ValueError`` listing its names), and returns the new flat state; SymPy differentiates it
    in h once, and the returned function evaluates that Jacobian for a batch, (B, d, d) float64."""
    d, m = cell.state_size, cell.input_size
    h = sp.Matrix(sp.symbols(f"h0:{d}"))
    x = sp.Matrix(sp.symbols(f"x0:{m}"))
    params = Parameters(
        {name: sp.Matrix(p.detach().double().numpy().reshape(p.shape[0], -1)) for name, p in cell.named_parameters()}
    )
    new = sp.Matrix(sympy_step(h, x, params))
    if new.shape != (d, 1):
        raise ValueError(f"the SymPy step must return a column of length d = {d}; got shape {new.shape}")
    jac = sp.lambdify((list(h), list(x)), new.jacobian(h), "numpy", cse=True)

    def evaluate(x_t: Tensor, state: Tensor) -> Tensor:
        flat = cell.flatten_state(state).detach().double().numpy()
        xs = x_t.detach().double().numpy()
        return torch.as_tensor(np.stack([np.asarray(jac(list(a), list(b)), dtype=float) for a, b in zip(flat, xs)]))

    return evaluate


def jacobian_checks(
    cell: Cell, xs: Tensor, sympy_step: SympyStep | None = None, steps: Sequence[int] = CHECK_STEPS
) -> dict[str, float]:
    """Largest entrywise gaps between Jacobians at the states reached after ``steps`` steps of xs (B, T, m):
    ``fd`` autograd vs finite differences; ``analytic`` the cell's jacobian vs autograd (only if overridden);
    ``sympy`` the SymPy Jacobian vs autograd (only if ``sympy_step`` is given)."""
    if cell.dtype != torch.float64:
        raise ValueError("Jacobian checks need a float64 cell (make_cell(..., dtype=torch.float64))")
    flat = cell.states(xs)
    out: dict[str, float] = {"fd": 0.0}
    overridden = type(cell).jacobian is not Cell.jacobian
    if overridden:
        out["analytic"] = 0.0
    symbolic = None if sympy_step is None else sympy_jacobian(cell, sympy_step)
    if symbolic is not None:
        out["sympy"] = 0.0
    for t in steps:
        if not 0 <= t < xs.shape[1]:
            raise ValueError(
                f"steps (where the Jacobians are compared) must lie in [0, T) for xs of T = {xs.shape[1]} "
                f"steps; got {t}"
            )
        state, x_t = cell.unflatten_state(flat[:, t]), xs[:, t]
        auto = cell.jacobian_autograd(x_t, state).detach()
        out["fd"] = max(out["fd"], float((finite_difference_jacobian(cell, x_t, state) - auto).abs().max()))
        if overridden:
            out["analytic"] = max(out["analytic"], float((cell.jacobian(x_t, state).detach() - auto).abs().max()))
        if symbolic is not None:
            out["sympy"] = max(out["sympy"], float((symbolic(x_t, state) - auto).abs().max()))
    return out


def registered_jacobian_checks(*, layer_norm: bool = False, seed: int = 0) -> tuple[list[dict], dict[str, str]]:
    """:func:`jacobian_checks` for every cell kind registered outside :mod:`learnability.cells` (the built-in kinds
    have SymPy models, :func:`learnability.symbolic.jacobian_errors`), as ``learnability jacobians`` prints them: a
    float64 cell (hidden size 3, input size 2, ``seed``, ``layer_norm``) driven by Gaussian inputs for
    ``max(CHECK_STEPS) + 1`` steps.

    Returns (rows, skipped): one row ``{"kind", "fd", "analytic"}`` per kind that could be built (``"analytic"`` is
    None for a class without its own ``jacobian``), and {kind: reason} for each kind or check not run.
    """
    rows, skipped = [], {}
    gen = torch.Generator().manual_seed(seed)
    xs = torch.randn(4, max(CHECK_STEPS) + 1, 2, generator=gen, dtype=torch.float64)
    for kind in (k for k in kinds() if not is_builtin(k)):
        try:
            cell = make_cell(kind, 2, 3, dtype=torch.float64, layer_norm=layer_norm, seed=seed)
        except ValueError as err:
            skipped[kind] = f"not checked: {err}"
            continue
        checks = jacobian_checks(cell, xs)
        rows.append({"kind": kind, "fd": checks["fd"], "analytic": checks.get("analytic")})
        if "analytic" not in checks:
            skipped[kind] = "no analytic check: the class defines no jacobian (autograd is its Jacobian)"
    return rows, skipped


def fit_decay(lags: Sequence[int], f: Sequence[float]) -> dict:
    """Fit log f against the three envelope families by least squares and pick the smallest residual (all have two
    parameters, so this is also the AIC choice): exponential C e^{-l/tau}, power law C l^{-beta}, logarithmic
    C (ln l)^{-gamma} (lags > 1). Returns the regime, its rate parameter and every family's residual sum of squares."""
    lags, f = np.asarray(lags, dtype=float), np.asarray(f, dtype=float)
    if lags.shape != f.shape or lags.ndim != 1 or lags.size < 3:
        raise ValueError("lags and f must be 1-D of equal length >= 3")
    keep = (lags > 1) & (f > 0)
    if keep.sum() < 3:
        raise ValueError("need at least 3 lags > 1 with positive envelope values")
    y = np.log(f[keep])
    designs = {"exponential": lags[keep], "power law": np.log(lags[keep]), "logarithmic": np.log(np.log(lags[keep]))}
    fits = {}
    for name, z in designs.items():
        slope, intercept = np.polyfit(z, y, 1)
        rss = float(np.sum((y - (intercept + slope * z)) ** 2))
        rate = -1.0 / slope if name == "exponential" else -slope
        fits[name] = {"rss": rss, "rate": float(rate), "C": float(np.exp(intercept))}
    best = min(fits, key=lambda k: fits[k]["rss"])
    return {"regime": best, "rate": fits[best]["rate"], "fits": fits}


def cell_report(
    kind: str,
    *,
    hidden_size: int = 16,
    input_size: int = 2,
    T: int = 60,
    batch: int = 16,
    seed: int = 0,
    lags: Sequence[int] | None = None,
    Ns: Sequence[float] = (1e2, 1e3, 1e4, 1e5, 1e6),
    alpha: float = 1.5,
    threshold: float = 5.0,
    sigma: float = 1.0,
    c: float = 1.0,
    sympy_step: SympyStep | None = None,
    sympy_size: int = 4,
    cell_options: dict | None = None,
    tol: float = TOL,
) -> dict:
    """The book's pipeline for one cell kind, built-in or registered by a reader (see the module docstring).

    The cell is built in float64 with ``make_cell(kind, input_size, hidden_size, seed=seed, **cell_options)`` (a
    dict, kept apart from this function's own arguments: the leaky cell's ``alpha`` is not the tail index) and
    driven by Gaussian inputs (B = ``batch``, ``T`` steps). Envelopes are normalised by their value at lag 1 and the
    window uses that normalised envelope with the detection constants ``threshold``, ``sigma``, ``c``. The SymPy
    check runs on a twin cell of hidden size ``sympy_size`` (SymPy's differentiation time grows steeply with n;
    n = 6 already takes ~10 s for a minimal gated unit); the other checks run on the cell itself.

    Returns a dict:

    * ``"kind"``: the cell's kind;
    * ``"checks"``: {check: largest entrywise gap} for the checks of :func:`jacobian_checks` (``"fd"`` always,
      ``"analytic"`` when the class defines ``jacobian``, ``"sympy"`` when ``sympy_step`` is given);
    * ``"lags"``: the lags (array), by default 1..T // 2;
    * ``"envelopes"``: {``"order 0"``, ``"order 1"`` (only for a cell with a ``retention``), ``"exact"``: the envelope
      over ``lags`` normalised at the first lag (arrays)};
    * ``"fit"``: :func:`fit_decay` of the exact envelope (``"regime"``, ``"rate"``, ``"fits"``);
    * ``"Ns"``, ``"windows"``: the sample sizes and the window H_N at each (arrays).

    Raises ``ValueError`` when a Jacobian check's gap exceeds ``tol`` (a hand-written ``jacobian`` or SymPy step that
    does not match the step), and when ``T`` is too short for the checks and the decay fit.
    """
    minimum = max(CHECK_STEPS) + 1 if lags is not None else 8
    if isinstance(T, bool) or not isinstance(T, int) or T < minimum:
        raise ValueError(
            f"T (the sequence length) must be an integer >= {minimum}: the Jacobian checks compare the "
            f"states after steps {CHECK_STEPS}"
            + ("" if lags is not None else " and the decay fit needs the lags 1..T // 2 to hold three lags > 1")
            + f"; got T={T!r}"
        )
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
        raise ValueError(f"tol (the largest Jacobian gap accepted) must be a positive number; got {tol!r}")
    cell_options = dict(cell_options or {})
    cell = make_cell(kind, input_size, hidden_size, dtype=torch.float64, seed=seed, **cell_options)
    lags = list(range(1, T // 2 + 1)) if lags is None else list(lags)
    gen = torch.Generator().manual_seed(seed + 1)
    xs = torch.randn(batch, T, input_size, generator=gen, dtype=torch.float64)
    checks = jacobian_checks(cell, xs)
    if sympy_step is not None:
        twin = make_cell(kind, input_size, sympy_size, dtype=torch.float64, seed=seed, **cell_options)
        checks["sympy"] = jacobian_checks(twin, xs[: min(batch, 4)], sympy_step)["sympy"]
    failed = {name: gap for name, gap in checks.items() if not gap <= tol}
    if failed:
        raise ValueError(
            f"Jacobian check failed for cell kind {kind!r}: "
            + "; ".join(f"{CHECKS[name]}: gap {gap:.2e}" for name, gap in failed.items())
            + f" (tol = {tol:g})"
        )
    envelopes = {}
    try:
        for order in (0, 1):
            envelopes[f"order {order}"] = envelope(effective_learning_rates(cell, xs, lags, order=order), lags).numpy()
    except NotImplementedError:  # a cell without a retention has no zeroth-order rates; the exact ones remain
        envelopes = {}
    envelopes["exact"] = envelope(transport_diagonal(cell, xs, lags), lags).numpy()
    envelopes = {k: v / v[0] for k, v in envelopes.items()}
    fit = fit_decay(lags, envelopes["exact"])
    windows = [
        learnability_window(envelopes["exact"], float(N), alpha, threshold=threshold, sigma=sigma, c=c) for N in Ns
    ]
    return {
        "kind": cell.kind,
        "checks": checks,
        "lags": np.asarray(lags),
        "envelopes": envelopes,
        "fit": fit,
        "Ns": np.asarray(Ns, dtype=float),
        "windows": np.asarray(windows),
    }


BUILTIN_OPTIONS: dict[str, dict] = {
    "leaky": dict(alpha=0.1),
    "scalar": dict(gate_init=0.1),
    "multi": dict(gate_init=0.1),
    "gru": dict(gate_init=0.1),
    "lstm": dict(gate_init=0.1),
}
"""The built-in cells :func:`compare_cells` sets beside a reader's, all with gates near 0.1 at initialisation."""


@dataclass(frozen=True)
class Comparison:
    """A reader's cell beside others (:func:`compare_cells`).

    ``kind``: the reader's cell; ``reports``: {kind: :func:`cell_report`}, the reader's first; ``rows``: one table row
    per cell (``cell``, ``regime`` and ``rate`` of the exact envelope's decay fit, ``H at N=...`` the window at each
    of the table's sample sizes, ``Jacobian vs FD`` the finite-difference gap).
    """

    kind: str
    reports: dict[str, dict]
    rows: list[dict] = field(repr=False)

    def figure(self):
        """Envelopes (left) and windows H_N against N (right) of every cell, the reader's drawn thicker
        (:func:`learnability.plots.cell_comparison`)."""
        from .plots import cell_comparison

        return cell_comparison(self.reports, highlight=self.kind)


def compare_cells(
    kind: str,
    *,
    cell_options: dict | None = None,
    sympy_step: SympyStep | None = None,
    others: Mapping[str, dict] = BUILTIN_OPTIONS,
    table_Ns: Sequence[float] = (1e4, 1e8),
    **report_options,
) -> Comparison:
    """:func:`cell_report` for the cell ``kind`` (with ``cell_options`` and ``sympy_step``) and for each of ``others``
    ({kind: cell options}, by default the built-in cells with gates near 0.1), all with the same ``report_options``
    (hidden size, T, seed, Ns, ...), and the table of :class:`Comparison`. ``table_Ns`` must be among the reports'
    ``Ns``. A failed Jacobian check of any cell raises ``ValueError`` (as in :func:`cell_report`)."""
    if kind in others:
        raise ValueError(f"the compared cell {kind!r} is also among the others; leave it out of others")
    Ns = np.asarray(report_options.get("Ns", (1e2, 1e3, 1e4, 1e5, 1e6)), dtype=float)
    missing = [N for N in table_Ns if not np.any(np.isclose(Ns, N))]
    if missing:
        raise ValueError(f"table_Ns {missing} are not among the sample sizes Ns = {Ns.tolist()}")
    reports = {kind: cell_report(kind, cell_options=cell_options, sympy_step=sympy_step, **report_options)}
    for other, options in others.items():
        reports[other] = cell_report(other, cell_options=options, **report_options)
    rows = []
    for name, r in reports.items():
        row = {"cell": name, "regime": r["fit"]["regime"], "rate": r["fit"]["rate"]}
        for N in table_Ns:
            row[f"H at N={N:.0e}".replace("e+0", "e").replace("e+", "e")] = int(
                r["windows"][int(np.argmin(np.abs(r["Ns"] - N)))]
            )
        row["Jacobian vs FD"] = r["checks"]["fd"]
        rows.append(row)
    return Comparison(kind, reports, rows)
