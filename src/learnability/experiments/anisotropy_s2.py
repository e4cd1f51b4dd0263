"""S2 of arXiv 2508.12121 (Section VII-B): joint anisotropy of Jacobian transport and of per-example gradients
(book/p1_anisotropy.md). Does a multi-gate RNN trained with SGD concentrate its gradient flow as much as a plain RNN
trained with Adam? Controls (plain + SGD, multi + Adam) separate the gate's effect from the optimizer's.

Per (task, model + optimizer, seed): train on fresh batches (inputs jittered by 1e-6 N(0, 1) as in the code), then
(1) for each lag h, median over random (b, t) pairs of AI_10 and CE_10 (top-16 normalisation) of Phi(t, t - h), and
(2) AI_10 and CE_10 of the preprocessed matrix of M per-example gradients (eq-anisotropy).

A run's model may be any registered cell kind (:func:`learnability.cells.register`), built without biases
(``bias=False``, as the authors' cells); both statistics need only its step (Jacobians by autograd when the class
defines none), so no part of the experiment is skipped for a reader's cell.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from .. import tasks
from ..cells import resolve_kind
from ..gates.anisotropy import anisotropy, gradient_covariance_stats, per_example_gradients
from ..training import build_model, masked_mse, train
from ..transport import jacobians, transport_by_lag
from . import Preset
from .cache import cached

RUNS = (
    ("plain", "adam", 1e-3),
    ("scalar", "sgd", 1e-2),
    ("multi", "sgd", 1e-2),
    ("plain", "sgd", 1e-2),
    ("multi", "adam", 1e-3),
)


@dataclass(frozen=True)
class Config(Preset):
    runs: tuple[tuple[str, str, float], ...] = RUNS
    tasks: tuple[str, ...] = ("adding", "copy", "ar2", "movingavg", "delaysum", "narma10")
    T: int = 120
    inputs: int = 6
    hidden: int = 64
    batch: int = 64
    steps: int = 1200
    probe: int = 64
    lags: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 24, 32, 40)
    pairs: int = 64
    grad_examples: int = 256
    seeds: tuple[int, ...] = tuple(range(1, 21))

    def __post_init__(self) -> None:
        for kind, _, _ in self.runs:
            resolve_kind(kind)  # ValueError naming the registered kinds
        if self.hidden < 16:
            raise ValueError("hidden must be >= 16: the Jacobian statistics use the top 16 singular values")
        if max(self.lags) >= self.T or self.grad_examples < 10:
            raise ValueError("lags must be < T, and grad_examples >= 10 (AI_10 needs ten singular values)")
        bad = [t for t in self.tasks if t not in tasks.names()]
        if bad:
            raise ValueError(f"unknown tasks {bad}; available: {sorted(tasks.names())}")

    @classmethod
    def book(cls) -> Config:
        """About a minute on 2 CPU cores: T = 40, n = 32, 100 steps, one seed, fewer probes."""
        return replace(
            cls(),
            T=40,
            hidden=32,
            batch=32,
            steps=100,
            probe=16,
            lags=(1, 2, 4, 8, 16, 32),
            pairs=16,
            grad_examples=48,
            seeds=(1,),
        )


@dataclass(frozen=True)
class Result:
    """What S2 measured, per task of ``config.tasks`` and run of ``config.runs`` (its :func:`label`, e.g.
    "multi+sgd"); arrays are indexed by ``config.seeds`` first, then by ``config.lags`` where they have lags.

    Attributes:
        config: the configuration that produced this result.
        jac_ai: (task, run label) -> (seeds, lags) array, per lag h the median over random (b, t) pairs of the
            anisotropy index AI_10 (eq-anisotropy) of the transport Phi(t, t - h), top-16 normalisation.
        jac_ce: (task, run label) -> (seeds, lags) array, the same median of the captured energy CE_10
            (eq-anisotropy).
        grad_ai: (task, run label) -> (seeds,) array, AI_10 (eq-anisotropy) of the preprocessed matrix of
            ``config.grad_examples`` per-example gradients.
        grad_ce: (task, run label) -> (seeds,) array, CE_10 (eq-anisotropy) of the same matrix.
        final_loss: (task, run label) -> (seeds,) array, the mean training loss (masked MSE) over the last ten steps
            (NaN for zero steps).
    """

    config: Config
    jac_ai: dict[tuple[str, str], np.ndarray]
    jac_ce: dict[tuple[str, str], np.ndarray]
    grad_ai: dict[tuple[str, str], np.ndarray]
    grad_ce: dict[tuple[str, str], np.ndarray]
    final_loss: dict[tuple[str, str], np.ndarray]


def label(run: tuple[str, str, float]) -> str:
    return f"{run[0]}+{run[1]}"


def _jacobian_stats(cell, xs: torch.Tensor, lags: tuple[int, ...], pairs: int, gen) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        by_lag = transport_by_lag(jacobians(cell, xs), max(lags))
    ai, ce = [], []
    for h in lags:
        P = by_lag[h]  # index i: Phi(h + i, i), i = 0..T-h
        b = torch.randint(0, P.shape[0], (pairs,), generator=gen)
        i = torch.randint(0, P.shape[1], (pairs,), generator=gen)
        a, c = anisotropy(torch.linalg.svdvals(P[b, i])[:, :16], 10, 16)
        ai.append(float(a.median()))
        ce.append(float(c.median()))
    return np.asarray(ai), np.asarray(ce)


def compute(config: Config) -> Result:
    out = {key: {} for key in ("jac_ai", "jac_ce", "grad_ai", "grad_ce", "loss")}
    grid = [(task, run) for task in config.tasks for run in config.runs]
    for task, run in tqdm(grid, desc="S2", leave=False, disable=None):
        kind, optimizer, lr = run
        values = {key: [] for key in out}
        for seed in config.seeds:
            model = build_model(kind, task, config.inputs, config.hidden, seed, bias=False)
            _, losses = train(
                model,
                task,
                steps=config.steps,
                batch=config.batch,
                T=config.T,
                optimizer=optimizer,
                lr=lr,
                seed=seed,
                input_jitter=1e-6,
            )
            model64 = build_model(kind, task, config.inputs, config.hidden, seed, bias=False, dtype=torch.float64)
            model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
            gen = torch.Generator().manual_seed(seed + 999)
            xs, _, _ = tasks.make_batch(task, config.probe, config.T, config.inputs, gen, dtype=torch.float64)
            ai, ce = _jacobian_stats(model64.cell, xs, config.lags, config.pairs, gen)
            xg, yg, mg = tasks.make_batch(task, config.grad_examples, config.T, config.inputs, gen, dtype=torch.float64)
            G = per_example_gradients(model64, masked_mse, xg, yg, mg)
            gai, gce = gradient_covariance_stats(G)
            for key, value in (
                ("jac_ai", ai),
                ("jac_ce", ce),
                ("grad_ai", gai),
                ("grad_ce", gce),
                ("loss", float(np.mean(losses[-10:])) if losses else float("nan")),
            ):
                values[key].append(value)
        for key in out:
            out[key][task, label(run)] = np.asarray(values[key])
    return Result(config, out["jac_ai"], out["jac_ce"], out["grad_ai"], out["grad_ce"], out["loss"])


def run(config: Config | None = None, *, force: bool = False) -> Result:
    return cached("anisotropy_s2", config or Config.book(), compute, force=force)


def gradient_table(result: Result, metric: str = "ce") -> list[dict]:
    """Per task: gradient-covariance CE_10 (``metric="ce"``) or AI_10 (``"ai"``) of each run, median and interquartile
    range over seeds (key ``"<run> IQR"``), and, when both runs are in the config, whether multi+SGD matches or
    exceeds plain+Adam (medians)."""
    if metric not in ("ce", "ai"):
        raise ValueError(f"metric must be 'ce' or 'ai'; got {metric!r}")
    values = result.grad_ce if metric == "ce" else result.grad_ai
    rows = []
    for task in result.config.tasks:
        row = {"task": task}
        for run in result.config.runs:
            v = values[task, label(run)]
            row[label(run)] = float(np.median(v))
            row[label(run) + " IQR"] = float(np.subtract(*np.quantile(v, [0.75, 0.25])))
        if "multi+sgd" in row and "plain+adam" in row:
            row["multi+sgd ≥ plain+adam"] = "yes" if row["multi+sgd"] >= row["plain+adam"] else "no"
        rows.append(row)
    return rows
