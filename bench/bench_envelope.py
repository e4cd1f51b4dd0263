"""Benchmark: per-lag first-order effective learning rates and envelope (prefix sums in log space) vs one forward +
backward pass of the same multi-gate cell over the same batch (B = 32, T = 256, n = 64, 64 lags, float32, CPU).
Also checks that T = 4096 gives finite envelope values. Last line: `bench_envelope ratio=<envelope / fwd+bwd>
target=3`.
"""

from learnability.support.benchmarks import envelope

if __name__ == "__main__":
    print(envelope().report())
