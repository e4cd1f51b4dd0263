"""The Part II measurement pipeline at a tiny size: the same code path as the book and full presets."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from learnability import window_analysis as wa
from learnability.experiments import window_pipeline as wp
from learnability.experiments.cache import cached_piece


def tiny(**overrides) -> wp.Config:
    base = wp.Config.full(
        T=12,
        D=2,
        H=4,
        task_lags=(1, 2),
        coefficients=(0.6, 0.5),
        n_train=16,
        n_diag=256,
        epochs=2,
        batch=8,
        seeds=(3,),
        lag_grid=(1, 2, 3, 4),
        exact_sequences=4,
        pair_sequences=128,
        diag_batch=128,
        architectures=("ConstGate", "DiagGate"),
        sweep_optimizers=("adamw", "sgd"),
        sweep_lrs=(1e-3, 0.1),
        retrain_architectures=("DiagGate",),
        retrain_N=(4, 8),
        n_jobs=1,
    )
    return replace(base, **overrides)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # the runs' piece cache goes to a fresh folder, not the user's
        mp.setenv("LEARNABILITY_CACHE", str(tmp_path_factory.mktemp("cache")))
        return wp.compute(tiny())


def same_runs(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k].f_first, b[k].f_first)
        and np.array_equal(a[k].learned, b[k].learned)
        and all(np.array_equal(x, y) for x, y in zip(a[k].psi, b[k].psi))
        for k in a
    )


def pieces(root) -> list:
    return sorted((root / "window_pipeline" / "pieces").rglob("*.pkl"))


def counting(calls: list, interrupt_after: int | None = None, real=wp._one):
    """A stand-in for ``wp._one`` (``real``: the unpatched one, bound at import) that appends each spec it computes to
    ``calls``, and raises KeyboardInterrupt (a user's Ctrl-C) once ``calls`` holds ``interrupt_after`` specs."""

    def one(config, spec, threads):
        if len(calls) == interrupt_after:
            raise KeyboardInterrupt
        calls.append(spec)
        return real(config, spec, threads)

    return one


def test_full_preset_is_the_papers_c1_and_bad_configs_raise():
    full = wp.Config.full()
    assert (full.T, full.D, full.H, full.epochs, full.batch, full.n_train) == (1024, 16, 128, 750, 512, 8000)
    assert full.task_lags == (32, 64, 128, 192, 256) and full.lr == 1e-3 and full.gate_init == 0.05
    with pytest.raises(ValueError, match="unknown architectures"):
        tiny(architectures=("Transformer",))
    with pytest.raises(ValueError, match="unknown optimizers"):
        tiny(optimizer="lion")
    with pytest.raises(ValueError, match="lag grid"):
        tiny(lag_grid=(1, 12))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            wp.Config.full(device="cuda")


def test_runs_are_deterministic_and_independent_of_n_jobs(result, tmp_path, monkeypatch):
    assert sorted(result.runs) == sorted(
        [
            ("ConstGate", "adamw", 16, 3),
            ("DiagGate", "adamw", 16, 3),
            ("DiagGate", "sgd", 16, 3),
            ("DiagGate", "adamw", 4, 3),
            ("DiagGate", "adamw", 8, 3),
        ]
    )
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))  # an empty cache: every run computed in parallel
    parallel = wp.compute(tiny(n_jobs=2))
    assert same_runs(result.runs, parallel.runs) and len(pieces(tmp_path)) == 5  # one piece per worker's run


