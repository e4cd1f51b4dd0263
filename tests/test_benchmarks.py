"""The benchmark harness: ratio semantics, and each benchmark at a tiny size (timings are not asserted)."""

import pytest

from learnability.support import benchmarks
from learnability.support.benchmarks import Headline


def test_headline_ratio_and_target_semantics():
    fast = Headline("b", "ours", 1.0, "base", 12.0, 10, "speed-up")
    assert fast.ratio == 12.0 and fast.met and fast.row()["met"] == "yes"
    slow = Headline("b", "ours", 3.5, "base", 1.0, 3, "overhead")
    assert slow.ratio == 3.5 and not slow.met
    assert slow.report().endswith("b ratio=3.5 target=3")
    with pytest.raises(ValueError, match="repeats"):
        benchmarks.median_time(lambda: None, 0)


def test_benchmarks_run_at_tiny_sizes():
    env = benchmarks.envelope(repeats=1, B=2, T=16, n=4, n_lags=4)
    assert env.name == "bench_envelope" and "finite: True" in env.details[1]
    tr = benchmarks.transport(rounds=1, B=1, T=6, n=3, sample=(2, 6))
    assert tr.ratio > 0 and tr.kind == "speed-up"
    assert benchmarks.sampler(size=2000, repeats=1).ours_s > 0
    cells = benchmarks.cells(rounds=1, B=2, T=3, m=2, n=3, large_batch=4)
    assert cells.name == "bench_cells" and cells.kind == "overhead" and cells.ratio > 0
    assert cells.details[0].startswith("gru:") and cells.details[1].startswith("lstm:")
    assert cells.details[2].startswith("at batch 4: ratio gru")
