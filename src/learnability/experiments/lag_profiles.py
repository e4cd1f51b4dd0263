"""S1 of arXiv 2508.12121 (Section VII-A): lag profiles of the transport during training (book/p1_lag_profiles.md).

Leaky (alpha = 0.8), scalar- and multi-gate cells with a linear readout are trained by plain SGD on the adding task.
At each checkpoint a probe batch gives the normalised profile prof(l) = median_{b,t} ||Phi(t, t-l)||_2 /
median_{b,t} ||Phi(t, t-1)||_2, compared with two zeroth-order predictors normalised the same way: the retention
product prod_j (1 - g_j) (mean over neurons) and the update-gate product prod_j g_j (the code's predictor). The
fitted exponent s of prof = pred^s (least squares on logs, through the origin) and R^2 summarise the match.

``variants`` re-evaluate the same trained checkpoints with the authors' code conventions, one at a time or all
together (book/errata.md): "gate_term" (phi(a_t) - h_t in the gate term), "reversed" (product J_{k+1}...J_t),
"power5" (5 power iterations instead of the exact 2-norm), "offbyone" (update-gate predictor over l + 1 gates),
"code" (all four).

``kinds`` take any registered cell kind (:func:`learnability.cells.register`), built without biases (``bias=False``,
as the authors' cells). What a kind's class lacks is skipped, with the reason in ``Result.skipped`` and a warning:
"gate_term" and "code" need ``jacobian_terms``; the two predictors need ``retention``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from .. import errata, tasks
from ..cells import missing_features, resolve_kind
from ..effective_lr import gate_product_profile
from ..gates.timescales import retention_trajectory
from ..training import build_model, torch_threads, train
from ..transport import iter_transport_by_lag, jacobians, lag_medians, lag_profile
from . import Preset
from .cache import cached

VARIANTS = ("exact", "gate_term", "reversed", "power5", "offbyone", "code")
NEEDS = {"gate_term": "jacobian_terms", "code": "jacobian_terms"}  # variant -> the cell method it needs


@dataclass(frozen=True)
class Config(Preset):
    kinds: tuple[str, ...] = ("leaky", "scalar", "multi")
    alpha: float = 0.8
    task: str = "adding"
    T: int = 80
    hidden: int = 64
    inputs: int = 2
    batch: int = 64
    lr: float = 1e-2
    steps: int = 800
    checkpoints: tuple[int, ...] = (0, 100, 200, 300, 400, 500, 600, 700, 800)
    probe: int = 12
    max_lag: int = 40
    seeds: tuple[int, ...] = tuple(range(1, 21))
    variants: tuple[str, ...] = VARIANTS

    def __post_init__(self) -> None:
        for kind in self.kinds:
            resolve_kind(kind)  # ValueError naming the registered kinds
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad:
            raise ValueError(f"unknown variants {bad}; allowed: {VARIANTS}")
        if self.task not in tasks.names():
            raise ValueError(f"unknown task {self.task!r}; available: {sorted(tasks.names())}")
        if not 2 <= self.max_lag < self.T:
            raise ValueError(f"max_lag must lie in [2, T) = [2, {self.T}); got {self.max_lag}")
        if self.lr <= 0 or not self.seeds or not self.checkpoints:
            raise ValueError("lr must be positive; seeds and checkpoints must be non-empty")

    @classmethod
    def book(cls) -> Config:
        """About 40 s on 2 CPU cores: shorter sequences, fewer neurons, steps and seeds."""
        return replace(cls(), T=40, hidden=32, steps=300, checkpoints=(0, 100, 200, 300), max_lag=20, seeds=(1, 2))


@dataclass(frozen=True)
class Result:
    """What S1 measured, per cell kind of ``config.kinds`` and variant of ``config.variants``.

    Arrays of shape (seeds, checkpoints, max_lag) are indexed by ``config.seeds``, ``config.checkpoints`` and the lag
    l = 1, ..., ``config.max_lag`` (index l - 1); every profile and predictor is normalised to 1 at lag 1.

    Attributes:
        config: the configuration that produced this result.
        profile: (kind, variant) -> (seeds, checkpoints, max_lag) array, the normalised transport profile prof(l)
            of (eq-power-fit), measured with that variant's conventions ("exact": ours); a variant the cell cannot
            give (``skipped``) has no entry.
        retention_pred: kind -> (seeds, checkpoints, max_lag) array, the retention-product predictor
            prod_j (1 - g_j) (mean over neurons; the zeroth order of (eq-mu)), the pred(l) of (eq-power-fit); no
            entry for a cell without a retention.
        update_pred: (kind, variant) -> (seeds, checkpoints, max_lag) array, the update-gate predictor prod_j g_j
            (the code's; over l + 1 gates in the "offbyone" and "code" variants); no entry for a cell without a
            retention.
        losses: kind -> (seeds, steps) array, the training loss (masked MSE) at every SGD step.
        skipped: kind -> {variant, or "predictors": the reason it was not computed}; empty for the built-in cells.
    """

    config: Config
    profile: dict[tuple[str, str], np.ndarray]
    retention_pred: dict[str, np.ndarray]
    update_pred: dict[tuple[str, str], np.ndarray]
    losses: dict[str, np.ndarray]
    skipped: dict[str, dict[str, str]]


def skipped_features(kind: str, variants: tuple[str, ...]) -> dict[str, str]:
    """{variant or "predictors": reason} for what the class of cell ``kind`` cannot give (see the module docstring);
    empty for the built-in gated cells."""
    missing = missing_features(kind)
    out = {v: f"variant {v!r} skipped: {missing[NEEDS[v]]}" for v in variants if NEEDS.get(v) in missing}
    if "retention" in missing:
        out["predictors"] = f"retention and update-gate predictors skipped: {missing['retention']}"
    return out


def _diagnostics(cell, xs: torch.Tensor, config: Config, seed: int) -> tuple[dict, np.ndarray | None, dict]:
    """Per variant the profile prof(l) (exact norms: the medians of :func:`learnability.transport.lag_medians`, the
    reversed products J_{t-l+1} ... J_t through their transposes J_t^T ... J_{t-l+1}^T, a chronological product of
    the same norm; "power5" and "code": the code's power-iteration norm per product), the retention predictor and
    the update-gate predictor per variant; (profiles, None, {}) for a cell without a retention."""
    retention = None if "retention" in missing_features(cell.kind) else retention_trajectory(cell, xs)
    with torch.no_grad():
        J_exact = jacobians(cell, xs)
        J_code = errata.code_jacobians(cell, xs) if set(config.variants) & {"gate_term", "code"} else None
        profiles, update, medians = {}, {}, {}
        for variant in config.variants:
            J = J_code if variant in ("gate_term", "code") else J_exact
            reverse = variant in ("reversed", "code")
            if variant in ("power5", "code"):
                gen = torch.Generator().manual_seed(seed + 555)
                products = (
                    errata.reversed_products_by_lag(J, config.max_lag)
                    if reverse
                    else iter_transport_by_lag(J, config.max_lag)
                )
                profiles[variant] = lag_profile(
                    products, config.max_lag, lambda P, gen=gen: errata.power_iteration_norm(P, 5, gen)
                )
            else:
                key = (J is J_code, reverse)
                if key not in medians:
                    medians[key] = lag_medians(J.mT if reverse else J, config.max_lag)
                profiles[variant] = medians[key] / medians[key][0]
            if retention is not None:
                extra = 1 if variant in ("offbyone", "code") else 0
                update[variant] = gate_product_profile(1 - retention, config.max_lag, extra)
    if retention is None:
        return profiles, None, update
    return profiles, gate_product_profile(retention, config.max_lag), update


def compute(config: Config) -> Result:
    skipped = {kind: skipped_features(kind, config.variants) for kind in config.kinds}
    for kind, reasons in skipped.items():
        for reason in reasons.values():
            warnings.warn(f"lag_profiles, cell kind {kind!r}: {reason}", stacklevel=2)
    profile, update, retention, losses = {}, {}, {}, {k: [] for k in config.kinds}
    for kind in config.kinds:
        kind_config = replace(config, variants=tuple(v for v in config.variants if v not in skipped[kind]))
        options = {"alpha": config.alpha} if kind == "leaky" else {}
        found = []  # per seed, per checkpoint: (profiles, retention predictor, update predictors)
        for seed in tqdm(config.seeds, desc=f"S1 {kind}", leave=False, disable=None):
            # train in float32 (5x faster here), evaluate Jacobian products in float64 on a copy of the weights
            model = build_model(kind, config.task, config.inputs, config.hidden, seed, bias=False, **options)
            with torch_threads(1):
                saved, loss = train(
                    model,
                    config.task,
                    steps=config.steps,
                    batch=config.batch,
                    T=config.T,
                    optimizer="sgd",
                    lr=config.lr,
                    seed=seed,
                    checkpoints=config.checkpoints,
                )
            model = build_model(
                kind, config.task, config.inputs, config.hidden, seed, bias=False, dtype=torch.float64, **options
            )
            losses[kind].append(loss)
            probe_gen = torch.Generator().manual_seed(seed + 999)
            xs, _, _ = tasks.make_batch(
                config.task, config.probe, config.T, config.inputs, probe_gen, dtype=torch.float64
            )
            found.append([])
            for step in config.checkpoints:
                model.load_state_dict({name: value.double() for name, value in saved[step].items()})
                found[-1].append(_diagnostics(model.cell, xs, kind_config, seed))

        def stack(pick: Callable[[tuple], np.ndarray]) -> np.ndarray:
            return np.stack([np.stack([pick(d) for d in per_seed]) for per_seed in found])

        for v in kind_config.variants:
            profile[kind, v] = stack(lambda d, v=v: d[0][v])
        if "predictors" not in skipped[kind]:
            retention[kind] = stack(lambda d: d[1])
            update.update({(kind, v): stack(lambda d, v=v: d[2][v]) for v in kind_config.variants})
    return Result(config, profile, retention, update, {k: np.asarray(v) for k, v in losses.items()}, skipped)


def run(config: Config | None = None, *, force: bool = False) -> Result:
    return cached("lag_profiles", config or Config.book(), compute, force=force)


def fit_power(profile: np.ndarray, predictor: np.ndarray) -> tuple[float, float]:
    """(s, R^2) of log profile = s log predictor, least squares through the origin, over lags >= 2 (eq-power-fit).

    Both arrays start at lag 1 and are normalised there (prof(1) = pred(1) = 1), hence no intercept."""
    x, y = np.log(predictor[1:]), np.log(profile[1:])
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or not np.any(x != 0):
        raise ValueError("need at least two lags with a non-constant predictor to fit an exponent")
    s = float(x @ y / (x @ x))
    ss_res = float(((y - s * x) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return s, (1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


def summary(result: Result, variant: str = "exact", checkpoint: int = -1) -> list[dict]:
    """Per cell: fitted s and R^2 (median over seeds) against both predictors at one checkpoint (default: last); a
    cell whose profile or predictors were skipped (``result.skipped``) has no row."""
    rows = []
    for kind in result.config.kinds:
        if (kind, variant) not in result.update_pred:
            continue
        prof = result.profile[kind, variant][:, checkpoint]
        ret = result.retention_pred[kind][:, checkpoint]
        upd = result.update_pred[kind, variant][:, checkpoint]
        fits_r = [fit_power(p, q) for p, q in zip(prof, ret)]
        fits_u = [fit_power(p, q) for p, q in zip(prof, upd)]
        rows.append(
            {
                "cell": kind,
                "s_retention": float(np.median([f[0] for f in fits_r])),
                "r2_retention": float(np.median([f[1] for f in fits_r])),
                "s_update": float(np.median([f[0] for f in fits_u])),
                "r2_update": float(np.median([f[1] for f in fits_u])),
            }
        )
    return rows