def test_an_interrupted_sweep_resumes_with_the_missing_runs_only(result, tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(wp, "_one", counting(calls, interrupt_after=1))
    with pytest.raises(KeyboardInterrupt):
        wp.compute(tiny())
    assert len(pieces(tmp_path)) == 1
    monkeypatch.setattr(wp, "_one", counting(calls))
    resumed = wp.compute(tiny())
    assert calls == wp.specs(tiny()) and len(pieces(tmp_path)) == 5  # the first run was not recomputed
    assert same_runs(resumed.runs, result.runs)  # as the uninterrupted sweep
    wp.compute(tiny(), force=True)
    assert len(calls) == 10  # force recomputes every run


def test_a_grown_sweep_reuses_the_runs_it_shares(result, tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(wp, "_one", counting(calls))
    wp.compute(tiny(seeds=(3,), sweep_optimizers=(), sweep_lrs=(), retrain_architectures=(), retrain_N=()))
    assert len(calls) == 2  # ConstGate and DiagGate, seed 3
    grown = wp.compute(tiny(seeds=(3, 4)))
    assert len(calls) == 2 + 8 and all(spec[-1] == 4 or spec[1] != "adamw" or spec[3] != 16 for spec in calls[2:])
    assert same_runs({k: v for k, v in grown.runs.items() if k[-1] == 3}, result.runs)


def test_an_unreadable_piece_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    config = tiny(
        architectures=("DiagGate",), sweep_optimizers=(), sweep_lrs=(), retrain_architectures=(), retrain_N=()
    )
    first = wp.compute(config)
    (path,) = pieces(tmp_path)
    path.write_bytes(path.read_bytes()[:100])  # a partial write
    calls = []
    monkeypatch.setattr(wp, "_one", counting(calls))
    assert same_runs(wp.compute(config).runs, first.runs) and calls == wp.specs(config)
    assert same_runs(wp.compute(config).runs, first.runs) and len(calls) == 1  # the rewritten piece loads
    with pytest.raises(ValueError, match="stable repr"):
        cached_piece("window_pipeline", config, object(), lambda: None)


def test_diagnostics_shapes_and_finite_values(result):
    run = result.runs[("DiagGate", "adamw", 16, 3)]
    L = 4
    for key in ("f_first", "f_exact_product", "f_transport", "f_first_same", "f_optimizer", "f_optimizer_rq"):
        values = getattr(run, key)
        assert values.shape == (L,) and np.all(np.isfinite(values)) and np.all(values > 0)
    assert run.mu_unit.shape == (L, 4) and len(run.psi) == L and run.psi[0].shape == (256,)
    assert run.psi_pairs[1].shape == (128 * (12 - 2),)
    sgd = result.runs[("DiagGate", "sgd", 16, 3)]
    assert sgd.rates == pytest.approx(np.full(4, 0.1))
    # with one rate for every weight both optimizer-aware envelopes are lr times the plain one
    assert sgd.f_optimizer == pytest.approx(0.1 * sgd.f_first) and sgd.f_optimizer_rq == pytest.approx(
        0.1 * sgd.f_first
    )
    # ... and Lambda inside psi scales every sample by lr: the calibrated estimates of N, and so the windows, agree
    assert all(np.allclose(a, 0.1 * b) for a, b in zip(sgd.psi_optimizer, sgd.psi))
    assert np.allclose(wa.required(sgd, 5.0, samples="optimizer"), wa.required(sgd, 5.0), rtol=1e-6)


def test_constgate_transport_and_exact_product_agree_in_trend(result):
    run = result.runs[("ConstGate", "adamw", 16, 3)]
    assert np.all(np.diff(run.f_transport) < 0) and np.all(np.diff(run.f_exact_product) < 0)


@pytest.mark.parametrize("architecture", list(wp.ARCHITECTURES))
def test_jvp_states_match_central_differences(architecture):
    """The dual-number derivative equals central differences and torch.func.jvp of the same unroll."""
    config = tiny()
    model = wp.build(config, architecture, seed=1).double()
    model.cell.dtype = torch.float64
    xs = torch.randn(3, 12, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = wp._unit_direction(model, 5)
    v = wp.jvp_states(model.cell, xs, w)
    names, module, params = list(w), wp._Unrolled(model.cell), dict(model.cell.named_parameters())

    def unroll(*values):
        return torch.func.functional_call(module, {f"cell.{k}": v for k, v in zip(names, values)}, (xs,))

    reference = torch.func.jvp(unroll, tuple(params[k].detach() for k in names), tuple(w[k] for k in names))[1]
    torch.testing.assert_close(v, reference, rtol=1e-12, atol=1e-14)
    eps = 1e-6
    with torch.no_grad():
        params = dict(model.cell.named_parameters())
        for k in w:
            params[k] += eps * w[k]
        plus = model.cell.unroll(xs)
        for k in w:
            params[k] -= 2 * eps * w[k]
        minus = model.cell.unroll(xs)
    assert torch.allclose(v, (plus - minus) / (2 * eps), atol=1e-8)


def test_adaptive_rates_read_adam_state():
    config = tiny()
    model, opt = wp.train_model(config, "DiagGate", "adamw", 1e-3, 16, seed=0, steps=3)
    rates = wp.adaptive_rates(model, opt, "adamw", 1e-3)
    W = model.cell.W
    v = opt.state[W]["exp_avg_sq"].double() / (1 - 0.999**3)
    assert rates.shape == (4,) and torch.all(rates > 0)
    # the row mean over the two n x n matrices (W and the gate's W_g)
    W_g = model.cell.W_g
    v_g = opt.state[W_g]["exp_avg_sq"].double() / (1 - 0.999**3)
    expected = ((1e-3 / (v.sqrt() + 1e-8)).mean(1) + (1e-3 / (v_g.sqrt() + 1e-8)).mean(1)) / 2
    assert torch.allclose(rates, expected)


def test_analysis_tables(result):
    rows = wa.sensitivity_rows(result, "DiagGate", N=1e4, thresholds=(1, 5))
    assert len(rows) == 8 and {"eps=1 max", "eps=5 first"} <= set(rows[0])
    assert {r["estimator"] for r in rows} == {"calibrated", "authors"}
    assert all(r["eps=1 max"] >= r["eps=1 first"] for r in rows)
    assert all(r["eps=1 max"] >= r["eps=5 max"] for r in rows)  # a stricter threshold never widens
    retrain = wa.retraining_rows(result, threshold=5)
    assert [(r["architecture"], r["N"]) for r in retrain] == [("DiagGate", 4), ("DiagGate", 8)]
    assert wa.learned_horizon([0.5, 0.1], (1, 2), (0.6, 0.5)) == 1
    H = wa.horizons(wa.main_run(result, "DiagGate"), [10, 1e3, 1e6], threshold=1, estimator="authors")
    assert np.all(np.diff(H) >= 0)  # more samples never shrink the window
    with pytest.raises(ValueError, match="estimator"):
        wa.estimates(wa.main_run(result, "DiagGate"), 5.0, estimator="mine")


def synthetic_run(signal: float, n: int = 16384, alpha: float = 1.8, seed: int = 0) -> wp.RunDiagnosis:
    """A run whose matched statistic obeys the theory: per lag, ``signal`` f(l) plus SaS(alpha, scale 1) noise, with
    f = 4 e^{-l/6} on lags 1..30 (lag-independent noise scale and tail index); every envelope is f, one unit, no
    optimizer state, nothing learned."""
    from learnability.stable import sample_sas

    lags = np.arange(1, 31)
    f = 4 * np.exp(-lags / 6.0)
    noise = sample_sas(alpha, (lags.size, n), generator=torch.Generator().manual_seed(seed)).numpy()
    psi = list(noise + signal * f[:, None])
    return wp.RunDiagnosis(
        lags=lags,
        f_first=f,
        f_exact_product=f,
        f_transport=f,
        f_first_same=f,
        f_optimizer=None,
        f_optimizer_rq=None,
        mu_unit=f[:, None],
        psi=psi,
        psi_pairs=psi,
        psi_optimizer=None,
        learned=np.zeros(0),
        mse=float("nan"),
        rates=None,
    )


def test_the_signal_estimator_and_the_windows_on_a_run_that_obeys_the_theory():
    """The signal m_hat(l) is checked against its known value 0.5 f(l), the constants against (alpha, sigma, c) =
    (1.8, 1, 0.5), and the measured H_N against the theory's window for N up to the diagnostic set's size."""
    run = synthetic_run(0.5)
    est = wa.estimates(run, 5.0)
    truth = 0.5 * run.f_first
    assert np.all(np.abs(est["m"] - truth) < 4.5 * est["se"])  # every lag, detectable or not
    assert np.all(est["detected"][truth > 10 * est["se"]]) and not est["detected"][-1]
    k = wa.theory_constants(run, 5.0, est)
    assert k["alpha"] == pytest.approx(1.8, abs=0.05) and k["sigma"] == pytest.approx(1.0, abs=0.05)
    assert k["c"] == pytest.approx(0.5, rel=0.05)
    N_grid = [30, 300, 3000, 16384]
    measured, theory = wa.horizons(run, N_grid, 5.0), wa.theory_horizons(run, N_grid, 5.0, est)
    assert np.all(np.abs(measured - theory) <= 1) and measured[-1] > measured[0]
    fit = wa.law_fit(run, 5.0, est)
    assert fit["gamma_low"] <= 1 <= fit["gamma_high"] and abs(fit["slope"] - 1) < 0.25
    noise = synthetic_run(0.0, seed=1)  # no signal: no window at any N
    assert np.all(wa.horizons(noise, N_grid + [1e9], 5.0) == 0)
    assert wa.horizons(noise, [1e9], 5.0, estimator="authors")[0] > 0  # the authors' estimator finds one
    emp = wa.empirical(run, 5.0, est=est)
    ok = np.isfinite(emp["empirical"]) & np.isfinite(emp["parametric"])
    assert ok.sum() >= 5 and np.all(np.abs(np.log(emp["empirical"][ok] / emp["parametric"][ok])) < np.log(3))


def test_rayleigh_rates_and_the_immediate_jvp():
    rates = torch.tensor([[1.0, 3.0], [2.0, 2.0]], dtype=torch.float64)
    h = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]], dtype=torch.float64)
    lam = wp.rayleigh_rates(rates, h)
    assert torch.allclose(lam[0], torch.tensor([[2.0, 2.0], [1.0, 2.0], [2.0, 2.0]], dtype=torch.float64))
    config = tiny(jvp="immediate")
    model = wp.build(config, "GRU", seed=2).double()
    model.cell.dtype = torch.float64
    xs = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = wp._unit_direction(model, 3)
    v = wp.immediate_jvp_states(model.cell, xs, w)
    with torch.no_grad():  # one step from the fixed previous state, by central differences
        states = model.cell.states(xs)
        params = dict(model.cell.named_parameters())

        def step_at(t: int) -> torch.Tensor:
            return model.cell.hidden(model.cell(xs[:, t], model.cell.unflatten_state(states[:, t])))

        eps = 1e-6
        for k in w:
            params[k] += eps * w[k]
        plus = torch.stack([step_at(t) for t in range(5)], 1)
        for k in w:
            params[k] -= 2 * eps * w[k]
        minus = torch.stack([step_at(t) for t in range(5)], 1)
    assert torch.allclose(v, (plus - minus) / (2 * eps), atol=1e-8)
    assert not torch.allclose(v, wp.jvp_states(model.cell, xs, w))  # the total derivative carries transport
    with pytest.raises(ValueError, match="jvp must be"):
        tiny(jvp="partial")


