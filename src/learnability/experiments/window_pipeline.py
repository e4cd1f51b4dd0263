"""Part II measured: envelopes, tail indices and learnability windows of trained gated RNNs (book/p2_envelopes.md,
p2_tails.md, p2_window_measured.md, p2_optimizers.md).

One ``run(config) -> Result`` does, for every architecture x seed (and for the optimizer and retraining sweeps):

1. the multi-lag linear regression task y_t = sum_k c_k u^T x_{t - l_k} + noise (eq-multilag-task), training and
   diagnostic sets sharing the unit vector u;
2. training (MSE over all steps, global-norm clipping, mini-batches from a fixed training set) of a cell from
   ``learnability.cells`` with a linear read-out; LayerNorm on the candidate, orthogonal non-gate weights, zero gate
   weights and gate biases at retention 1 - ``gate_init`` (the paper's initialisation). An architecture is one of
   :data:`ARCHITECTURES` or a cell kind registered by a reader (:func:`learnability.cells.register`), by its kind
   name: it is built with ``gate_init`` and ``layer_norm`` where it honours them (the cell contract), its
   ``gate_weights`` are zeroed; an option it refuses and gate weights it does not declare are skipped, and without a
   ``retention`` its first-order rates are the exact diagonal products (no retention / correction split), each with
   the reason in ``Result.skipped`` and a warning;
3. diagnostics on the diagnostic set, per lag of the grid: the envelope from first-order mu and from the exact
   diagonal product, the diagonal of the exact transport (on ``exact_sequences`` sequences, every ``exact_stride``-th
   window start), per-unit mean |mu|, the
   optimizer-aware envelope (Adam/RMSProp per-weight rates, "GELR": lag-independent row means, and the authors'
   later lag-dependent Rayleigh quotient), and the matched statistic psi (JVP of the unrolled network along
   ``directions`` random unit parameter directions by forward-mode dual numbers; ``jvp="immediate"`` for the one-step
   variant), reduced to per-sequence means or kept as (sequence, t) pairs;
4. for the retraining validation, the learned coefficient at each task lag, E[y_hat_t u^T x_{t - l_k}], on fresh data;
5. the same diagnostics at the fractions ``stages`` of training (default: the initial network and 10 % of the
   steps), so the signal can be read where the network has not yet learned the task lags.

Estimators (tail index, N_hat, H_N, regime fits) live in :mod:`learnability.diagnostics` and are applied in the
chapters to the stored per-lag arrays, so a sensitivity sweep does not retrain anything. Sweeps go through joblib
(``n_jobs``; joblib's backend can be switched to threads, Dask or Ray with ``joblib.parallel_config``; on threads
the forward-mode derivatives of concurrent runs take turns, since their dual levels are global to the process).
Each (architecture, optimizer, N, seed) run is cached on its own as soon as it finishes, so a sweep interrupted (or
run in pieces on a GPU) resumes where it stopped.
"""

from __future__ import annotations

import copy
import math
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
from joblib import Parallel, delayed
from torch import Tensor, nn
from tqdm import tqdm

from ..cells import Cell, is_builtin, kinds, make_cell, missing_features, refused_options
from ..diagnostics import matched_samples
from ..effective_lr import (
    lstm_code_diagonals,
    lstm_code_windows,
    trajectory_diagonals,
    transport_diagonal_windows,
    window_envelope,
    windows,
)
from ..training import OPTIMIZERS, SequenceModel, torch_threads, training_forward
from . import Preset
from .cache import cached, cached_piece

ARCHITECTURES = {"ConstGate": "leaky", "SharedGate": "scalar", "DiagGate": "multi", "GRU": "gru", "LSTM": "lstm"}
ADAPTIVE = {"adamw": "exp_avg_sq", "adam": "exp_avg_sq", "rmsprop": "square_avg"}
TRANSPORT_SEQUENCES = 4  # sequences whose step Jacobians (T, d, d) are held at once for the exact transport
_FORWARD_AD = threading.Lock()  # forward-mode AD levels are global to a process: threaded runs take turns


