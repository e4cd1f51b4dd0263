"""The planted-lag control (book/p2_window_measured.md): one dependency at a time, and where the instrument sees it.

For each planted lag l* the task is y_t = c u^T x_{t - l*} + noise (eq-multilag-task with a single lag), and the
*untrained* network of each architecture (the window pipeline's initialisation) is diagnosed on fresh sequences
(``window_pipeline.diagnose``) over a lag grid made of the planted lags themselves. At initialisation the residual
carries the whole planted dependency, so the matched statistic at lag l* holds the signal the law is about, before
training has removed any of it; the envelope f(l) of the untrained network does not depend on the task.

Per architecture the calibrated estimates (``diagnostics.sample_size_estimates``) give, for every planted l*, the
signal m_hat(l | l*) at each grid lag; the diagonal m_hat(l* | l*) against f(l*) is the law's test
(``diagnostics.signal_law_fit``, gamma = 1 predicted; ``diagnostics.master_fit`` of N_hat(l* | l*)).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from ..diagnostics import master_fit, sample_size_estimates, signal_law_fit
from . import Preset
from . import window_pipeline as wp
from .cache import cached


@dataclass(frozen=True)
class Config(Preset):
    """Defaults are the full scale (the pipeline's paper sizes, all five architectures); :meth:`book` is CI-sized."""

    architectures: tuple[str, ...] = tuple(wp.ARCHITECTURES)
    planted: tuple[int, ...] = (32, 48, 64, 96, 128, 192, 256)
    coefficient: float = 0.5
    T: int = 1024
    D: int = 16
    H: int = 128
    sigma_y: float = 0.3
    n_diag: int = 8000
    diag_batch: int = 128
    gate_init: float = 0.05
    threshold: float = 5.0
    seed: int = 212
    device: str = "cpu"

    def __post_init__(self) -> None:
        if len(self.planted) < 3 or len(set(self.planted)) != len(self.planted):
            raise ValueError(f"planted must hold at least 3 distinct lags; got {self.planted}")
        if self.coefficient <= 0 or self.threshold <= 0:
            raise ValueError("coefficient and threshold must be positive")
        self.pipeline(self.planted[0])  # the pipeline's own checks (lags < T, architectures, ...)

    @classmethod
    def book(cls) -> Config:
        """About a minute on 2 CPU cores: the window pipeline's book sizes, three architectures."""
        return replace(
            cls(),
            architectures=("ConstGate", "DiagGate", "LSTM"),
            planted=(1, 2, 3, 4, 6, 8, 12, 16),
            T=64,
            D=4,
            H=16,
            n_diag=2048,
            diag_batch=256,
        )

    def pipeline(self, planted: int) -> wp.Config:
        """The window-pipeline config of the task with the single lag ``planted``, diagnosed on the planted grid."""
        return wp.Config.full(
            T=self.T,
            D=self.D,
            H=self.H,
            task_lags=(planted,),
            coefficients=(self.coefficient,),
            sigma_y=self.sigma_y,
            n_diag=self.n_diag,
            diag_batch=self.diag_batch,
            architectures=self.architectures,
            gate_init=self.gate_init,
            seeds=(self.seed,),
            lag_grid=tuple(sorted(self.planted)),
            exact_sequences=4,
            pair_sequences=4,
            sweep_optimizers=(),
            sweep_lrs=(),
            sweep_architecture=self.architectures[0],
            retrain_architectures=(),
            retrain_N=(),
            stages=(),
            device=self.device,
        )


@dataclass(frozen=True)
class Result:
    """The planted-lag control's output; P planted lags, which are also the grid lags.

    Attributes:
        config: the config that produced it.
        lags: (P,) the grid: the sorted planted lags l*.
        f: {architecture: (P,)} the envelope f_hat(l) (eq-envelope) of the untrained network over the grid; it does
            not depend on the task.
        z: {architecture: (P, P)} the signal in standard errors m_hat / se, row = planted lag l*, column = grid lag l.
        m: {architecture: (P, P)} the signal m_hat(l | l*) of the calibrated estimator (eq-sample-size-calibrated).
        se: {architecture: (P, P)} its standard errors.
        N: {architecture: (P, P)} the calibrated N_hat(l | l*) (inf: undetectable).
        detected: {architecture: (P, P)} bool, the signal told from zero by the family-wise test over the grid.
        alpha: {architecture: pooled alpha_hat} (median over the planted tasks).
        z_crit: the detection bar |m_hat| / se of the family-wise test over the grid.
    """

    config: Config
    lags: np.ndarray
    f: dict[str, np.ndarray]
    z: dict[str, np.ndarray]
    m: dict[str, np.ndarray]
    se: dict[str, np.ndarray]
    N: dict[str, np.ndarray]
    detected: dict[str, np.ndarray]
    alpha: dict[str, float]
    z_crit: float


def compute(config: Config) -> Result:
    lags = np.array(sorted(config.planted))
    f, z, m, se, N, detected, alpha = {}, {}, {}, {}, {}, {}, {}
    jobs = [(a, p) for a in config.architectures for p in lags]
    rows: dict[str, list[dict]] = {a: [] for a in config.architectures}
    for architecture, planted in tqdm(jobs, desc="planted lags", leave=False, disable=None):
        pipeline = config.pipeline(int(planted))
        model = wp.build(pipeline, architecture, config.seed)
        diagnostics = wp.diagnose(pipeline, model, None, "adamw", pipeline.lr, config.seed)
        est = sample_size_estimates(diagnostics.psi, config.threshold)
        rows[architecture].append({**est, "f": diagnostics.f_first})
    for architecture, found in rows.items():
        f[architecture] = found[0]["f"]
        for key, store in (("z", z), ("m", m), ("se", se), ("N", N), ("detected", detected)):
            store[architecture] = np.stack([r[key] for r in found])
        alpha[architecture] = float(np.median([r["alpha"][0] for r in found]))
    z_crit = float(next(iter(rows.values()))[0]["z_crit"])
    return Result(config, lags, f, z, m, se, N, detected, alpha, z_crit)


def law_rows(result: Result) -> list[dict]:
    """One row per architecture: the planted lags whose signal is detected at their own lag, the pooled alpha_hat
    (N_hat is infinite everywhere when it is <= 1: means do not concentrate), the signal law fitted to
    m_hat(l* | l*) against f(l*) (gamma, 95 % interval, misfit; eq-signal-law) and the master slope of
    N_hat(l* | l*) (NaN with fewer than 3 finite)."""
    out = []
    for architecture in result.config.architectures:
        diag = np.arange(result.lags.size)
        m, se, N = (store[architecture][diag, diag] for store in (result.m, result.se, result.N))
        f = result.f[architecture]
        law = signal_law_fit(f, m, se)
        try:
            slope = master_fit(f, N, np.full(N.shape, result.alpha[architecture]))["slope"]
        except ValueError:
            slope = np.nan
        hits = int(result.detected[architecture][diag, diag].sum())
        out.append(
            {
                "architecture": architecture,
                "detected at l*": f"{hits}/{N.size}",
                "alpha_hat": result.alpha[architecture],
                "gamma": law["gamma"],
                "gamma 95% interval": f"[{law['gamma_low']:.2f}, {law['gamma_high']:.2f}]",
                "misfit": law["misfit"],
                "master slope": slope,
            }
        )
    return out


def run(config: Config | None = None, *, force: bool = False) -> Result:
    """The cached result for ``config`` (default: book scale)."""
    return cached("planted_lag", config or Config.book(), compute, force=force)
