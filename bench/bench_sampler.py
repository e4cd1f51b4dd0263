"""Benchmark: learnability.stable.sample_sas vs scipy.stats.levy_stable.rvs, 10^6 symmetric samples.

Prints per-variant medians over repeats and, last, the headline
`bench_sampler ratio=<scipy time / ours> target=5` (ours in float32; float64 is printed above it).
Also times tail_index(..., "ecf") on 10^5 samples (target: under 50 ms).
"""

from learnability.support.benchmarks import sampler

if __name__ == "__main__":
    print(sampler().report())
