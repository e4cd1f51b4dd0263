"""Benchmark (P5): one training step (forward over T steps, backward, optimizer step) of our explicit-gate GRU and
LSTM (learnability.cells, float32; their training unroll is learnability.fastpaths.fused) against torch.nn.GRU /
torch.nn.LSTM of the same sizes on the CPU.

B = 32 sequences, T = 100 steps, input 4, hidden 64; the loss is the mean square of the hidden states, the optimizer
SGD. Ours and torch's alternate step by step after a warm-up; each ratio is the median of the per-round ratios. The
target is "within 2x": the last line is `bench_cells ratio=<ours / torch.nn, the worse of GRU and LSTM> target=2`.
"""

from learnability.support.benchmarks import cells

if __name__ == "__main__":
    print(cells().report())
