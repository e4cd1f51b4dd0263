"""Fused recurrences for training: the LSTM and GRU unrolls with hand-written backpropagation through time.

The cells of :mod:`learnability.cells` step one explicit gate at a time, which is what the Jacobian analysis needs;
autograd then records some thirty small operations per time step, and on a CPU that bookkeeping, not arithmetic,
dominates a training step. Here one ``torch.autograd.Function`` per cell runs the whole unroll: the recursion
touches only preallocated buffers, and the backward is the BPTT recursion written out (eq-lstm-bptt, eq-gru-bptt in
book/reproducibility.md), with the weight gradients of all steps summed by one matrix product after the loop. Same
equations as :meth:`learnability.cells.LSTMCell.step` / :meth:`~learnability.cells.GRUCell.step` without LayerNorm;
:func:`step_agreement` and ``tests/test_fused.py`` check values and gradients against the step-by-step autograd unroll
and ``torch.autograd.gradcheck``. First derivatives only, CPU tensors in float32/float64, and no ``torch.func``
transforms: the cells themselves always unroll step by step; only the training loops take :func:`unroll`, through
:func:`learnability.training.training_forward`.

How the loops are laid out, and why (each choice measured with ``bench/bench_cells.py`` on a 2-core CPU):

- The elementwise work of each step runs on NumPy views of the torch buffers (shared memory, no copies). At B = 32,
  n = 64 such a call is mostly dispatch: a NumPy call costs about half a torch call, and NumPy's tanh of 2048 floats
  about a fifth of torch's. The matrix products of each step stay torch calls (``torch.mm`` into preallocated
  views: as fast as NumPy's at B = 32, faster at B = 256, and on torch's own thread pool; a second BLAS pool would
  compete with it for the cores), as does the bulk work before and after the loops.
- Buffers are step-major and feature-major, (T, features, B), so every gate block of a step is one contiguous
  (n, B) array; elementwise calls on strided slices cost several times more.
- Step t multiplies the stacked weights [W | U | b] by the column block [h_{t-1}; x_t; 1] of ``R`` (one matrix
  product for recurrent, input and bias terms); the weight gradients are then sum_t dz_t [h_{t-1}; x_t; 1]^T,
  one product over the same buffer.
- sigma(z) = (1 + tanh(z / 2)) / 2 with the halving folded into the weights, so one tanh covers every block.

LSTM, block order (c, i, f, o) in the stacked pre-activation z_t = W h_{t-1} + U x_t + b (the candidate first, so
that the sigmoid blocks, and the blocks that dc multiplies in the backward, are contiguous):

    g = tanh(z_c), i, f, o = sigma(z_i, z_f, z_o), c_t = f c_{t-1} + i g, h_t = o tanh(c_t);

backward (eq-lstm-bptt), with dH_t the gradient arriving at output h_t, dh_t / dc_t the totals reaching h_t / c_t:

    dh_t = dH_t + W^T dz_{t+1},   dc_t = f_{t+1} dc_{t+1} + o_t (1 - tanh^2 c_t) dh_t,
    dz_t = [dc_t i (1-g^2), dc_t g i (1-i), dc_t c_{t-1} f (1-f), dh_t tanh(c_t) o (1-o)]  (blocks c, i, f, o),
    [dW | dU | db] = sum_t dz_t [h_{t-1}; x_t; 1]^T.

GRU (reset before W_h), block order (z, r, candidate), q_t = W_g h_{t-1} + U_g x_t + b_g for the gates and
a_t = W_h (r h_{t-1}) + U_h x_t + b_h:

    z, r = sigma(q), n = tanh(a), h_t = h_{t-1} + z (n - h_{t-1});

backward (eq-gru-bptt): dh_{t-1} = dH_{t-1} + (1-z) dh + W_g^T dq + r (W_h^T da)  (factors at step t),
    da_t = dh_t z (1 - n^2),  dq_t = [dh_t (n - h_{t-1}) z (1-z), (W_h^T da_t) h_{t-1} r (1-r)],
    [dW_g | dU_g | db_g] = sum_t dq_t [h_{t-1}; x_t; 1]^T,  [dW_h | dU_h | db_h] = sum_t da_t [r h_{t-1}; x_t; 1]^T.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

DTYPES = (torch.float32, torch.float64)


def _check(xs: Tensor, U: Tensor, W: Tensor, b: Tensor, states: tuple[Tensor, ...], blocks: int) -> None:
    if xs.dim() != 3 or xs.shape[1] < 1:
        raise ValueError(f"xs must have shape (B, T >= 1, m); got {tuple(xs.shape)}")
    B, T, m = xs.shape
    n = states[0].shape[-1]
    k = blocks * n
    if U.shape != (k, m) or W.shape != (k, n) or b.shape != (k,):
        raise ValueError(
            f"weights must be U ({k}, {m}), W ({k}, {n}), b ({k},) for hidden size {n}; got "
            f"{tuple(U.shape)}, {tuple(W.shape)}, {tuple(b.shape)}"
        )
    if any(s.shape != (B, n) for s in states):
        raise ValueError(f"initial states must have shape (B, n) = ({B}, {n}); got {[tuple(s.shape) for s in states]}")
    tensors = (xs, U, W, b, *states)
    if len({t.dtype for t in tensors}) != 1 or xs.dtype not in DTYPES:
        raise ValueError(
            f"xs, weights and states must share one dtype, float32 or float64; got "
            f"{sorted({str(t.dtype) for t in tensors})}"
        )
    if any(t.device.type != "cpu" for t in tensors):
        raise ValueError(
            "the fused unrolls run on the CPU; on other devices use the cells' step loop "
            "(learnability.cells.Cell.unroll)"
        )


def _np(t: Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor (same memory)."""
    return t.detach().numpy()


