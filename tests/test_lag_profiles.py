"""lag_profiles: the exact-norm variants through transport.lag_medians against the plain per-product computation."""

import dataclasses

import numpy as np
import pytest
import torch

from learnability import errata, tasks, training, transport
from learnability.cells import make_cell
from learnability.effective_lr import gate_product_profile
from learnability.experiments import lag_profiles
from learnability.gates.timescales import retention_trajectory
from learnability.training import torch_threads


def reference_diagnostics(cell, xs, config, seed):
    """_diagnostics as written before lag_medians: every product's exact norm (spectral_norm), then the medians."""
    retention = retention_trajectory(cell, xs)
    with torch.no_grad():
        J_exact, J_code = transport.jacobians(cell, xs), errata.code_jacobians(cell, xs)
        profiles, update = {}, {}
        for variant in config.variants:
            J = J_code if variant in ("gate_term", "code") else J_exact
            products = (
                errata.reversed_products_by_lag(J, config.max_lag)
                if variant in ("reversed", "code")
                else transport.iter_transport_by_lag(J, config.max_lag)
            )
            norm = transport.spectral_norm
            if variant in ("power5", "code"):
                gen = torch.Generator().manual_seed(seed + 555)
                norm = lambda P, gen=gen: errata.power_iteration_norm(P, 5, gen)  # noqa: E731
            profiles[variant] = transport.lag_profile(products, config.max_lag, norm)
            update[variant] = gate_product_profile(
                1 - retention, config.max_lag, 1 if variant in ("offbyone", "code") else 0
            )
    return profiles, gate_product_profile(retention, config.max_lag), update


@pytest.mark.parametrize("kind", ["scalar", "multi"])
def test_lag_profile_variants_equal_the_per_product_reference(kind):
    config = dataclasses.replace(lag_profiles.Config.book(), T=30, hidden=16, max_lag=25)
    cell = make_cell(kind, 2, 16, dtype=torch.float64, seed=4)
    xs, _, _ = tasks.make_batch("adding", 5, 30, 2, torch.Generator().manual_seed(5), dtype=torch.float64)
    got, expected = lag_profiles._diagnostics(cell, xs, config, 1), reference_diagnostics(cell, xs, config, 1)
    for variant in lag_profiles.VARIANTS:
        assert np.all(np.abs(got[0][variant] - expected[0][variant]) <= 1e-12 * expected[0][variant]), variant
        assert np.array_equal(got[2][variant], expected[2][variant])
    assert np.array_equal(got[1], expected[1])


def test_training_on_one_thread_gives_the_same_weights_and_restores_the_threads():
    threads = torch.get_num_threads()
    runs = []
    for count in (1, 2):
        model = training.build_model("multi", "adding", 2, 8, 3, bias=False)
        with torch_threads(count):
            assert torch.get_num_threads() == count
            runs.append(
                training.train(
                    model, "adding", steps=3, batch=8, T=10, optimizer="sgd", lr=1e-2, seed=3, checkpoints=(3,)
                )[0][3]
            )
        assert torch.get_num_threads() == threads
    assert all(torch.equal(runs[0][name], runs[1][name]) for name in runs[0])
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == threads


def test_a_registered_cell_runs_and_what_it_lacks_is_skipped_with_the_reason():
    """A reader's cells (tests/user_cells.py) beside a built-in one: test_mgu has a retention but no jacobian_terms
    (the code's gate-term variants are skipped), test_blend neither (its predictors are skipped too)."""
    import user_cells  # noqa: F401  (registers test_mgu and test_blend)

    config = dataclasses.replace(
        lag_profiles.Config.book(),
        kinds=("leaky", "test_mgu", "test_blend"),
        T=10,
        hidden=4,
        batch=4,
        steps=2,
        checkpoints=(0, 2),
        probe=3,
        max_lag=4,
        seeds=(1,),
    )
    with pytest.warns(UserWarning) as caught:
        result = lag_profiles.compute(config)
    assert len(caught) == 5 and str(caught[0].message) == (
        "lag_profiles, cell kind 'test_mgu': variant 'gate_term' skipped: cell kind 'test_mgu' defines no "
        "jacobian_terms(x_t, h, code_compat), the retention / candidate / gate split of eq-jac-gated"
    )
    assert result.skipped["leaky"] == {}
    assert set(result.skipped["test_mgu"]) == {"gate_term", "code"}
    assert set(result.skipped["test_blend"]) == {"gate_term", "code", "predictors"}
    assert "defines no retention" in result.skipped["test_blend"]["predictors"]
    for kind in config.kinds:
        ran = [v for v in lag_profiles.VARIANTS if v not in result.skipped[kind]]
        assert {v for k, v in result.profile if k == kind} == set(ran)
        assert all(result.profile[kind, v].shape == (1, 2, 4) and result.profile[kind, v][0, 0, 0] == 1.0 for v in ran)
    assert "test_blend" not in result.retention_pred and result.retention_pred["test_mgu"].shape == (1, 2, 4)
    assert [row["cell"] for row in lag_profiles.summary(result)] == ["leaky", "test_mgu"]
    assert [row["cell"] for row in lag_profiles.summary(result, variant="code")] == ["leaky"]
    with pytest.raises(ValueError, match="unknown cell kind 'test_nope'; allowed"):
        dataclasses.replace(config, kinds=("leaky", "test_nope"))
