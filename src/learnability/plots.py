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


def finite_sigma(runs: Sequence[Mapping], *, shown: Sequence[float], boundary: float) -> plt.Figure:
    """Two panels for the finite-sigma runs of ``experiments.leaky_integrator`` (eq-escape-sigma). Left: loss curves
    of gradient descent (solid), the finite-sigma theory (dotted) and the sigma -> 0 outlier ODE (black dashed) for
    the first seed at the radii ``shown``. Right: times to 1/2 (circles) and 1/10 (squares) of the initial loss over
    sigma and seeds against the theory (lines) and the ODE (dashed); a grey line at sigma = ``boundary``."""
    missing = [s for s in shown if not any(r["sigma"] == s for r in runs)]
    if missing:
        raise ValueError(f"no run at sigma = {missing}; the runs have {sorted({r['sigma'] for r in runs})}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    first = min(r["seed"] for r in runs)
    for i, sigma in enumerate(shown):
        run = next(r for r in runs if r["sigma"] == sigma and r["seed"] == first)
        left.plot(run["gd"]["time"], run["gd"]["loss"], f"C{i}-", label=rf"GD, $\sigma={sigma:g}$")
        left.plot(run["theory"]["time"], run["theory"]["loss"], f"C{i}:", lw=2)
    left.plot(run["ode"]["time"], run["ode"]["loss"], "k--", label=r"ODE ($\sigma\to0$)")
    left.set_xlabel("t")
    left.set_ylabel("loss")
    left.legend(fontsize=8)
    sigmas = sorted({r["sigma"] for r in runs})
    for j, (key, marker) in enumerate((("t50", "o"), ("t10", "s"))):
        right.plot(
            [r["sigma"] for r in runs],
            [r[key]["gd"] for r in runs],
            f"C{j}{marker}",
            fillstyle="none",
            label=f"GD, {key}",
        )
        mean = {
            model: [np.mean([r[key][model] for r in runs if r["sigma"] == s]) for s in sigmas]
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