@dataclass(frozen=True)
class Config(Preset):
    """Defaults are the full scale: the paper's C1 settings (T = 1024, D = 16, H = 128, lags 32..256, AdamW 1e-3,
    750 epochs of batch 512, clip 1.0, 5 seeds); :meth:`book` is the CI-sized preset (it carries the optimizer and
    retraining sweeps) and :meth:`medium` the scale the measured chapters execute for the architectures."""

    T: int = 1024
    D: int = 16
    H: int = 128
    task_lags: tuple[int, ...] = (32, 64, 128, 192, 256)
    coefficients: tuple[float, ...] = (0.6, 0.5, 0.4, 0.32, 0.26)
    sigma_y: float = 0.3
    n_train: int = 8000
    n_diag: int = 8000
    architectures: tuple[str, ...] = tuple(ARCHITECTURES)
    optimizer: str = "adamw"
    lr: float = 1e-3
    epochs: int = 750
    batch: int = 512
    clip: float = 1.0
    gate_init: float = 0.05
    layer_norm: bool = True
    seeds: tuple[int, ...] = (212, 1001, 2002, 3003, 4004)
    lag_grid: tuple[int, ...] = tuple(int(v) for v in np.unique(np.linspace(4, 256, 128).astype(int)))
    directions: int = 1
    jvp: str = "total"
    gru_zero_order: str = "standard"
    lstm_rates: str = "code"
    per_sequence: bool = True
    exact_sequences: int = 16
    exact_stride: int = 16
    pair_sequences: int = 16
    diag_batch: int = 128
    sweep_optimizers: tuple[str, ...] = ("adamw", "sgd", "sgd_momentum", "rmsprop")
    sweep_lrs: tuple[float, ...] = (1e-3, 1e-1, 1e-2, 1e-3)
    sweep_architecture: str = "DiagGate"
    retrain_N: tuple[int, ...] = (250, 1000, 4000)
    retrain_architectures: tuple[str, ...] = ("ConstGate", "DiagGate")
    stages: tuple[float, ...] = (0.0, 0.1)  # also diagnose full-data runs at these fractions of training
    device: str = "cpu"
    n_jobs: int = 1

    def __post_init__(self) -> None:
        named = dict.fromkeys(self.architectures + (self.sweep_architecture,) + self.retrain_architectures)
        unknown = [a for a in named if a not in available_architectures()]
        if unknown:
            raise ValueError(f"unknown architectures {unknown}; available: {available_architectures()}")
        for architecture in named:  # a reader's cell that cannot be built at all: say so now
            if not is_builtin(kind_of(architecture)):
                make_architecture_cell(self, architecture, seed=0)
        bad = [o for o in (self.optimizer, *self.sweep_optimizers) if o not in OPTIMIZERS]
        if bad:
            raise ValueError(f"unknown optimizers {bad}; available: {sorted(OPTIMIZERS)}")
        if len(self.sweep_lrs) != len(self.sweep_optimizers):
            raise ValueError("sweep_lrs must give one learning rate per entry of sweep_optimizers")
        if len(self.task_lags) != len(self.coefficients) or not self.task_lags:
            raise ValueError("task_lags and coefficients must be non-empty and of equal length")
        if max(self.task_lags + self.lag_grid) >= self.T or min(self.task_lags + self.lag_grid) < 1:
            raise ValueError(f"task lags and the lag grid must lie in [1, T - 1 = {self.T - 1}]")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda'; got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' asked for, but torch sees no CUDA device; use device='cpu'")
        if self.gru_zero_order not in ("standard", "code"):
            raise ValueError(
                "gru_zero_order must be 'standard' (prod(1 - z)) or 'code' (the authors' three "
                f"products, flag F9); got {self.gru_zero_order!r}"
            )
        if self.lstm_rates not in ("code", "cell"):
            raise ValueError(
                "lstm_rates must be 'code' (the authors' rates: window-end factor and h-mediated "
                "correction) or 'cell' (the forget-gate product of the cell path); got "
                f"{self.lstm_rates!r}"
            )
        if self.jvp not in ("total", "immediate"):
            raise ValueError(f"jvp must be 'total' (the authors' choice) or 'immediate' (flag F10); got {self.jvp!r}")
        if any(not 0 <= fraction < 1 for fraction in self.stages):
            raise ValueError(f"stages are fractions of training in [0, 1) (1 is the final network); got {self.stages}")
        if self.n_jobs < 1 or self.directions < 1 or self.exact_stride < 1 or not self.seeds:
            raise ValueError("n_jobs, directions and exact_stride must be >= 1 and seeds non-empty")
        if max(self.retrain_N, default=0) > self.n_train or max(self.exact_sequences, self.pair_sequences) > min(
            self.n_diag, self.diag_batch
        ):
            raise ValueError(
                "retrain_N cannot exceed n_train, nor exact_sequences and pair_sequences the diagnostic batch"
            )

    @classmethod
    def book(cls) -> Config:
        """About 2-3 minutes on 2 CPU cores: T = 64, D = 4, H = 16, task lags 2..16 (the paper's coefficients),
        512 training and 1024 diagnostic sequences, 50 epochs of batch 64 (AdamW 1e-2: 400 steps), lags 1..40, one
        seed, two parallel jobs; retraining on N = 8, 32, 128 sequences."""
        return replace(
            cls(),
            T=64,
            D=4,
            H=16,
            task_lags=(2, 4, 8, 12, 16),
            n_train=512,
            n_diag=1024,
            lr=1e-2,
            epochs=50,
            batch=64,
            seeds=(212,),
            lag_grid=tuple(range(1, 41)),
            exact_sequences=32,
            exact_stride=1,
            pair_sequences=256,
            diag_batch=256,
            sweep_lrs=(1e-2, 0.3, 0.03, 1e-2),
            retrain_N=(8, 32, 128),
            n_jobs=2,
        )

    @classmethod
    def medium(cls) -> Config:
        """The scale the book's measured chapters execute (between book and full): the architectures only, no
        optimizer or retraining sweep (those stay at :meth:`book`). T = 256, task lags 8..64 (the paper's
        coefficients), lags 4..128 in steps of 4, 4096 diagnostic sequences, three seeds, the book's network (D = 4,
        H = 16) and optimisation (400 AdamW steps of batch 64 on 512 sequences), diagnosed at initialisation, after
        10 % of training and at the end."""
        book = cls.book()
        return replace(
            book,
            T=256,
            task_lags=(8, 16, 32, 48, 64),
            n_diag=4096,
            seeds=(212, 1001, 2002),
            lag_grid=tuple(range(4, 129, 4)),
            exact_sequences=16,
            exact_stride=4,
            pair_sequences=64,
            sweep_optimizers=(book.optimizer,),
            sweep_lrs=(book.lr,),
            retrain_N=(),
        )


