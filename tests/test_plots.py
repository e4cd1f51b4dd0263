"""Figure helpers: argument checks and what they draw."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from learnability import plots  # noqa: E402


def test_eigenvalue_paths_checks_shapes():
    eigs = np.array([[0.1 + 0.2j, 0.1 - 0.2j], [0.5 + 1j, 0.5 - 1j]])
    ax = plots.eigenvalue_paths([0.0, 1.0], eigs, top=1)
    assert len(ax.collections[0].get_offsets()) == 2  # one outlier per record
    with pytest.raises(ValueError, match="eigenvalues must have shape"):
        plots.eigenvalue_paths([0.0], eigs)


def test_curve_panels_draws_medians_bands_and_checks_shapes():
    x = np.arange(1, 6)
    runs = np.stack([x, 2 * x, 3 * x]).astype(float)  # three runs: median 2x, band x to 3x
    panels = {"a": {"runs": runs, "line": x**2}, "b": {"runs": runs, "line": x**3}, "c": {"runs": runs, "line": x}}
    axes = plots.curve_panels(x, panels, xlabel="lag", ylabel="y", columns=2, band=True, styles=("C0-", "C1--"))
    assert axes.shape == (2, 2) and not axes[1, 1].get_visible()
    median, line = axes[0, 1].get_lines()
    assert list(median.get_ydata()) == list(2.0 * x) and list(line.get_ydata()) == list(x**3.0)
    assert line.get_linestyle() == "--" and len(axes[0, 0].collections) == 1  # the band of the 2-D curve only
    assert axes[0, 0].get_legend() is not None and axes[0, 1].get_legend() is None  # same curves: one legend
    differing = plots.curve_panels(x, {"a": {"p": x}, "b": {"q": x}}, xlabel="lag", ylabel="y")
    assert all(ax.get_legend() is not None for ax in differing.flat)
    with pytest.raises(ValueError, match="has shape"):
        plots.curve_panels(x, {"a": {"short": x[:3]}}, xlabel="lag", ylabel="y")
    with pytest.raises(ValueError, match="at least one panel"):
        plots.curve_panels(x, {}, xlabel="lag", ylabel="y")


def test_sample_size_scatter_draws_points_and_theory_lines():
    import numpy as np

    f = np.exp(-np.arange(1, 11) / 3.0)
    N = 5.0 * f**-2.0
    N[0] = np.inf  # undetectable lag: left out
    ax = plots.sample_size_scatter({"a": (f, N, 2.0)})
    points, line = ax.get_lines()
    assert len(points.get_xdata()) == 9
    x, y = line.get_xdata(), line.get_ydata()
    assert np.allclose(np.diff(np.log(y)) / np.diff(np.log(x)), -2.0)
    assert np.allclose(y, 5.0 * x**-2.0)  # the points lie on the theory line exactly


def test_finite_sigma_draws_curves_and_times_and_checks_the_radii():
    t = np.linspace(0.0, 5.0, 6)
    curve = {"time": t, "loss": np.exp(-t)}
    runs = [
        {
            "sigma": s,
            "seed": seed,
            "gd": curve,
            "ode": curve,
            "theory": curve,
            "t50": {"gd": 1.0 + s, "ode": 1.0, "theory": 1.0 + s},
            "t10": {"gd": 2.0, "ode": 2.0, "theory": 2.0},
        }
        for s in (0.0, 0.5)
        for seed in (0, 1)
    ]
    fig = plots.finite_sigma(runs, shown=(0.5,), boundary=0.7)
    left, right = fig.axes
    assert len(left.get_lines()) == 3  # GD, theory, ODE
    gd_t50 = right.get_lines()[0]
    assert list(gd_t50.get_ydata()) == [1.0, 1.0, 1.5, 1.5]  # every radius and seed
    with pytest.raises(ValueError, match="no run at sigma"):
        plots.finite_sigma(runs, shown=(0.3,), boundary=0.7)
