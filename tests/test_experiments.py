"""experiments: the cache (keys, atomic writes, corrupted entries) and the stable_means experiment at tiny size."""

import dataclasses

import numpy as np
import pytest

from learnability import experiments
from learnability.experiments import cache, exponent, stable_means


@dataclasses.dataclass(frozen=True)
class Tiny:
    value: int = 1


def test_cache_reuses_and_recomputes(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    calls = []

    def compute(cfg):
        calls.append(cfg)
        return {"v": cfg.value}

    assert cache.cached("t", Tiny(1), compute) == {"v": 1}
    assert cache.cached("t", Tiny(1), compute) == {"v": 1} and len(calls) == 1      # reused
    assert cache.cached("t", Tiny(2), compute) == {"v": 2} and len(calls) == 2      # new config
    cache.cached("t", Tiny(1), compute, force=True)
    assert len(calls) == 3                                                          # forced
    entry = next((tmp_path / "t").glob("*.pkl"))
    entry.write_bytes(b"not a pickle")                                              # corrupted
    for path in (tmp_path / "t").glob("*.pkl"):
        path.write_bytes(b"\x80garbage")
    assert cache.cached("t", Tiny(1), compute) == {"v": 1} and len(calls) == 4
    assert not list((tmp_path / "t").glob("*.tmp"))


def test_cache_key_depends_on_config_and_rejects_non_dataclasses():
    assert cache.cache_key("t", Tiny(1)) != cache.cache_key("t", Tiny(2))
    assert cache.cache_key("t", Tiny(1)) != cache.cache_key("u", Tiny(1))
    with pytest.raises(ValueError, match="dataclass instance"):
        cache.cache_key("t", {"value": 1})


def test_stable_means_tiny_run_matches_theory(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    cfg = dataclasses.replace(stable_means.Config.book(), alphas=(1.5, 2.0), sizes=(10, 100, 1000), reps=2000,
                              est_alphas=(1.5,), est_sizes=(20000,), est_reps=2)
    result = stable_means.run(cfg)
    for alpha in cfg.alphas:
        assert abs(result.slope[alpha] - (1 / alpha - 1)) < 0.05
        assert np.all(np.abs(result.iqr[alpha] / result.iqr_theory[alpha] - 1) < 0.12)
    assert {r["method"] for r in result.estimators} == {"ecf", "mcculloch", "hill"}
    assert stable_means.run(cfg) .slope == result.slope  # cached


def test_registry_and_config_validation():
    assert experiments.load("stable_means") is stable_means
    assert experiments.load("exponent") is exponent
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        experiments.load("nope")
    with pytest.raises(ValueError, match="reps must be >= 100"):
        stable_means.Config(reps=10)


def test_exponent_experiment_tiny_run_prefers_kappa(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    cfg = dataclasses.replace(exponent.Config.book(), alphas=(1.3,), n_max=1000, n_points=12, reps=800)
    result = exponent.run(cfg)
    row = exponent.summary(result)[0]
    assert row["closer"] == "κ_α" and abs(row["slope"] - row["kappa"]) < 0.6
    with pytest.raises(ValueError, match="false_alarm must lie"):
        exponent.Config(false_alarm=0.7)
    with pytest.raises(ValueError, match=r"alphas must lie in \(1, 2\]"):
        exponent.Config(alphas=(1.0,))