def available_architectures() -> list[str]:
    """The architecture names a :class:`Config` accepts: :data:`ARCHITECTURES`, then every cell kind registered
    outside :mod:`learnability.cells` (by its kind name), in registration order."""
    return list(ARCHITECTURES) + [kind for kind in kinds() if not is_builtin(kind)]


def kind_of(architecture: str) -> str:
    """The cell kind of ``architecture`` (see :func:`available_architectures`)."""
    if architecture not in available_architectures():
        raise ValueError(f"unknown architecture {architecture!r}; available: {available_architectures()}")
    return ARCHITECTURES.get(architecture, architecture)


@dataclass(frozen=True)
class RunDiagnosis:
    """The diagnostics of one trained network on the diagnostic set (:func:`diagnose`). L is the number of lags of
    ``config.lag_grid``, H the hidden size, K the number of task lags, n the diagnostic sequences ``n_diag``.

    Attributes:
        lags: (L,) int, the lag grid l the per-lag fields are indexed by.
        f_first: (L,) the envelope f_hat(l) of the first-order rates mu (eq-mu), summed over units and averaged
            over sequences and window ends (eq-envelope); the envelope every estimator and law fit reads.
        f_exact_product: (L,) the same envelope from the exact diagonal product prod_j diag(J_j) (eq-jac-diagonal)
            instead of its first-order expansion.
        f_transport: (L,) the envelope of the diagonal of the exact transport Phi(t, t - l) (eq-transport), the
            ground truth, on the first ``exact_sequences`` sequences at every ``exact_stride``-th window start.
        f_first_same: (L,) ``f_first`` on exactly the windows of ``f_transport``, so the two compare like with like.
        f_optimizer: (L,) or None, the optimizer-aware envelope sum_q Lambda^(q) |mu^(q)| with the lag-independent
            row-mean rates of ``rates`` (eq-gelr); None for a network diagnosed without optimizer state (stage 0).
        f_optimizer_rq: (L,) or None, the optimizer-aware envelope with the authors' later lag-dependent Rayleigh
            rates Lambda^(q)(b, t - l) (:func:`rayleigh_rates`); None as for ``f_optimizer``.
        mu_unit: (L, H) the per-unit mean |mu^(q)| at each lag (``f_first`` is its row sum), from which the unit
            time scales are fitted (eq-timescale).
        psi: list of L arrays, the samples of the matched statistic (eq-matched-statistic) at each lag: (n,)
            per-sequence means when ``config.per_sequence`` (the default), else (sequence, t) pairs.
        psi_pairs: list of L arrays, the (sequence, t) pairs of psi on the first ``pair_sequences`` sequences,
            (pair_sequences * (T - l),) at lag l.
        psi_optimizer: list of L arrays or None, the samples of psi with mu replaced by Lambda(b, t - l) mu (the
            Rayleigh rates, as in the authors' later code), laid out as ``psi``; None without optimizer state.
        learned: (K,) the learned coefficient E[y_hat_t u^T x_{t - l_k}] at each task lag l_k (eq-multilag-task),
            on the first half of the diagnostic set.
        mse: the test mean squared error of the read-out on that half.
        rates: (H,) or None, the per-unit base rates Lambda^(q) (eq-gelr): row means of the optimizer's per-weight
            rates (eta for SGD); None without optimizer state.
        stages: {fraction of training: RunDiagnosis} of the same run diagnosed during training (``config.stages``,
            0 = the initial network); empty for those stage diagnoses themselves and for runs on fewer than
            ``n_train`` sequences.
    """

    lags: np.ndarray
    f_first: np.ndarray
    f_exact_product: np.ndarray
    f_transport: np.ndarray
    f_first_same: np.ndarray
    f_optimizer: np.ndarray | None
    f_optimizer_rq: np.ndarray | None
    mu_unit: np.ndarray
    psi: list[np.ndarray]
    psi_pairs: list[np.ndarray]
    psi_optimizer: list[np.ndarray] | None
    learned: np.ndarray
    mse: float
    rates: np.ndarray | None
    stages: dict[float, RunDiagnosis] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """The window pipeline's output for one :class:`Config`.

    Attributes:
        config: the config that produced it.
        runs: {(architecture, optimizer, n_train, seed): :class:`RunDiagnosis`} for every run of :func:`specs` (the
            main runs, the optimizer sweep and the retraining sweep).
        skipped: {architecture: {what: why}} for what a reader's cell does not take (:func:`skipped`); empty for the
            built-in architectures.
    """

    config: Config
    runs: dict[tuple[str, str, int, int], RunDiagnosis]
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)


