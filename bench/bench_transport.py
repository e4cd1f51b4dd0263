"""Benchmark: all-pairs spectral norms ||Phi(t, t-l)||_2 by batched lag products vs the naive per-pair loop.

B = 12 sequences, T = 80 steps, n = 64 neurons (multi-gate cell, float64). The naive loop forms every product chain
one (b, t, k) at a time; it is timed on a subset of end steps and scaled to all of them (its cost per end step is
known exactly: the chain lengths). The naive loop uses torch.linalg.matrix_norm(P, ord=2) per pair (SVD), the batched
version a symmetric eigensolver on P^T P for all pairs of a lag at once; the line before the headline also gives the
ratio with the same per-pair eigensolver in the loop. The two sides alternate over rounds (same machine load
for both); the headline is the median of the per-round ratios. A third line times the products alone (no norms):
the exact per-pair eigensolves are work both sides share and bound the headline ratio. Last line: `bench_transport ratio=<naive / batched> target=10`.
"""

from learnability.benchmarks import transport

if __name__ == "__main__":
    print(transport().report())
