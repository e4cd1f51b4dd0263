"""experiments: the cache (keys, atomic writes, corrupted entries) and the stable_means experiment at tiny size."""

import dataclasses
import importlib
import inspect
import re

import numpy as np
import pytest

from learnability import experiments
from learnability.experiments import EXPERIMENTS, cache, exponent, load, stable_means


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
    assert cache.cached("t", Tiny(1), compute) == {"v": 1} and len(calls) == 1  # reused
    assert cache.cached("t", Tiny(2), compute) == {"v": 2} and len(calls) == 2  # new config
    cache.cached("t", Tiny(1), compute, force=True)
    assert len(calls) == 3  # forced
    entry = next((tmp_path / "t").glob("*.pkl"))
    entry.write_bytes(b"not a pickle")  # corrupted
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
    cfg = dataclasses.replace(
        stable_means.Config.book(),
        alphas=(1.5, 2.0),
        sizes=(10, 100, 1000),
        reps=2000,
        est_alphas=(1.5,),
        est_sizes=(20000,),
        est_reps=2,
    )
    result = stable_means.run(cfg)
    for alpha in cfg.alphas:
        assert abs(result.slope[alpha] - (1 / alpha - 1)) < 0.05
        assert np.all(np.abs(result.iqr[alpha] / result.iqr_theory[alpha] - 1) < 0.12)
    assert {r["method"] for r in result.estimators} == {"ecf", "mcculloch", "hill"}
    assert stable_means.run(cfg).slope == result.slope  # cached


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
    # the constant too (eq-detector-law): N* = ((q_{1-delta} + q_p) / f)^kappa, Monte-Carlo tolerance on the threshold
    from learnability.diagnostics import detection_threshold

    q = detection_threshold(1.3, 2 * cfg.false_alarm) + detection_threshold(1.3, 2 * (1 - cfg.power))
    ok = np.isfinite(result.n_required[1.3])
    predicted = (q / result.f[1.3][ok]) ** row["kappa"]
    assert np.all(np.abs(np.log(result.n_required[1.3][ok] / predicted)) < row["kappa"] * np.log(1.1))
    with pytest.raises(ValueError, match="false_alarm must lie"):
        exponent.Config(false_alarm=0.7)
    with pytest.raises(ValueError, match=r"alphas must lie in \(1, 2\]"):
        exponent.Config(alphas=(1.0,))


def test_part3_experiments_tiny_runs(tmp_path, monkeypatch):
    """Each Part III experiment end to end at a tiny size: the claims its chapter glues hold there too."""
    from learnability.experiments import leaky_integrator, oscillator, rich_lazy

    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    li = leaky_integrator.run(
        dataclasses.replace(
            leaky_integrator.Config.book(),
            N=12,
            lr=0.02,
            t_max=10.0,
            seeds=(0,),
            s0_sweep=(0.1, 0.01),
            sigmas=(0.1,),
            stiff_t=8.0,
            bptt_N=6,
            bptt_batch=16,
            bptt_lr=0.1,
            bptt_trial=12.0,
            bptt_burn_in=6.0,
        )
    )
    assert li.main.gd.eigenvalues[-1].real.max() == pytest.approx(0.7, abs=0.01)
    t50 = {r.s0: r.t50_gd for r in li.escape}
    assert t50[0.01] - t50[0.1] == pytest.approx(1.3 * np.log(10), rel=0.1)  # eq-escape-time per decade
    below, above = li.stiffness.runs  # factors 0.8 and 1.25
    assert below.curve.loss[-1] < above.curve.loss[-1]
    (finite,) = li.sigmas  # eq-escape-sigma at sigma = 0.1
    assert finite.t50.theory == pytest.approx(finite.t50.gd, rel=0.1)
    assert finite.shift < 0 and finite.t50.theory < finite.t50.ode
    rl = rich_lazy.run(
        dataclasses.replace(
            rich_lazy.Config.book(),
            N=60,
            seeds=(0,),
            sigmas=(0.5,),
            c_grid=(0.25, 0.75),
            regime_N=12,
            regime_sigmas=(0.1, 0.9),
            t_max=4.0,
        )
    )
    loss = rl.rel_loss[0.5][0, :, rich_lazy.Config().times.index(1000.0)]
    assert loss[1] < 1e-3 < loss[0]  # inside learns, outside lags
    assert rl.scaled.top[-1] < 0.9  # s0 = sigma: no outlier
    assert rl.scaled.u_norm0 == pytest.approx(0.9, rel=0.5) and rl.regimes[0.9].u_norm0 < 0.03
    osc = oscillator.run(dataclasses.replace(oscillator.Config.book(), N=10, t_max=180.0, multi_t=5.0))
    assert np.sort_complex(osc.pair_flow.eigenvalues[-1]) == pytest.approx([0.7 - 2j, 0.7 + 2j], abs=1e-3)
    assert np.abs(osc.zero_bulk.loss - osc.pair_flow.loss).max() < 0.02
    with pytest.raises(ValueError, match="bulk radii"):
        rich_lazy.Config(sigmas=(1.2,))
    with pytest.raises(ValueError, match="sigma in"):
        oscillator.Config(sigma=1.5)


