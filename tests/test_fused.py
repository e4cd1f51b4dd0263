"""The fused LSTM/GRU unrolls (hand-written BPTT) against the step-by-step autograd unroll of the same cells."""

import pytest
import torch

from learnability.cells import make_cell
from learnability.fastpaths import fused
from learnability.fastpaths.fused import gru_unroll, lstm_unroll, step_agreement
from learnability.training import SequenceModel, training_forward

F64 = torch.float64


def _weights(blocks: int, m: int, n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(blocks * n, m), (blocks * n, n), (blocks * n,)]
    return [torch.randn(*s, generator=g, dtype=F64).requires_grad_() for s in shapes]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradcheck_all_inputs(kind):
    """eq-lstm-bptt / eq-gru-bptt: the hand-written backward equals finite differences for xs, U, W, b, states."""
    B, T, m, n = 3, 6, 2, 4
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(B, T, m, generator=g, dtype=F64).requires_grad_()
    U, W, b = _weights(4 if kind == "lstm" else 3, m, n, seed=2)
    states = [torch.randn(B, n, generator=g, dtype=F64).requires_grad_() for _ in range(2 if kind == "lstm" else 1)]
    fn = lstm_unroll if kind == "lstm" else gru_unroll
    assert torch.autograd.gradcheck(fn, (xs, U, W, b, *states))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_unroll_matches_step_by_step(kind, bias):
    """fused.unroll == cell.unroll (the explicit step loop): hidden states and every parameter gradient."""
    B, T, m, n = 4, 9, 3, 5
    cell = make_cell(kind, m, n, dtype=F64, bias=bias, seed=0)
    g = torch.Generator().manual_seed(3)
    xs = torch.randn(B, T, m, generator=g, dtype=F64)
    target = torch.randn(B, T, n, generator=g, dtype=F64)
    state = cell.unflatten_state(torch.randn(B, cell.state_size, generator=g, dtype=F64))
    assert fused.supports(cell)
    gaps = step_agreement(cell, xs, target, state)
    assert gaps["hidden"] < 1e-12 and gaps["gradient"] < 1e-10, gaps


def test_step_agreement_sees_a_wrong_cell():
    """The agreement check is not vacuous: a cell whose fused path has the wrong forget bias is caught."""
    cell = make_cell("lstm", 2, 3, dtype=F64, seed=0)
    xs = torch.randn(2, 4, 2, generator=torch.Generator().manual_seed(0), dtype=F64)

    class Shifted(type(cell)):
        def unroll(self, x, state=None):  # the step loop with the wrong forget bias
            with torch.no_grad():
                self.b_f += 0.1
            try:
                return super().unroll(x, state)
            finally:
                with torch.no_grad():
                    self.b_f -= 0.1

    cell.__class__ = Shifted
    gaps = step_agreement(cell, xs, torch.zeros(2, 4, 3, dtype=F64))
    assert gaps["hidden"] > 1e-3
    with pytest.raises(ValueError, match="target must have shape"):
        step_agreement(cell, xs, torch.zeros(2, 4, 2, dtype=F64))


def test_float32_agrees_with_step_by_step():
    cell = make_cell("lstm", 3, 8, seed=0)
    xs = torch.randn(5, 40, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    torch.testing.assert_close(fused.unroll(cell, xs), cell.unroll(xs), rtol=0, atol=1e-5)


def test_training_forward_takes_the_fused_path_only_where_it_applies():
    """training_forward == model(xs) for every cell; the fused recurrence only for GRU/LSTM without LayerNorm on
    CPU float32/float64, and fused.unroll refuses the others with a clear error."""
    xs = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    for kind, layer_norm in (("gru", False), ("lstm", False), ("gru", True), ("multi", False)):
        model = SequenceModel(make_cell(kind, 2, 4, dtype=F64, seed=0, layer_norm=layer_norm), 1, seed=0)
        assert fused.supports(model.cell) == (kind in ("gru", "lstm") and not layer_norm)
        torch.testing.assert_close(training_forward(model, xs), model(xs), rtol=0, atol=1e-12)
        if not fused.supports(model.cell):
            with pytest.raises(ValueError, match="GRU or LSTM cell without LayerNorm"):
                fused.unroll(model.cell, xs)
    assert not fused.supports(make_cell("lstm", 2, 4, seed=0).to(torch.bfloat16))
    assert not fused.supports(make_cell("gru", 2, 4, seed=0).to("meta"))


def test_bad_arguments_raise():
    xs = torch.zeros(2, 3, 2, dtype=F64)
    U, W, b = (t.detach() for t in _weights(4, 2, 4, seed=0))
    h = torch.zeros(2, 4, dtype=F64)
    with pytest.raises(ValueError, match="weights must be"):
        lstm_unroll(xs, U[:-1], W, b, h, h)
    with pytest.raises(ValueError, match="initial states"):
        lstm_unroll(xs, U, W, b, h[:1], h)
    with pytest.raises(ValueError, match="xs must have shape"):
        lstm_unroll(xs[:, :0], U, W, b, h, h)
    with pytest.raises(ValueError, match="one dtype"):
        lstm_unroll(xs.float(), U, W, b, h, h)
    with pytest.raises(ValueError, match="float32 or float64"):
        lstm_unroll(*(t.bfloat16() for t in (xs, U, W, b, h, h)))
    with pytest.raises(ValueError, match="run on the CPU"):
        lstm_unroll(*(t.to("meta") for t in (xs, U, W, b, h, h)))
    with pytest.raises(ValueError, match="weights must be"):
        gru_unroll(xs, U, W, b, h)  # LSTM-sized weights for a GRU
    with pytest.raises(ValueError, match="xs must be a tensor"):
        make_cell("gru", 2, 4).unroll(torch.zeros(2, 3, 5))
