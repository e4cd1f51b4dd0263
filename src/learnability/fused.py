"""Fused recurrences for training: the LSTM and GRU unrolls with hand-written backpropagation through time.

The cells of :mod:`learnability.cells` step one explicit gate at a time, which is what the Jacobian analysis needs;
autograd then records some thirty small operations per time step, and on a CPU that bookkeeping, not arithmetic,
dominates a training step. Here one :class:`torch.autograd.Function` per cell runs the whole unroll: the input
projections of all T steps are one matrix product, the recursion touches only preallocated step-major buffers, and
the backward is the BPTT recursion written out (eq-lstm-bptt, eq-gru-bptt in book/reproducibility.md), with the weight
gradients of all steps summed by one matrix product after the loop. Same equations as
:meth:`learnability.cells.LSTMCell.step` / :meth:`~learnability.cells.GRUCell.step` without LayerNorm;
:func:`step_agreement` and ``tests/test_fused.py`` check values and gradients against the step-by-step autograd unroll
and ``torch.autograd.gradcheck``. First derivatives only, and no ``torch.func`` transforms: the cells fall back to
the step loop there (:meth:`learnability.cells.Cell._fusable`).

LSTM, gate order (i, f, o, c) in the stacked pre-activation z_t = U x_t + b + W h_{t-1}:

    s = sigma(z[:3n]), g = tanh(z[3n:]), c_t = f c_{t-1} + i g, h_t = o tanh(c_t);

backward (eq-lstm-bptt), with dH_t the gradient arriving at output h_t, dh_t / dc_t the totals reaching h_t / c_t:

    dh_t = dH_t + dz_{t+1} W,   dc_t = dc_{t+1} f_{t+1} + dh_t o_t (1 - tanh^2 c_t),
    dz_t = [dc_t g, dc_t c_{t-1}, dh_t tanh c_t, dc_t i] * [s(1-s), s(1-s), s(1-s), 1-g^2]  (per block),
    dW = sum_t dz_t^T h_{t-1},  dU = sum_t dz_t^T x_t,  db = sum_t dz_t.

GRU (reset before W_h), gate order (z, r) in q_t = U_g x_t + b_g + W_g h_{t-1}, a_t = U_h x_t + b_h + W_h (r h_{t-1}):

    z, r = sigma(q), n = tanh(a), h_t = (1 - z) h_{t-1} + z n;

backward (eq-gru-bptt): dh_t = dH_t + [(1-z) dh + dq W_g + r (da W_h)]_{t+1},
    da_t = dh_t z (1 - n^2),  dq_t = [dh_t (n - h_{t-1}), (da_t W_h) h_{t-1}] * sigma',
    dW_g = sum_t dq_t^T h_{t-1},  dW_h = sum_t da_t^T (r h_{t-1}).

tanh of the LSTM candidate is computed as 2 sigma(2 z) - 1 (exact identity; one sigmoid then covers all four gate
blocks, which at these sizes is cheaper than tanh on a strided slice).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable


def _check(xs: Tensor, U: Tensor, W: Tensor, b: Tensor, states: tuple[Tensor, ...], blocks: int) -> None:
    if xs.dim() != 3 or xs.shape[1] < 1:
        raise ValueError(f"xs must have shape (B, T >= 1, m); got {tuple(xs.shape)}")
    B, T, m = xs.shape
    n = states[0].shape[-1]
    k = blocks * n
    if U.shape != (k, m) or W.shape != (k, n) or b.shape != (k,):
        raise ValueError(f"weights must be U ({k}, {m}), W ({k}, {n}), b ({k},) for hidden size {n}; got "
                         f"{tuple(U.shape)}, {tuple(W.shape)}, {tuple(b.shape)}")
    if any(s.shape != (B, n) for s in states):
        raise ValueError(f"initial states must have shape (B, n) = ({B}, {n}); got {[tuple(s.shape) for s in states]}")
    if len({t.dtype for t in (xs, U, W, b, *states)}) != 1:
        raise ValueError("xs, weights and states must share one dtype")


def _projection(xs: Tensor, U: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Inputs as step-major rows X (T B, m) and their projections U x_t + b for all steps, (T, B, k): one product."""
    B, T, m = xs.shape
    X = xs.transpose(0, 1).reshape(T * B, m)
    return X, torch.addmm(b, X, U.T).view(T, B, -1)


def _weight_gradients(dZ: Tensor, *rows: Tensor) -> Tensor:
    """sum_t dz_t^T [rows_t, 1] for all blocks of rows at once, (k, widths + 1): the gradients of the weights that
    multiply ``rows`` (and, in the last column, of the bias) from dZ (T, B, k), one pass over dZ."""
    T, B, k = dZ.shape
    right = torch.cat([r.reshape(T * B, -1) for r in rows] + [dZ.new_ones(T * B, 1)], dim=1)
    return dZ.view(T * B, k).T @ right


