"""Benchmark: all-pairs spectral norms ||Phi(t, t-l)||_2 by batched lag products vs the naive per-pair loop.

B = 12 sequences, T = 80 steps, n = 64 neurons (multi-gate cell, float64). The naive loop forms every product chain
one (b, t, k) at a time; it is timed on a subset of end steps and scaled to all of them (its cost per end step is
known exactly: the chain lengths). The naive loop uses torch.linalg.matrix_norm(P, ord=2) per pair (SVD), the batched
version a symmetric eigensolver on P^T P for all pairs of a lag at once; the line before the headline also gives the
ratio with the same per-pair eigensolver in the loop. The two sides alternate over rounds (same machine load
for both); the headline is the median of the per-round ratios. A third line times the products alone (no norms):
the exact per-pair eigensolves are work both sides share and bound the headline ratio. Last line: `bench_transport ratio=<naive / batched> target=10`.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import Tensor

from learnability.cells import make_cell
from learnability.transport import iter_transport_by_lag, jacobians, spectral_norm, transport_norms, transport_norms_naive

B, T, N = 12, 80, 64


def main(rounds: int = 5) -> None:
    cell = make_cell("multi", 8, N, dtype=torch.float64, seed=0)
    xs = torch.randn(B, T, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # naive: for each (b, t, lag) its own chain and its own norm; time end steps t in `sample`, scale by work
    sample = [10, 40, 80]
    work_all = sum(1 + lag for t in range(T + 1) for lag in range(t + 1))
    work_done = sum(1 + lag for t in sample for lag in range(t + 1))

    def seconds(fn) -> tuple[float, Tensor]:
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out

    with torch.no_grad():
        J = jacobians(cell, xs)
        # the two sides alternate within each round, so both see the same load on a shared machine
        fast_s, naive_s, naive_eig_s, prod_s, naive_prod_s = [], [], [], [], []
        for _ in range(rounds):
            elapsed, fast = seconds(lambda: transport_norms(J))
            fast_s.append(elapsed)
            prod_s.append(seconds(lambda: sum(P.shape[1] for P in iter_transport_by_lag(J, T)))[0])
            elapsed = seconds(lambda: transport_norms_naive(J, ends=sample, norm=lambda P: P[0, 0]))[0]
            naive_prod_s.append(elapsed * work_all / work_done)
            for norm, store in ((None, naive_s), (spectral_norm, naive_eig_s)):
                elapsed, slow = seconds(lambda: transport_norms_naive(J, ends=sample, norm=norm))
                assert torch.allclose(slow[:, sample], fast[:, sample], equal_nan=True, atol=1e-8)
                store.append(elapsed * work_all / work_done)
    ratios = [n / f for n, f in zip(naive_s, fast_s)]
    ratios_eig = [n / f for n, f in zip(naive_eig_s, fast_s)]
    print(f"batched: {statistics.median(fast_s):.2f} s for all {B * (T + 1) * (T + 2) // 2} pairs (median of "
          f"{rounds} rounds); naive (extrapolated from end steps {sample}): {statistics.median(naive_s):.1f} s with "
          f"SVD norms, {statistics.median(naive_eig_s):.1f} s with the same eigensolver (ratio "
          f"{statistics.median(ratios_eig):.1f})")
    print(f"products alone (no norms): batched {statistics.median(prod_s):.2f} s, naive "
          f"{statistics.median(naive_prod_s):.1f} s (ratio "
          f"{statistics.median([n / f for n, f in zip(naive_prod_s, prod_s)]):.1f})")
    print(f"per-round ratios (SVD baseline): {', '.join(f'{r:.1f}' for r in ratios)}")
    print(f"bench_transport ratio={statistics.median(ratios):.1f} target=10")


if __name__ == "__main__":
    main()
