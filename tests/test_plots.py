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


def test_sample_size_scatter_draws_points_and_theory_lines():
    import numpy as np

    f = np.exp(-np.arange(1, 11) / 3.0)
    N = 5.0 * f ** -2.0
    N[0] = np.inf                                               # undetectable lag: left out
    ax = plots.sample_size_scatter({"a": (f, N, 2.0)})
    points, line = ax.get_lines()
    assert len(points.get_xdata()) == 9
    x, y = line.get_xdata(), line.get_ydata()
    assert np.allclose(np.diff(np.log(y)) / np.diff(np.log(x)), -2.0)
    assert np.allclose(y, 5.0 * x ** -2.0)                      # the points lie on the theory line exactly
