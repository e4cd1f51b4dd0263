"""Figure helpers shared by the chapters, in one style. Each returns the matplotlib Axes it drew on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "legend.frameon": False,
}
plt.rcParams.update(STYLE)


def _axes(ax: Axes | None) -> Axes:
    return plt.subplots()[1] if ax is None else ax


def _numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=float)


def ccdf(
    samples: Mapping[str, object],
    *,
    xlabel: str,
    ax: Axes | None = None,
    logx: bool = True,
    styles: Mapping[str, Mapping[str, object]] | None = None,
) -> Axes:
    """Empirical complementary CDFs P(X > x), one curve per named sample (log-log axes by default).

    ``styles`` maps a sample's name to keyword arguments of ``Axes.step`` (colour, linestyle, ...).
    """
    ax = _axes(ax)
    for name, values in samples.items():
        v = np.sort(_numpy(values).reshape(-1))
        if v.size == 0:
            raise ValueError(f"sample {name!r} is empty")
        ax.step(v, 1.0 - np.arange(v.size) / v.size, where="post", label=name, **dict((styles or {}).get(name, {})))
    ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction above")
    ax.legend()
    return ax


def singular_values(spectra: Mapping[str, object], *, ax: Axes | None = None, ylabel: str = r"$\sigma_i$") -> Axes:
    """Singular values (sorted, one curve per name) on a log axis, to read off ranks."""
    ax = _axes(ax)
    for name, values in spectra.items():
        v = np.sort(_numpy(values).reshape(-1))[::-1]
        ax.semilogy(np.arange(1, v.size + 1), np.maximum(v, 1e-300), "o-", ms=3, label=name)
    ax.set_xlabel("index $i$")
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


def matrices(panels: Mapping[str, object], *, cmap: str = "RdBu_r", width: float = 2.4) -> np.ndarray:
    """Side-by-side images of matrices with a symmetric colour scale per panel; returns the array of Axes."""
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), width + 0.4), squeeze=False)
    for ax, (name, m) in zip(axes[0], panels.items()):
        m = _numpy(m)
        lim = max(float(np.abs(m).max()), 1e-300)
        ax.imshow(m, cmap=cmap, vmin=-lim, vmax=lim)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    fig.tight_layout()
    return axes[0]


def curves(
    x: Sequence[float],
    ys: Mapping[str, object],
    *,
    xlabel: str,
    ylabel: str,
    ax: Axes | None = None,
    logy: bool = False,
    styles: Mapping[str, str] | None = None,
) -> Axes:
    """Several curves over one x axis (theory as dashed lines by passing styles={name: '--'})."""
    ax = _axes(ax)
    for name, y in ys.items():
        ax.plot(_numpy(x), _numpy(y), (styles or {}).get(name, "-"), label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


def heatmap(
    values,
    *,
    x: Sequence[float],
    y: Sequence[float],
    xlabel: str,
    ylabel: str,
    ax: Axes | None = None,
    log: bool = True,
    cmap: str = "viridis",
    colorbar: str = "",
    symmetric: float | None = None,
    categorical_x: bool = False,
) -> Axes:
    """Image of values[i, j] over y[i] (rows) and x[j] (columns); log10 colour scale by default. ``symmetric``: a
    linear scale on [-symmetric, symmetric] (for signed values with a diverging ``cmap``); ``categorical_x``: one
    equal-width column per x value, labelled by it (for unevenly spaced x)."""
    ax = _axes(ax)
    v = _numpy(values)
    v = np.log10(np.maximum(v, 1e-300)) if log else v
    limits = {} if symmetric is None else {"vmin": -symmetric, "vmax": symmetric}
    columns = (-0.5, len(x) - 0.5) if categorical_x else (x[0] - 0.5, x[-1] + 0.5)
    im = ax.imshow(v, aspect="auto", origin="lower", cmap=cmap, extent=(*columns, -0.5, len(y) - 0.5), **limits)
    if categorical_x:
        ax.set_xticks(range(len(x)))
        ax.set_xticklabels([str(t) for t in x])
    ax.set_yticks(range(len(y)))
    ax.set_yticklabels([str(t) for t in y])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(False)
    ax.figure.colorbar(im, ax=ax, label=colorbar or ("log10 value" if log else ""))
    return ax


def curve_panels(
    x: Sequence[float],
    panels: Mapping[str, Mapping[str, object]],
    *,
    xlabel: str,
    ylabel: str,
    logy: bool = False,
    styles: Sequence[str] | None = None,
    band: bool = False,
    columns: int = 3,
    sharey: bool = False,
) -> np.ndarray:
    """One panel per name of ``panels`` (titled by it), each with one curve per name of its mapping over the same x.

    A curve given as a 2-D array (runs, len(x)) is drawn as its median over runs and, with ``band``, the range from
    its minimum to its maximum over runs as a shaded band. ``styles`` are format strings ("C1--") by the curve's
    position in its panel (default: colour C0, C1, ... solid). The legend goes on the first panel when every panel
    has the same curves, else on each panel. Returns the array of Axes (rows, columns); unused ones are hidden."""
    if not panels or columns < 1:
        raise ValueError("need at least one panel and columns >= 1")
    xs = _numpy(x)
    rows = -(-len(panels) // columns)
    width = min(columns, len(panels))
    fig, axes = plt.subplots(rows, width, figsize=(3.4 * width, 2.8 * rows), sharex=True, sharey=sharey, squeeze=False)
    same_curves = len({tuple(curves) for curves in panels.values()}) == 1
    for i, (ax, (title, curves)) in enumerate(zip(axes.flat, panels.items())):
        for j, (name, values) in enumerate(curves.items()):
            y = _numpy(values)
            if y.shape[-1] != xs.size or y.ndim > 2:
                raise ValueError(f"curve {name!r} of panel {title!r} has shape {y.shape}; expected (runs, {xs.size})")
            if band and y.ndim == 2:
                ax.fill_between(xs, y.min(0), y.max(0), alpha=0.3, color=f"C{j}", lw=0)
            fmt = styles[j] if styles is not None else f"C{j}-"
            ax.plot(xs, np.median(y, 0) if y.ndim == 2 else y, fmt, ms=3, label=name)
        if logy:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        if i == 0 or not same_curves:
            ax.legend(fontsize=7)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    fig.tight_layout()
    return axes


def spectrum(
    spectra: Mapping[str, object],
    *,
    radius: float | None = None,
    ax: Axes | None = None,
    marks: Mapping[str, complex] | None = None,
) -> Axes:
    """Eigenvalues in the complex plane, one marker set per named spectrum; ``radius`` draws the bulk disk
    |z| = radius, ``marks`` named target points (crosses), and the stability edge Re z = 1 is dotted."""
    ax = _axes(ax)
    for (name, eigs), marker in zip(spectra.items(), ("o", ".", "s", "^")):
        z = np.asarray(eigs, dtype=complex).ravel()
        ax.plot(
            z.real,
            z.imag,
            marker,
            ms=4 if marker == "o" else 6,
            alpha=0.7,
            label=name,
            fillstyle="none" if marker == "o" else "full",
        )
    if radius:
        theta = np.linspace(0, 2 * np.pi, 200)
        ax.plot(radius * np.cos(theta), radius * np.sin(theta), "k--", lw=0.8, label=rf"bulk $|z|={radius:g}$")
    for name, point in (marks or {}).items():
        ax.plot([point.real], [point.imag], "kx", ms=9, mew=2, label=name)
    ax.axvline(1.0, color="k", ls=":", lw=0.8)
    ax.set_xlabel(r"Re $\lambda$")
    ax.set_ylabel(r"Im $\lambda$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=8)
    return ax


def eigenvalue_paths(
    time, eigenvalues, *, ax: Axes | None = None, top: int | None = None, cmap: str = "viridis"
) -> Axes:
    """Eigenvalues recorded over training (eigenvalues[i] at time[i]) as points coloured by time; ``top`` keeps
    the ``top`` eigenvalues of largest modulus at each record (the outliers)."""
    ax = _axes(ax)
    time = _numpy(time)
    z = np.asarray(eigenvalues, dtype=complex)
    if z.ndim != 2 or z.shape[0] != time.size:
        raise ValueError(f"eigenvalues must have shape (len(time), n); got {z.shape} for {time.size} times")
    if top is not None:
        order = np.argsort(-np.abs(z), axis=1)[:, :top]
        z = np.take_along_axis(z, order, axis=1)
    tt = np.repeat(time, z.shape[1])
    sc = ax.scatter(z.real.ravel(), z.imag.ravel(), c=tt, s=6, cmap=cmap)
    ax.figure.colorbar(sc, ax=ax, label="training time")
    ax.set_xlabel(r"Re $\lambda$")
    ax.set_ylabel(r"Im $\lambda$")
    return ax


def sample_size_scatter(points: Mapping[str, tuple[object, object, float]], *, ax: Axes | None = None) -> Axes:
    """N_hat(l) against f_hat(l) on log-log axes, one colour per named run, each with a dashed line of the theory's
    slope -kappa (eq-sample-size-measured) through the geometric centre of its points. ``points`` maps a name to
    (f, N, kappa); lags with infinite or non-positive N or f are left out."""
    ax = _axes(ax)
    for k, (name, (f, N, kappa)) in enumerate(points.items()):
        f, N = _numpy(f), _numpy(N)
        ok = np.isfinite(N) & (N > 0) & (f > 0)
        if not ok.any():
            continue
        ax.loglog(f[ok], N[ok], ".", color=f"C{k}", label=name)
        x0, y0 = np.exp(np.log(f[ok]).mean()), np.exp(np.log(N[ok]).mean())
        xs = np.geomspace(f[ok].min(), f[ok].max(), 10)
        ax.loglog(xs, y0 * (xs / x0) ** -kappa, "--", color=f"C{k}", lw=1)
    ax.set_xlabel(r"$\hat f(\ell)$")
    ax.set_ylabel(r"$\hat N(\ell)$")
    ax.legend(fontsize=8)
    return ax


def finite_sigma(runs: Sequence, *, shown: Sequence[float], boundary: float) -> plt.Figure:
    """Two panels for the finite-sigma runs (``FiniteSigmaRun``) of ``experiments.leaky_integrator``
    (eq-escape-sigma). Left: loss curves of gradient descent (solid), the finite-sigma theory (dotted) and the
    sigma -> 0 outlier ODE (black dashed) for the first seed at the radii ``shown``. Right: times to 1/2 (circles) and
    1/10 (squares) of the initial loss over sigma and seeds against the theory (lines) and the ODE (dashed); a grey
    line at sigma = ``boundary``."""
    missing = [s for s in shown if not any(r.sigma == s for r in runs)]
    if missing:
        raise ValueError(f"no run at sigma = {missing}; the runs have {sorted({r.sigma for r in runs})}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    first = min(r.seed for r in runs)
    for i, sigma in enumerate(shown):
        run = next(r for r in runs if r.sigma == sigma and r.seed == first)
        left.plot(run.gd.time, run.gd.loss, f"C{i}-", label=rf"GD, $\sigma={sigma:g}$")
        left.plot(run.theory.time, run.theory.loss, f"C{i}:", lw=2)
    left.plot(run.ode.time, run.ode.loss, "k--", label=r"ODE ($\sigma\to0$)")
    left.set_xlabel("t")
    left.set_ylabel("loss")
    left.legend(fontsize=8)
    sigmas = sorted({r.sigma for r in runs})
    for j, (key, marker) in enumerate((("t50", "o"), ("t10", "s"))):
        right.plot(
            [r.sigma for r in runs],
            [getattr(r, key).gd for r in runs],
            f"C{j}{marker}",
            fillstyle="none",
            label=f"GD, {key}",
        )
        mean = {
            model: [np.mean([getattr(getattr(r, key), model) for r in runs if r.sigma == s]) for s in sigmas]
            for model in ("theory", "ode")
        }
        right.plot(sigmas, mean["theory"], f"C{j}-", label=f"theory, {key}")
        right.plot(sigmas, mean["ode"], f"C{j}--", lw=1)
    right.axvline(boundary, color="0.6", lw=1)
    right.set_xlabel(r"$\sigma$")
    right.set_ylabel("time")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def cell_comparison(reports: Mapping[str, Mapping], *, highlight: str) -> plt.Figure:
    """Two panels for reports of :func:`learnability.extension.cell_report`: exact envelopes f(l)/f(1) against the
    lag (left; dashed, the ``highlight`` cell's zeroth-order envelope when it has one) and the window H_N against N
    (right); the ``highlight`` cell is drawn thicker."""
    if highlight not in reports:
        raise ValueError(f"highlight {highlight!r} is not among the reports {list(reports)}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, (kind, r) in enumerate(reports.items()):
        width = 2.5 if kind == highlight else 1
        left.semilogy(r["lags"], r["envelopes"]["exact"], color=f"C{i}", lw=width, label=kind)
        right.semilogx(r["Ns"], r["windows"], "o-", color=f"C{i}", ms=3, lw=width, label=kind)
        if kind == highlight and "order 0" in r["envelopes"]:
            left.semilogy(r["lags"], r["envelopes"]["order 0"], f"C{i}--", lw=1)
    left.set_xlabel(r"lag $\ell$")
    left.set_ylabel(r"$f(\ell)/f(1)$")
    left.legend()
    right.set_xlabel("N")
    right.set_ylabel(r"$\mathcal{H}_N$")
    fig.tight_layout()
    return fig


# Part II figures
def panels(
    x: Sequence[float],
    groups: Mapping[str, Mapping[str, object]],
    *,
    xlabel: str,
    ylabel: str,
    logy: bool = False,
    styles: Mapping[str, str] | None = None,
    ncols: int = 3,
) -> plt.Figure:
    """Small multiples: one panel per named group of curves over the same x (:func:`curves` in each), every panel
    with its own y-scale so curves that differ by decades between groups stay legible; the legend is drawn once,
    in the first panel. ``styles`` maps a curve's name to its matplotlib format."""
    if not groups:
        raise ValueError("groups is empty: nothing to draw")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1; got {ncols}")
    ncols = min(ncols, len(groups))
    nrows = -(-len(groups) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.7 * ncols, 2.9 * nrows), squeeze=False)
    for k, (ax, (title, ys)) in enumerate(zip(axes.flat, groups.items())):
        curves(x, ys, xlabel=xlabel, ylabel=ylabel if k % ncols == 0 else "", ax=ax, logy=logy, styles=styles)
        ax.set_title(title)
        if k:
            ax.get_legend().remove()
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def signal_and_tails(
    lags: Sequence[float], z: Mapping[str, object], z_crit: float, alpha: Mapping[str, object]
) -> plt.Figure:
    """Two panels of per-lag estimates, one curve per named run. Left: the signal in standard errors |z| =
    |m_hat| / se on a log axis with the detection bar ``z_crit`` (dashed); lags below it are undetectable.
    Right: the per-lag tail index alpha_hat(l), with the Gaussian value 2 dotted."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.4))
    curves(
        lags,
        {k: np.abs(_numpy(v)) for k, v in z.items()},
        xlabel=r"lag $\ell$",
        ylabel=r"$|\hat m|/\widehat{\rm se}$",
        ax=left,
        logy=True,
    )
    left.axhline(z_crit, color="k", ls="--", lw=1)
    curves(lags, alpha, xlabel=r"lag $\ell$", ylabel=r"$\hat\alpha(\ell)$", ax=right)
    right.axhline(2.0, color="k", ls=":", lw=1)
    right.get_legend().remove()
    fig.tight_layout()
    return fig


def noise_floor(
    lags: Sequence[float],
    envelope: object,
    floors: Mapping[float, object],
    points: Mapping[str, tuple[object, object, float]],
) -> plt.Figure:
    """Two panels for the noise-floor view (eq-noise-floor). Top: one run's envelope f_hat(l) and its noise floor
    at each sample size N of ``floors`` {N: floor(l)} (dashed; NaN or inf where the lag is undetectable). Bottom:
    :func:`sample_size_scatter` of ``points``."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 7))
    ys = {r"$\hat f(\ell)$": envelope, **{f"floor, N = {N:g}": floor for N, floor in floors.items()}}
    styles = {name: "--" for name in ys if name.startswith("floor")}
    curves(lags, ys, xlabel=r"lag $\ell$", ylabel="envelope level", logy=True, ax=top, styles=styles)
    sample_size_scatter(points, ax=bottom)
    fig.tight_layout()
    return fig


