"""Almgren–Chriss trajectories pinned on the paper's example (Almgren & Chriss 2000, section 3).

Parameters of the paper's example: X = 10^6 shares, T = 5 days, N = 5 (tau = 1 day),
sigma = 0.95 ($/share/day^1/2), eta = 2.5e-6, gamma = 2.5e-7, epsilon = 0.0625.
"""

import math
import random

import pytest

from engine.errors import ConfigError
from engine.execution.almgren_chriss import (
    ImpactModel,
    closed_form_trajectory,
    expected_cost,
    kappa,
    optimal_trajectory,
    variance,
)

PAPER = ImpactModel(sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625)
X, T, N = 1e6, 5.0, 5


def test_lambda_zero_is_twap():
    """lambda = 0: kappa~^2 = 0, so cosh(kappa tau) = 1, kappa = 0 and x_j = (1 - j/N) X:
    10^6, 8e5, 6e5, 4e5, 2e5, 0 (the straight line, TWAP)."""
    assert kappa(PAPER, 0.0, 1.0) == 0.0
    expected = [1e6, 8e5, 6e5, 4e5, 2e5, 0.0]
    assert closed_form_trajectory(X, T, N, PAPER, 0.0) == pytest.approx(expected, abs=1e-6)
    assert optimal_trajectory(X, T, N, PAPER, 0.0) == pytest.approx(expected, abs=1e-3)


def test_lambda_1e_6_by_hand():
    """lambda = 1e-6, by hand from the paper's formulas:

    eta~ = eta - gamma tau / 2 = 2.5e-6 - 2.5e-7 * 1 / 2 = 2.375e-6
    kappa~^2 = lambda sigma^2 / eta~ = 1e-6 * 0.9025 / 2.375e-6 = 0.38
    2/tau^2 (cosh(kappa tau) - 1) = 0.38  ->  cosh(kappa) = 1.19
    kappa = arccosh(1.19) = ln(1.19 + sqrt(1.19^2 - 1)) = ln(1.19 + 0.6450581) = ln(1.8350581)
          = 0.6070762 per day
    sinh(kappa T) = sinh(3.0353808) = (20.80827 - 0.0480578) / 2 = 10.380106
    x_1 = sinh(4 kappa) / sinh(5 kappa) X = sinh(2.4283046) / 10.380106 X = 5.625587 / 10.380106 X = 541955.6
    x_2 = sinh(1.8212285) / 10.380106 X = 3.008716 / 10.380106 X = 289854.2
    x_3 = sinh(1.2141523) / 10.380106 X = 1.535211 / 10.380106 X = 147897.5
    x_4 = sinh(0.6070762) / 10.380106 X = 0.6450347 / 10.380106 X = 62141.8
    x_5 = 0
    """
    assert kappa(PAPER, 1e-6, 1.0) == pytest.approx(math.log(1.19 + math.sqrt(1.19**2 - 1)), rel=1e-12)
    assert kappa(PAPER, 1e-6, 1.0) == pytest.approx(0.6070762, rel=1e-6)
    hand = [1e6, 541955.6, 289854.2, 147897.5, 62141.8, 0.0]
    closed = closed_form_trajectory(X, T, N, PAPER, 1e-6)
    assert closed == pytest.approx(hand, rel=1e-6, abs=1e-6)
    # the numerical optimiser, given the same linear impact, finds the closed form
    assert optimal_trajectory(X, T, N, PAPER, 1e-6) == pytest.approx(closed, rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("lam", [0.0, 2e-7, 1e-6, 2e-6, 1e-5])
@pytest.mark.parametrize("periods", [1, 2, 5, 20])
def test_optimiser_matches_closed_form_when_linear(lam, periods):
    closed = closed_form_trajectory(X, T, periods, PAPER, lam)
    numeric = optimal_trajectory(X, T, periods, PAPER, lam)
    assert numeric == pytest.approx(closed, rel=1e-8, abs=1e-4)


def test_square_root_impact_is_a_minimum_and_front_loads():
    """beta = 0.5: no closed form; the result beats every nearby feasible trajectory and,
    with risk aversion, sells faster than TWAP."""
    model = ImpactModel(sigma=0.95, eta=2.5e-6 * 1000**0.5, gamma=2.5e-8, epsilon=0.0625, beta=0.5)
    x = optimal_trajectory(X, T, N, model, 1e-6)
    assert x[0] == X and x[-1] == 0
    assert all(a > b for a, b in zip(x, x[1:], strict=False))
    assert x[1] < 8e5  # front-loaded against TWAP's 8e5

    def objective(h):
        return expected_cost(h, T, model) + 1e-6 * variance(h, T, model)

    best = objective(x)
    rng = random.Random(5)
    for _ in range(500):
        trial = [x[0]] + [v + rng.gauss(0, 1000) for v in x[1:-1]] + [0.0]
        assert objective(trial) >= best - 1e-9
    # lambda = 0 with square-root impact: the cost is minimised by equal trades (TWAP)
    assert optimal_trajectory(X, T, N, model, 0.0) == pytest.approx([1e6, 8e5, 6e5, 4e5, 2e5, 0], rel=1e-6)


def test_bad_parameters_name_the_field():
    with pytest.raises(ConfigError, match="eta"):
        ImpactModel(sigma=1.0, eta=0.0)
    with pytest.raises(ConfigError, match="eta - gamma"):
        kappa(ImpactModel(sigma=1.0, eta=1e-7, gamma=1.0), 1e-6, 1.0)
    with pytest.raises(ConfigError, match="periods"):
        closed_form_trajectory(X, T, 0, PAPER, 0.0)


def test_realised_volatility_of_the_running_algorithm():
    """Mids sampled every second: 100, 101, 99, 102 -> changes 1, -2, 3 (mean 2/3); sample
    variance ((1/3)^2 + (8/3)^2 + (7/3)^2) / 2 = 114/18 = 6.3333 per 1 s, sigma = 2.5166 per
    sqrt(s). Fewer changes than min_samples: the prior sigma."""
    from engine.execution import AlmgrenChriss

    algo = AlmgrenChriss("binance:BTC/USDT", "buy", "1", sigma=7.0, sample_ms=1000, min_samples=3)
    algo._mids = [100.0, 101.0, 99.0, 102.0]
    assert algo.realised_sigma() == pytest.approx(math.sqrt(114 / 18), rel=1e-12)
    algo.min_samples = 4
    assert algo.realised_sigma() == 7.0
    # sampled every 250 ms the same changes mean 4x the variance per second
    algo = AlmgrenChriss("binance:BTC/USDT", "buy", "1", sample_ms=250, min_samples=3)
    algo._mids = [100.0, 101.0, 99.0, 102.0]
    assert algo.realised_sigma() == pytest.approx(math.sqrt(4 * 114 / 18), rel=1e-12)