def _input_gradient(ctx: FunctionCtx, dZ: Tensor, U: Tensor) -> Tensor | None:
    """dL/dxs = dz_t U as (B, T, m), or None when xs needs no gradient."""
    T, B, k = dZ.shape
    return (dZ.view(T * B, k) @ U).view(T, B, -1).transpose(0, 1) if ctx.needs_input_grad[0] else None

class _LSTMUnroll(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, xs: Tensor, U: Tensor, W: Tensor, b: Tensor, h0: Tensor, c0: Tensor) -> Tensor:
        B, T, _ = xs.shape
        n = h0.shape[-1]
        # tanh(x) = 2 sigma(2x) - 1: with the candidate rows doubled one sigmoid covers all four blocks
        scale = torch.ones(4 * n, dtype=xs.dtype, device=xs.device)
        scale[3 * n:] = 2
        X, P = _projection(xs, U * scale[:, None], b * scale)
        W2T = (W * scale[:, None]).T.contiguous()
        A = xs.new_empty(T, B, 4 * n)                         # [i, f, o, sigma(2 z_c)]
        C = xs.new_empty(T + 1, B, n)                         # c_0..c_T
        H = xs.new_empty(T + 1, B, n)                         # h_0..h_T
        TC = xs.new_empty(T, B, n)                            # tanh(c_t)
        C[0], H[0] = c0, h0
        # per-step views made once (at these sizes indexing inside the loop costs as much as the arithmetic)
        Ps, As, Hs, Cs, TCs = P.unbind(0), A.unbind(0), H.unbind(0), C.unbind(0), TC.unbind(0)
        i, f, o, s = (A[..., k * n: (k + 1) * n].unbind(0) for k in range(4))
        for t in range(T):
            torch.addmm(Ps[t], Hs[t], W2T, out=As[t]).sigmoid_()
            # c_t = f c + i g with g = 2 s - 1
            torch.mul(f[t], Cs[t], out=Cs[t + 1]).addcmul_(i[t], s[t], value=2).sub_(i[t])
            torch.tanh(Cs[t + 1], out=TCs[t])
            torch.mul(o[t], TCs[t], out=Hs[t + 1])
        ctx.save_for_backward(X, U, W, A, C, H, TC)
        return H[1:].transpose(0, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dH: Tensor) -> tuple[Tensor, ...]:
        X, U, W, A, C, H, TC = ctx.saved_tensors
        T, B, n4 = A.shape
        n = n4 // 4
        i, f, o, s = A.split(n, dim=-1)
        # the factors of eq-lstm-bptt that do not depend on the recursion, for all t at once:
        # M multiplies [dc, dc, dh, dc] into dz (g = 2 s - 1, 1 - g^2 = 4 s (1 - s)); Q = o (1 - tanh^2 c)
        M = torch.addcmul(A, A, A, value=-1)                 # a (1 - a), every block
        M[..., 3 * n:].mul_(i).mul_(4)
        M[..., :n].mul_(torch.mul(s, 2).sub_(1))
        M[..., n: 2 * n].mul_(C[:-1])
        M[..., 2 * n: 3 * n].mul_(TC)
        Q = (1 - TC * TC).mul_(o)
        dZ = A.new_empty(T, B, n4)
        Ms, Mo, Qs, fs = M.view(T, B, 4, n).unbind(0), M[..., 2 * n: 3 * n].unbind(0), Q.unbind(0), f.unbind(0)
        dHs = dH.unbind(1)
        dZs, dZo, dZf = dZ.view(T, B, 4, n).unbind(0), dZ[..., 2 * n: 3 * n].unbind(0), dZ.unbind(0)
        dc = torch.zeros_like(C[0])
        dh = torch.empty_like(dc)
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                torch.addmm(dHs[t], dZf[t + 1], W, out=dh)
                dc.mul_(fs[t + 1])
            else:
                dh.copy_(dHs[t])
            dc.addcmul_(dh, Qs[t])
            torch.mul(Ms[t], dc.unsqueeze(1), out=dZs[t])    # blocks i, f, c (block o is overwritten next)
            torch.mul(Mo[t], dh, out=dZo[t])
        G = _weight_gradients(dZ, H[:-1], X)                 # [dW | dU | db]
        return _input_gradient(ctx, dZ, U), G[:, n: -1], G[:, :n], G[:, -1], dZf[0] @ W, dc * f[0]


def lstm_unroll(xs: Tensor, U: Tensor, W: Tensor, b: Tensor, h0: Tensor, c0: Tensor) -> Tensor:
    """Hidden states h_1..h_T (B, T, n) of the LSTM on inputs ``xs`` (B, T, m) with stacked input weights ``U``
    (4n, m), recurrent weights ``W`` (4n, n) and biases ``b`` (4n,), gate order (i, f, o, c), from (h0, c0);
    backward by eq-lstm-bptt."""
    _check(xs, U, W, b, (h0, c0), 4)
    return _LSTMUnroll.apply(xs, U, W, b, h0, c0)