def measured_windows(
    N_grid: Sequence[float],
    bands: Mapping[str, Sequence[tuple[object, object]]],
    theory: Mapping[str, object],
    *,
    extrapolation: float,
) -> plt.Figure:
    """Measured windows H_N against N (eq-window-measured), one colour per architecture, in two panels: the
    largest detectable lag (left) and the first undetectable lag - 1 (right). ``bands`` maps an architecture to
    [(mean, sd) of the left definition, (mean, sd) of the right] over seeds, drawn as a line with a +-1 sd band;
    ``theory`` maps it to the theory's window (eq-window), dashed in both; a dotted line at N = ``extrapolation``
    (the diagnostic set's size: to its right the windows extrapolate)."""
    if set(theory) != set(bands):
        raise ValueError(f"bands and theory must name the same architectures; got {list(bands)} and {list(theory)}")
    N = _numpy(N_grid)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for k, (arch, pair) in enumerate(bands.items()):
        if len(pair) != 2:
            raise ValueError(f"bands[{arch!r}] must hold two (mean, sd) pairs; got {len(pair)}")
        for ax, (mean, sd) in zip(axes, pair):
            mean, sd = _numpy(mean), _numpy(sd)
            ax.plot(N, mean, color=f"C{k}", label=arch)
            ax.fill_between(N, mean - sd, mean + sd, color=f"C{k}", alpha=0.2, lw=0)
            ax.plot(N, _numpy(theory[arch]), "--", color=f"C{k}", lw=1)
    for ax, title in zip(axes, ("largest detectable lag", "first undetectable lag - 1")):
        ax.set_xscale("log")
        ax.set_xlabel("$N$")
        ax.set_title(title)
        ax.axvline(extrapolation, color="k", ls=":", lw=1)
    axes[0].set_ylabel(r"$\hat{\mathcal{H}}_N$")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def planted_maps(lags: Sequence[int], z: Mapping[str, object], *, limit: float = 12.0) -> plt.Figure:
    """One :func:`heatmap` per architecture of the planted-lag control: z[arch][i, j] = m_hat / se at grid lag
    lags[j] for the task with the single planted lag lags[i], on a diverging scale clipped at +-``limit``."""
    if not z:
        raise ValueError("z is empty: nothing to draw")
    fig, axes = plt.subplots(1, len(z), figsize=(4 * len(z), 3.4), squeeze=False)
    for ax, (arch, values) in zip(axes[0], z.items()):
        heatmap(
            values,
            x=lags,
            y=lags,
            xlabel=r"grid lag $\ell$",
            ylabel=r"planted lag $\ell^\ast$",
            ax=ax,
            log=False,
            cmap="RdBu_r",
            symmetric=limit,
            categorical_x=True,
            colorbar=r"$\hat m/\widehat{\rm se}$",
        )
        ax.set_title(arch)
    fig.tight_layout()
    return fig