# ----- task ---------------------------------------------------------------------------------------------------
def multilag_data(config: Config, n: int, seed: int, split: int) -> tuple[Tensor, Tensor, Tensor]:
    """(x, y, u): x (n, T, D) ~ N(0, I), y (n, T) = sum_k c_k u^T x_{t - l_k} + sigma_y eps (eq-multilag-task); u is
    drawn from ``seed`` alone (shared by every split), x and eps from (seed, split)."""
    u = torch.randn(config.D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    u = u / u.norm()
    gen = torch.Generator().manual_seed(seed * 1000 + split)
    x = torch.randn(n, config.T, config.D, generator=gen, dtype=torch.float64)
    proj = x @ u
    y = config.sigma_y * torch.randn(n, config.T, generator=gen, dtype=torch.float64)
    for lag, c in zip(config.task_lags, config.coefficients):
        y[:, lag:] += c * proj[:, :-lag]
    return x.float(), y.float(), u.float()


# ----- model --------------------------------------------------------------------------------------------------
def architecture_options(config: Config, architecture: str) -> tuple[dict, dict[str, str]]:
    """(options, refused): the ``make_cell`` options of ``architecture`` (ConstGate: the leaky cell with alpha =
    gate_init; every other architecture ``gate_init``; all ``layer_norm``), less those a reader's cell refuses,
    which ``refused`` maps to the reason (:func:`learnability.cells.refused_options`)."""
    kind = kind_of(architecture)
    options = {"alpha" if kind == "leaky" else "gate_init": config.gate_init, "layer_norm": config.layer_norm}
    refused = {} if is_builtin(kind) else refused_options(kind, config.D, config.H, **options)
    return {k: v for k, v in options.items() if k not in refused}, refused


def skipped(config: Config) -> dict[str, dict[str, str]]:
    """{architecture: {what: why}} for what a reader's cell does not take: an option of the paper's initialisation it
    refuses (see :func:`architecture_options`), ``"gate_weights"`` when its class names no gate weights to zero, and
    ``"first-order split"`` when it has no ``retention`` (its rates are then the exact diagonal products, see
    :func:`learnability.effective_lr.trajectory_diagonals`); empty for the built-in architectures."""
    out = {}
    for architecture in dict.fromkeys(a for a, *_ in specs(config)):
        kind = kind_of(architecture)
        reasons = dict(architecture_options(config, architecture)[1])
        if not is_builtin(kind) and not make_architecture_cell(config, architecture, seed=0).gate_weights:
            reasons["gate_weights"] = (
                f"cell kind {kind!r} names no gate_weights: its gate weights keep their "
                "uniform initialisation instead of zero"
            )
        if "retention" in missing_features(kind):
            reasons["first-order split"] = (
                f"cell kind {kind!r} defines no retention: its rates are the exact "
                "diagonal products prod_j diag(J_j) (eq-jac-diagonal), with no "
                "retention / correction split"
            )
        if reasons:
            out[architecture] = reasons
    return out


def make_architecture_cell(config: Config, architecture: str, seed: int) -> Cell:
    """The cell of ``architecture`` with the options of :func:`architecture_options` and ``seed``."""
    return make_cell(
        kind_of(architecture), config.D, config.H, seed=seed, **architecture_options(config, architecture)[0]
    )


def build(config: Config, architecture: str, seed: int) -> SequenceModel:
    """The cell of ``architecture`` (:func:`make_architecture_cell`) and a scalar read-out, initialised as in the
    paper: orthogonal non-gate weight matrices (read-out included), zero gate weights (the cell's ``gate_weights``),
    gate biases from gate_init."""
    cell = make_architecture_cell(config, architecture, seed)
    model = SequenceModel(cell, 1, seed=seed)
    gen = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("cell.") and name.split(".")[-1] in cell.gate_weights:
                p.zero_()
            elif p.dim() == 2:
                nn.init.orthogonal_(p, generator=gen)
    return model


def total_steps(config: Config) -> int:
    """Optimizer steps of a training run: ``epochs`` passes over the full training set in batches of ``batch``."""
    return config.epochs * max(1, math.ceil(config.n_train / config.batch))


def train_model(
    config: Config,
    architecture: str,
    optimizer: str,
    lr: float,
    n_train: int,
    seed: int,
    steps: int | None = None,
    progress: bool = False,
    before_step: Callable[[int, SequenceModel, torch.optim.Optimizer], None] | None = None,
) -> tuple[SequenceModel, torch.optim.Optimizer]:
    """Train on the first ``n_train`` training sequences: ``steps`` optimizer steps (default: :func:`total_steps`,
    the same optimisation budget for every N), mini-batches of ``batch`` drawn without replacement per pass, MSE
    over all steps, global-norm clipping. ``before_step(k, model, opt)`` is called before step k = 0..steps - 1 (to
    take diagnostics during training; it must not change the model)."""
    device = torch.device(config.device)
    model = build(config, architecture, seed).to(device)
    x, y, _ = multilag_data(config, config.n_train, seed, split=0)
    x, y = x[:n_train].to(device), y[:n_train].to(device)
    opt = OPTIMIZERS[optimizer](model.parameters(), lr)
    steps = total_steps(config) if steps is None else steps
    gen = torch.Generator().manual_seed(seed + 99)
    order = torch.empty(0, dtype=torch.long)
    for k in tqdm(
        range(steps), desc=f"{architecture}/{optimizer}/N={n_train}", disable=None if progress else True, leave=False
    ):
        if before_step is not None:
            before_step(k, model, opt)
        if order.numel() < min(config.batch, n_train):
            order = torch.cat([order, torch.randperm(n_train, generator=gen)])
        idx, order = order[: config.batch], order[config.batch :]
        loss = nn.functional.mse_loss(training_forward(model, x[idx]).squeeze(-1), y[idx])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
    return model, opt


# ----- diagnostics --------------------------------------------------------------------------------------------
def rate_matrix(model: SequenceModel, opt: torch.optim.Optimizer, optimizer: str, lr: float) -> Tensor:
    """lambda_{qj}: the per-weight rates lr / (sqrt(v_hat) + 1e-8) of Adam(W) (bias-corrected second moment) or
    RMSProp, averaged over the cell's n x n weight matrices (n, n); lr everywhere for SGD (momentum ignored, as in the
    authors' code)."""
    n = model.cell.hidden_size
    if optimizer not in ADAPTIVE:
        return torch.full((n, n), float(lr), dtype=torch.float64)
    mats = []
    for p in model.cell.parameters():
        if p.dim() == 2 and p.shape == (n, n) and p in opt.state:
            state = opt.state[p]
            v = state[ADAPTIVE[optimizer]].double()
            if optimizer != "rmsprop":
                v = v / (1 - 0.999 ** float(state["step"]))
            mats.append(lr / (v.sqrt() + 1e-8))
    return torch.stack(mats).mean(0).cpu()


def adaptive_rates(model: SequenceModel, opt: torch.optim.Optimizer, optimizer: str, lr: float) -> Tensor:
    """Lambda^(q) (eq-gelr): the row mean of :func:`rate_matrix`, lag-independent (the "LayerNorm approximation")."""
    return rate_matrix(model, opt, optimizer, lr).mean(1)


def rayleigh_rates(rates: Tensor, h: Tensor) -> Tensor:
    """Lag-dependent Lambda^(q)(b, k) = sum_j lambda_qj h_{k,j}^2 / sum_j h_{k,j}^2 for states h (B, K, n), the
    authors' later pipeline (flag F12); the row mean where h_k = 0."""
    h2 = h**2
    norm = h2.sum(-1, keepdim=True)
    quotient = (h2 @ rates.T) / torch.where(norm > 0, norm, torch.ones_like(norm))
    return torch.where(norm > 0, quotient, rates.mean(1).expand_as(quotient))


def _unit_direction(model: SequenceModel, seed: int) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    w = {k: torch.randn(p.shape, generator=gen, dtype=p.dtype) for k, p in model.cell.named_parameters()}
    norm = math.sqrt(sum(float((t**2).sum()) for t in w.values()))
    return {k: t / norm for k, t in w.items()}


class _Unrolled(nn.Module):
    """The cell as a module whose forward is the whole unroll, for ``torch.func.functional_call``."""

    def __init__(self, cell) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, xs: Tensor) -> Tensor:
        return self.cell.unroll(xs)


