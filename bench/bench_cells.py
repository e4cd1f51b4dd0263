"""Benchmark (P5): one training step (forward over T steps, backward, optimizer step) of our explicit-gate GRU and
LSTM (learnability.cells, float32) against torch.nn.GRU / torch.nn.LSTM of the same sizes on the CPU.

B = 32 sequences, T = 100 steps, input 4, hidden 64; the loss is the mean square of the last-layer readout, the
optimizer SGD. Each side is the median of repeats after a warm-up. The target is "within 2x": the last line is
`bench_cells ratio=<ours / torch.nn, the worse of GRU and LSTM> target=2`.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from learnability.cells import make_cell

B, T, M, N, REPEATS = 32, 100, 4, 64, 7


def step_seconds(forward, params) -> float:
    opt = torch.optim.SGD(params, lr=1e-3)
    xs = torch.randn(B, T, M, generator=torch.Generator().manual_seed(0))

    def one() -> None:
        opt.zero_grad()
        loss = forward(xs).pow(2).mean()
        loss.backward()
        opt.step()

    one()                                                   # warm-up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        one()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ratios = {}
    for kind, reference in (("gru", nn.GRU), ("lstm", nn.LSTM)):
        cell = make_cell(kind, M, N, seed=0)
        ours = step_seconds(lambda xs: cell.unroll(xs), list(cell.parameters()))
        ref = reference(M, N, batch_first=True)
        theirs = step_seconds(lambda xs: ref(xs)[0], list(ref.parameters()))
        ratios[kind] = ours / theirs
        print(f"{kind}: ours {1e3 * ours:.1f} ms, torch.nn.{reference.__name__} {1e3 * theirs:.1f} ms "
              f"per training step (ratio {ours / theirs:.2f})")
    print(f"bench_cells ratio={max(ratios.values()):.2f} target=2")


if __name__ == "__main__":
    main()