def retraining(rows: Sequence[Mapping]) -> Axes:
    """The retraining validation: per architecture, the largest task lag learned by networks retrained on N
    sequences (solid, circles) against the window predicted from the initial network (dashed, squares); ``rows``
    are those of :func:`learnability.window_analysis.retraining_rows` ("architecture", "N", "measured",
    "predicted (initial)")."""
    if not rows:
        raise ValueError("rows is empty: nothing to draw")
    ax = _axes(None)
    for k, arch in enumerate(dict.fromkeys(r["architecture"] for r in rows)):
        sub = [r for r in rows if r["architecture"] == arch]
        N = [r["N"] for r in sub]
        ax.plot(N, [r["measured"] for r in sub], "o-", color=f"C{k}", label=f"{arch}: learned")
        ax.plot(N, [r["predicted (initial)"] for r in sub], "s--", color=f"C{k}", label=f"{arch}: predicted")
    ax.set_xscale("log")
    ax.set_xlabel("training sequences $N$")
    ax.set_ylabel("horizon (lag)")
    ax.legend(fontsize=8)
    return ax


def optimizer_windows(
    lags: Sequence[float],
    envelopes: Mapping[str, tuple[object, object]],
    N_grid: Sequence[float],
    windows: Mapping[str, tuple[object, object]],
) -> plt.Figure:
    """Two panels per optimizer of a sweep, one colour each. Left: the optimizer-aware envelopes (eq-gelr),
    ``envelopes[name] = (row-mean rates, Rayleigh rates)``, solid and dashed. Right: the measured window H_N
    against N, ``windows[name] = (from psi, from psi with Lambda inside)``, solid and dotted."""
    if set(envelopes) != set(windows):
        raise ValueError(f"envelopes and windows must name the same optimizers; got {list(envelopes)}, {list(windows)}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.4))
    for k, name in enumerate(envelopes):
        row_mean, rayleigh = envelopes[name]
        left.semilogy(_numpy(lags), _numpy(row_mean), color=f"C{k}", label=name)
        left.semilogy(_numpy(lags), _numpy(rayleigh), "--", color=f"C{k}")
        plain, aware = windows[name]
        right.plot(_numpy(N_grid), _numpy(plain), color=f"C{k}", label=name)
        right.plot(_numpy(N_grid), _numpy(aware), ":", color=f"C{k}", lw=2)
    left.set_xlabel(r"lag $\ell$")
    left.set_ylabel(r"$\sum_q|\Lambda^{(q)}\mu^{(q)}|$")
    left.legend(fontsize=8)
    right.set_xscale("log")
    right.set_xlabel("$N$")
    right.set_ylabel(r"$\hat{\mathcal{H}}_N$")
    fig.tight_layout()
    return fig


def windows_by_alpha(
    Ns: Sequence[float],
    numeric: Mapping[tuple[str, float], object],
    formula: Mapping[tuple[str, float], object],
) -> plt.Figure:
    """One panel per tail index alpha (log-log, shared y): the window H_N against N for every named case, numeric
    roots as dots and the closed form as a line of the same colour; ``numeric`` and ``formula`` are keyed by
    (name, alpha), as :func:`learnability.spectra.windows_over_N` returns them."""
    if not numeric or set(numeric) != set(formula):
        raise ValueError("numeric and formula must be non-empty and keyed by the same (name, alpha) pairs")
    names = list(dict.fromkeys(name for name, _ in numeric))
    alphas = list(dict.fromkeys(alpha for _, alpha in numeric))
    fig, axes = plt.subplots(1, len(alphas), figsize=(3.6 * len(alphas), 3.4), sharey=True, squeeze=False)
    for ax, alpha in zip(axes[0], alphas):
        for i, name in enumerate(names):
            ax.plot(_numpy(Ns), _numpy(numeric[name, alpha]), f"C{i}o", ms=3, label=name)
            ax.plot(_numpy(Ns), _numpy(formula[name, alpha]), f"C{i}-", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="$N$", title=rf"$\alpha = {alpha:g}$")
    axes[0][0].set_ylabel(r"$\mathcal{H}_N$")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def calibration_example(lags: Sequence[float], example) -> plt.Figure:
    """Two panels for one draw of the calibration (an ``experiments.calibration.Example``). Left: the authors' and
    the calibrated N_hat(l) (markers) against the true N(l) (black). Right: the subsampling N_emp(l)
    (eq-sample-size-empirical) against the calibrated estimate and the truth at the detector's threshold q."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    curves(
        lags,
        {"authors": example.authors, "calibrated": example.calibrated, "true N": example.N_true},
        xlabel=r"lag $\ell$",
        ylabel=r"$\hat N(\ell)$",
        ax=left,
        logy=True,
        styles={"authors": "o", "calibrated": "s", "true N": "k-"},
    )
    at_q = {"subsampling": example.empirical, "parametric, eps = q": example.parametric_q}
    curves(
        lags,
        {**at_q, "true N, eps = q": example.N_true_q},
        xlabel=r"lag $\ell$",
        ylabel=r"$N_{\rm emp}(\ell)$",
        ax=right,
        logy=True,
        styles={"subsampling": "o", "parametric, eps = q": "s", "true N, eps = q": "k-"},
    )
    fig.tight_layout()
    return fig


# Part III figures


def _finish(fig: plt.Figure, axes: Sequence[Axes], xlabel: str = "t") -> None:
    for ax in axes:
        ax.set_xlabel(xlabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()


def outlier_overlay(gd, ode, *, target: float) -> np.ndarray:
    """Three panels of full gradient descent (a ``Descent`` of ``experiments.trajectories``, solid) against the outlier
    ODE (an ``OutlierTrajectory``, dashed; eq-outlier-ode) over time: the loss; the largest real eigenvalue of W and
    the ODE's outlier lambda, with ``target`` (1 - c_star) dotted; u . v and the residue p. Returns the Axes."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    panels = (
        ("loss", gd.loss, ode.loss, "GD", "ODE"),
        ("outlier", gd.eigenvalues.real.max(axis=1), ode.outlier, r"GD: max Re $\lambda(W)$", r"ODE: $\lambda$"),
        ("residue", gd.uv, ode.residue, r"GD: $u\cdot v$", r"ODE: $p$"),
    )
    for ax, (ylabel, full, reduced, full_name, reduced_name) in zip(axes, panels):
        ax.plot(gd.time, full, "-", label=full_name)
        ax.plot(ode.time, reduced, "--", label=reduced_name)
        ax.set_ylabel(ylabel)
    axes[1].axhline(target, color="k", ls=":", lw=0.8)
    _finish(fig, axes)
    return axes