def test_gru_code_variant_adds_the_two_extra_products():
    config = tiny(architectures=("GRU",), sweep_optimizers=(), sweep_lrs=(), retrain_architectures=(), retrain_N=())
    model = wp.build(config, "GRU", seed=0)
    standard = wp.diagnose(config, model, None, "adamw", 1e-3, seed=3)
    code = wp.diagnose(
        replace(config, gru_zero_order="code"), wp.build(config, "GRU", seed=0), None, "adamw", 1e-3, seed=3
    )
    assert np.all(code.f_first > standard.f_first)  # the extra products are positive
    assert np.array_equal(code.f_transport, standard.f_transport)
    with pytest.raises(ValueError, match="gru_zero_order"):
        tiny(gru_zero_order="both")


def test_horizon_band_over_seeds(result):
    two = wp.Result(
        replace(result.config, seeds=(3, 4)),
        {**result.runs, **{(a, o, n, 4): run for (a, o, n, s), run in result.runs.items()}},
    )
    mean, std = wa.horizon_band(two, "DiagGate", [10, 1e4], threshold=1)
    single = wa.horizons(wa.main_run(result, "DiagGate"), [10, 1e4], threshold=1)
    assert np.array_equal(mean, single) and np.all(std == 0)  # identical seeds: no spread


