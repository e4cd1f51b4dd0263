"""stable: the sampler against scipy, the estimators on samples with known alpha, the mean's scale, validation."""

import math

import numpy as np
import pytest
import sympy as sp
import torch
from scipy import stats

from learnability import stable


@pytest.mark.parametrize("alpha", [1.1, 1.5, 1.9, 2.0])
def test_sampler_matches_scipy_levy_stable(alpha):
    ours = stable.sample_sas(alpha, 20000, scale=0.7, generator=torch.Generator().manual_seed(1)).numpy()
    ref = stats.levy_stable.rvs(alpha, 0.0, scale=0.7, size=20000, random_state=np.random.default_rng(2))
    assert stats.ks_2samp(ours, ref).pvalue > 1e-3


def test_sampler_gaussian_and_cauchy_limits():
    g = torch.Generator().manual_seed(3)
    x = stable.sample_sas(2.0, 400_000, scale=1.5, generator=g)
    assert abs(float(x.var()) / (2 * 1.5**2) - 1) < 0.01  # alpha = 2: variance 2 scale^2
    c = stable.sample_sas(1.0, 400_000, scale=2.0, generator=g).numpy()
    q25, q75 = np.quantile(c, [0.25, 0.75])
    assert abs(q25 + 2.0) < 0.03 and abs(q75 - 2.0) < 0.03  # Cauchy quartiles are -scale, +scale


def test_sampler_is_deterministic_and_float32_works():
    a = stable.sample_sas(1.5, 100, generator=torch.Generator().manual_seed(0))
    b = stable.sample_sas(1.5, 100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert stable.sample_sas(1.5, (3, 4), dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("method", ["ecf", "mcculloch"])
@pytest.mark.parametrize("alpha", [1.1, 1.3, 1.5, 1.7, 1.9])
def test_estimators_recover_alpha_and_scale(method, alpha):
    x = stable.sample_sas(alpha, 200_000, scale=1.3, generator=torch.Generator().manual_seed(int(alpha * 100)))
    alpha_hat, scale_hat = stable.tail_index(x, method)
    assert abs(alpha_hat - alpha) < 0.02
    assert abs(scale_hat / 1.3 - 1) < 0.02


def test_hill_is_close_for_heavy_tails_and_capped_at_two():
    x = stable.sample_sas(1.1, 200_000, generator=torch.Generator().manual_seed(5))
    assert abs(stable.tail_index(x, "hill")[0] - 1.1) < 0.1
    g = stable.sample_sas(2.0, 10_000, generator=torch.Generator().manual_seed(6))
    alpha_hat, scale_hat = stable.tail_index(g, "hill")
    assert alpha_hat <= 2.0 and math.isfinite(scale_hat)


def test_location_is_removed():
    x = stable.sample_sas(1.6, 100_000, generator=torch.Generator().manual_seed(7)) + 5.0
    assert abs(stable.tail_index(x, "ecf")[0] - 1.6) < 0.03


def test_shipped_mcculloch_table_equals_scipy():
    table = stable.mcculloch_table()
    fresh = stable.compute_mcculloch_table(np.array([0.8, 1.5, 1.95]))
    for a, nu, iqr in zip(fresh["alpha"], fresh["nu"], fresh["iqr"]):
        i = int(np.argmin(np.abs(table["alpha"] - a)))
        assert abs(table["nu"][i] - nu) < 1e-6 and abs(table["iqr"][i] - iqr) < 1e-6
    assert np.all(np.diff(table["nu"]) < 0)  # invertible


def test_mean_characteristic_function_symbolically():
    """phi(u / N)^N = exp(-(sigma N^(1/alpha - 1) |u|)^alpha): the mean is SaS with scale sigma N^(-1/kappa)."""
    u, sigma, N, alpha = sp.symbols("u sigma N alpha", positive=True)
    phi = lambda v: sp.exp(-((sigma * v) ** alpha))  # noqa: E731
    lhs = sp.expand_power_base(sp.powsimp(sp.expand_log(sp.log(phi(u / N) ** N), force=True)), force=True)
    rhs = sp.log(phi(sigma * N ** (1 / alpha - 1) * u / sigma))
    assert sp.simplify(sp.expand_power_base(lhs - sp.expand_log(rhs, force=True), force=True)) == 0
    kappa = alpha / (alpha - 1)
    assert sp.simplify((1 / alpha - 1) + 1 / kappa) == 0


def test_mean_scale_by_monte_carlo():
    """Means of N = 100 SaS(1.5) samples: McCulloch scale = 100^(-1/3) within 3%."""
    means = stable.sample_sas(1.5, (20_000, 100), generator=torch.Generator().manual_seed(8)).mean(1)
    alpha_hat, scale_hat = stable.tail_index(means, "mcculloch")
    assert abs(alpha_hat - 1.5) < 0.05 and abs(scale_hat / 100 ** (-1 / 3) - 1) < 0.03
    assert stable.concentration_exponent(1.5) == pytest.approx(3.0)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: stable.sample_sas(0.0, 10), r"alpha \(stability index\) must lie in \(0, 2\]"),
        (lambda: stable.sample_sas(2.5, 10), r"must lie in \(0, 2\]"),
        (lambda: stable.sample_sas(float("nan"), 10), "must lie in"),
        (lambda: stable.sample_sas(1.5, 10, scale=0), "scale must be a positive"),
        (lambda: stable.sample_sas(1.5, -3), "size must be"),
        (lambda: stable.tail_index(np.ones(50), "ecf"), "needs at least 200 samples"),
        (lambda: stable.tail_index(np.r_[np.zeros(300), np.nan], "mcculloch"), "NaN or inf"),
        (lambda: stable.tail_index(np.r_[np.zeros(300), np.inf], "hill"), "NaN or inf"),
        (lambda: stable.tail_index(np.zeros(300), "ecf"), "constant"),
        (lambda: stable.tail_index(np.random.default_rng(0).normal(size=300), "moments"), "unknown method"),
        (lambda: stable.concentration_exponent(1.0), r"must lie in \(1, 2\]"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sampler_never_returns_nan_or_inf_for_alpha_above_one(dtype):
    """v = -pi/2 rounds to a negative cosine and U = 0 gives E = 0: both are guarded."""
    for alpha in (1.05, 1.5, 2.0):
        x = stable.sample_sas(alpha, 4_000_000, generator=torch.Generator().manual_seed(11), dtype=dtype)
        assert bool(torch.isfinite(x).all())
