"""Experiments: one module per experiment, each with a frozen ``Config`` (``book()`` and ``full()`` presets)
and ``run(config) -> Result``, cached on disk by :func:`learnability.experiments.cache.cached`. A ``Result`` is a
frozen dataclass whose docstring documents every field: its meaning, its shape and the equation label it holds.

Progress bars (tqdm) show on a terminal and are disabled where output is not a terminal (the book's kernels, CI logs).

``EXPERIMENTS`` maps the names the CLI knows (``learnability run NAME``) to (module, one-line description, chapter).
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from types import ModuleType


class Preset:
    """Base of every experiment's frozen ``Config``: its field defaults are the full (paper-sized) scale, so
    :meth:`full` is the default config; each ``Config`` defines ``book()``, the CI-sized preset."""

    @classmethod
    def full(cls, **overrides):
        """The full (paper-sized) preset, with ``overrides`` of its fields (e.g. ``device="cuda"``)."""
        return replace(cls(), **overrides)


EXPERIMENTS: dict[str, tuple[str, str, str]] = {
    "stable_means": (
        "learnability.experiments.stable_means",
        "concentration of SaS sample means and the tail-index estimators compared",
        "p2_stable_means",
    ),
    "exponent": (
        "learnability.experiments.exponent",
        "Monte-Carlo detection: does N(l) scale as f^-kappa_alpha or f^-alpha?",
        "p2_window",
    ),
    "calibration": (
        "learnability.experiments.calibration",
        "the sample-size estimators on data with a known answer: pure noise and the law by construction",
        "p2_calibration",
    ),
    "frechet_check": (
        "learnability.experiments.frechet_check",
        "first-order expansion of Jacobian products: error slope 2, gate-sensitivity ratios",
        "p1_frechet",
    ),
    "lag_profiles": (
        "learnability.experiments.lag_profiles",
        "S1: transport lag profiles during SGD training on the adding task, with the code's variants",
        "p1_lag_profiles",
    ),
    "anisotropy_s2": (
        "learnability.experiments.anisotropy_s2",
        "S2: anisotropy of Jacobian transport and per-example gradients, gates+SGD vs Adam",
        "p1_anisotropy",
    ),
    "leaky_integrator": (
        "learnability.experiments.leaky_integrator",
        "linear RNN learning e^{-cs}: full GD vs the outlier ODE, escape times, stiffness, BPTT",
        "p3_leaky_integrator",
    ),
    "rich_lazy": (
        "learnability.experiments.rich_lazy",
        "threshold |1-c| vs sigma: exact read-out flow crossover and spectra of rich/lazy training",
        "p3_rich_lazy",
    ),
    "oscillator": (
        "learnability.experiments.oscillator",
        "damped oscillator: 5-variable pair flow vs full GD, eigenvalue collision; two-timescale target",
        "p3_oscillator",
    ),
    "planted_lag": (
        "learnability.experiments.planted_lag",
        "control: one planted lag at a time, diagnosed on the untrained networks; signal law at l*",
        "p2_window_measured",
    ),
    "window_pipeline": (
        "learnability.experiments.window_pipeline",
        "Part II measured: envelopes, tail indices, N(l) and H_N of trained gated RNNs; optimizers; "
        "retraining validation",
        "p2_envelopes",
    ),
}


def load(name: str) -> ModuleType:
    """The experiment module called ``name``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; available: {sorted(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name][0])