def test_law_and_optimizer_rows(result):
    rows = wa.law_rows(result, threshold=1)
    assert [r["architecture"] for r in rows] == list(result.config.architectures)
    assert all(0 <= r["lags detected"] <= 4 and r["gamma 95% interval"].startswith("[") for r in rows)
    opt = wa.optimizer_rows(result, threshold=1, N=1e4)
    assert [r["optimizer"] for r in opt] == ["adamw", "sgd"] and opt[0]["H_10000"] >= opt[0]["H_10000 (first)"]


def test_stages_diagnose_the_initial_and_an_early_network(result, tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    run = result.runs[("DiagGate", "adamw", 16, 3)]
    assert sorted(run.stages) == [0.0, 0.1]
    init = run.stages[0.0]
    assert init.f_optimizer is None and init.stages == {}  # no optimizer state at step 0
    late = wp.compute(
        tiny(
            stages=(0.5,),
            architectures=("DiagGate",),
            sweep_optimizers=(),
            sweep_lrs=(),
            retrain_architectures=(),
            retrain_N=(),
        )
    )
    assert late.runs[("DiagGate", "adamw", 16, 3)].stages[0.5].f_optimizer is not None  # Adam's state
    fresh = wp.diagnose(tiny(), wp.build(tiny(), "DiagGate", 3), None, "adamw", 1e-3, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(init.psi, fresh.psi))  # the untrained network, exactly
    assert not np.array_equal(init.f_first, run.f_first)  # training moved the envelope
    assert result.runs[("DiagGate", "adamw", 4, 3)].stages == {}  # retraining runs: final only
    with pytest.raises(ValueError, match="stages"):
        tiny(stages=(1.0,))


def test_lstm_rates_code_and_cell():
    """The LSTM's first-order cell-path bracket vanishes (dc/dc = diag f): 'cell' is the forget-gate product;
    'code' (the default) adds the window-end factor e_t and the h-mediated correction (eq-lstm-code-rates)."""
    from learnability.effective_lr import window_envelope

    config = tiny(architectures=("LSTM",), sweep_optimizers=(), sweep_lrs=(), retrain_architectures=(), retrain_N=())
    code = wp.diagnose(config, wp.build(config, "LSTM", seed=0), None, "adamw", 1e-3, seed=3)
    cell = wp.diagnose(
        replace(config, lstm_rates="cell"), wp.build(config, "LSTM", seed=0), None, "adamw", 1e-3, seed=3
    )
    model = wp.build(config, "LSTM", seed=0).double()
    model.cell.dtype = torch.float64
    x = wp.multilag_data(config, config.n_diag, 3, split=1)[0].double()
    with torch.no_grad():
        r, rt = wp.trajectory_diagonals(model.cell, x)
    assert torch.all(rt.abs() < 1e-12)  # the bracket vanishes
    assert np.allclose(cell.f_first, window_envelope(r, rt, list(config.lag_grid), order=0).numpy())
    assert not np.allclose(code.f_first, cell.f_first) and np.all(code.f_first < cell.f_first)
    assert np.array_equal(code.f_transport, cell.f_transport)
    with pytest.raises(ValueError, match="lstm_rates"):
        tiny(lstm_rates="paper")


def test_ordering_rows_rank_by_the_measured_window(result):
    rows = wa.ordering_rows(result, threshold=1, N=1e4)
    assert sorted(r["architecture"] for r in rows) == ["ConstGate", "DiagGate"]
    assert rows[0]["H_10000"] >= rows[1]["H_10000"] and all(r["seed sd"] == 0 for r in rows)


def test_threaded_runs_equal_sequential_runs(tmp_path, monkeypatch):
    """On joblib's threading backend two runs at a time (their forward-mode sections taking turns) give the numbers
    of the sequential runs."""
    import joblib

    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path / "a"))
    config = tiny(
        architectures=("DiagGate", "GRU"),
        sweep_optimizers=(),
        sweep_lrs=(),
        retrain_N=(),
        retrain_architectures=(),
        stages=(),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each threaded run does: the same BLAS round-off
    try:
        sequential = wp.compute(config)
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path / "b"))
    with joblib.parallel_config(backend="threading"):
        threaded = wp.compute(replace(config, n_jobs=2))
    torch.set_num_threads(threads)
    for key, run in sequential.runs.items():
        np.testing.assert_allclose(threaded.runs[key].psi[0], run.psi[0], rtol=1e-10)
        np.testing.assert_allclose(threaded.runs[key].f_first, run.f_first, rtol=1e-10)


