"""Provenance tables of the reproducibility appendix, and the run-time record of the result cache."""

import json

import torch

from learnability.experiments import EXPERIMENTS
from learnability.experiments.cache import cached, run_times
from learnability.experiments.stable_means import Config
from learnability.support import provenance


def test_environment_reports_the_running_versions():
    rows = {r["item"]: r["value"] for r in provenance.environment()}
    assert rows["torch"] == torch.__version__.split("+")[0] or rows["torch"].startswith(torch.__version__[:4])
    assert {"python", "numpy", "jupyter-book", "git commit", "package source hash"} <= set(rows)


def test_seed_table_covers_every_experiment():
    rows = provenance.seeds()
    assert [r["experiment"] for r in rows] == list(EXPERIMENTS)
    assert all("seed" in r["book"] or "none" in r["book"] for r in rows)


def test_cached_records_the_compute_time_and_the_table_reads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    config = Config.book()
    cached("stable_means", config, lambda c: 42)
    (entry,) = run_times().values()
    assert entry["name"] == "stable_means" and entry["seconds"] >= 0
    row = next(r for r in provenance.experiment_run_times() if r["experiment"] == "stable_means")
    assert row["book"].endswith(" s") and row["full"] == "not run here" and row["medium"] == provenance.NO_PRESET
    medium = next(r for r in provenance.experiment_run_times() if r["experiment"] == "window_pipeline")["medium"]
    assert medium == "not run here"  # window_pipeline defines a medium preset
    (tmp_path / "timings.json").write_text("{not json")  # a corrupted table is not fatal
    assert run_times() == {}
    cached("stable_means", config, lambda c: 42, force=True)
    assert len(json.loads((tmp_path / "timings.json").read_text())) == 1
