"""Torch paths for Part III: the population loss differentiable by autograd, and training on sampled white noise.

* :func:`population_loss_torch` evaluates eq-population-loss in the frequency domain,
  L = 1/(2 pi) integral_0^inf |F(i w) - F*(i w)|^2 dw with F(q) = v^T ((1 + q) I - W)^{-1} u, by composite
  Gauss-Legendre quadrature after w = a tan(theta) (a = the narrowest feature's width); autograd through it gives
  the gradients of eq-population-gradients independently of the Gramian formulas.
* :func:`simulate` / :func:`sampled_loss` / :func:`bptt_descent`: Euler-Maruyama trials
  h_{k+1} = h_k + dt (W - I) h_k + u sqrt(dt) xi_k with the target's own EM state driven by the same xi_k, and SGD by
  backpropagation through time on the sampled loss (eq-em-loss), the realism check of the population flow.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ..linear_dynamics import Number, population_loss, target_modes


def _tensors(u, v, W, dtype=torch.float64) -> tuple[Tensor, Tensor, Tensor, float]:
    """(u, v, W) as tensors (arrays are converted to ``dtype``) and the stability gap 1 - max Re eig(W) > 0."""
    u, v, W = (x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x), dtype=dtype) for x in (u, v, W))
    if u.dim() != 1 or v.shape != u.shape or W.shape != (u.numel(), u.numel()):
        raise ValueError(
            f"need u, v of shape (N,) and W of shape (N, N); got {tuple(u.shape)}, {tuple(v.shape)}, {tuple(W.shape)}"
        )
    top = float(torch.linalg.eigvals(W.detach()).real.max())
    if not top < 1:
        raise ValueError(f"unstable network: max Re eig(W) = {top:.6f} >= 1, the stationary loss is infinite")
    return u, v, W, 1.0 - top


def population_loss_torch(
    u, v, W, c_star: Number, kappa: Number = 1.0, omega: Number = 0.0, *, panels: int = 64, order: int = 16
) -> Tensor:
    """eq-population-loss by frequency-domain quadrature (differentiable in u, v, W; float64 recommended).

    theta in (0, pi/2) is split into ``panels`` equal panels of ``order`` Gauss-Legendre nodes; w = a tan(theta),
    dw = a sec^2(theta) dtheta, with a = min(min_k c_k, 1 - max Re eig(W)), so that the narrowest peak of the
    integrand (width ~ a at w = 0, or near a target or network frequency) is resolved.
    """
    c, k, w = target_modes(c_star, kappa, omega)
    u, v, W, gap = _tensors(u, v, W)
    if panels < 1 or order < 2:
        raise ValueError(f"need panels >= 1 and order >= 2; got {panels!r}, {order!r}")
    scale = min(float(c.min()), gap)
    nodes, weights = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(0.0, np.pi / 2, panels + 1)
    half = np.diff(edges)[:, None] / 2
    theta = (edges[:-1, None] + half * (nodes[None, :] + 1)).ravel()
    wts = (half * weights[None, :]).ravel() * scale / np.cos(theta) ** 2
    freq = scale * np.tan(theta)
    dtype = u.dtype
    q = torch.as_tensor(1j * freq, dtype=torch.complex128 if dtype == torch.float64 else torch.complex64)
    N = u.numel()
    eye = torch.eye(N, dtype=q.dtype)
    M = (1 + q)[:, None, None] * eye - W.to(q.dtype)  # (Q, N, N)
    F = torch.linalg.solve(M, u.to(q.dtype).expand(len(freq), N)) @ v.to(q.dtype)
    qs = torch.as_tensor(1j * freq)[:, None] + torch.as_tensor(c)
    Fstar = (torch.as_tensor(k) * qs / (qs**2 + torch.as_tensor(w) ** 2)).sum(-1).to(q.dtype)
    integrand = (F - Fstar).abs() ** 2
    return (integrand * torch.as_tensor(wts, dtype=dtype)).sum() / (2 * np.pi)


def _target_matrices(c: np.ndarray, w: np.ndarray, dtype) -> Tensor:
    """B_k = [[-c_k, -w_k], [w_k, -c_k]], the generator of the target's mode k (its filter is e1^T e^{B s} e1)."""
    B = np.zeros((c.size, 2, 2))
    B[:, 0, 0] = B[:, 1, 1] = -c
    B[:, 0, 1], B[:, 1, 0] = -w, w
    return torch.as_tensor(B, dtype=dtype)


