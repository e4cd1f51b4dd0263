"""Benchmark against the authors' own scripts, on their configurations, side by side in one run.

    python bench/bench_peers.py --learnability DIR --effective-learning-rates DIR [--rounds 3]

DIR are checkouts of github.com/lorenzolivi/learnability and github.com/lorenzolivi/effective-learning-rates (both
MIT; fetch them yourself, they are not part of this project). Their scripts need numpy, scipy, torch, matplotlib and
pandas: pass ``--peer-path`` with a folder holding pandas if this environment has none (it is prepended to the
authors' PYTHONPATH only).

Two comparisons, each a whole process (start-up, imports, data, training, diagnostics, statistics; figures and
files the authors' scripts write are part of their run), alternated over ``--rounds`` rounds so both sides see the
same machine load; the headline of each is the median of the per-round ratios, with peak resident memory (maxrss of
the child) beside it:

1. Part II window pipeline: ``run_learnability_DGX.py`` "medium" (T = 256, D = 16, H = 64, 512 + 512 sequences,
   three gated architectures, AdamW, 10 epochs of batch 128, 32 lags, ECF tail index) against
   :func:`learnability.support.benchmarks.peer_pipeline`. Target: 2x, peak memory no larger.
2. Part I lag profiles: ``s1_effective_lr.py --task adding --model multigate --steps 200 --checkpoints 0,100,200``
   against :func:`learnability.support.benchmarks.peer_s1` (every lag, exact per-lag medians of the spectral norms where
   the authors take five power iterations per norm). Target: 3x.

Last line: ``peers ratio=<the smaller of the two speed-ups divided by its target, times 2> target=2`` — it meets 2
only if both comparisons meet their own target (each speed-up is printed on its own line before).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AUTHORS_PIPELINE = [
    "run_learnability_DGX.py",
    "--models",
    "const,shared,diag",
    "--seed",
    "1",
    "--Nseq_train",
    "512",
    "--Nseq_diag",
    "512",
    "--T",
    "256",
    "--D",
    "16",
    "--H",
    "64",
    "--optimizer",
    "adamw",
    "--epochs",
    "10",
    "--batch_size",
    "128",
    "--lag_min",
    "4",
    "--lag_max",
    "128",
    "--num_lags",
    "32",
    "--task_lags",
    "16,32,64,128",
    "--task_coeffs",
    "0.6,0.5,0.4,0.3",
    "--device",
    "cpu",
    "--layernorm",
    "--orth_init",
    "--alpha_method",
    "ecf",
]
AUTHORS_S1 = [
    "s1_effective_lr.py",
    "--task",
    "adding",
    "--model",
    "multigate",
    "--steps",
    "200",
    "--checkpoints",
    "0,100,200",
]
TARGETS = {"pipeline": 2.0, "s1": 3.0}


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak resident GiB) of one child process; raises if it fails."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(
            f"{' '.join(command[:3])} ... failed ({child.returncode}): {child.stderr.read().decode()[-2000:]}"
        )
    return elapsed, usage.ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learnability", type=Path, required=True)
    parser.add_argument("--effective-learning-rates", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer-path", default="", help="folder prepended to the authors' PYTHONPATH (e.g. pandas)")
    parser.add_argument("--only", choices=tuple(TARGETS), help="run one comparison")
    parser.add_argument("--ours", choices=tuple(TARGETS), help=argparse.SUPPRESS)  # the child process of ours
    args = parser.parse_args()
    if args.ours:
        from learnability.support import benchmarks

        print(benchmarks.peer_pipeline() if args.ours == "pipeline" else benchmarks.peer_s1())
        return
    for folder, script in ((args.learnability, AUTHORS_PIPELINE[0]), (args.effective_learning_rates, AUTHORS_S1[0])):
        if not (folder / script).is_file():
            raise SystemExit(f"{folder} has no {script}: pass a checkout of the authors' repository")
    work = Path(tempfile.mkdtemp(prefix="bench_peers_"))
    base = {**os.environ, "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}
    peer_env = {**base, "PYTHONPATH": os.pathsep.join(p for p in (args.peer_path, base.get("PYTHONPATH", "")) if p)}
    jobs = {
        "pipeline": (args.learnability, AUTHORS_PIPELINE + ["--outdir"]),
        "s1": (args.effective_learning_rates, AUTHORS_S1 + ["--out"]),
    }
    speedups = {}
    for name in (args.only,) if args.only else tuple(TARGETS):
        folder, authors = jobs[name]
        rows = []
        for k in range(args.rounds):
            theirs = timed([sys.executable, *authors, str(work / f"{name}-{k}")], folder, peer_env)
            ours = timed(
                [
                    sys.executable,
                    __file__,
                    "--learnability",
                    str(args.learnability),
                    "--effective-learning-rates",
                    str(args.effective_learning_rates),
                    "--ours",
                    name,
                ],
                work,
                {**base, "LEARNABILITY_CACHE": str(work / f"cache-{name}-{k}")},
            )
            rows.append((theirs, ours))
            print(
                f"{name} round {k + 1}: authors {theirs[0]:.1f} s ({theirs[1]:.2f} GiB), ours {ours[0]:.1f} s "
                f"({ours[1]:.2f} GiB), speed-up {theirs[0] / ours[0]:.2f}x",
                flush=True,
            )
        speedups[name] = statistics.median(t[0] / o[0] for t, o in rows)
        memory = (max(t[1] for t, _ in rows), max(o[1] for _, o in rows))
        print(
            f"{name}: median speed-up {speedups[name]:.2f}x (target {TARGETS[name]:g}x); peak memory authors "
            f"{memory[0]:.2f} GiB, ours {memory[1]:.2f} GiB",
            flush=True,
        )
    worst = min(s / TARGETS[n] for n, s in speedups.items())
    print(f"peers ratio={2 * worst:.2f} target=2")


if __name__ == "__main__":
    main()
