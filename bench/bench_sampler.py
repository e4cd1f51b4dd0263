"""Benchmark: learnability.stable.sample_sas vs scipy.stats.levy_stable.rvs, 10^6 symmetric samples.

Prints per-variant medians over repeats and, last, the headline
`bench_sampler ratio=<scipy time / ours> target=5` (ours in float32; float64 is printed above it).
Also times tail_index(..., "ecf") on 10^5 samples (target: under 50 ms).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from scipy.stats import levy_stable

from learnability.stable import sample_sas, tail_index

SIZE, ALPHA, REPEATS = 1_000_000, 1.5, 7


def median_time(fn, repeats: int = REPEATS) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    t_scipy = median_time(lambda: levy_stable.rvs(ALPHA, 0.0, size=SIZE, random_state=rng))
    t64 = median_time(lambda: sample_sas(ALPHA, SIZE, generator=gen, dtype=torch.float64))
    t32 = median_time(lambda: sample_sas(ALPHA, SIZE, generator=gen, dtype=torch.float32))
    x = sample_sas(ALPHA, 100_000, generator=gen)
    t_ecf = median_time(lambda: tail_index(x, "ecf"))
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"scipy levy_stable.rvs: {t_scipy * 1e3:.1f} ms; sample_sas float64: {t64 * 1e3:.1f} ms "
          f"(ratio {t_scipy / t64:.1f}); float32: {t32 * 1e3:.1f} ms")
    print(f"tail_index ecf, 1e5 samples: {t_ecf * 1e3:.1f} ms (target < 50 ms)")
    print(f"bench_sampler ratio={t_scipy / t32:.1f} target=5")


if __name__ == "__main__":
    main()
