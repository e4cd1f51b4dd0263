"""Figure helpers: argument checks and what they draw."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from learnability import plots  # noqa: E402


def test_eigenvalue_paths_checks_shapes():
    eigs = np.array([[0.1 + 0.2j, 0.1 - 0.2j], [0.5 + 1j, 0.5 - 1j]])
    ax = plots.eigenvalue_paths([0.0, 1.0], eigs, top=1)
    assert len(ax.collections[0].get_offsets()) == 2          # one outlier per record
    with pytest.raises(ValueError, match="eigenvalues must have shape"):
        plots.eigenvalue_paths([0.0], eigs)
