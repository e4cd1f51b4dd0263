"""Figure helpers: argument checks and what they draw."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from learnability import plots  # noqa: E402
from learnability.experiments.leaky_integrator import FiniteSigmaRun, FractionTimes, StiffRun  # noqa: E402
from learnability.experiments.rich_lazy import FullTraining  # noqa: E402
from learnability.experiments.trajectories import Descent, LossCurve, OutlierTrajectory, PairTrajectory, SampledDescent


@pytest.fixture(autouse=True)
def close_figures():
    """Each test's figures are closed after it, so the suite does not accumulate open pyplot figures."""
    yield
    matplotlib.pyplot.close("all")


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
    curve = LossCurve(t, np.exp(-t))
    runs = [
        FiniteSigmaRun(
            sigma=s,
            seed=seed,
            p0=1e-4,
            gd=curve,
            ode=curve,
            theory=curve,
            shift=-s,
            t90=FractionTimes(0.5, 0.5, 0.5),
            t50=FractionTimes(gd=1.0 + s, ode=1.0, theory=1.0 + s),
            t10=FractionTimes(2.0, 2.0, 2.0),
        )
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


# Part III figures

T3 = np.linspace(0.0, 2.0, 3)
EIGS3 = np.array([[0.1, -0.1], [0.4 + 0.2j, 0.4 - 0.2j], [0.7 + 1j, 0.7 - 1j]])


def _descent(loss=(1.0, 0.5, 0.1)):
    return Descent(T3, np.array(loss), EIGS3, np.array([0.0, 0.5, 1.0]), np.ones(3), np.ones(3), np.zeros(3))


def _ode():
    return OutlierTrajectory(T3, np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.3, 0.7]), np.array([1.0, 0.4, 0.0]))


def test_outlier_overlay_draws_descent_against_the_ode():
    axes = plots.outlier_overlay(_descent(), _ode(), target=0.7)
    assert [len(ax.get_lines()) for ax in axes] == [2, 3, 2]  # GD, ODE; plus the target line in the middle
    assert list(axes[1].get_lines()[0].get_ydata()) == [0.1, 0.4, 0.7]  # largest real eigenvalue
    assert list(axes[2].get_lines()[1].get_ydata()) == [0.0, 0.5, 1.0]  # the residue


def test_escape_times_draws_runs_and_the_formula_and_checks_shapes():
    s0s = [0.1, 0.01]
    ax = plots.escape_times(s0s, [[3.0, 3.1], [6.0, 6.1]], [[3.0, 3.0], [6.0, 6.0]], c_star=0.3)
    gd, ode, formula = ax.get_lines()
    assert list(gd.get_xdata()) == [0.1, 0.1, 0.01, 0.01] and list(gd.get_ydata()) == [3.0, 3.1, 6.0, 6.1]
    x, y = formula.get_xdata(), formula.get_ydata()
    assert np.allclose(y, 0.65 * np.log(2 / x**2))  # eq-escape-time at p0 = s0^2 / 2
    with pytest.raises(ValueError, match="must both have shape"):
        plots.escape_times(s0s, [[3.0], [6.0]], [[3.0, 3.0], [6.0, 6.0]], c_star=0.3)


def test_stiffness_runs_leaves_out_diverged_runs():
    runs = [StiffRun(0.8, LossCurve(T3, np.array([1.0, 0.1, 0.01])), None), StiffRun(2.0, None, "unstable")]
    ax = plots.stiffness_runs(runs)
    (line,) = ax.get_lines()
    assert list(line.get_ydata()) == [1.0, 0.1, 0.01] and ax.get_yscale() == "log"


def test_bptt_comparison_draws_sampled_population_and_gd_losses():
    sgd = SampledDescent(T3, np.array([1.2, 0.6, 0.2]), np.array([1.0, 0.5, 0.1]), EIGS3)
    ax = plots.bptt_comparison(sgd, _descent())
    sampled, along, gd = ax.get_lines()
    assert list(sampled.get_ydata()) == [1.2, 0.6, 0.2] and list(gd.get_ydata()) == [1.0, 0.5, 0.1]


def test_pair_learning_bulk_outliers_and_poles_online():
    zeros = np.zeros(3)
    flow = PairTrajectory(T3, zeros, zeros, zeros, zeros, zeros, np.array([1.0, 0.5, 0.0]), EIGS3, zeros)
    left, right = plots.pair_learning(flow, {"GD": _descent()}, saddle_loss=0.4, target=0.7 + 1j)
    assert len(left.get_lines()) == 3  # GD, pair flow, saddle
    assert len(right.collections[0].get_offsets()) == 6  # two eigenvalues per record
    assert list(right.get_lines()[0].get_ydata()) == [1.0, -1.0]  # the target pair
    ax = plots.bulk_outliers(_descent(), radius=0.5, target=0.7 + 1j)
    disk, target = ax.get_lines()
    assert np.allclose(np.hypot(disk.get_xdata(), disk.get_ydata()), 0.5)
    left, right = plots.poles_online(_descent(), _ode(), targets=(0.8, -1.0))
    assert len(right.get_lines()) == 2 + 1 + 2  # two eigenvalue paths, the ODE, two targets


def test_crossover_medians_and_prediction_inside_the_bulk():
    c_grid = (0.25, 0.75, 1.25)
    rel = {0.5: np.array([[[1.0, 0.5], [1.0, 1e-4], [1.0, 1e-3]], [[1.0, 0.7], [1.0, 3e-4], [1.0, 3e-3]]])}
    axes = plots.crossover(c_grid, rel, rel, t_index=1, prediction=lambda c, s: 10 * c)
    loss = axes[0].get_lines()[0]
    assert np.allclose(loss.get_ydata(), [0.6, 2e-4, 2e-3])  # medians over the two seeds
    prediction = axes[1].get_lines()[1]
    assert list(prediction.get_xdata()) == [0.75, 1.25] and list(prediction.get_ydata()) == [7.5, 12.5]
    with pytest.raises(ValueError, match="same radii"):
        plots.crossover(c_grid, rel, {0.3: rel[0.5]}, t_index=1, prediction=lambda c, s: 1.0)


def test_regime_spectra_one_panel_per_radius():
    run = FullTraining(T3, np.ones(3), np.ones(3), 0.01, np.array([0.1, -0.1]), np.array([0.7, 0.0]), np.ones(6))
    axes = plots.regime_spectra({0.1: run, 0.9: run}, target=0.7 + 0j)
    assert [ax.get_title() for ax in axes] == [r"$\sigma=0.1$", r"$\sigma=0.9$"]
