"""Recurrent cells with one interface and exact, analytic Jacobians.

Every gated cell of the book is written in the update-gate convention of eq-gated-step (book/p1_euler_gates.md),

    h_t = (1 - g_t) * h_{t-1} + g_t * phi(a_t),

where ``g`` is the update (write) gate and ``1 - g`` the retention. The one-step Jacobians
``J_t = d state_t / d state_{t-1}`` implemented here are derived in book/p1_jacobians.md (eq-jac-plain ...
eq-jac-lstm) by SymPy (:mod:`learnability.symbolic`) and checked against autograd in ``tests/test_cells.py``.

Parameter names: ``W*`` multiply the previous hidden state, ``U*`` the input, ``b*`` are biases.

New cells join through :func:`register`; :func:`make_cell` builds every cell, built-in or not, the same way, and
every experiment that trains or analyses gated cells takes a registered kind by its name (book/extending.md).

The cell contract (what a registered :class:`Cell` subclass provides, and what it may rely on):

* ``__init__(self, input_size, hidden_size, **options)`` passes ``options`` on to ``Cell.__init__``, which takes
  ``layer_norm``, ``bias``, ``gate_init``, ``dtype`` and ``seed``, validates them and stores them as
  ``self.layer_norm``, ``self.use_bias``, ``self.gate_init``, ``self.dtype``. Parameters are made with the public
  building blocks: :meth:`Cell.uniform_parameter` (PyTorch's RNN initialisation, seeded by ``seed``),
  :meth:`Cell.bias_parameter` (``None`` when ``bias=False``) and :meth:`Cell.gate_bias_parameter` (the bias of the
  gate that ``gate_init`` sets).
* ``step(self, x_t, state)`` receives the input x_t (B, input_size) and the previous state, a (B, hidden_size)
  tensor (a tuple of ``state_parts`` such tensors when the class sets ``state_parts > 1``), already checked, in the
  cell's dtype; it returns the new state of the same form. :meth:`Cell.affine` computes ``h W^T + x U^T + b`` and
  accepts ``b = None`` (a cell built with ``bias=False``); :meth:`Cell.candidate` is phi(LN(z)), the LayerNorm
  applied exactly when ``layer_norm=True``.
* Options are honoured or refused, never ignored: :func:`make_cell` raises ``ValueError`` when ``layer_norm=True``
  but the step does not use the LayerNorm parameters (i.e. does not call :meth:`Cell.candidate`), when
  ``gate_init`` is given but no :meth:`Cell.gate_bias_parameter` was made, and when ``gate_init`` comes with
  ``bias=False`` (the gate bias that carries it does not exist).
* Optional: ``retention(x_t, state)`` (B, n), the zeroth-order diagonal of J (effective learning rates of orders 0
  and 1, the lag profiles' predictors); ``jacobian(x_t, state)`` (default: autograd) and ``jacobian_diagonal``;
  ``jacobian_terms(x_t, h, code_compat=False)``, the split of eq-jac-gated (the first-order and code variants of
  the lag profiles); ``gate_weights``, the names of the gate's weights (zeroed by the paper's initialisation in
  ``learnability.experiments.window_pipeline``). :func:`missing_features` says which a kind lacks; experiments
  skip what needs them and say so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

State = Tensor | tuple[Tensor, Tensor]

_REGISTRY: dict[str, type[Cell]] = {}
ALIASES: dict[str, str] = {"const": "leaky", "diag": "multi"}
LN_EPS = 1e-5


def register(kind: str, *, replace: bool = False) -> Callable[[type[Cell]], type[Cell]]:
    """Class decorator: make ``make_cell(kind, ...)`` build this :class:`Cell` subclass.

    ``replace=True`` lets a kind registered outside this module be registered again (re-running a notebook cell
    that defines it); the built-in kinds and the aliases are never replaced.
    """
    if not isinstance(kind, str) or not kind.isidentifier():
        raise ValueError(f"a cell kind must be a Python identifier string; got {kind!r}")

    def decorate(cls: type[Cell]) -> type[Cell]:
        if not (isinstance(cls, type) and issubclass(cls, Cell)):
            raise ValueError(f"only subclasses of learnability.cells.Cell can be registered; got {cls!r}")
        if kind in ALIASES or (kind in _REGISTRY and is_builtin(kind)):
            raise ValueError(f"cell kind {kind!r} is built in; pick another name")
        if kind in _REGISTRY and not replace:
            raise ValueError(
                f"cell kind {kind!r} is already registered; pick another name, or register({kind!r}, "
                "replace=True) to replace it"
            )
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return decorate


def kinds() -> tuple[str, ...]:
    """Names of all registered cell kinds, in registration order (aliases not included)."""
    return tuple(_REGISTRY)


def resolve_kind(kind: str) -> str:
    """Canonical kind name for ``kind`` (aliases: ``const`` -> ``leaky``, ``diag`` -> ``multi``)."""
    name = ALIASES.get(kind, kind) if isinstance(kind, str) else kind
    if name not in _REGISTRY:
        raise ValueError(f"unknown cell kind {kind!r}; allowed: {sorted(_REGISTRY) + sorted(ALIASES)}")
    return name


def is_builtin(kind: str) -> bool:
    """Whether ``kind`` (a registered kind or alias) is one of the book's cells, defined in this module."""
    return _REGISTRY[resolve_kind(kind)].__module__ == __name__