class _GRUUnroll(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, xs: Tensor, U: Tensor, W: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        B, T, _ = xs.shape
        n = h0.shape[-1]
        X, P = _projection(xs, U, b)
        WgT, WhT = W[: 2 * n].T.contiguous(), W[2 * n:].T.contiguous()
        S = xs.new_empty(T, B, 2 * n)                         # gates [z, r]
        N = xs.new_empty(T, B, n)                             # candidates
        RH = xs.new_empty(T, B, n)                            # r_t h_{t-1}
        H = xs.new_empty(T + 1, B, n)
        H[0] = h0
        Pg, Ph = P[..., : 2 * n].unbind(0), P[..., 2 * n:].unbind(0)
        Ss, z, r, Ns, RHs, Hs = S.unbind(0), S[..., :n].unbind(0), S[..., n:].unbind(0), N.unbind(0), RH.unbind(0), \
            H.unbind(0)
        for t in range(T):
            torch.sigmoid(torch.addmm(Pg[t], Hs[t], WgT), out=Ss[t])
            torch.mul(r[t], Hs[t], out=RHs[t])
            torch.tanh(torch.addmm(Ph[t], RHs[t], WhT), out=Ns[t])
            torch.addcmul(Hs[t], z[t], Ns[t] - Hs[t], out=Hs[t + 1])
        ctx.save_for_backward(X, U, W, S, N, RH, H)
        return H[1:].transpose(0, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dH: Tensor) -> tuple[Tensor, ...]:
        X, U, W, S, N, RH, H = ctx.saved_tensors
        T, B, n2 = S.shape
        n = n2 // 2
        Wg, Wh = W[:n2], W[n2:]
        z, r = S.split(n, dim=-1)
        # the factors of eq-gru-bptt that do not depend on the recursion, for all t at once
        K = z * (1 - N * N)                                   # da = dh K
        E = torch.cat([N - H[:-1], H[:-1]], dim=-1).mul_(S * (1 - S))   # dq = E [dh, (da W_h)]
        keep = 1 - z
        dHs = dH.unbind(1)
        dP = S.new_empty(T, B, 3 * n)                         # [dq, da] per step
        D = S.new_empty(B, 2, n)
        Ks, Es, keeps, rs = K.unbind(0), E.unbind(0), keep.unbind(0), r.unbind(0)
        dq, da = dP[..., :n2].unbind(0), dP[..., n2:].unbind(0)
        Dflat = D.view(B, n2)
        carry = torch.zeros_like(H[0])
        for t in range(T - 1, -1, -1):
            dh = dHs[t] + carry
            torch.mul(dh, Ks[t], out=da[t])
            drh = da[t] @ Wh
            D[:, 0], D[:, 1] = dh, drh
            torch.mul(Es[t], Dflat, out=dq[t])
            carry = torch.addmm(dh * keeps[t], dq[t], Wg).addcmul_(drh, rs[t])
        G = _weight_gradients(dP, H[:-1], RH, X)             # [dW_g (gate rows) | dW_h (candidate rows) | dU | db]
        dW = torch.cat([G[:n2, :n], G[n2:, n: 2 * n]])
        return _input_gradient(ctx, dP, U), G[:, 2 * n: -1], dW, G[:, -1], carry


def gru_unroll(xs: Tensor, U: Tensor, W: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """Hidden states h_1..h_T (B, T, n) of the GRU (reset before W_h) on inputs ``xs`` (B, T, m) with stacked input
    weights ``U`` (3n, m), recurrent weights ``W`` = [W_z; W_r; W_h] (3n, n) and biases ``b`` (3n,), block order
    (z, r, candidate), from ``h0``; backward by eq-gru-bptt."""
    _check(xs, U, W, b, (h0,), 3)
    return _GRUUnroll.apply(xs, U, W, b, h0)


def step_agreement(cell, xs: Tensor, target: Tensor, state=None) -> dict[str, float]:
    """Largest differences between ``cell.unroll`` (fused when :meth:`~learnability.cells.Cell._fusable`) and the
    explicit step loop :meth:`learnability.cells.Cell.unroll`: hidden states (absolute) and the gradients of
    ``sum (h - target)^2`` with respect to every parameter (relative to the largest entry of each gradient)."""
    from .cells import Cell

    if target.shape != (*xs.shape[:2], cell.hidden_size):
        raise ValueError(f"target must have shape (B, T, n) = {(*xs.shape[:2], cell.hidden_size)}; "
                         f"got {tuple(target.shape)}")
    runs = []
    for unroll in (cell.unroll, lambda x, s: Cell.unroll(cell, x, s)):
        out = unroll(xs, state)
        grads = torch.autograd.grad((out - target).pow(2).sum(), list(cell.parameters()))
        runs.append((out.detach(), grads))
    (fused_out, fused_grads), (step_out, step_grads) = runs
    gradient = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))
                   for a, b in zip(fused_grads, step_grads))
    return {"hidden": float((fused_out - step_out).abs().max()), "gradient": gradient}