def test_peer_configurations_are_the_authors_sizes():
    """bench/bench_peers.py compares like with like: the authors' medium run and their S1 run."""
    from learnability.support import benchmarks

    pipe = benchmarks.peer_pipeline_config()
    assert (pipe.T, pipe.D, pipe.H, pipe.n_train, pipe.n_diag, pipe.epochs, pipe.batch) == (
        256,
        16,
        64,
        512,
        512,
        10,
        128,
    )
    assert pipe.architectures == ("ConstGate", "SharedGate", "DiagGate") and len(pipe.lag_grid) == 32
    assert pipe.task_lags == (16, 32, 64, 128) and min(pipe.lag_grid) == 4 and max(pipe.lag_grid) == 128
    s1 = benchmarks.peer_s1_config()
    assert (s1.T, s1.hidden, s1.inputs, s1.steps, s1.checkpoints, s1.probe, s1.max_lag, s1.kinds) == (
        80,
        64,
        4,
        200,
        (0, 100, 200),
        12,
        79,
        ("multi",),
    )


def test_medium_preset_is_the_scale_the_chapters_execute():
    """The issue's medium scale: T >= 256, lags to >= 64, >= 4096 diagnostic sequences, >= 3 seeds, every
    architecture, diagnosed at initialisation too; no optimizer or retraining sweep (those stay at book scale)."""
    medium, book = wp.Config.medium(), wp.Config.book()
    assert medium.T >= 256 and max(medium.lag_grid) >= 64 and medium.n_diag >= 4096 and len(medium.seeds) >= 3
    assert medium.architectures == tuple(wp.ARCHITECTURES) and 0.0 in medium.stages
    assert medium.sweep_optimizers == (medium.optimizer,) and medium.retrain_N == ()
    assert len(wp.specs(medium)) == len(medium.architectures) * len(medium.seeds)
    assert (medium.H, medium.D, wp.total_steps(medium)) == (book.H, book.D, wp.total_steps(book))