def missing_features(kind: str) -> dict[str, str]:
    """{feature: reason} for the optional methods of the cell contract that the class of ``kind`` does not define:
    ``"retention"`` and ``"jacobian_terms"`` (see the module docstring); empty for a kind that has them all."""
    cls = _REGISTRY[resolve_kind(kind)]
    out = {}
    if cls.retention is Cell.retention:
        out["retention"] = (
            f"cell kind {kind!r} defines no retention(x_t, state), the zeroth-order diagonal of its Jacobian"
        )
    if not callable(getattr(cls, "jacobian_terms", None)):
        out["jacobian_terms"] = (
            f"cell kind {kind!r} defines no jacobian_terms(x_t, h, code_compat), the retention "
            "/ candidate / gate split of eq-jac-gated"
        )
    return out


def make_cell(kind: str, input_size: int, hidden_size: int, **options) -> Cell:
    """Build a cell of the given kind. ``options`` are the keyword arguments of that cell's class.

    Common options: ``layer_norm`` (LayerNorm on the candidate pre-activation), ``bias``, ``dtype``, ``seed``
    (initialise the weights from ``torch.Generator().manual_seed(seed)``); ``alpha`` for ``leaky``;
    ``gate_init`` for gated cells (the gate bias is set so that the update gate is ``gate_init`` when the
    other gate inputs vanish; for the LSTM the forget gate then starts at ``1 - gate_init``).
    Raises ``ValueError`` for an option the cell does not take, and for one it takes but would ignore
    (``layer_norm`` without :meth:`Cell.candidate` in its step, ``gate_init`` without a gate bias).
    """
    cls = _REGISTRY[resolve_kind(kind)]
    try:
        cell = cls(input_size, hidden_size, **options)
    except TypeError as err:  # unexpected keyword: say which options exist
        raise ValueError(f"bad options for cell kind {kind!r}: {err}") from None
    if cell.gate_init is not None and not cell._gate_bias_made:
        raise ValueError(
            f"bad options for cell kind {kind!r}: gate_init={cell.gate_init} was given, but the cell "
            "makes no gate bias (Cell.gate_bias_parameter) to carry it"
        )
    if cell.layer_norm and not _uses_layer_norm(cell):
        raise ValueError(
            f"bad options for cell kind {kind!r}: layer_norm=True, but its step does not apply the "
            "LayerNorm (call self.candidate(z) on the candidate's pre-activation, or refuse layer_norm)"
        )
    return cell


def refused_options(kind: str, input_size: int, hidden_size: int, **options) -> dict[str, str]:
    """{option: reason} for each of ``options`` that ``make_cell(kind, input_size, hidden_size, option=value)``
    refuses (the ``ValueError`` message of :func:`make_cell`); empty when the cell takes every option alone."""
    out = {}
    for name, value in options.items():
        try:
            make_cell(kind, input_size, hidden_size, **{name: value})
        except ValueError as err:
            out[name] = str(err)
    return out


def _uses_layer_norm(cell: Cell) -> bool:
    """Whether one step of ``cell`` (from the zero state, inputs 1) depends on its LayerNorm parameters."""
    with torch.enable_grad():
        state = cell.step(torch.ones(1, cell.input_size, dtype=cell.dtype), cell.initial_state(1))
        out = cell.flatten_state(state).sum()
        if not out.requires_grad:
            return False
        grads = torch.autograd.grad(out, [cell.ln_weight, cell.ln_bias], allow_unused=True)
    return any(g is not None for g in grads)


def _check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return value


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _check_gate_init(gate_init: float | None, bias: bool) -> float | None:
    """Validate ``gate_init``: a probability in (0, 1), carried by a gate bias (so ``bias`` must be on)."""
    if gate_init is None:
        return None
    if isinstance(gate_init, bool) or not isinstance(gate_init, (int, float)) or not 0 < gate_init < 1:
        raise ValueError(f"gate_init (initial update-gate value) must lie in (0, 1); got {gate_init!r}")
    if not bias:
        raise ValueError("gate_init is carried by the gate bias: it needs bias=True")
    return float(gate_init)