def _columns(xs: Tensor, h0: Tensor) -> Tensor:
    """The column blocks [h_{t-1}; x_t; 1] of all steps, (T + 1, n + m + 1, B), with h_0 in place and the rows of
    h_1..h_T left for the recursion to fill (block T carries h_T; its x rows are zero)."""
    B, T, m = xs.shape
    n = h0.shape[-1]
    R = xs.new_empty(T + 1, n + m + 1, B)
    R[:T, n : n + m] = xs.permute(1, 2, 0)
    R[T, n : n + m] = 0
    R[:, -1] = 1
    R[0, :n] = h0.T
    return R


def _hidden_states(R: Tensor, n: int) -> Tensor:
    """h_1..h_T from the column blocks, as the (B, T, n) view the cells return."""
    return R[1:, :n].permute(2, 0, 1)


def _stacked(W: Tensor, U: Tensor, b: Tensor, sigmoid: slice) -> Tensor:
    """[W | U | b] (k, n + m + 1) with the rows of the sigmoid blocks halved: sigma(z) = (1 + tanh(z / 2)) / 2."""
    S = torch.cat([W, U, b[:, None]], dim=1)
    S[sigmoid] *= 0.5
    return S


def _to_sigmoid(a: np.ndarray) -> None:
    """tanh(z / 2) -> sigma(z) in place."""
    np.multiply(a, 0.5, out=a)
    np.add(a, 0.5, out=a)


def _outputs(dH: Tensor) -> np.ndarray:
    """The gradient arriving at h_1..h_T (B, T, n) as step-major, feature-major (T, n, B)."""
    return _np(dH.permute(1, 2, 0).contiguous())


def _by_pairs(dZ: Tensor) -> Tensor:
    """dZ (T, k, B) as (k, T B): the columns of all (t, b) pairs side by side."""
    T, k, B = dZ.shape
    return dZ.permute(1, 0, 2).reshape(k, T * B)


def _weight_gradients(Z: Tensor, R: Tensor) -> Tensor:
    """[dW | dU | db] = sum_t dz_t [h_{t-1}; x_t; 1]^T, (k, n + m + 1), from Z = :func:`_by_pairs` (dZ) and the
    column blocks ``R`` of the same steps: one matrix product."""
    T = Z.shape[1] // R.shape[-1]
    return Z @ R[:T].permute(0, 2, 1).reshape(Z.shape[1], -1)


