"""Directional concentration of gradient transport and of parameter updates (book/p1_anisotropy.md).

Following the S2 code of arXiv 2508.12121: for singular values s_1 >= s_2 >= ...,
AI_k = s_1 / s_k (anisotropy index) and CE_k = sum_{i<=k} s_i^2 / sum_{i<=top} s_i^2 (concentrated energy), with k = 10
(eq-anisotropy). For Jacobian products the code normalises CE by the top 16 values; for the gradient covariance by
all of them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def anisotropy(svals: Tensor, k: int = 10, top: int | None = None) -> tuple[Tensor, Tensor]:
    """(AI_k, CE_k) from singular values (..., r) sorted in decreasing order; ``top`` limits CE's denominator."""
    r = svals.shape[-1]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= r:
        raise ValueError(f"k must be an integer in [1, {r}] (the number of singular values); got {k!r}")
    top = r if top is None else top
    if not k <= top <= r:
        raise ValueError(f"top must lie in [k, r] = [{k}, {r}]; got {top}")
    energy = svals**2
    ce = energy[..., :k].sum(-1) / energy[..., :top].sum(-1).clamp_min(torch.finfo(svals.dtype).tiny)
    ai = svals[..., 0] / svals[..., k - 1].clamp_min(torch.finfo(svals.dtype).tiny)
    return ai, ce


def per_example_gradients(model: nn.Module, loss_fn, xs: Tensor, ys: Tensor, masks: Tensor) -> Tensor:
    """Flattened gradients of ``loss_fn(model(x), y, mask)`` for each example, (M, P), by ``torch.func.vmap(grad)``."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def single(p: dict, x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
        pred = torch.func.functional_call(model, p, (x.unsqueeze(0),))
        return loss_fn(pred, y.unsqueeze(0), mask.unsqueeze(0))

    grads = torch.func.vmap(torch.func.grad(single), in_dims=(None, 0, 0, 0))(params, xs, ys, masks)
    return torch.cat([grads[name].reshape(xs.shape[0], -1) for name in params], dim=1)


def gradient_covariance_stats(G: Tensor, k: int = 10) -> tuple[float, float]:
    """(AI_k, CE_k) of the per-example gradient matrix G (M, P) after the S2 code's preprocessing: rows scaled to
    unit norm, columns centred, (near-)constant columns dropped; CE over the full spectrum."""
    if G.dim() != 2 or G.shape[0] < k:
        raise ValueError(f"G must be (M, P) with M >= k = {k}; got {tuple(G.shape)}")
    rows = G / torch.linalg.vector_norm(G, dim=1, keepdim=True).clamp_min(torch.finfo(G.dtype).tiny)
    rows = rows - rows.mean(0, keepdim=True)
    rows = rows[:, rows.std(0) > 1e-12]
    ai, ce = anisotropy(torch.linalg.svdvals(rows), k)
    return float(ai), float(ce)