class Cell(nn.Module):
    """Base class: one recurrent step ``state_t = step(x_t, state_{t-1})`` plus its exact Jacobian.

    Subclasses implement :meth:`step` (and, for speed and exactness, :meth:`jacobian`, :meth:`jacobian_diagonal` and
    :meth:`retention`). Training may run the GRU and LSTM through a fused recurrence instead of this step loop
    (:mod:`learnability.fastpaths.fused`, chosen in :func:`learnability.training.training_forward`); nothing here
    dispatches. States are ``(B, n)`` tensors, except where a subclass sets ``state_parts = 2`` (LSTM: ``(h, c)``); the
    *flat* state concatenates the parts, ``d = state_parts * n``, and is what Jacobians act on.
    """

    kind: ClassVar[str] = "cell"
    state_parts: ClassVar[int] = 1
    gate_weights: ClassVar[tuple[str, ...]] = ()  # names of the (update or retention) gate's weights

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        layer_norm: bool = False,
        bias: bool = True,
        gate_init: float | None = None,
        dtype: torch.dtype = torch.float32,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.input_size = _check_size("input_size", input_size)
        self.hidden_size = _check_size("hidden_size", hidden_size)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype!r}")
        self.dtype = dtype
        self.use_bias = bool(bias)
        self.gate_init = _check_gate_init(gate_init, self.use_bias)
        self._gate_bias_made = False
        self.layer_norm = bool(layer_norm)
        self._generator = None if seed is None else torch.Generator().manual_seed(int(seed))
        if self.layer_norm:
            self.ln_weight = nn.Parameter(torch.ones(hidden_size, dtype=dtype))
            self.ln_bias = nn.Parameter(torch.zeros(hidden_size, dtype=dtype))

    # ----- parameters: the public building blocks of the cell contract ------------------------------------
    def uniform_parameter(self, *shape: int) -> nn.Parameter:
        """A weight of this shape, PyTorch's RNN initialisation U(-1/sqrt(n), 1/sqrt(n)), drawn from the cell's
        seeded generator (``seed``) in the cell's dtype."""
        k = 1.0 / math.sqrt(self.hidden_size)
        t = torch.empty(*shape, dtype=self.dtype).uniform_(-k, k, generator=self._generator)
        return nn.Parameter(t)

    def bias_parameter(self, *shape: int, value: float | None = None) -> nn.Parameter | None:
        """A bias of this shape (uniform like :meth:`uniform_parameter`, or the constant ``value``); ``None`` when the
        cell was built with ``bias=False``, which :meth:`affine` accepts."""
        if not self.use_bias:
            return None
        if value is None:
            return self.uniform_parameter(*shape)
        return nn.Parameter(torch.full(shape, float(value), dtype=self.dtype))

    def gate_bias_parameter(self, *shape: int, retention: bool = False) -> nn.Parameter | None:
        """The bias of the gate that ``gate_init`` sets: logit(gate_init), so that the update gate starts at
        ``gate_init`` when its other inputs vanish (``retention=True`` for a gate that multiplies the previous state,
        e.g. the LSTM's forget gate: logit(1 - gate_init)); uniform when ``gate_init`` is None; ``None`` when
        ``bias=False``. Making it marks ``gate_init`` as honoured (see :func:`make_cell`)."""
        self._gate_bias_made = True
        if self.gate_init is None:
            return self.bias_parameter(*shape)
        return self.bias_parameter(*shape, value=_logit(1 - self.gate_init if retention else self.gate_init))

    @staticmethod
    def affine(W: Tensor, U: Tensor, b: Tensor | None, h: Tensor, x: Tensor) -> Tensor:
        """``h W^T + x U^T + b`` for a batch, h (B, n), x (B, m); W: (k, n), U: (k, m), b: (k,) or None (no bias).
        (Two fused multiply-adds.)"""
        inputs = x @ U.T if b is None else torch.addmm(b, x, U.T)
        return torch.addmm(inputs, h, W.T)

    # ----- candidate phi(LN(z)) and its derivative ----------------------------------------------------
    def candidate(self, z: Tensor) -> Tensor:
        """The candidate phi(a) = tanh(a) of a pre-activation z (B, n), with a = LN(z) = gamma (z - mean(z)) /
        sqrt(var(z) + eps) + beta (eq-jac-layernorm) when the cell has ``layer_norm=True``, else a = z. A cell honours
        ``layer_norm`` by calling this on its candidate's pre-activation."""
        if self.layer_norm:
            z = nn.functional.layer_norm(z, (self.hidden_size,), self.ln_weight, self.ln_bias, LN_EPS)
        return torch.tanh(z)

    def _candidate_cache(self, z: Tensor) -> tuple[Tensor, dict]:
        """phi(a) and what the Jacobian needs: phi'(a) and, with LayerNorm, zhat = (z - mean) / s and s."""
        phi = self.candidate(z)
        if not self.layer_norm:
            return phi, {"dphi": 1 - phi**2}
        mean = z.mean(-1, keepdim=True)
        s = torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + LN_EPS)
        return phi, {"dphi": 1 - phi**2, "zhat": (z - mean) / s, "s": s}

    def _dcandidate(self, cache: dict, M: Tensor) -> Tensor:
        """d phi(a) / d h = diag(phi'(a)) L M, with L the LayerNorm Jacobian (eq-jac-layernorm) or I; M = dz/dh."""
        if self.layer_norm:
            n = self.hidden_size
            zhat, s = cache["zhat"], cache["s"]
            eye = torch.eye(n, dtype=zhat.dtype)
            L = (eye - 1.0 / n - zhat.unsqueeze(-1) * zhat.unsqueeze(-2) / n) / s.unsqueeze(-1)
            L = self.ln_weight.unsqueeze(-1) * L
            M = L @ M
        return cache["dphi"].unsqueeze(-1) * M

    def _dcandidate_diagonal(self, cache: dict, diag_M: Tensor, project: Callable[[Tensor], Tensor]) -> Tensor:
        """The diagonal of :meth:`_dcandidate` (B, n) without forming L M (eq-jac-diagonal): with
        L = diag(gamma) (I - 1 1^T / n - zhat zhat^T / n) / s (eq-jac-layernorm),
        (L M)_ii = gamma_i (M_ii - (1^T M)_i / n - zhat_i (zhat^T M)_i / n) / s. ``diag_M`` is diag(M) (B, n) and
        ``project(v)`` the row vectors v^T M (B, n) for v (B, n): O(B n^2) instead of O(B n^3)."""
        if self.layer_norm:
            n = self.hidden_size
            zhat, s = cache["zhat"], cache["s"]
            diag_M = self.ln_weight * (diag_M - project(torch.ones_like(zhat)) / n - zhat * project(zhat) / n) / s
        return cache["dphi"] * diag_M

    # ----- state handling -----------------------------------------------------------------------------
    @property
    def state_size(self) -> int:
        """Dimension d of the flat state (n, or 2n for the LSTM)."""
        return self.state_parts * self.hidden_size

    def initial_state(self, batch: int) -> State:
        """Zero state for ``batch`` sequences: (B, n), or a tuple (h, c) for the LSTM."""
        _check_size("batch", batch)
        zeros = [torch.zeros(batch, self.hidden_size, dtype=self.dtype) for _ in range(self.state_parts)]
        return zeros[0] if self.state_parts == 1 else tuple(zeros)

    def flatten_state(self, state: State) -> Tensor:
        """The flat state (B, d)."""
        return torch.cat(state, dim=-1) if self.state_parts > 1 else state

    def unflatten_state(self, flat: Tensor) -> State:
        """Inverse of :meth:`flatten_state`."""
        return tuple(flat.split(self.hidden_size, dim=-1)) if self.state_parts > 1 else flat

    def hidden(self, state: State) -> Tensor:
        """The hidden state h (B, n) that a readout sees."""
        return state[0] if self.state_parts > 1 else state

    def _check_step_args(self, x_t: Tensor, state: State) -> None:
        if not isinstance(x_t, Tensor) or x_t.dim() != 2 or x_t.shape[1] != self.input_size:
            shape = tuple(x_t.shape) if isinstance(x_t, Tensor) else type(x_t).__name__
            raise ValueError(f"x_t must be a tensor of shape (batch, {self.input_size}); got {shape}")
        parts = state if isinstance(state, tuple) else (state,)
        if len(parts) != self.state_parts or not all(isinstance(p, Tensor) for p in parts):
            want = "a tuple (h, c) of tensors" if self.state_parts > 1 else "a tensor"
            raise ValueError(f"the state of a {self.kind!r} cell must be {want}")
        for p in parts:
            if p.shape != (x_t.shape[0], self.hidden_size):
                raise ValueError(
                    f"state tensors must have shape (batch, hidden_size) = "
                    f"({x_t.shape[0]}, {self.hidden_size}); got {tuple(p.shape)}"
                )

    # ----- the interface ------------------------------------------------------------------------------
    def step(self, x_t: Tensor, state: State) -> State:
        """One step of the recurrence; subclasses implement it. It receives x_t (B, input_size) and the previous state
        ((B, n), or a tuple of ``state_parts`` such tensors), checked by the caller, and returns the new state in the
        same form (the cell contract of the module docstring)."""
        raise NotImplementedError(f"{type(self).__name__} must implement step(x_t, state)")

    def forward(self, x_t: Tensor, state: State) -> State:
        """One step: x_t (B, input_size), state (B, n) -> new state."""
        self._check_step_args(x_t, state)
        return self.step(x_t, state)

    def jacobian(self, x_t: Tensor, state: State) -> Tensor:
        """Exact d state_t / d state_{t-1}, (B, d, d), for flat states. Default: autograd
        (:meth:`jacobian_autograd`)."""
        return self.jacobian_autograd(x_t, state)

    def jacobian_diagonal(self, x_t: Tensor, state: State) -> Tensor:
        """diag(J) (B, d) of :meth:`jacobian`. Here the diagonal of the full Jacobian, the reference; the cells below
        compute it in O(B n^2) without forming J (eq-jac-diagonal), checked against this in the tests."""
        return torch.diagonal(self.jacobian(x_t, state), dim1=-2, dim2=-1)

    def jacobian_autograd(self, x_t: Tensor, state: State) -> Tensor:
        """The one-step Jacobian by ``torch.func.jacrev`` of the step, per sequence: (B, d, d)."""
        self._check_step_args(x_t, state)

        def one(x: Tensor, s: Tensor) -> Tensor:
            new = self.step(x.unsqueeze(0), self.unflatten_state(s.unsqueeze(0)))
            return self.flatten_state(new).squeeze(0)

        jac = torch.func.vmap(torch.func.jacrev(one, argnums=1))
        return jac(x_t, self.flatten_state(state))

    def retention(self, x_t: Tensor, state: State) -> Tensor:
        """Zeroth-order diagonal of J, the retention (B, n): 1 - g (leaky/scalar/multi), 1 - z (GRU), f (LSTM)."""
        raise NotImplementedError(f"{type(self).__name__} defines no retention")

    def unroll(self, xs: Tensor, state: State | None = None) -> Tensor:
        """Hidden states h_1..h_T (B, T, n) for inputs xs (B, T, input_size), from ``state`` (zero if None)."""
        return self.hidden_trajectory(self.states(xs, state))[:, 1:]

    def _check_sequence_args(self, xs: Tensor, state: State | None) -> State:
        """Validate inputs (B, T >= 1, input_size) and the initial state; return it (zero if None)."""
        if not isinstance(xs, Tensor) or xs.dim() != 3 or xs.shape[2] != self.input_size or xs.shape[1] < 1:
            shape = tuple(xs.shape) if isinstance(xs, Tensor) else type(xs).__name__
            raise ValueError(f"xs must be a tensor of shape (batch, T >= 1, {self.input_size}); got {shape}")
        state = self.initial_state(xs.shape[0]) if state is None else state
        self._check_step_args(xs[:, 0], state)
        return state

    def states(self, xs: Tensor, state: State | None = None) -> Tensor:
        """Flat states state_0..state_T, (B, T + 1, d), with state_0 the initial state."""
        state = self._check_sequence_args(xs, state)
        out = [self.flatten_state(state)]
        for t in range(xs.shape[1]):
            state = self.step(xs[:, t], state)
            out.append(self.flatten_state(state))
        return torch.stack(out, dim=1)

    def hidden_trajectory(self, flat_states: Tensor) -> Tensor:
        """The hidden part h of flat states (..., d) -> (..., n)."""
        return flat_states[..., : self.hidden_size]

    def extra_repr(self) -> str:
        return (
            f"kind={self.kind!r}, input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"layer_norm={self.layer_norm}, bias={self.use_bias}"
        )


