"""tasks and training: shapes, the targets' definitions, determinism, the fixed-batch quirk, validation."""

import dataclasses

import numpy as np
import pytest
import torch

from learnability import errata, tasks, training, transport
from learnability.cells import make_cell
from learnability.experiments import lag_profiles


@pytest.mark.parametrize("name", ["adding", "copy", "ar2", "movingavg", "delaysum", "narma10"])
def test_shapes_and_determinism(name):
    a = tasks.make_batch(name, 5, 40, 6, torch.Generator().manual_seed(0))
    b = tasks.make_batch(name, 5, 40, 6, torch.Generator().manual_seed(0))
    x, y, mask = a
    assert x.shape == (5, 40, 6) and y.shape == (5, 40, tasks.output_size(name, 6)) and mask.shape == (5, 40)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert torch.isfinite(y).all() and mask.sum() > 0


def test_adding_target_is_the_sum_of_the_marked_values():
    x, y, mask = tasks.make_batch("adding", 50, 20, 2, torch.Generator().manual_seed(1))
    marked = (x[..., 0] * x[..., 1]).sum(1)
    assert torch.allclose(y[:, -1, 0], marked) and torch.equal(x[..., 1].sum(1), torch.full((50,), 2.0))
    assert torch.equal(mask[:, -1], torch.ones(50)) and mask[:, :-1].sum() == 0


def test_copy_outputs_the_symbols_after_the_delimiter():
    x, y, mask = tasks.make_batch("copy", 3, 20, 6, torch.Generator().manual_seed(2))
    assert torch.equal(y[:, -5:], x[:, :5, :4]) and mask[:, -5:].sum() == 15
    assert torch.equal(x[:, 14, 5], torch.ones(3))


def test_delaysum_and_movingavg_targets():
    x, y, _ = tasks.make_batch("delaysum", 4, 50, 2, torch.Generator().manual_seed(3))
    assert torch.allclose(y[:, -1, 0], sum(x[:, 49 - d, 0] for d in (4, 12, 24, 36)) / 4)
    x, y, _ = tasks.make_batch("movingavg", 4, 20, 3, torch.Generator().manual_seed(4))
    assert torch.allclose(y[:, -1, 0], x[:, -8:, 0].mean(1)) and x[..., 1:].abs().sum() == 0


def test_training_lowers_the_loss_and_checkpoints():
    model = training.build_model("multi", "movingavg", 2, 16, seed=0)
    saved, losses = training.train(
        model, "movingavg", steps=150, batch=32, T=20, optimizer="adam", lr=1e-2, seed=0, checkpoints=(0, 150)
    )
    assert set(saved) == {0, 150} and np.mean(losses[-20:]) < 0.5 * np.mean(losses[:5])


def test_fixed_batch_reuses_one_batch():
    model = training.build_model("scalar", "adding", 2, 8, seed=0)
    _, fixed = training.train(
        model, "adding", steps=30, batch=16, T=10, optimizer="sgd", lr=0.0, seed=0, fixed_batch=True
    )
    assert len(set(fixed)) == 1  # lr = 0 and the same batch: the same loss every step


def test_code_conventions_differ_from_exact_ones():
    cell = make_cell("multi", 2, 6, dtype=torch.float64, seed=1)
    xs = torch.randn(3, 8, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    J = transport.jacobians(cell, xs)
    assert (errata.code_jacobians(cell, xs) - J).abs().max() > 1e-6
    rev, fwd = errata.reversed_products_by_lag(J, 3), transport.transport_by_lag(J, 3)
    assert torch.allclose(rev[3][:, 0], J[:, 0] @ J[:, 1] @ J[:, 2]) and torch.allclose(
        fwd[3][:, 0], J[:, 2] @ J[:, 1] @ J[:, 0]
    )
    P = torch.randn(50, 6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    approx = errata.power_iteration_norm(P, 5, torch.Generator().manual_seed(4))
    assert (
        bool((approx <= transport.spectral_norm(P) + 1e-12).all())
        and (approx - transport.spectral_norm(P)).abs().max() > 1e-3
    )


def test_power_fit_recovers_a_known_exponent():
    pred = 0.8 ** np.arange(20)
    s, r2 = lag_profiles.fit_power(pred**1.7, pred)
    assert s == pytest.approx(1.7) and r2 == pytest.approx(1.0)


def test_lag_profiles_tiny_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    cfg = dataclasses.replace(
        lag_profiles.Config.book(),
        kinds=("leaky", "multi"),
        T=12,
        hidden=8,
        steps=4,
        checkpoints=(0, 4),
        max_lag=6,
        seeds=(1,),
        probe=3,
    )
    result = lag_profiles.run(cfg)
    assert result.profile["multi", "exact"].shape == (1, 2, 6)
    assert np.allclose(result.profile["multi", "exact"][..., 0], 1.0)
    rows = lag_profiles.summary(result)
    assert {r["cell"] for r in rows} == {"leaky", "multi"} and all(np.isfinite(r["s_update"]) for r in rows)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: tasks.make_batch("nope", 2, 10, 2), "unknown task 'nope'"),
        (lambda: tasks.make_batch("adding", 0, 10, 2), "batch must be an integer >= 1"),
        (lambda: tasks.make_batch("copy", 2, 8, 6), "copy needs T >= 12"),
        (lambda: tasks.make_batch("adding", 2, 10, 1), "needs input_size >= 2"),
        (lambda: tasks.make_batch("delaysum", 2, 20, 2), "delaysum needs T >= 38"),
        (
            lambda: training.train(
                training.build_model("leaky", "adding", 2, 4, 0),
                "adding",
                steps=2,
                batch=2,
                T=4,
                optimizer="lbfgs",
                lr=0.1,
                seed=0,
            ),
            "unknown optimizer",
        ),
        (lambda: training.masked_mse(torch.zeros(2, 3, 1), torch.zeros(2, 3, 2), torch.ones(2, 3)), "must match"),
        (lambda: lag_profiles.Config(variants=("exact", "other")), "unknown variants"),
        (lambda: lag_profiles.Config(max_lag=100), "max_lag must lie"),
        (lambda: errata.power_iteration_norm(torch.zeros(2, 2), 0), "iters must be a positive integer"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