def test_calibration_tiny_run_separates_the_two_estimators(tmp_path, monkeypatch):
    """The calibration experiment end to end: on pure noise the authors' estimator reports windows, the calibrated
    one none; on the law's data the calibrated N_hat is within a factor 2 and gamma_hat near 1."""
    from learnability.experiments import calibration

    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    cfg = dataclasses.replace(calibration.Config.book(), alphas=(2.0,), sizes=(8192,), max_lag=20, reps=2)
    rows = {r["estimator"]: r for r in calibration.summary(calibration.run(cfg))}
    assert rows["authors"]["noise: reps with a detection"] == "2/2"
    assert rows["calibrated"]["noise: reps with a detection"] == "0/2" and rows["calibrated"]["noise: H_n"] == 0
    assert rows["calibrated"]["N within 2x"] >= 0.8 and abs(rows["calibrated"]["gamma"] - 1) < 0.15
    assert abs(rows["calibrated"]["H_n"] - rows["calibrated"]["true H_n"]) <= 2
    with pytest.raises(ValueError, match="alphas must lie"):
        calibration.Config(alphas=(0.9,))


def test_planted_lag_tiny_run_sees_the_planted_lag(tmp_path, monkeypatch):
    from learnability.experiments import planted_lag

    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    cfg = dataclasses.replace(
        planted_lag.Config.book(),
        architectures=("ConstGate",),
        planted=(1, 2, 4),
        T=16,
        H=8,
        n_diag=1024,
        diag_batch=256,
    )
    result = planted_lag.run(cfg)
    z = result.z["ConstGate"]
    assert z.shape == (3, 3) and np.all(np.abs(np.diag(z)) > 4)  # each planted lag seen at its own lag
    assert np.all(np.abs(z[0, 1:]) < 4)  # nothing beyond a planted lag of 1
    assert [r["architecture"] for r in planted_lag.law_rows(result)] == ["ConstGate"]
    assert result.z_crit == pytest.approx(2.935, abs=1e-3)  # Bonferroni over 3 lags at 1 %
    with pytest.raises(ValueError, match="at least 3 distinct"):
        planted_lag.Config(planted=(1, 2))


def test_calibration_example_censors_undetectable_lags(tmp_path, monkeypatch):
    from learnability.experiments import calibration

    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    cfg = dataclasses.replace(calibration.Config.book(), alphas=(2.0,), sizes=(1024,), max_lag=30, reps=1)
    example = calibration.run(cfg).examples[(2.0, 1024)]
    assert np.all(np.isinf(example.parametric_q[-5:])) and np.isfinite(example.parametric_q[0])
    assert np.array_equal(np.isfinite(example.parametric_q), np.isfinite(example.calibrated))


def result_classes(module) -> list[type]:
    """The dataclasses an experiment module defines for its results: every one but ``Config``."""
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__ and dataclasses.is_dataclass(cls) and cls.__name__ != "Config"
    ]


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_results_are_frozen_dataclasses_that_document_every_field(name):
    """Item 5 of issue #18: a Result (and each record class it holds) is frozen and its docstring names every field
    (with its meaning, shape and equation label), so an extender need not read the producer."""
    module = load(name)
    classes = result_classes(module)
    assert module.Result in classes and module.Config.__dataclass_params__.frozen
    for cls in classes + result_classes(importlib.import_module("learnability.experiments.trajectories")):
        assert cls.__dataclass_params__.frozen, f"{name}: {cls.__name__} is not a frozen dataclass"
        doc = cls.__doc__ or ""
        undocumented = [f.name for f in dataclasses.fields(cls) if not re.search(rf"(``|\b){f.name}(``|\b)", doc)]
        assert undocumented == [], f"{name}: {cls.__name__}'s docstring does not name {undocumented}"


def test_part3_trajectories_are_frozen_and_check_their_records():
    from learnability.experiments.trajectories import LossCurve, OutlierTrajectory

    curve = LossCurve.from_record({"time": np.arange(2.0), "loss": np.ones(2), "W": np.eye(2)})  # extras dropped
    with pytest.raises(dataclasses.FrozenInstanceError):
        curve.loss = np.zeros(2)
    with pytest.raises(ValueError, match=r"lacks \['loss'\]"):
        LossCurve.from_record({"time": np.arange(2.0)})
    ode = OutlierTrajectory.from_record({"time": [0.0], "p": [0.1], "lambda": [0.2], "loss": [0.3]})
    assert (ode.residue, ode.outlier) == ([0.1], [0.2])