class _GatedFamily(Cell):
    """Shared parts of the plain/leaky/scalar/multi cells: a = LN(W h + U x + b), h' = (1-g) h + g phi(a)."""

    def __init__(self, input_size: int, hidden_size: int, **options) -> None:
        super().__init__(input_size, hidden_size, **options)
        n, m = self.hidden_size, self.input_size
        self.W = self.uniform_parameter(n, n)
        self.U = self.uniform_parameter(n, m)
        self.b = self.bias_parameter(n)

    def gate(self, x_t: Tensor, h: Tensor) -> Tensor:
        """The update gate g_t, broadcastable to (B, n)."""
        raise NotImplementedError

    def step(self, x_t: Tensor, h: Tensor) -> Tensor:
        """h' = (1 - g) h + g phi(a) (eq-gated-step), as h + g (phi(a) - h)."""
        phi = self.candidate(self.affine(self.W, self.U, self.b, h, x_t))
        return torch.lerp(h, phi, self.gate(x_t, h))

    def retention(self, x_t: Tensor, state: Tensor) -> Tensor:
        self._check_step_args(x_t, state)
        return (1 - self.gate(x_t, state)).expand(state.shape).clone()

    def gate_and_candidate(self, x_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """(g_t, phi(a_t)), both (B, n): the two factors of eq-gated-step."""
        self._check_step_args(x_t, h)
        phi = self.candidate(self.affine(self.W, self.U, self.b, h, x_t))
        return self.gate(x_t, h).expand(h.shape), phi

    def _jacobian_parts(self, x_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(g (B, n or 1), d = phi(a) - h_{t-1}, diag(phi') L W as (B, n, n))."""
        phi, cache = self._candidate_cache(self.affine(self.W, self.U, self.b, h, x_t))
        g = self.gate(x_t, h)
        return g, phi - h, self._dcandidate(cache, self.W)

    def jacobian(self, x_t: Tensor, h: Tensor) -> Tensor:
        """J = diag(1-g) + diag(g) D L W [+ gate term]; eq-jac-gated (book/p1_jacobians.md)."""
        self._check_step_args(x_t, h)
        g, d, DW = self._jacobian_parts(x_t, h)
        g = g.expand(h.shape)
        return torch.diag_embed(1 - g) + g.unsqueeze(-1) * DW + self._gate_term(x_t, h, g, d)

    def jacobian_diagonal(self, x_t: Tensor, h: Tensor) -> Tensor:
        """diag(J) = (1-g) + g diag(D L W) + diag(gate term) (eq-jac-gated, eq-jac-diagonal), in O(B n^2)."""
        self._check_step_args(x_t, h)
        phi, cache = self._candidate_cache(self.affine(self.W, self.U, self.b, h, x_t))
        g = self.gate(x_t, h).expand(h.shape)
        diag_W = torch.diagonal(self.W).expand(h.shape)
        return (
            1 - g + g * self._dcandidate_diagonal(cache, diag_W, lambda v: v @ self.W) + self._gate_diagonal(g, phi - h)
        )

    def jacobian_terms(self, x_t: Tensor, h: Tensor, *, code_compat: bool = False) -> dict[str, Tensor]:
        """The three terms of eq-jac-gated, each (B, n, n): ``retention`` diag(1-g), ``candidate`` diag(g) D L W,
        ``gate`` diag(d) dg/dh (the gate sensitivities). Their sum is :meth:`jacobian`.

        ``code_compat=True`` builds the gate term as the official code of arXiv 2508.12121 does, with the updated
        state h_t in place of h_{t-1} in d_t = phi(a_t) - h_{t-1}; that scales it by (1 - g_t) (see the errata).
        """
        self._check_step_args(x_t, h)
        g, d, DW = self._jacobian_parts(x_t, h)
        g = g.expand(h.shape)
        if code_compat:
            d = (1 - g) * d  # phi(a) - h_t = (1 - g) (phi(a) - h_{t-1})
        gate = self._gate_term(x_t, h, g, d)
        gate = torch.zeros_like(DW) if isinstance(gate, float) else gate
        return {"retention": torch.diag_embed(1 - g), "candidate": g.unsqueeze(-1) * DW, "gate": gate}

    def _gate_term(self, x_t: Tensor, h: Tensor, g: Tensor, d: Tensor) -> Tensor | float:
        """d_t-weighted derivative of the gate: diag(d) dg/dh (zero for constant gates)."""
        return 0.0

    def _gate_diagonal(self, g: Tensor, d: Tensor) -> Tensor | float:
        """The diagonal of :meth:`_gate_term` (B, n) (zero for constant gates)."""
        return 0.0


@register("plain")
class PlainCell(_GatedFamily):
    """h_t = phi(a_t): the Elman RNN, g = 1 (no retention). Jacobian eq-jac-plain: J = D L W."""

    def gate(self, x_t: Tensor, h: Tensor) -> Tensor:
        return torch.ones(1, 1, dtype=h.dtype)


@register("leaky")
class LeakyCell(_GatedFamily):
    """Leaky integrator / constant gate, h_t = (1-alpha) h_{t-1} + alpha phi(a_t). Jacobian eq-jac-leaky.

    ``alpha`` in (0, 1] is the Euler step dt/tau of eq-euler-step; the memory time scale is -1/ln(1-alpha).
    The default 0.8 is the value of the official code of arXiv 2508.12121.
    """

    def __init__(self, input_size: int, hidden_size: int, *, alpha: float = 0.8, **options) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
            raise ValueError(f"alpha (the constant update gate) must lie in (0, 1]; got {alpha!r}")
        super().__init__(input_size, hidden_size, **options)
        self.alpha = float(alpha)

    def gate(self, x_t: Tensor, h: Tensor) -> Tensor:
        return torch.full((1, 1), self.alpha, dtype=h.dtype)


@register("scalar")
class ScalarGateCell(_GatedFamily):
    """One gate for all neurons, g_t = sigma(w_g . h_{t-1} + u_g . x_t + b_g). Jacobian eq-jac-scalar:

    J = (1-g) I + g D L W + g (1-g) d w_g^T, a rank-one gate term along d = phi(a) - h_{t-1}. ``gate_init`` sets
    b_g to logit(gate_init).
    """

    gate_weights = ("w_g", "u_g")

    def __init__(self, input_size: int, hidden_size: int, **options) -> None:
        super().__init__(input_size, hidden_size, **options)
        self.w_g = self.uniform_parameter(self.hidden_size)
        self.u_g = self.uniform_parameter(self.input_size)
        self.b_g = self.gate_bias_parameter(1)

    def gate(self, x_t: Tensor, h: Tensor) -> Tensor:
        z = h @ self.w_g + x_t @ self.u_g
        z = z if self.b_g is None else z + self.b_g
        return torch.sigmoid(z).unsqueeze(-1)

    def _gate_term(self, x_t: Tensor, h: Tensor, g: Tensor, d: Tensor) -> Tensor:
        return (d * g * (1 - g)).unsqueeze(-1) * self.w_g

    def _gate_diagonal(self, g: Tensor, d: Tensor) -> Tensor:
        return d * g * (1 - g) * self.w_g


@register("multi")
class MultiGateCell(_GatedFamily):
    """One gate per neuron, g_t = sigma(W_g h_{t-1} + U_g x_t + b_g). Jacobian eq-jac-multi:

    J = diag(1-g) + diag(g) D L W + diag(d * g * (1-g)) W_g. ``gate_init`` sets b_g to logit(gate_init).
    """

    gate_weights = ("W_g", "U_g")

    def __init__(self, input_size: int, hidden_size: int, **options) -> None:
        super().__init__(input_size, hidden_size, **options)
        self.W_g = self.uniform_parameter(self.hidden_size, self.hidden_size)
        self.U_g = self.uniform_parameter(self.hidden_size, self.input_size)
        self.b_g = self.gate_bias_parameter(self.hidden_size)

    def gate(self, x_t: Tensor, h: Tensor) -> Tensor:
        return torch.sigmoid(self.affine(self.W_g, self.U_g, self.b_g, h, x_t))

    def _gate_term(self, x_t: Tensor, h: Tensor, g: Tensor, d: Tensor) -> Tensor:
        return (d * g * (1 - g)).unsqueeze(-1) * self.W_g

    def _gate_diagonal(self, g: Tensor, d: Tensor) -> Tensor:
        return d * g * (1 - g) * torch.diagonal(self.W_g)


@register("gru")
class GRUCell(Cell):
    """GRU with the update gate z as g (Cho et al. 2014; reset applied before W_h). Jacobian eq-jac-gru:

    z = sigma(W_z h + U_z x + b_z), r = sigma(W_r h + U_r x + b_r), n = phi(LN(W_h (r * h) + U_h x + b_h)),
    h' = (1 - z) h + z n.
    """

    gate_weights = ("W_z", "U_z")

    def __init__(self, input_size: int, hidden_size: int, **options) -> None:
        super().__init__(input_size, hidden_size, **options)
        n, m = self.hidden_size, self.input_size
        self.W_z, self.U_z, self.b_z = (
            self.uniform_parameter(n, n),
            self.uniform_parameter(n, m),
            self.gate_bias_parameter(n),
        )
        self.W_r, self.U_r, self.b_r = (
            self.uniform_parameter(n, n),
            self.uniform_parameter(n, m),
            self.bias_parameter(n),
        )
        self.W_h, self.U_h, self.b_h = (
            self.uniform_parameter(n, n),
            self.uniform_parameter(n, m),
            self.bias_parameter(n),
        )

    def _gates(self, x_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(z, r, the candidate's pre-activation W_h (r h) + U_h x + b_h)."""
        z = torch.sigmoid(self.affine(self.W_z, self.U_z, self.b_z, h, x_t))
        r = torch.sigmoid(self.affine(self.W_r, self.U_r, self.b_r, h, x_t))
        return z, r, self.affine(self.W_h, self.U_h, self.b_h, r * h, x_t)

    def _parts(self, x_t: Tensor, h: Tensor):
        z, r, pre = self._gates(x_t, h)
        cand, cache = self._candidate_cache(pre)
        return z, r, cand, cache

    def retention(self, x_t: Tensor, h: Tensor) -> Tensor:
        self._check_step_args(x_t, h)
        return 1 - torch.sigmoid(self.affine(self.W_z, self.U_z, self.b_z, h, x_t))

    def reset_gate(self, x_t: Tensor, h: Tensor) -> Tensor:
        """r = sigma(W_r h + U_r x + b_r), (B, n)."""
        self._check_step_args(x_t, h)
        return torch.sigmoid(self.affine(self.W_r, self.U_r, self.b_r, h, x_t))

    def step(self, x_t: Tensor, h: Tensor) -> Tensor:
        """h' = (1 - z) h + z n, as h + z (n - h)."""
        z, _, pre = self._gates(x_t, h)
        return torch.lerp(h, self.candidate(pre), z)

    def jacobian(self, x_t: Tensor, h: Tensor) -> Tensor:
        """J = diag(1-z) + diag((n - h) z (1-z)) W_z + diag(z) D L W_h [diag(r) + diag(h r (1-r)) W_r]."""
        self._check_step_args(x_t, h)
        z, r, cand, cache = self._parts(x_t, h)
        dz = (z * (1 - z)).unsqueeze(-1) * self.W_z
        dr = (r * (1 - r)).unsqueeze(-1) * self.W_r
        d_rh = torch.diag_embed(r) + h.unsqueeze(-1) * dr
        dcand = self._dcandidate(cache, self.W_h @ d_rh)
        return torch.diag_embed(1 - z) + (cand - h).unsqueeze(-1) * dz + z.unsqueeze(-1) * dcand

    def jacobian_diagonal(self, x_t: Tensor, h: Tensor) -> Tensor:
        """diag(J) in O(B n^2) (eq-jac-diagonal): M = W_h [diag(r) + diag(v) W_r] with v = h r (1-r) has
        M_ii = (W_h)_ii r_i + sum_j (W_h)_ij v_j (W_r)_ji and u^T M = (u^T W_h) r + ((u^T W_h) v)^T W_r."""
        self._check_step_args(x_t, h)
        z, r, cand, cache = self._parts(x_t, h)
        v = h * r * (1 - r)
        diag_M = torch.diagonal(self.W_h) * r + v @ (self.W_h * self.W_r.T).T

        def project(u: Tensor) -> Tensor:
            uW = u @ self.W_h
            return uW * r + (uW * v) @ self.W_r

        return (
            1
            - z
            + (cand - h) * z * (1 - z) * torch.diagonal(self.W_z)
            + z * self._dcandidate_diagonal(cache, diag_M, project)
        )


@register("lstm")
class LSTMCell(Cell):
    """LSTM over the joint state [h, c] (Hochreiter & Schmidhuber 1997, forget gate of Gers et al. 2000).

    i, f, o = sigma(W_* h + U_* x + b_*), c' = f c + i phi(LN(W_c h + U_c x + b_c)), h' = o tanh(c').
    Jacobian eq-jac-lstm, a (2n, 2n) block matrix; retention f. ``gate_init`` sets the forget bias to
    logit(1 - gate_init), so the retention starts at 1 - gate_init as for the other gated cells.
    """

    state_parts = 2
    gate_weights = ("W_f", "U_f")

    def __init__(self, input_size: int, hidden_size: int, **options) -> None:
        super().__init__(input_size, hidden_size, **options)
        n, m = self.hidden_size, self.input_size
        self.W_i, self.U_i, self.b_i = (
            self.uniform_parameter(n, n),
            self.uniform_parameter(n, m),
            self.bias_parameter(n),
        )
        self.W_f, self.U_f = self.uniform_parameter(n, n), self.uniform_parameter(n, m)
        self.b_f = self.gate_bias_parameter(n, retention=True)
        self.W_o, self.U_o, self.b_o = (
            self.uniform_parameter(n, n),
            self.uniform_parameter(n, m),
            self.bias_parameter(n),
        )
        self.W_c, self.U_c, self.b_c = (
            self.uniform_parameter(n, n),
            self.uniform_parameter(n, m),
            self.bias_parameter(n),
        )

    def _gates(self, x_t: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(i, f, o, the candidate's pre-activation W_c h + U_c x + b_c)."""
        i = torch.sigmoid(self.affine(self.W_i, self.U_i, self.b_i, h, x_t))
        f = torch.sigmoid(self.affine(self.W_f, self.U_f, self.b_f, h, x_t))
        o = torch.sigmoid(self.affine(self.W_o, self.U_o, self.b_o, h, x_t))
        return i, f, o, self.affine(self.W_c, self.U_c, self.b_c, h, x_t)

    def _parts(self, x_t: Tensor, h: Tensor, c: Tensor):
        i, f, o, pre = self._gates(x_t, h)
        cand, cache = self._candidate_cache(pre)
        c_new = f * c + i * cand
        return i, f, o, cand, cache, c_new

    def step(self, x_t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One LSTM step on the state (h, c): c' = f c + i phi(a), h' = o tanh(c')."""
        h, c = state
        i, f, o, pre = self._gates(x_t, h)
        c_new = f * c + i * self.candidate(pre)
        return o * torch.tanh(c_new), c_new

    def retention(self, x_t: Tensor, state: tuple[Tensor, Tensor]) -> Tensor:
        self._check_step_args(x_t, state)
        h, _ = state
        return torch.sigmoid(self.affine(self.W_f, self.U_f, self.b_f, h, x_t))

    def jacobian(self, x_t: Tensor, state: tuple[Tensor, Tensor]) -> Tensor:
        """[[dh'/dh, dh'/dc], [dc'/dh, dc'/dc]] with dc'/dc = diag(f), dh'/dc = diag(o tanh'(c') f),
        dc'/dh = diag(c f(1-f)) W_f + diag(phi i(1-i)) W_i + diag(i) D L W_c,
        dh'/dh = diag(tanh(c') o(1-o)) W_o + diag(o tanh'(c')) dc'/dh."""
        self._check_step_args(x_t, state)
        h, c = state
        i, f, o, cand, cache, c_new = self._parts(x_t, h, c)
        tc = torch.tanh(c_new)
        dtc = 1 - tc**2
        dc_dh = (
            (c * f * (1 - f)).unsqueeze(-1) * self.W_f
            + (cand * i * (1 - i)).unsqueeze(-1) * self.W_i
            + i.unsqueeze(-1) * self._dcandidate(cache, self.W_c)
        )
        dh_dh = (tc * o * (1 - o)).unsqueeze(-1) * self.W_o + (o * dtc).unsqueeze(-1) * dc_dh
        top = torch.cat([dh_dh, torch.diag_embed(o * dtc * f)], dim=-1)
        bottom = torch.cat([dc_dh, torch.diag_embed(f)], dim=-1)
        return torch.cat([top, bottom], dim=-2)

    def block_diagonals(self, x_t: Tensor, state: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        """The diagonals of the four n x n blocks of :meth:`jacobian`, each (B, n), in O(B n^2) (eq-jac-diagonal):
        "hh" (dh'/dh), "hc" (dh'/dc), "ch" (dc'/dh), "cc" (dc'/dc = f)."""
        self._check_step_args(x_t, state)
        h, c = state
        i, f, o, cand, cache, c_new = self._parts(x_t, h, c)
        tc = torch.tanh(c_new)
        dtc = 1 - tc**2
        diag_Wc = torch.diagonal(self.W_c).expand(h.shape)
        ch = (
            c * f * (1 - f) * torch.diagonal(self.W_f)
            + cand * i * (1 - i) * torch.diagonal(self.W_i)
            + i * self._dcandidate_diagonal(cache, diag_Wc, lambda v: v @ self.W_c)
        )
        return {"hh": tc * o * (1 - o) * torch.diagonal(self.W_o) + o * dtc * ch, "hc": o * dtc * f, "ch": ch, "cc": f}

    def jacobian_diagonal(self, x_t: Tensor, state: tuple[Tensor, Tensor]) -> Tensor:
        """diag(J) = [diag(dh'/dh), f] from :meth:`block_diagonals`."""
        blocks = self.block_diagonals(x_t, state)
        return torch.cat([blocks["hh"], blocks["cc"]], dim=-1)