def _input_gradient(Z: Tensor, U: Tensor, B: int) -> Tensor:
    """dL/dxs = (U^T dz_t)_t as (B, T, m) from Z = :func:`_by_pairs` (dZ)."""
    return (U.T @ Z).view(U.shape[1], -1, B).permute(2, 1, 0)


class _LSTMUnroll(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, xs: Tensor, U: Tensor, W: Tensor, b: Tensor, h0: Tensor, c0: Tensor) -> Tensor:
        B, T, _ = xs.shape
        n = h0.shape[-1]
        R = _columns(xs, h0)
        A = xs.new_empty(T, 4 * n, B)  # [g, i, f, o] per step
        C = xs.new_empty(T + 1, n, B)  # c_0..c_T
        TC = xs.new_empty(T, n, B)  # tanh(c_t)
        C[0] = c0.T
        w = _stacked(W, U, b, sigmoid=slice(n, None))
        cols, a, c, tc, ig = _np(R), _np(A), _np(C), _np(TC), np.empty((n, B), dtype=_np(xs).dtype)
        Rs, As = R.unbind(0), A.unbind(0)
        for t in range(T):
            at = a[t]
            torch.mm(w, Rs[t], out=As[t])
            np.tanh(at, out=at)
            _to_sigmoid(at[n:])
            np.multiply(at[2 * n : 3 * n], c[t], out=c[t + 1])  # f c
            np.multiply(at[n : 2 * n], at[:n], out=ig)  # i g
            np.add(c[t + 1], ig, out=c[t + 1])
            np.tanh(c[t + 1], out=tc[t])
            np.multiply(at[3 * n :], tc[t], out=cols[t + 1, :n])  # h = o tanh(c)
        ctx.save_for_backward(U, W, R, A, C, TC)
        return _hidden_states(R, n)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dH: Tensor) -> tuple[Tensor | None, ...]:
        U, W, R, A, C, TC = ctx.saved_tensors
        T, n4, B = A.shape
        n = n4 // 4
        g, i, f, o = A.split(n, dim=1)
        # the factors of eq-lstm-bptt that do not depend on the recursion, all steps at once:
        # dz = M [dc, dc, dc, dh] block by block, dc_t gains Q dh_t
        M = torch.addcmul(A, A, A, value=-1)  # a (1 - a), every block
        torch.addcmul(i, i, g * g, value=-1, out=M[:, :n])  # i (1 - g^2)
        M[:, n : 2 * n].mul_(g)
        M[:, 2 * n : 3 * n].mul_(C[:-1])
        M[:, 3 * n :].mul_(TC)
        Q = (1 - TC * TC).mul_(o)
        dZ = torch.empty_like(A)
        dh_out, m_, q, f_, dz = _outputs(dH), _np(M), _np(Q), _np(f), _np(dZ)
        m_dc, dz_dc = m_[:, : 3 * n].reshape(T, 3, n, B), dz[:, : 3 * n].reshape(T, 3, n, B)
        WT, dZs, DH = W.T.contiguous(), dZ.unbind(0), torch.zeros(n, B, dtype=A.dtype)
        dh, dc, tmp = _np(DH), np.zeros((n, B), dtype=m_.dtype), np.empty((n, B), dtype=m_.dtype)
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                torch.mm(WT, dZs[t + 1], out=DH)
                np.add(dh, dh_out[t], out=dh)
                np.multiply(dc, f_[t + 1], out=dc)
            else:
                dh[...] = dh_out[t]
            np.multiply(dh, q[t], out=tmp)
            np.add(dc, tmp, out=dc)
            np.multiply(m_dc[t], dc, out=dz_dc[t])  # blocks c, i, f
            np.multiply(m_[t, 3 * n :], dh, out=dz[t, 3 * n :])  # block o
        Z = _by_pairs(dZ)
        G = _weight_gradients(Z, R)  # [dW | dU | db]
        dxs = _input_gradient(Z, U, B) if ctx.needs_input_grad[0] else None
        m = U.shape[1]
        return dxs, G[:, n : n + m], G[:, :n], G[:, -1], (W.T @ dZ[0]).T, (torch.from_numpy(dc) * f[0]).T


