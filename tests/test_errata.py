"""errata: the code's gate term is measurably wrong, and exactly right when the gate term vanishes."""

import pytest
import torch

from learnability import errata


def test_gate_term_error_is_positive_for_gated_cells():
    assert errata.gate_term_error("multi", hidden_size=16) > 1e-3
    assert errata.gate_term_error("scalar", hidden_size=16) > 1e-4


def test_gate_term_error_vanishes_without_gate_sensitivity(monkeypatch):
    """With gate weights zero the gate term is zero, so both variants coincide."""
    from learnability import cells

    make = cells.make_cell

    def zero_gate(*args, **kwargs):
        cell = make(*args, **kwargs)
        with torch.no_grad():
            cell.W_g.zero_()
        return cell

    monkeypatch.setattr(errata, "make_cell", zero_gate)
    assert errata.gate_term_error("multi", hidden_size=8) == 0.0


def test_bad_kind_raises():
    with pytest.raises(ValueError, match="concerns the 'scalar' and 'multi' cells"):
        errata.gate_term_error("gru")
