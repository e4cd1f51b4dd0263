"""The Part II measurement pipeline at a tiny size: the same code path as the book and full presets."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from learnability import window_analysis as wa
from learnability.experiments import window_pipeline as wp


def tiny(**overrides) -> wp.Config:
    base = wp.Config.full(T=12, D=2, H=4, task_lags=(1, 2), coefficients=(0.6, 0.5), n_train=16, n_diag=256,
                          epochs=2, batch=8, seeds=(3,), lag_grid=(1, 2, 3, 4), exact_sequences=4, pair_sequences=128,
                          diag_batch=128,
                          architectures=("ConstGate", "DiagGate"), sweep_optimizers=("adamw", "sgd"),
                          sweep_lrs=(1e-3, 0.1), retrain_architectures=("DiagGate",), retrain_N=(4, 8), n_jobs=1)
    return replace(base, **overrides)


@pytest.fixture(scope="module")
def result():
    return wp.compute(tiny())


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


def test_runs_are_deterministic_and_independent_of_n_jobs(result):
    assert sorted(result.runs) == sorted([("ConstGate", "adamw", 16, 3), ("DiagGate", "adamw", 16, 3),
                                          ("DiagGate", "sgd", 16, 3), ("DiagGate", "adamw", 4, 3),
                                          ("DiagGate", "adamw", 8, 3)])
    parallel = wp.compute(tiny(n_jobs=2))
    for key, run in result.runs.items():
        other = parallel.runs[key]
        assert np.array_equal(run["f_first"], other["f_first"]) and np.array_equal(run["learned"], other["learned"])
        assert all(np.array_equal(a, b) for a, b in zip(run["psi"], other["psi"]))


def test_diagnostics_shapes_and_finite_values(result):
    run = result.runs[("DiagGate", "adamw", 16, 3)]
    L = 4
    for key in ("f_first", "f_exact_product", "f_transport", "f_first_same", "f_optimizer", "f_optimizer_rq"):
        assert run[key].shape == (L,) and np.all(np.isfinite(run[key])) and np.all(run[key] > 0)
    assert run["mu_unit"].shape == (L, 4) and len(run["psi"]) == L and run["psi"][0].shape == (256,)
    assert run["psi_pairs"][1].shape == (128 * (12 - 2),)
    sgd = result.runs[("DiagGate", "sgd", 16, 3)]
    assert sgd["rates"] == pytest.approx(np.full(4, 0.1))
    # with one rate for every weight both optimizer-aware envelopes are lr times the plain one
    assert sgd["f_optimizer"] == pytest.approx(0.1 * sgd["f_first"]) and sgd["f_optimizer_rq"] == pytest.approx(
        0.1 * sgd["f_first"])


def test_constgate_transport_and_exact_product_agree_in_trend(result):
    run = result.runs[("ConstGate", "adamw", 16, 3)]
    assert np.all(np.diff(run["f_transport"]) < 0) and np.all(np.diff(run["f_exact_product"]) < 0)


def test_jvp_states_match_central_differences():
    config = tiny()
    model = wp.build(config, "DiagGate", seed=1).double()
    model.cell.dtype = torch.float64
    xs = torch.randn(3, 12, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = wp._unit_direction(model, 5)
    v = wp.jvp_states(model.cell, xs, w)
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
    v = opt.state[W]["exp_avg_sq"].double() / (1 - 0.999 ** 3)
    assert rates.shape == (4,) and torch.all(rates > 0)
    # the row mean over the two n x n matrices (W and the gate's W_g)
    W_g = model.cell.W_g
    v_g = opt.state[W_g]["exp_avg_sq"].double() / (1 - 0.999 ** 3)
    expected = ((1e-3 / (v.sqrt() + 1e-8)).mean(1) + (1e-3 / (v_g.sqrt() + 1e-8)).mean(1)) / 2
    assert torch.allclose(rates, expected)


def test_analysis_tables(result):
    rows = wa.sensitivity_rows(result, "DiagGate", N=1e4, thresholds=(1, 5))
    assert len(rows) == 4 and {"eps=1 max", "eps=5 first"} <= set(rows[0])
    assert all(r["eps=1 max"] >= r["eps=1 first"] for r in rows)
    assert all(r["eps=1 max"] >= r["eps=5 max"] for r in rows)             # a stricter threshold never widens
    retrain = wa.retraining_rows(result, threshold=5)
    assert [(r["architecture"], r["N"]) for r in retrain] == [("DiagGate", 4), ("DiagGate", 8)]
    assert wa.learned_horizon([0.5, 0.1], (1, 2), (0.6, 0.5)) == 1
    H = wa.horizons(wa.main_run(result, "DiagGate"), [10, 1e3, 1e6], threshold=1)
    assert np.all(np.diff(H) >= 0)                                         # more samples never shrink the window


def test_measured_and_theory_windows_coincide_when_the_theory_holds():
    """A synthetic run whose matched statistic has lag-independent noise and a signal proportional to the envelope:
    the measured H_N (diagnostics) must equal the theory's (window.learnability_window) at every N."""
    from learnability.stable import sample_sas

    lags = np.arange(1, 31)
    f = 4 * np.exp(-lags / 6.0)
    gen = torch.Generator().manual_seed(0)
    psi = [(sample_sas(1.8, 4000, scale=1.0, generator=gen, dtype=torch.float64) + 0.5 * v).numpy() for v in f]
    run = {"lags": lags, "f_first": f, "psi": psi}
    stats = wa.statistics(run)
    stats["alpha"][:] = np.median(stats["alpha"])     # the theory's constants, exactly
    stats["sigma"][:] = np.median(stats["sigma"])
    stats["m"] = 0.5 * f
    N_grid = [10, 100, 1e3, 1e4, 1e5]
    measured = [wa.measured_window(lags, wa.required(run, 5.0, stats=stats), N) for N in N_grid]
    assert list(wa.theory_horizons(run, N_grid, 5.0, stats=stats)) == measured
    assert measured[-1] > measured[0]


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
    with torch.no_grad():                       # one step from the fixed previous state, by central differences
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
    assert not torch.allclose(v, wp.jvp_states(model.cell, xs, w))      # the total derivative carries transport
    with pytest.raises(ValueError, match="jvp must be"):
        tiny(jvp="partial")


