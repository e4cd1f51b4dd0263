"""A reader's cells file, written to the cell contract of learnability.cells with its public building blocks only: the
tests import it, and the CLI tests pass it to ``learnability --cells tests/user_cells.py ...``.

``test_mgu``: the minimal gated unit of book/extending.md (one gate f as update and reset gate), with a retention.
``test_mgu_tanh``: the same with a bare tanh candidate, so it cannot honour ``layer_norm=True``, and no gate_weights.
``test_blend``: a gate-free cell h' = (h + phi(a)) / 2 with neither retention nor jacobian_terms.
"""

import torch

from learnability import cells


@cells.register("test_mgu", replace=True)
class MinimalGatedUnit(cells.Cell):
    """f = sigma(W_f h + U_f x + b_f), h' = (1 - f) h + f phi(LN(W (f h) + U x + b))."""

    gate_weights = ("W_f", "U_f")

    def __init__(self, input_size, hidden_size, **options):
        super().__init__(input_size, hidden_size, **options)
        n, m = hidden_size, input_size
        self.W_f, self.U_f = self.uniform_parameter(n, n), self.uniform_parameter(n, m)
        self.b_f = self.gate_bias_parameter(n)
        self.W, self.U, self.b = self.uniform_parameter(n, n), self.uniform_parameter(n, m), self.bias_parameter(n)

    def gate(self, x, h):
        return torch.sigmoid(self.affine(self.W_f, self.U_f, self.b_f, h, x))

    def step(self, x, h):
        f = self.gate(x, h)
        return torch.lerp(h, self.candidate(self.affine(self.W, self.U, self.b, f * h, x)), f)

    def retention(self, x, h):
        return 1 - self.gate(x, h)


@cells.register("test_mgu_tanh", replace=True)
class TanhMinimalGatedUnit(MinimalGatedUnit):
    """The minimal gated unit with tanh in place of ``candidate`` (no LayerNorm), naming no gate weights."""

    gate_weights = ()

    def step(self, x, h):
        f = self.gate(x, h)
        return torch.lerp(h, torch.tanh(self.affine(self.W, self.U, self.b, f * h, x)), f)


@cells.register("test_blend", replace=True)
class Blend(cells.Cell):
    """h' = (h + phi(LN(W h + U x + b))) / 2: no gate, no retention method."""

    def __init__(self, input_size, hidden_size, **options):
        super().__init__(input_size, hidden_size, **options)
        n, m = hidden_size, input_size
        self.W, self.U, self.b = self.uniform_parameter(n, n), self.uniform_parameter(n, m), self.bias_parameter(n)

    def step(self, x, h):
        return 0.5 * (h + self.candidate(self.affine(self.W, self.U, self.b, h, x)))