def escape_times(s0s: Sequence[float], t_gd, t_ode, *, c_star: float, ax: Axes | None = None) -> Axes:
    """Time to half the initial loss against the initial scale s0 (log axis): ``t_gd`` and ``t_ode`` are (len(s0s),
    seeds) arrays of gradient descent (dots) and the outlier ODE (crosses); the line is the escape time
    eq-escape-time at kappa = 1 with p0 = s0^2 / 2."""
    t_gd, t_ode = _numpy(t_gd), _numpy(t_ode)
    if t_gd.ndim != 2 or t_gd.shape != t_ode.shape or t_gd.shape[0] != len(s0s):
        raise ValueError(f"t_gd and t_ode must both have shape (len(s0s), seeds); got {t_gd.shape}, {t_ode.shape}")
    ax = _axes(ax)
    column = np.repeat(np.asarray(s0s, dtype=float), t_gd.shape[1])
    ax.plot(column, t_gd.ravel(), "C0o", label="GD")
    ax.plot(column, t_ode.ravel(), "C1x", ms=8, label="ODE")
    grid = np.geomspace(min(s0s), max(s0s), 50)
    formula = r"$\frac{1+c}{2}\ln(1/p_0)$, $p_0=s_0^2/2$"
    ax.plot(grid, (1 + c_star) / 2 * np.log(2 / grid**2), "k--", label=formula)
    ax.set_xscale("log")
    ax.set_xlabel("$s_0$")
    ax.set_ylabel("$t_{50}$")
    ax.legend()
    return ax


