"""Torch paths: frequency-domain loss vs the Gramian loss (values and autograd gradients), Euler-Maruyama trials
vs their exact expectation, and SGD on sampled noise vs the population flow."""

import numpy as np
import pytest
import torch

from learnability import linear_dynamics as ld
from learnability.integrate import sampled_noise as sn


def random_net(N=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=N) * 0.5, rng.normal(size=N) * 0.5, rng.normal(size=(N, N)) * 0.3 / np.sqrt(N)


@pytest.mark.parametrize("c,k,w", [(0.3, 1.0, 0.0), (0.3, 1.0, 2.0), ([0.2, 2.0], [1.0, 1.0], [0.0, 0.0])])
def test_frequency_domain_loss_and_autograd_match_the_gramian(c, k, w):
    u, v, W = random_net()
    params = [torch.tensor(x, requires_grad=True) for x in (u, v, W)]
    loss = sn.population_loss_torch(*params, c, k, w)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(ld.population_loss(u, v, W, c, k, w), rel=1e-10)
    for p, g in zip(params, ld.population_gradients(u, v, W, c, k, w)):
        assert p.grad.numpy() == pytest.approx(g, rel=1e-8, abs=1e-11)


def test_near_critical_network_is_still_resolved():
    """An eigenvalue at 0.97 (a peak of width 0.03 at w = 0): the quadrature scale adapts to it."""
    e = np.ones(4) / 2
    u, v, W = 0.5 * e, e, 0.97 * np.outer(e, e)
    assert float(sn.population_loss_torch(u, v, W, 0.5)) == pytest.approx(ld.population_loss(u, v, W, 0.5), rel=1e-9)


def test_sampled_loss_mean_and_its_dt_limit():
    u, v, W = random_net(seed=1)
    gen = torch.Generator().manual_seed(0)
    vals = np.array(
        [
            float(sn.sampled_loss(u, v, W, 0.5, batch=256, steps=300, burn_in=200, dt=0.05, generator=gen))
            for _ in range(30)
        ]
    )
    expected = sn.expected_sampled_loss(u, v, W, 0.5, steps=300, burn_in=200, dt=0.05)
    assert abs(vals.mean() - expected) < 4 * vals.std(ddof=1) / np.sqrt(len(vals))
    gaps = [
        sn.expected_sampled_loss(u, v, W, 0.5, steps=int(40 / dt), burn_in=int(30 / dt), dt=dt)
        - ld.population_loss(u, v, W, 0.5)
        for dt in (0.1, 0.05, 0.025)
    ]
    assert gaps[0] / gaps[1] == pytest.approx(2, rel=0.05) and gaps[1] / gaps[2] == pytest.approx(2, rel=0.05)


def test_bptt_descent_tracks_population_descent():
    u0, v0, W0 = ld.init_network(8, 0.1, 0.3, seed=0)
    lr, steps = 0.05, 120
    pop = ld.gradient_descent(u0, v0, W0, 0.5, lr=lr, steps=steps, record_every=40)
    sgd = sn.bptt_descent(
        u0, v0, W0, 0.5, lr=lr, steps=steps, batch=64, dt=0.05, trial=14.0, burn_in=8.0, record_every=40, seed=0
    )
    assert sgd["loss"][-1] < 0.2 * sgd["loss"][0]
    assert np.abs(sgd["loss"] - pop["loss"]).max() < 0.1 * pop["loss"][0]


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: sn.population_loss_torch(np.ones(2), np.ones(3), np.zeros((2, 2)), 0.5), "need u, v of shape"),
        (lambda: sn.population_loss_torch(np.ones(2), np.ones(2), 1.2 * np.eye(2), 0.5), "unstable network"),
        (
            lambda: sn.sampled_loss(
                np.ones(2),
                np.ones(2),
                np.zeros((2, 2)),
                0.5,
                batch=2,
                steps=10,
                burn_in=10,
                dt=0.1,
                generator=torch.Generator(),
            ),
            "burn_in < steps",
        ),
        (
            lambda: sn.simulate(
                np.ones(2), np.ones(2), np.zeros((2, 2)), 0.5, batch=2, steps=10, dt=2.0, generator=torch.Generator()
            ),
            "dt <= 0.5",
        ),
        (lambda: sn.bptt_descent(np.ones(2), np.ones(2), np.zeros((2, 2)), 0.5, lr=-1.0, steps=1), "lr > 0"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