def test_permutation_p_is_exact():
    assert wa.permutation_p([1, 2, 3], [4, 5, 6]) == pytest.approx(1 / 20)  # the smallest value for 3 vs 3
    assert wa.permutation_p([4, 5, 6], [1, 2, 3]) == 1.0
    assert wa.permutation_p([128, 128], [128, 128]) == 1.0  # ties: no evidence
    assert wa.permutation_p([1, 2], [2, 3]) == pytest.approx(2 / 6)  # the two {2, 3} of the C(4, 2) splits
    with pytest.raises(ValueError, match="non-empty"):
        wa.permutation_p([], [1.0])


def synthetic_result(signals: dict[str, float], seeds=(1, 2, 3)) -> wp.Result:
    """A Result whose runs obey the theory (:func:`synthetic_run`) with one signal constant per architecture."""
    config = tiny(architectures=tuple(signals), seeds=seeds)
    runs = {
        (a, config.optimizer, config.n_train, s): synthetic_run(c, n=4096, seed=10 * k + s)
        for k, (a, c) in enumerate(signals.items())
        for s in seeds
    }
    return wp.Result(config, runs)


def test_ordering_test_and_law_summary_on_results_with_a_known_answer():
    """A planted ordering is detected at the smallest p three seeds allow, a reversed one is not; the law's
    exponent is recovered over seeds with an interval containing 1, and one seed is refused."""
    result = synthetic_result({"ConstGate": 0.1, "DiagGate": 2.0, "GRU": 0.02})
    rows = {r["architecture"]: r for r in wa.ordering_test(result, 5.0, N=300)}
    assert rows["DiagGate"]["H_300"] > rows["DiagGate"]["H_300 (ConstGate)"]
    assert rows["DiagGate"]["p (wider)"] == pytest.approx(0.05) and rows["GRU"]["p (wider)"] >= 0.5
    summary = {r["architecture"]: r for r in wa.law_summary_rows(result, 5.0)}
    for arch in ("ConstGate", "DiagGate"):
        low, high = (float(v) for v in summary[arch]["gamma 95% (seeds)"].strip("[]").split(","))
        assert low <= 1 <= high and abs(summary[arch]["gamma"] - 1) < 0.1 and summary[arch]["misfit (median)"] < 2
    assert summary["DiagGate"]["seeds with 1 in gamma's interval"] >= 2
    one = synthetic_result({"ConstGate": 0.1, "DiagGate": 2.0}, seeds=(1,))
    with pytest.raises(ValueError, match="at least 2 seeds"):
        wa.ordering_test(one, 5.0, N=300)
    with pytest.raises(ValueError, match="not among"):
        wa.ordering_test(result, 5.0, N=300, narrowest="LSTM")