def stiffness_runs(runs: Sequence, *, ax: Axes | None = None) -> Axes:
    """Loss curves of gradient descent at factors of the step bound (eq-stiffness), one per ``StiffRun`` of
    ``experiments.leaky_integrator`` (runs that diverged have no curve and are left out), on a log axis."""
    ax = _axes(ax)
    for run in runs:
        if run.curve is not None:
            ax.plot(run.curve.time, run.curve.loss, label=rf"$\eta={run.factor}\,\eta_c$")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("loss")
    ax.legend()
    return ax


def bptt_comparison(sgd, gd, *, ax: Axes | None = None) -> Axes:
    """SGD on sampled trials (a ``SampledDescent``): its minibatch loss (grey) and the exact population loss along it
    (solid), against population gradient descent (a ``Descent``, dashed) from the same initialisation."""
    ax = _axes(ax)
    ax.plot(sgd.time, sgd.sampled, color="0.7", lw=0.8, label="sampled loss (BPTT)")
    ax.plot(sgd.time, sgd.loss, "C0-", label="population loss along BPTT-SGD")
    ax.plot(gd.time, gd.loss, "C1--", label="population GD")
    ax.set_xlabel("t")
    ax.set_ylabel("loss")
    ax.legend()
    return ax


def _target_pair(ax: Axes, target: complex) -> None:
    ax.plot([target.real] * 2, [target.imag, -target.imag], "kx", ms=9, mew=2)