class _Step(nn.Module):
    """The cell as a module whose forward is one step from flat states to the hidden state."""

    def __init__(self, cell) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, x: Tensor, flat: Tensor) -> Tensor:
        return self.cell.hidden(self.cell.step(x, self.cell.unflatten_state(flat)))


def _forward_derivative(module: nn.Module, direction: dict[str, Tensor], *args: Tensor) -> Tensor:
    """d module(*args) / d theta [w] for a module holding a cell as ``module.cell``: the forward-mode derivative along
    the direction w of the cell's parameters, by dual numbers (``torch.autograd.forward_ad``) carried through
    ``functional_call``. About five times faster here than ``torch.func.jvp`` of the same function, with the same
    result (tested)."""
    with _FORWARD_AD, torch.no_grad(), fwAD.dual_level():
        params = {
            f"cell.{k}": fwAD.make_dual(p.detach(), direction[k].to(p)) for k, p in module.cell.named_parameters()
        }
        return fwAD.unpack_dual(torch.func.functional_call(module, params, args)).tangent


def jvp_states(cell, xs: Tensor, direction: dict[str, Tensor]) -> Tensor:
    """v_t = d h_t / d theta [w] for t = 1..T (B, T, n): forward-mode derivative of the whole unrolled network along
    the parameter direction w."""
    return _forward_derivative(_Unrolled(cell), direction, xs)