def test_a_registered_cell_is_an_architecture_by_its_kind_name(tmp_path, monkeypatch):
    """Readers' cells (tests/user_cells.py) run through the book preset's code path, run -> compute -> the piece
    cache, under their kind names, beside a built-in architecture, in two parallel jobs (threads: the registry is this
    process's). test_mgu takes the paper's initialisation whole; test_mgu_tanh refuses layer_norm and names no gate
    weights, which are skipped with the reason; test_blend has no retention, so its rates are the exact diagonal
    products, said in the result. Unknown names are refused."""
    import user_cells  # noqa: F401  (registers test_mgu, test_mgu_tanh and test_blend)

    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    config = tiny(
        architectures=("ConstGate", "test_mgu", "test_mgu_tanh"),
        sweep_optimizers=(),
        sweep_lrs=(),
        sweep_architecture="test_mgu",
        retrain_architectures=("test_mgu",),
        retrain_N=(8,),
        n_jobs=2,
    )
    with pytest.warns(UserWarning) as caught:
        result = wp.run(config)
    assert set(result.runs) == {
        ("ConstGate", "adamw", 16, 3),
        ("test_mgu", "adamw", 16, 3),
        ("test_mgu_tanh", "adamw", 16, 3),
        ("test_mgu", "adamw", 8, 3),
    }
    for architecture in ("test_mgu", "test_mgu_tanh"):
        run = result.runs[architecture, "adamw", 16, 3]
        assert np.all(np.isfinite(run.f_first)) and np.all(run.f_first > 0) and np.isfinite(run.mse)
        assert set(run.stages) == set(config.stages)
    reasons = result.skipped["test_mgu_tanh"]
    assert set(result.skipped) == {"test_mgu_tanh"} and set(reasons) == {"layer_norm", "gate_weights"}
    assert "layer_norm=True, but its step does not apply the LayerNorm" in reasons["layer_norm"]
    assert [str(w.message) for w in caught if str(w.message).startswith("window_pipeline")] == [
        f"window_pipeline, architecture 'test_mgu_tanh': {what} skipped: {why}" for what, why in reasons.items()
    ]
    model = wp.build(config, "test_mgu", seed=3)  # the paper's initialisation reaches the reader's cell
    assert torch.all(model.cell.W_f == 0) and torch.all(model.cell.U_f == 0) and model.cell.layer_norm
    assert torch.allclose(torch.sigmoid(model.cell.b_f), torch.full_like(model.cell.b_f, config.gate_init))
    tanh = wp.build(config, "test_mgu_tanh", seed=3).cell
    assert not tanh.layer_norm and tanh.gate_init == config.gate_init and torch.any(tanh.W_f != 0)
    assert wp.kind_of("test_mgu") == "test_mgu" and wp.kind_of("DiagGate") == "multi"
    with pytest.raises(ValueError, match=r"unknown architectures \['test_nope'\]; available: \[.*'test_mgu'"):
        tiny(architectures=("ConstGate", "test_nope"))
    blend = tiny(
        architectures=("ConstGate", "test_blend"),
        sweep_optimizers=(),
        sweep_lrs=(),
        stages=(),
        retrain_N=(),
        retrain_architectures=(),
    )
    with pytest.warns(UserWarning) as said:  # test_blend also takes no gate_init and names no gate weights
        no_retention = wp.run(blend)
    assert set(no_retention.skipped["test_blend"]) == {"gate_init", "gate_weights", "first-order split"}
    assert any(
        "'test_blend': first-order split skipped: cell kind 'test_blend' defines no" in str(w.message) for w in said
    )
    run = no_retention.runs["test_blend", "adamw", 16, 3]  # no retention: first-order = exact diagonal product
    assert np.all(np.isfinite(run.f_first)) and np.allclose(run.f_first, run.f_exact_product, rtol=1e-12)
