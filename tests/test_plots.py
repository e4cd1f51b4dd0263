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


# Part II figures
def test_panels_gives_each_group_its_own_y_scale_and_hides_spare_axes():
    lags = np.arange(1, 11)
    groups = {
        "steep": {"a": np.exp(-3.0 * lags), "b": np.exp(-2.0 * lags)},
        "flat": {"a": 1 + 0.01 * lags, "b": 1 + 0.02 * lags},
        "mid": {"a": lags**-1.0, "b": lags**-2.0},
        "last": {"a": lags, "b": 2.0 * lags},
    }
    fig = plots.panels(lags, groups, xlabel="lag", ylabel="f", logy=True, styles={"b": "--"})
    axes = fig.axes
    assert len(axes) == 6 and [ax.get_visible() for ax in axes] == [True] * 4 + [False] * 2
    assert [ax.get_title() for ax in axes[:4]] == list(groups)
    flat_low, flat_high = axes[1].get_ylim()
    assert flat_high / flat_low < 10  # not stretched over the steep panel's decades
    assert axes[0].get_legend() is not None and axes[1].get_legend() is None
    assert axes[0].get_lines()[1].get_linestyle() == "--"
    with pytest.raises(ValueError, match="empty"):
        plots.panels(lags, {}, xlabel="lag", ylabel="f")


def test_signal_and_tails_draws_the_bar_and_the_gaussian_index():
    lags = np.arange(1, 6)
    z = {"A": -np.array([9.0, 5, 3, 1, 0.5]), "B": np.array([4.0, 3, 2, 1, 1])}
    fig = plots.signal_and_tails(lags, z, 2.5, {"A": np.full(5, 1.8), "B": np.full(5, 1.9)})
    left, right = fig.axes
    assert np.all(left.get_lines()[0].get_ydata() > 0)  # |z|
    assert left.get_lines()[-1].get_ydata()[0] == 2.5 and right.get_lines()[-1].get_ydata()[0] == 2.0


def test_noise_floor_draws_envelope_floors_and_the_scatter():
    lags = np.arange(1, 10)
    f = np.exp(-lags / 3.0)
    floors = {100: f * 2, 10000: f / 2}
    fig = plots.noise_floor(lags, f, floors, {"A": (f, 5.0 * f**-2.0, 2.0)})
    top, bottom = fig.axes
    assert [ln.get_linestyle() for ln in top.get_lines()] == ["-", "--", "--"]
    assert len(bottom.get_lines()) == 2  # points and the theory line


def test_measured_windows_draws_both_definitions_and_checks_names():
    N = np.geomspace(10, 1e4, 5)
    bands = {"A": [(np.arange(5.0), np.ones(5)), (np.arange(5.0) / 2, np.zeros(5))]}
    fig = plots.measured_windows(N, bands, {"A": np.arange(5.0) + 1}, extrapolation=1000)
    left, right = fig.axes
    assert list(right.get_lines()[0].get_ydata()) == [0, 0.5, 1, 1.5, 2]
    assert left.get_lines()[-1].get_xdata()[0] == 1000  # the extrapolation mark
    with pytest.raises(ValueError, match="same architectures"):
        plots.measured_windows(N, bands, {"B": N}, extrapolation=1000)


def test_planted_maps_one_heatmap_per_architecture():
    lags = [1, 2, 4]
    fig = plots.planted_maps(lags, {"A": np.eye(3) * 20, "B": -np.eye(3)}, limit=12)
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert len(images) == 2 and images[0].get_clim() == (-12, 12)
    with pytest.raises(ValueError, match="empty"):
        plots.planted_maps(lags, {})


def test_retraining_draws_learned_and_predicted_per_architecture():
    rows = [
        {"architecture": a, "N": N, "measured": m, "predicted (initial)": p}
        for a in ("A", "B")
        for N, m, p in ((8, 0, 4), (32, 2, 8))
    ]
    ax = plots.retraining(rows)
    assert len(ax.get_lines()) == 4 and list(ax.get_lines()[1].get_ydata()) == [4, 8]
    with pytest.raises(ValueError, match="empty"):
        plots.retraining([])


def test_optimizer_windows_draws_envelopes_and_windows():
    lags, N = np.arange(1, 6), np.geomspace(10, 1e3, 4)
    envelopes = {"sgd": (np.exp(-lags), np.exp(-lags) / 2), "adam": (np.exp(-lags / 2), np.exp(-lags / 3))}
    windows = {name: (np.arange(4.0), np.arange(4.0) + 1) for name in envelopes}
    fig = plots.optimizer_windows(lags, envelopes, N, windows)
    left, right = fig.axes
    assert len(left.get_lines()) == 4 and right.get_lines()[1].get_linestyle() == ":"
    with pytest.raises(ValueError, match="same optimizers"):
        plots.optimizer_windows(lags, envelopes, N, {"sgd": windows["sgd"]})


def test_windows_by_alpha_one_panel_per_alpha_dots_and_lines():
    Ns = np.geomspace(10, 1e4, 4)
    numeric = {(name, a): np.arange(1.0, 5.0) * a for name in ("x", "y") for a in (1.5, 2.0)}
    fig = plots.windows_by_alpha(Ns, numeric, {k: v + 1 for k, v in numeric.items()})
    assert [ax.get_title() for ax in fig.axes] == [r"$\alpha = 1.5$", r"$\alpha = 2$"]
    assert len(fig.axes[0].get_lines()) == 4 and fig.axes[0].get_lines()[0].get_marker() == "o"
    with pytest.raises(ValueError, match="same"):
        plots.windows_by_alpha(Ns, numeric, {})


def test_calibration_example_draws_both_panels():
    from types import SimpleNamespace

    lags = np.arange(1, 6)
    N = np.array([1.0, 10, 100, np.inf, np.inf])
    example = SimpleNamespace(
        authors=N + 1, calibrated=N, N_true=N * 2, empirical=N, parametric_q=N, N_true_q=N * 3, q=1.9
    )
    left, right = plots.calibration_example(lags, example).axes
    assert len(left.get_lines()) == 3 and len(right.get_lines()) == 3
    assert list(left.get_lines()[2].get_ydata()[:3]) == [2, 20, 200]
