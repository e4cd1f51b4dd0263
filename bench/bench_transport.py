"""Benchmark: all-pairs spectral norms ||Phi(t, t-l)||_2 by batched lag products vs the naive per-pair loop.

B = 12 sequences, T = 80 steps, n = 64 neurons (multi-gate cell, float64). The naive loop forms every product chain
one (b, t, k) at a time; it is timed on a subset of end steps and scaled to all of them (its cost per end step is
known exactly: the chain lengths). The naive loop uses torch.linalg.matrix_norm(P, ord=2) per pair (SVD), the batched
version a symmetric eigensolver on P^T P for all pairs of a lag at once; the line before the headline also gives the
ratio with the same per-pair eigensolver in the loop. Last line: `bench_transport ratio=<naive / batched> target=10`.
"""

from __future__ import annotations

import statistics
import time

import torch

from learnability.cells import make_cell
from learnability.transport import jacobians, spectral_norm, transport_norms, transport_norms_naive

B, T, N = 12, 80, 64


def main() -> None:
    cell = make_cell("multi", 8, N, dtype=torch.float64, seed=0)
    xs = torch.randn(B, T, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        J = jacobians(cell, xs)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fast = transport_norms(J)
            times.append(time.perf_counter() - start)
        t_fast = statistics.median(times)
        # naive: for each (b, t, lag) its own chain and its own norm; time end steps t in `sample`, scale by work
        sample = [10, 40, 80]
        work_all = sum(1 + lag for t in range(T + 1) for lag in range(t + 1))
        work_done = sum(1 + lag for t in sample for lag in range(t + 1))

        def naive_seconds(norm=None) -> float:
            start = time.perf_counter()
            slow = transport_norms_naive(J, ends=sample, norm=norm)
            elapsed = time.perf_counter() - start
            assert torch.allclose(slow[:, sample], fast[:, sample], equal_nan=True, atol=1e-8)
            return elapsed * work_all / work_done

        t_naive = naive_seconds()
        t_naive_eig = naive_seconds(spectral_norm)
    print(f"batched: {t_fast:.2f} s for all {B * (T + 1) * (T + 2) // 2} pairs; naive (extrapolated from end steps "
          f"{sample}): {t_naive:.1f} s with SVD norms, {t_naive_eig:.1f} s with the same eigensolver "
          f"(ratio {t_naive_eig / t_fast:.1f})")
    print(f"bench_transport ratio={t_naive / t_fast:.1f} target=10")


if __name__ == "__main__":
    main()