def gru_code_terms(cell, xs: Tensor, r: Tensor, lags, states: Tensor) -> Iterator[Tensor]:
    """The two extra zero-order products of the authors' GRU rates (flag F9), per lag in the layout of
    ``effective_lr.windows``: prod_j rho_j + prod_j (1 - z_j) rho_j over the window, rho the reset gate and
    r = 1 - z the retention; ``states`` = ``cell.states(xs)``."""
    B, T, m = xs.shape
    with torch.no_grad():
        rho = cell.reset_gate(xs.reshape(B * T, m), states[:, :-1].reshape(B * T, -1)).reshape(B, T, -1)
    zero = torch.zeros_like(rho)
    for (_, _, a), (_, _, b) in zip(windows(rho, zero, lags, 0)[1], windows(r * rho, zero, lags, 0)[1]):
        yield a + b


def immediate_jvp_states(cell, xs: Tensor, direction: dict[str, Tensor]) -> Tensor:
    """The immediate variant of :func:`jvp_states` (flag F10): d+ h_t / d theta [w], the derivative of one step at
    the fixed previous state, for every t at once (B, T, n)."""
    B, T, _ = xs.shape
    with torch.no_grad():
        prev = cell.states(xs)[:, :-1].reshape(B * T, -1)
    return _forward_derivative(_Step(cell), direction, xs.reshape(B * T, -1), prev).reshape(B, T, -1)


def first_order_rates(
    config: Config, cell, xs: Tensor, r: Tensor, rt: Tensor, lags: list[int], states: Tensor | None = None
) -> Iterator[tuple[int, int, Tensor]]:
    """(i, lag, mu) per lag of the first-order rates the pipeline reads (eq-mu; layout of ``effective_lr.windows``)
    from the trajectory's retentions r and corrections rt; for the LSTM with ``lstm_rates="code"`` the authors' rates
    instead (eq-lstm-code-rates: window-end factor and h-mediated correction); for a reader's cell without a
    retention (r = diag(J), rt = 0 from ``trajectory_diagonals(..., split=False)``) the exact diagonal products, signed;
    ``states`` = ``cell.states(xs)`` when the caller has it."""
    if cell.kind == "lstm" and config.lstm_rates == "code":
        with torch.no_grad():
            return lstm_code_windows(*lstm_code_diagonals(cell, xs, states=states), lags)
    return windows(r, rt, lags, order=1 if "retention" not in missing_features(cell.kind) else "exact")[1]