def lstm_unroll(xs: Tensor, U: Tensor, W: Tensor, b: Tensor, h0: Tensor, c0: Tensor) -> Tensor:
    """Hidden states h_1..h_T (B, T, n) of the LSTM on inputs ``xs`` (B, T, m) with stacked input weights ``U``
    (4n, m), recurrent weights ``W`` (4n, n) and biases ``b`` (4n,), block order (c, i, f, o), from (h0, c0);
    backward by eq-lstm-bptt. CPU tensors, float32 or float64."""
    _check(xs, U, W, b, (h0, c0), 4)
    return _LSTMUnroll.apply(xs, U, W, b, h0, c0)


class _GRUUnroll(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, xs: Tensor, U: Tensor, W: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        B, T, _ = xs.shape
        n = h0.shape[-1]
        R = _columns(xs, h0)
        RH = R[:T].clone()  # [r h_{t-1}; x_t; 1] (the h rows are overwritten)
        S = xs.new_empty(T, 2 * n, B)  # gates [z, r]
        N = xs.new_empty(T, n, B)  # candidates
        wg = _stacked(W[: 2 * n], U[: 2 * n], b[: 2 * n], sigmoid=slice(None))
        wh = _stacked(W[2 * n :], U[2 * n :], b[2 * n :], sigmoid=slice(0, 0))
        cols, rh, s, cand, tmp = _np(R), _np(RH), _np(S), _np(N), np.empty((n, B), dtype=_np(xs).dtype)
        Rs, RHs, Ss, Ns = R.unbind(0), RH.unbind(0), S.unbind(0), N.unbind(0)
        for t in range(T):
            st, h = s[t], cols[t, :n]
            torch.mm(wg, Rs[t], out=Ss[t])
            np.tanh(st, out=st)
            _to_sigmoid(st)
            np.multiply(st[n:], h, out=rh[t, :n])  # r h
            torch.mm(wh, RHs[t], out=Ns[t])
            np.tanh(cand[t], out=cand[t])
            np.subtract(cand[t], h, out=tmp)
            np.multiply(st[:n], tmp, out=tmp)
            np.add(h, tmp, out=cols[t + 1, :n])  # h + z (n - h)
        ctx.save_for_backward(U, W, R, RH, S, N)
        return _hidden_states(R, n)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, dH: Tensor) -> tuple[Tensor | None, ...]:
        U, W, R, RH, S, N = ctx.saved_tensors
        T, n2, B = S.shape
        n = n2 // 2
        z, r = S.split(n, dim=1)
        H = R[:T, :n]
        # the factors of eq-gru-bptt that do not depend on the recursion, all steps at once
        K = z * (1 - N * N)  # da = K dh
        E = torch.cat([N - H, H], dim=1).mul_(S * (1 - S))  # dq = E [dh; W_h^T da]
        keep = 1 - z
        dP = torch.empty(T, 3 * n, B, dtype=S.dtype)  # [dq; da] per step
        D = torch.empty(2 * n, B, dtype=S.dtype)  # [dh; W_h^T da]
        dh_out, k_, e, keep_, r_, dp, d = _outputs(dH), _np(K), _np(E), _np(keep), _np(r), _np(dP), _np(D)
        WgT, WhT = W[:n2].T.contiguous(), W[n2:].T.contiguous()
        dQs, dAs, DRH, CARRY = dP[:, :n2].unbind(0), dP[:, n2:].unbind(0), D[n:], torch.zeros(n, B, dtype=S.dtype)
        dh, drh, carry, tmp = d[:n], d[n:], _np(CARRY), np.empty((n, B), dtype=d.dtype)
        for t in range(T - 1, -1, -1):
            np.add(dh_out[t], carry, out=dh)
            da, dq = dp[t, n2:], dp[t, :n2]
            np.multiply(dh, k_[t], out=da)
            torch.mm(WhT, dAs[t], out=DRH)
            np.multiply(e[t], d, out=dq)
            torch.mm(WgT, dQs[t], out=CARRY)
            np.multiply(dh, keep_[t], out=tmp)
            np.add(carry, tmp, out=carry)
            np.multiply(drh, r_[t], out=tmp)
            np.add(carry, tmp, out=carry)
        Z = _by_pairs(dP)
        G = torch.cat([_weight_gradients(Z[:n2], R), _weight_gradients(Z[n2:], RH)])  # [dW | dU | db] by block
        dxs = _input_gradient(Z, U, B) if ctx.needs_input_grad[0] else None
        m = U.shape[1]
        return dxs, G[:, n : n + m], G[:, :n], G[:, -1], CARRY.T


