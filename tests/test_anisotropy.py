"""anisotropy: AI/CE on known spectra, per-example gradients against a loop, the S2 experiment at tiny size."""

import dataclasses

import numpy as np
import pytest
import torch

from learnability import tasks, training
from learnability.experiments import anisotropy_s2
from learnability.gates import anisotropy


def test_anisotropy_on_known_spectra():
    s = torch.tensor([4.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    ai, ce = anisotropy.anisotropy(s, k=2)
    assert float(ai) == pytest.approx(2.0) and float(ce) == pytest.approx(20 / 22)
    ai, ce = anisotropy.anisotropy(s, k=2, top=3)
    assert float(ce) == pytest.approx(20 / 21)


def test_per_example_gradients_equal_a_loop():
    model = training.build_model("multi", "adding", 2, 6, seed=0, dtype=torch.float64)
    x, y, m = tasks.make_batch("adding", 5, 8, 2, torch.Generator().manual_seed(1), dtype=torch.float64)
    G = anisotropy.per_example_gradients(model, training.masked_mse, x, y, m)
    for i in range(5):
        loss = training.masked_mse(model(x[i : i + 1]), y[i : i + 1], m[i : i + 1])
        grads = torch.autograd.grad(loss, list(model.parameters()))
        assert torch.allclose(G[i], torch.cat([g.reshape(-1) for g in grads]), atol=1e-12)


def test_gradient_covariance_rank_one_and_isotropic():
    gen = torch.Generator().manual_seed(2)
    direction = torch.randn(50, generator=gen, dtype=torch.float64)
    rank_one = torch.randn(40, 1, generator=gen, dtype=torch.float64) * direction + 3.0
    _, ce = anisotropy.gradient_covariance_stats(rank_one)
    assert ce == pytest.approx(1.0)
    iso = torch.randn(4000, 30, generator=gen, dtype=torch.float64)  # isotropic: every direction ~ 1/30
    ai, ce = anisotropy.gradient_covariance_stats(iso)
    assert ai < 1.3 and ce == pytest.approx(10 / 30, abs=0.05)


def tiny_s2(**changes) -> anisotropy_s2.Config:
    """The book preset at a size that runs in a second: one task, T = 12, three steps."""
    small = dict(tasks=("adding",), T=12, hidden=16, steps=3, probe=3, lags=(1, 4), pairs=4, grad_examples=12)
    return dataclasses.replace(anisotropy_s2.Config.book(), **{**small, **changes})


def test_s2_tiny_run(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    cfg = tiny_s2()
    result = anisotropy_s2.run(cfg)
    assert result.jac_ai["adding", "multi+sgd"].shape == (1, 2)
    rows = anisotropy_s2.gradient_table(result)
    assert rows[0]["task"] == "adding" and all(0 < rows[0][anisotropy_s2.label(r)] <= 1 for r in cfg.runs)


def test_s2_runs_a_registered_cell(tmp_path, monkeypatch):
    """A reader's cell (tests/user_cells.py), built without biases as the experiment's cells are, beside a built-in
    one; the gradient table leaves out the multi+SGD vs plain+Adam comparison when those runs are not in the config."""
    import user_cells  # noqa: F401  (registers test_mgu)

    monkeypatch.setenv("LEARNABILITY_CACHE", str(tmp_path))
    cfg = tiny_s2(runs=(("test_mgu", "sgd", 1e-2), ("plain", "sgd", 1e-2)))
    result = anisotropy_s2.run(cfg)
    assert result.jac_ai["adding", "test_mgu+sgd"].shape == (1, 2)
    key = "adding", "test_mgu+sgd"
    assert np.all(np.isfinite(result.jac_ce[key])) and np.all(result.grad_ce[key] > 0)
    rows = anisotropy_s2.gradient_table(result)
    assert set(rows[0]) == {"task", "test_mgu+sgd", "test_mgu+sgd IQR", "plain+sgd", "plain+sgd IQR"}


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: anisotropy.anisotropy(torch.ones(5), k=6), r"k must be an integer in \[1, 5\]"),
        (lambda: anisotropy.anisotropy(torch.ones(5), k=3, top=2), "top must lie"),
        (lambda: anisotropy.gradient_covariance_stats(torch.ones(5, 3)), "M >= k"),
        (lambda: anisotropy_s2.Config(hidden=8), "hidden must be >= 16"),
        (lambda: anisotropy_s2.Config(tasks=("nope",)), "unknown tasks"),
        (lambda: anisotropy_s2.Config(runs=(("nope", "sgd", 1e-2),)), "unknown cell kind 'nope'; allowed"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