def pair_learning(
    flow, runs: Mapping[str, object], *, saddle_loss: float, target: complex, figsize=(11, 4)
) -> np.ndarray:
    """Two panels for the oscillator. Left: the loss of the pair flow (a ``PairTrajectory``, black dashed;
    eq-pair-flow) and of the named gradient-descent ``runs`` (``Descent``s, solid), with ``saddle_loss`` (the best
    single real pole) dotted. Right: the pair flow's two eigenvalues over training, coloured by time, and the target
    pair ``target``, its conjugate (crosses). Returns the Axes."""
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize)
    for i, (name, run) in enumerate(runs.items()):
        left.plot(run.time, run.loss, f"C{i}-", label=name)
    left.plot(flow.time, flow.loss, "k--", label="pair flow (5 variables)")
    left.axhline(saddle_loss, color="k", ls=":", lw=0.8)
    left.set_ylabel("loss")
    _finish(fig, [left])
    eigenvalue_paths(flow.time, flow.eigenvalues, ax=right)
    _target_pair(right, target)
    fig.tight_layout()
    return np.array([left, right])


def bulk_outliers(run, *, radius: float, target: complex, ax: Axes | None = None) -> Axes:
    """The two eigenvalues of largest modulus of a full network's W over training (a ``Descent``), coloured by time,
    with the bulk disk |z| = ``radius`` (dashed) and the target pair ``target``, its conjugate (crosses)."""
    ax = eigenvalue_paths(run.time, run.eigenvalues, ax=ax, top=2)
    theta = np.linspace(0, 2 * np.pi, 100)
    ax.plot(radius * np.cos(theta), radius * np.sin(theta), "k--", lw=0.8)
    _target_pair(ax, target)
    return ax


