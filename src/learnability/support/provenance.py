"""What a build ran on and with: package versions, the seeds of every experiment, and the measured run times
(book/reproducibility.md, ``learnability list``)."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import torch

from ..experiments import EXPERIMENTS, load
from ..experiments.cache import config_key, run_times, source_hash

PACKAGES = ("torch", "numpy", "scipy", "sympy", "matplotlib", "jupyter-book", "myst-nb", "sphinx", "threadpoolctl")


def _git_commit() -> str:
    """The checkout's commit (with ``+dirty`` for uncommitted changes), or "not a git checkout"."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return commit + ("+dirty" if dirty else "")


def environment() -> list[dict[str, str]]:
    """Rows (item, value) describing the running environment: Python, platform, CPU threads, package versions,
    the book's commit and the hash of the package source that keys the result cache."""
    rows = [
        ("python", platform.python_version()),
        ("platform", platform.platform()),
        ("CPU cores / torch threads", f"{os.cpu_count()} / {torch.get_num_threads()}"),
        ("CUDA", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"),
    ]
    for name in PACKAGES:
        try:
            rows.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    rows += [
        ("learnability", importlib.metadata.version("learnability")),
        ("git commit", _git_commit()),
        ("package source hash", source_hash()[:12]),
    ]
    return [{"item": k, "value": v} for k, v in rows]


SCALES = ("book", "medium", "full")  # presets an experiment's Config may define (medium: window_pipeline only)
NO_PRESET = "-"


def seeds() -> list[dict[str, str]]:
    """Rows (experiment, book, medium, full): the seed fields of every preset an experiment defines (``NO_PRESET``
    where it has none)."""
    rows = []
    for name in EXPERIMENTS:
        module = load(name)
        row = {"experiment": name}
        for scale in SCALES:
            if not hasattr(module.Config, scale):
                row[scale] = NO_PRESET
                continue
            config = getattr(module.Config, scale)()
            fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if "seed" in f.name}
            row[scale] = ", ".join(f"{k} = {v}" for k, v in fields.items()) or "none (deterministic)"
        rows.append(row)
    return rows


def _seconds(value: float | None) -> str:
    if value is None:
        return "not run here"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def experiment_run_times() -> list[dict[str, object]]:
    """Rows (experiment, chapter, book, medium, full, measured): the last wall time this machine recorded (in the
    result cache's ``timings.json``) for each preset the experiment defines, "not run here", or ``NO_PRESET``."""
    table = run_times()
    rows = []
    for name, (_, _, chapter) in EXPERIMENTS.items():
        module = load(name)
        row: dict[str, object] = {"experiment": name, "chapter": chapter}
        finished = []
        for scale in SCALES:
            if not hasattr(module.Config, scale):
                row[scale] = NO_PRESET
                continue
            entry = table.get(config_key(name, getattr(module.Config, scale)()))
            row[scale] = _seconds(entry["seconds"] if entry else None)
            if entry:
                finished.append(entry["finished"][:16].replace("T", " "))
        row["measured (UTC)"] = ", ".join(finished) or "-"
        rows.append(row)
    return rows