def simulate(
    u,
    v,
    W,
    c_star: Number,
    kappa: Number = 1.0,
    omega: Number = 0.0,
    *,
    batch: int,
    steps: int,
    dt: float,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """(y, y*) of shape (batch, steps): Euler-Maruyama trials from h = 0 of the network and of the target, both
    driven by the same noise increments sqrt(dt) xi_k (eq-em-loss). Differentiable in u, v, W."""
    c, k, w = target_modes(c_star, kappa, omega)
    u, v, W, _ = _tensors(u, v, W)
    if batch < 1 or steps < 1 or not 0 < dt <= 0.5:
        raise ValueError(f"need batch >= 1, steps >= 1 and 0 < dt <= 0.5; got {batch!r}, {steps!r}, {dt!r}")
    dtype = u.dtype
    xi = torch.randn(steps, batch, generator=generator, dtype=dtype) * dt**0.5
    step_net = torch.eye(u.numel(), dtype=dtype) + dt * (W - torch.eye(u.numel(), dtype=dtype))
    step_tgt = torch.eye(2, dtype=dtype) + dt * _target_matrices(c, w, dtype)  # (modes, 2, 2)
    kap = torch.as_tensor(k, dtype=dtype)
    h = torch.zeros(batch, u.numel(), dtype=dtype)
    z = torch.zeros(c.size, batch, 2, dtype=dtype)
    ys, ts = [], []
    for n in range(steps):
        h = h @ step_net.T + xi[n, :, None] * u
        z = z @ step_tgt.mT
        z[..., 0] += kap[:, None] * xi[n]
        ys.append(h @ v)
        ts.append(z[..., 0].sum(0))
    return torch.stack(ys, 1), torch.stack(ts, 1)


def sampled_loss(
    u,
    v,
    W,
    c_star: Number,
    kappa: Number = 1.0,
    omega: Number = 0.0,
    *,
    batch: int,
    steps: int,
    burn_in: int,
    dt: float,
    generator: torch.Generator,
) -> Tensor:
    """1/2 mean over trials and over steps burn_in..steps-1 of (y - y*)^2 (eq-em-loss)."""
    if not 0 <= burn_in < steps:
        raise ValueError(f"need 0 <= burn_in < steps; got burn_in={burn_in!r}, steps={steps!r}")
    ynet, ytgt = simulate(u, v, W, c_star, kappa, omega, batch=batch, steps=steps, dt=dt, generator=generator)
    return 0.5 * ((ynet - ytgt)[:, burn_in:] ** 2).mean()


def expected_sampled_loss(
    u, v, W, c_star: Number, kappa: Number = 1.0, omega: Number = 0.0, *, steps: int, burn_in: int, dt: float
) -> float:
    """The exact expectation of :func:`sampled_loss`: the error at step n is sum_{j < n+1} sqrt(dt) xi g_j with the
    discrete filter difference g_j = v^T (I + dt A)^j u - sum_k kappa_k e1^T (I + dt B_k)^j e1, so
    E loss = 1/2 mean_{n = burn_in..steps-1} dt sum_{j <= n} g_j^2 (eq-em-loss); it tends to eq-population-loss
    as dt -> 0 and burn_in dt -> infinity."""
    c, k, w = target_modes(c_star, kappa, omega)
    u, v, W = (x.detach() for x in _tensors(u, v, W)[:3])
    if not 0 <= burn_in < steps:
        raise ValueError(f"need 0 <= burn_in < steps; got burn_in={burn_in!r}, steps={steps!r}")
    dtype = u.dtype
    step_net = torch.eye(u.numel(), dtype=dtype) + dt * (W - torch.eye(u.numel(), dtype=dtype))
    step_tgt = torch.eye(2, dtype=dtype) + dt * _target_matrices(c, w, dtype)
    g = torch.empty(steps, dtype=dtype)
    h, z = u.clone(), torch.zeros(c.size, 2, dtype=dtype)
    z[:, 0] = torch.as_tensor(k, dtype=dtype)
    for j in range(steps):
        g[j] = v @ h - z[:, 0].sum()
        h, z = step_net @ h, (step_tgt @ z[..., None])[..., 0]
    partial = torch.cumsum(dt * g**2, 0)
    return float(0.5 * partial[burn_in:].mean())


def bptt_descent(
    u,
    v,
    W,
    c_star: Number,
    *,
    lr: float,
    steps: int,
    kappa: Number = 1.0,
    omega: Number = 0.0,
    batch: int = 64,
    dt: float = 0.05,
    trial: float = 20.0,
    burn_in: float = 10.0,
    record_every: int = 10,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """SGD by backpropagation through Euler-Maruyama trials (``trial`` time units, the first ``burn_in`` of them
    not scored; fresh noise every step). Records time = lr * step, the sampled loss, the exact population loss
    and the eigenvalues of W; raises ``ValueError`` if a step makes W unstable."""
    if not lr > 0 or steps < 0 or record_every < 1 or not 0 <= burn_in < trial:
        raise ValueError(
            f"need lr > 0, steps >= 0, record_every >= 1 and 0 <= burn_in < trial; got {lr!r}, "
            f"{steps!r}, {record_every!r}, {burn_in!r}, {trial!r}"
        )
    params = [torch.tensor(np.asarray(x, dtype=float), requires_grad=True) for x in (u, v, W)]
    gen = torch.Generator().manual_seed(seed)
    n_steps, n_burn = int(round(trial / dt)), int(round(burn_in / dt))
    rec: dict[str, list] = {key: [] for key in ("time", "sampled", "loss", "eigenvalues")}
    for step in tqdm(range(steps + 1), desc="BPTT", leave=False, disable=None):
        loss = sampled_loss(
            *params, c_star, kappa, omega, batch=batch, steps=n_steps, burn_in=n_burn, dt=dt, generator=gen
        )
        if step % record_every == 0 or step == steps:
            arrays = [p.detach().numpy() for p in params]
            rec["time"].append(lr * step)
            rec["sampled"].append(float(loss.detach()))
            rec["loss"].append(population_loss(*arrays, c_star, kappa, omega))
            rec["eigenvalues"].append(np.linalg.eigvals(arrays[2]))
        if step == steps:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p_, g_ in zip(params, grads):
                p_ -= lr * g_
        top = float(torch.linalg.eigvals(params[2].detach()).real.max())
        if not top < 1:
            raise ValueError(f"SGD step {step + 1} made W unstable (max Re eig = {top:.4f}); use a smaller lr")
    out = {key: np.asarray(val) for key, val in rec.items()}
    out.update(u=params[0].detach().numpy(), v=params[1].detach().numpy(), W=params[2].detach().numpy())
    return out