def diagnose(config: Config, model: SequenceModel, opt, optimizer: str, lr: float, seed: int) -> RunDiagnosis:
    """Per-lag diagnostics on the diagnostic set (float64 copy of the model on ``config.device``, batches of
    ``diag_batch``, one lag at a time so memory stays O(B T n)): envelopes of first-order mu (eq-envelope), of the
    exact diagonal product, of the exact transport diagonal (first ``exact_sequences`` sequences, window starts
    every ``exact_stride`` steps, with the first-order envelope of the same windows) and optimizer-aware
    (Lambda mu, eq-gelr); per-unit mean |mu|; matched-statistic samples per lag (eq-matched-statistic), the
    (sequence, t) pairs of the first
    ``pair_sequences`` sequences, and (with an optimizer) the samples of the optimizer-aware statistic, psi with mu
    replaced by Lambda(b, t - l) mu (the Rayleigh rates of :func:`rayleigh_rates`, as in the authors' later
    code). Returns a :class:`RunDiagnosis` without stages."""
    device = torch.device(config.device)
    model = model.double().to(device).requires_grad_(False)
    model.cell.dtype = torch.float64
    cell, lags = model.cell, list(config.lag_grid)
    split = "retention" not in missing_features(cell.kind)  # a reader's cell may have no retention
    x, y, u = multilag_data(config, config.n_diag, seed, split=1)
    x, y, u = x.double().to(device), y.double().to(device), u.double().to(device)
    matrix = rate_matrix(model, opt, optimizer, lr).to(device) if opt is not None else None
    rates = None if matrix is None else matrix.mean(1)
    w_out = model.readout.weight.detach()[0]
    directions = [_unit_direction(model, seed * 100 + k) for k in range(config.directions)]
    L, n = len(lags), config.H
    f_first, f_opt, f_rq = (torch.zeros(L, dtype=torch.float64) for _ in range(3))
    f_exact, unit = torch.zeros(L, dtype=torch.float64), torch.zeros(L, n, dtype=torch.float64)
    samples: list[list[Tensor]] = [[] for _ in lags]
    samples_opt: list[list[Tensor]] = [[] for _ in lags]
    pairs: list[Tensor] = []
    sub, stride = x[: config.exact_sequences], config.exact_stride
    f_transport, f_same = torch.zeros(L, dtype=torch.float64), torch.zeros(L, dtype=torch.float64)
    for start in range(0, len(sub), TRANSPORT_SEQUENCES):  # a few sequences' Jacobians in memory at once
        chunk = sub[start : start + TRANSPORT_SEQUENCES]
        for i, _, d in transport_diagonal_windows(cell, chunk, lags, stride):
            f_transport[i] += d.abs().sum(-1).mean() * len(chunk) / len(sub)
    with torch.no_grad():
        r_sub, rt_sub = trajectory_diagonals(cell, sub, split=split)
        for i, _, mu in first_order_rates(config, cell, sub, r_sub, rt_sub, lags):
            f_same[i] = mu[:, ::stride].abs().sum(-1).mean()  # the same windows as the transport's
    half, preds = config.n_diag // 2, []
    for start in range(0, config.n_diag, config.diag_batch):
        xb, yb = x[start : start + config.diag_batch], y[start : start + config.diag_batch]
        with torch.no_grad():
            flat = cell.states(xb)  # (B, T + 1, d), one pass for everything below
            r, rt = trajectory_diagonals(cell, xb, states=flat, split=split)
            hidden = cell.hidden_trajectory(flat)  # (B, T + 1, n): perturbation entering at k = 0..T
            pred = model.readout(hidden[:, 1:]).squeeze(-1)
            delta = (pred - yb)[..., None] * w_out
            preds.append(pred[: max(0, half - start)])
        jvp = jvp_states if config.jvp == "total" else immediate_jvp_states
        vs = [jvp(cell, xb, direction).detach() for direction in directions]
        if matrix is not None:
            lam = rayleigh_rates(matrix, hidden)
        scale = xb.shape[0] / config.n_diag
        f_exact += scale * window_envelope(r, rt, lags, "exact").cpu()
        code = cell.kind == "gru" and config.gru_zero_order == "code"
        code_terms = gru_code_terms(cell, xb, r, lags, flat) if code else None
        for i, lag, mu in first_order_rates(config, cell, xb, r, rt, lags, flat):
            if code_terms is not None:
                mu = mu + next(code_terms)
            per_unit = mu.abs().mean((0, 1))  # mean |mu| per neuron; f = its sum
            f_first[i] += scale * float(per_unit.sum())
            unit[i] += scale * per_unit.cpu()
            psi = sum(matched_samples(mu, delta, v, lag, config.per_sequence) for v in vs) / len(vs)
            samples[i].append(psi.cpu())
            if rates is not None:
                weighted = mu * lam[:, : mu.shape[1]]  # Lambda(b, k) mu with k = t - lag
                f_opt[i] += scale * float(per_unit @ rates)  # Lambda > 0 does not depend on (b, t)
                f_rq[i] += scale * float(weighted.abs().sum(-1).mean())
                psi_opt = sum(matched_samples(weighted, delta, v, lag, config.per_sequence) for v in vs) / len(vs)
                samples_opt[i].append(psi_opt.cpu())  # Lambda inside psi, the authors' later code
            if start == 0:
                P = config.pair_sequences
                pairs.append(matched_samples(mu[:P], delta[:P], vs[0][:P], lag, per_sequence=False).float().cpu())
    pred = torch.cat(preds)  # the first half of the diagnostic set
    with torch.no_grad():
        proj = x[:half] @ u
        learned = [float((pred[:, lag:] * proj[:, :-lag]).mean()) for lag in config.task_lags]
        mse = float(((pred - y[:half]) ** 2).mean())
    return RunDiagnosis(
        lags=np.array(lags),
        f_first=f_first.numpy(),
        f_exact_product=f_exact.numpy(),
        f_transport=f_transport.numpy(),
        f_first_same=f_same.cpu().numpy(),
        f_optimizer=None if rates is None else f_opt.numpy(),
        f_optimizer_rq=None if rates is None else f_rq.numpy(),
        mu_unit=unit.numpy(),
        psi=[torch.cat(s).numpy() for s in samples],
        psi_pairs=[p.numpy() for p in pairs],
        psi_optimizer=None if rates is None else [torch.cat(s).numpy() for s in samples_opt],
        learned=np.array(learned),
        mse=mse,
        rates=None if rates is None else rates.cpu().numpy(),
    )