def gru_unroll(xs: Tensor, U: Tensor, W: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """Hidden states h_1..h_T (B, T, n) of the GRU (reset before W_h) on inputs ``xs`` (B, T, m) with stacked input
    weights ``U`` (3n, m), recurrent weights ``W`` = [W_z; W_r; W_h] (3n, n) and biases ``b`` (3n,), block order
    (z, r, candidate), from ``h0``; backward by eq-gru-bptt. CPU tensors, float32 or float64."""
    _check(xs, U, W, b, (h0,), 3)
    return _GRUUnroll.apply(xs, U, W, b, h0)


def supports(cell) -> bool:
    """Whether :func:`unroll` applies to ``cell``: a GRU or LSTM of :mod:`learnability.cells` without LayerNorm,
    parameters on the CPU in float32 or float64."""
    return (
        getattr(cell, "kind", None) in ("gru", "lstm")
        and not cell.layer_norm
        and all(p.device.type == "cpu" and p.dtype in DTYPES for p in cell.parameters())
    )


def unroll(cell, xs: Tensor, state=None) -> Tensor:
    """Hidden states h_1..h_T (B, T, n) of a GRU or LSTM cell (:func:`supports`) by the fused recurrence: the
    numbers of ``cell.unroll`` (the explicit step loop) to round-off, with the cell's own parameters stacked in the
    block order above. First-order reverse-mode autograd only (no ``torch.func`` transforms, no forward mode)."""
    if not supports(cell):
        raise ValueError(
            "the fused unroll takes a GRU or LSTM cell without LayerNorm, on the CPU in float32/float64; "
            "use cell.unroll otherwise"
        )
    state = cell._check_sequence_args(xs, state)
    names = {"gru": ("z", "r", "h"), "lstm": ("c", "i", "f", "o")}[cell.kind]
    U = torch.cat([getattr(cell, f"U_{k}") for k in names])
    W = torch.cat([getattr(cell, f"W_{k}") for k in names])
    b = torch.cat([getattr(cell, f"b_{k}") for k in names]) if cell.use_bias else U.new_zeros(U.shape[0])
    if cell.kind == "gru":
        return gru_unroll(xs, U, W, b, state)
    return lstm_unroll(xs, U, W, b, *state)


def step_agreement(cell, xs: Tensor, target: Tensor, state=None) -> dict[str, float]:
    """Largest differences between :func:`unroll` and the explicit step loop ``cell.unroll``: hidden states
    (absolute) and the gradients of ``sum (h - target)^2`` with respect to every parameter (relative to the largest
    entry of each gradient)."""
    if target.shape != (*xs.shape[:2], cell.hidden_size):
        raise ValueError(
            f"target must have shape (B, T, n) = {(*xs.shape[:2], cell.hidden_size)}; got {tuple(target.shape)}"
        )
    runs = []
    for run in (unroll, lambda c, x, s: c.unroll(x, s)):
        out = run(cell, xs, state)
        grads = torch.autograd.grad((out - target).pow(2).sum(), list(cell.parameters()))
        runs.append((out.detach(), grads))
    (fused_out, fused_grads), (step_out, step_grads) = runs
    gradient = max(
        float((a - b).abs().max() / b.abs().max().clamp_min(1e-300)) for a, b in zip(fused_grads, step_grads)
    )
    return {"hidden": float((fused_out - step_out).abs().max()), "gradient": gradient}
