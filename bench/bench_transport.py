"""Benchmark: all-pairs spectral norms ||Phi(t, t-l)||_2 by batched lag products vs the naive per-pair loop.

B = 12 sequences, T = 80 steps, n = 64 neurons (multi-gate cell, float64). The naive loop forms every product chain
one (b, t, k) at a time and takes torch.linalg.matrix_norm(P, ord=2) (an SVD) per pair; the batched version builds
the products lag by lag and finds lambda_max(P P^T) for all pairs by a tridiagonal reduction and Laguerre's iteration
(learnability.fastpaths.tridiagonal), the reductions of one lag on worker threads while the next lag's products are
formed. The naive loop is timed on three end steps and scaled to all of them by the work of their chains; the ends are
chosen with the mean chain length of all pairs, so scaling by pair count would give the same (the first detail line
prints both scales). The two sides alternate over rounds (same machine load for both); the headline is the median of the
per-round ratios. The second detail line times the products alone (no norms), the third the per-lag medians a lag
profile needs (learnability.transport.lag_medians: certified bounds for every product, the exact norm only where it can
decide the median; checked equal to the medians of all norms). Last line:
`bench_transport ratio=<naive / batched> target=10`.
"""

from learnability.support.benchmarks import transport

if __name__ == "__main__":
    print(transport().report())