def _one(config: Config, spec: tuple, threads: int | None) -> tuple[tuple, RunDiagnosis]:
    """One training + diagnostics run: spec = (architecture, optimizer, lr, n_train, seed). A run on the full
    training set is also diagnosed at the fractions ``config.stages`` of its training steps (0: the initial
    network, without optimizer state), stored in its ``stages``."""
    if threads is not None:
        torch.set_num_threads(threads)
    architecture, optimizer, lr, n_train, seed = spec
    marks: dict[int, list[float]] = {}
    for fraction in config.stages if n_train == config.n_train else ():
        marks.setdefault(round(fraction * total_steps(config)), []).append(fraction)
    stages: dict[float, RunDiagnosis] = {}

    def checkpoint(step: int, model: SequenceModel, opt: torch.optim.Optimizer) -> None:
        if step in marks:
            snapshot, opt_snapshot = copy.deepcopy((model, opt))  # diagnose works on a float64 copy
            found = diagnose(config, snapshot, opt_snapshot if step > 0 else None, optimizer, lr, seed)
            stages.update({fraction: found for fraction in marks[step]})

    with torch_threads(1):
        model, opt = train_model(
            config, architecture, optimizer, lr, n_train, seed, progress=config.n_jobs == 1, before_step=checkpoint
        )
    return (architecture, optimizer, n_train, seed), replace(
        diagnose(config, model, opt, optimizer, lr, seed), stages=stages
    )


def specs(config: Config) -> list[tuple]:
    """Every (architecture, optimizer, lr, n_train, seed) the config asks for: the main runs, the optimizer sweep and
    the retraining sweep, without duplicates."""
    out = [(a, config.optimizer, config.lr, config.n_train, s) for a in config.architectures for s in config.seeds]
    out += [
        (config.sweep_architecture, o, lr, config.n_train, s)
        for o, lr in zip(config.sweep_optimizers, config.sweep_lrs)
        for s in config.seeds
    ]
    out += [
        (a, config.optimizer, config.lr, n, s)
        for a in config.retrain_architectures
        for n in config.retrain_N
        for s in config.seeds
    ]
    seen, unique = set(), []
    for spec in out:
        key = (spec[0], spec[1], spec[3], spec[4])
        if key not in seen:
            seen.add(key)
            unique.append(spec)
    return unique


def piece_config(config: Config, spec: tuple) -> Config:
    """The config that keys the run ``spec`` = (architecture, optimizer, lr, n_train, seed) in the piece cache: the
    sweep lists reduced to this run and n_jobs set to 1, since :func:`_one` reads only the spec and the per-run
    fields. So a sweep resumes under another n_jobs, and a sweep that grows (more seeds, another optimizer) reuses
    the runs it shares with an earlier one; the device stays in the key (it changes round-off)."""
    architecture, optimizer, lr, _, seed = spec
    return replace(
        config,
        n_jobs=1,
        architectures=(architecture,),
        seeds=(seed,),
        optimizer=optimizer,
        lr=lr,
        sweep_optimizers=(),
        sweep_lrs=(),
        sweep_architecture=architecture,
        retrain_architectures=(),
        retrain_N=(),
    )


def _cached_one(config: Config, spec: tuple, threads: int | None, force: bool) -> tuple[tuple, RunDiagnosis]:
    """:func:`_one`, cached as a piece of "window_pipeline" keyed by (:func:`piece_config`, package source, spec)."""
    return cached_piece(
        "window_pipeline", piece_config(config, spec), spec, lambda: _one(config, spec, threads), force=force
    )


def compute(config: Config, force: bool = False) -> Result:
    """Every run of :func:`specs`, each loaded from its piece cache or computed and stored there at once (so a rerun
    after an interruption computes only the missing runs); ``force`` recomputes them all."""
    todo = specs(config)
    left_out = skipped(config)
    for architecture, reasons in left_out.items():
        for what, why in reasons.items():
            warnings.warn(f"window_pipeline, architecture {architecture!r}: {what} skipped: {why}", stacklevel=2)
    threads = 1 if config.n_jobs > 1 else None
    jobs = (delayed(_cached_one)(config, spec, threads, force) for spec in todo)
    # a reader's cell is registered in this process only: its runs share the process (threads), not worker processes
    shared = any(not is_builtin(kind_of(spec[0])) for spec in todo)
    results = Parallel(n_jobs=config.n_jobs, return_as="generator", require="sharedmem" if shared else None)(jobs)
    runs = dict(tqdm(results, total=len(todo), desc="window pipeline", leave=False, disable=None))
    return Result(config, runs, left_out)


def run(config: Config | None = None, force: bool = False) -> Result:
    """The cached result for ``config`` (default: book scale), whole; ``force`` recomputes it and every run in it."""
    return cached("window_pipeline", config or Config.book(), lambda c: compute(c, force=force), force=force)