def test_gru_code_variant_adds_the_two_extra_products():
    config = tiny(architectures=("GRU",), sweep_optimizers=(), sweep_lrs=(), retrain_architectures=(), retrain_N=())
    model = wp.build(config, "GRU", seed=0)
    standard = wp.diagnose(config, model, None, "adamw", 1e-3, seed=3)
    code = wp.diagnose(replace(config, gru_zero_order="code"), wp.build(config, "GRU", seed=0), None, "adamw", 1e-3,
                       seed=3)
    assert np.all(code["f_first"] > standard["f_first"])     # the extra products are positive
    assert np.array_equal(code["f_transport"], standard["f_transport"])
    with pytest.raises(ValueError, match="gru_zero_order"):
        tiny(gru_zero_order="both")


def test_horizon_band_over_seeds(result):
    two = wp.Result(replace(result.config, seeds=(3, 4)),
                    {**result.runs, **{(a, o, n, 4): run for (a, o, n, s), run in result.runs.items()}})
    mean, std = wa.horizon_band(two, "DiagGate", [10, 1e4], threshold=1)
    single = wa.horizons(wa.main_run(result, "DiagGate"), [10, 1e4], threshold=1)
    assert np.array_equal(mean, single) and np.all(std == 0)          # identical seeds: no spread


def test_master_fit_and_optimizer_rows(result):
    rows = wa.master_fit_rows(result, threshold=1)
    assert [r["architecture"] for r in rows] == list(result.config.architectures)
    assert all(r["lags used"] <= 4 for r in rows)
    opt = wa.optimizer_rows(result, threshold=1, N=1e4)
    assert [r["optimizer"] for r in opt] == ["adamw", "sgd"] and opt[0]["H_10000"] >= opt[0]["H_10000 (first)"]