def poles_online(gd, ode, *, targets: Sequence[float]) -> np.ndarray:
    """Two panels for a multi-timescale target. Left: the loss of full descent (a ``Descent``, log axis). Right: the
    real parts of all eigenvalues of W over training (grey), the one-pole outlier ODE (an ``OutlierTrajectory``,
    dashed; eq-outlier-ode) and the target eigenvalues ``targets`` (dotted). Returns the Axes."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    left.semilogy(gd.time, gd.loss)
    left.set_ylabel("loss")
    right.plot(gd.time, gd.eigenvalues.real, color="0.6", lw=0.6)
    right.plot(ode.time, ode.outlier, "k--", label="one-pole ODE")
    for target in targets:
        right.axhline(target, color="k", ls=":", lw=0.8)
    right.set_ylabel(r"Re $\lambda(W)$")
    _finish(fig, [left, right])
    return np.array([left, right])


def crossover(
    c_grid: Sequence[float],
    rel_loss: Mapping[float, object],
    v_norm2: Mapping[float, object],
    *,
    t_index: int,
    prediction,
) -> np.ndarray:
    """Two panels of the read-out flow (eq-readout-flow) against the target rate c, medians over seeds, one colour
    per bulk radius sigma (the keys of ``rel_loss`` and ``v_norm2``, arrays (seeds, len(c_grid), times)). Left: the
    relative loss at time index ``t_index``. Right: |v|^2 at the last time with ``prediction(c, sigma)`` (the RKHS
    norm, eq-rkhs-norm; dashed) where |1 - c| < sigma. Dotted verticals: c = 1 -+ sigma. Returns the Axes."""
    if set(rel_loss) != set(v_norm2):
        raise ValueError(f"rel_loss and v_norm2 must have the same radii; got {sorted(rel_loss)}, {sorted(v_norm2)}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    cs = np.asarray(c_grid, dtype=float)
    for i, sigma in enumerate(rel_loss):
        label = rf"$\sigma={sigma}$"
        axes[0].semilogy(cs, np.median(_numpy(rel_loss[sigma])[:, :, t_index], axis=0), f"C{i}o-", label=label)
        axes[1].semilogy(cs, np.median(_numpy(v_norm2[sigma])[:, :, -1], axis=0), f"C{i}o-", label=label)
        inside = np.abs(1 - cs) < sigma
        axes[1].plot(cs[inside], [prediction(c, sigma) for c in cs[inside]], f"C{i}--")
        for ax in axes:
            for edge in (1 - sigma, 1 + sigma):
                ax.axvline(edge, color=f"C{i}", ls=":", lw=0.8)
    axes[0].set_ylabel("loss / initial loss")
    axes[1].set_ylabel(r"$|v|^2$")
    _finish(fig, axes, xlabel=r"$c_\star$")
    return axes


def regime_spectra(regimes: Mapping[float, object], *, target: complex) -> np.ndarray:
    """One panel per bulk radius sigma: the spectrum of W before and after full training (a ``FullTraining`` of
    ``experiments.rich_lazy``) with the bulk disk and the target eigenvalue ``target``. Returns the Axes."""
    fig, axes = plt.subplots(1, len(regimes), figsize=(5 * len(regimes), 4.2), squeeze=False)
    for ax, (sigma, run) in zip(axes[0], regimes.items()):
        spectra = {"before": run.W0_eigenvalues, "after": run.final_eigenvalues}
        spectrum(spectra, radius=sigma, ax=ax, marks={r"$1-c_\star$": target})
        ax.set_title(rf"$\sigma={sigma}$")
    fig.tight_layout()
    return axes[0]
