"""Exact values of memory-one pairs: spec §2.1's table, best responses, Monte Carlo agreement."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs.matrix_game import MatrixGame, payoff_tensor
from marl.envs.strategies import memory_one_action, strategy_theta
from marl.eval.memory_one import exact_values

# Spec §2.1: (pair) -> {(game, γ): (V0, V1)}.
SPEC_VALUES = {
    ("tft", "tft"): {
        ("ipd", 0.96): (-1, -1),
        ("ipd", 0.99): (-1, -1),
        ("ipd_axelrod", 0.96): (3, 3),
        ("ipd_axelrod", 0.99): (3, 3),
    },
    ("alld", "alld"): {
        ("ipd", 0.96): (-2, -2),
        ("ipd", 0.99): (-2, -2),
        ("ipd_axelrod", 0.96): (1, 1),
        ("ipd_axelrod", 0.99): (1, 1),
    },
    ("alld", "tft"): {
        ("ipd", 0.96): (-1.92, -2.04),
        ("ipd", 0.99): (-1.98, -2.01),
        ("ipd_axelrod", 0.96): (1.16, 0.96),
        ("ipd_axelrod", 0.99): (1.04, 0.99),
    },
    ("allc", "alld"): {
        ("ipd", 0.96): (-3, 0),
        ("ipd", 0.99): (-3, 0),
        ("ipd_axelrod", 0.96): (0, 5),
        ("ipd_axelrod", 0.99): (0, 5),
    },
    ("wsls", "alld"): {
        ("ipd", 0.96): (-2.510204, -0.979592),
        ("ipd", 0.99): (-2.502513, -0.994975),
        ("ipd_axelrod", 0.96): (0.489796, 3.040816),
        ("ipd_axelrod", 0.99): (0.497487, 3.010050),
    },
}
# The table's first row holds for ALLC-ALLC and WSLS-WSLS too.
SPEC_VALUES[("allc", "allc")] = SPEC_VALUES[("tft", "tft")]
SPEC_VALUES[("wsls", "wsls")] = SPEC_VALUES[("tft", "tft")]

MONTE_CARLO_GAMMA = 0.96
MONTE_CARLO_STEPS = 300  # 0.96^300 < 1e-5: the truncated tail is far below the standard error
MONTE_CARLO_EPISODES = 2048
MONTE_CARLO_ENV = MatrixGame(game="ipd_axelrod", max_steps=MONTE_CARLO_STEPS)


@pytest.mark.parametrize("pair", sorted(SPEC_VALUES))
@pytest.mark.parametrize("game", ["ipd", "ipd_axelrod"])
@pytest.mark.parametrize("gamma", [0.96, 0.99])
def test_exact_values_match_the_spec_table(pair, game, gamma):
    values = exact_values(
        strategy_theta(pair[0]), strategy_theta(pair[1]), payoff_tensor(game), gamma
    )
    assert values.shape == (2,)
    np.testing.assert_allclose(values, SPEC_VALUES[pair][(game, gamma)], rtol=0, atol=1e-6)


def test_swapping_the_players_swaps_the_values():
    theta0, theta1 = np.array([0.9, 0.2, 0.6, 0.1, 0.7]), np.array([0.3, 0.8, 0.5, 0.4, 0.2])
    payoff = payoff_tensor("ipd_axelrod")
    swapped_payoff = payoff.transpose(1, 0, 2)[..., ::-1]
    np.testing.assert_allclose(
        exact_values(theta1, theta0, swapped_payoff, 0.9),
        exact_values(theta0, theta1, payoff, 0.9)[::-1],
        atol=1e-12,
    )


@pytest.mark.parametrize("game", ["ipd", "ipd_axelrod"])
def test_best_responses_to_tft_and_alld(game):
    payoff = payoff_tensor(game)
    deterministic_thetas = np.array(list(itertools.product([0.0, 1.0], repeat=5)))

    def best_value_against(opponent):
        values = [
            exact_values(t, strategy_theta(opponent), payoff, 0.96)[0] for t in deterministic_thetas
        ]
        return max(values)

    mutual_cooperation, mutual_defection = payoff[0, 0, 0], payoff[1, 1, 0]
    against_tft = {
        name: exact_values(strategy_theta(name), strategy_theta("tft"), payoff, 0.96)[0]
        for name in ("allc", "alld")
    }
    assert against_tft["alld"] < against_tft["allc"] == pytest.approx(mutual_cooperation)
    assert best_value_against("tft") == pytest.approx(mutual_cooperation)
    against_alld = {
        name: exact_values(strategy_theta(name), strategy_theta("alld"), payoff, 0.96)[0]
        for name in ("allc", "alld")
    }
    assert against_alld["allc"] < against_alld["alld"] == pytest.approx(mutual_defection)
    assert best_value_against("alld") == pytest.approx(mutual_defection)


@jax.jit
def discounted_returns(thetas, key):
    """Normalised discounted returns `[E, 2]` of E env episodes of a θ pair `[2, 5]`."""
    env = MONTE_CARLO_ENV
    discounts = (1 - MONTE_CARLO_GAMMA) * MONTE_CARLO_GAMMA ** jnp.arange(env.max_steps)
    sample_actions = jax.vmap(memory_one_action)

    def episode(key):
        obs, state = env.reset(key)

        def body(carry, agent_keys):
            obs, state = carry
            actions = sample_actions(thetas, agent_keys, obs)
            obs, state, reward, _, _ = env.step(agent_keys[0], state, actions)
            return (obs, state), reward

        agent_keys = jax.random.split(key, (env.max_steps, 2))
        rewards = jax.lax.scan(body, (obs, state), agent_keys)[1]
        return discounts @ rewards

    return jax.vmap(episode)(jax.random.split(key, MONTE_CARLO_EPISODES))


def test_monte_carlo_returns_agree_with_exact_values_within_3_standard_errors():
    theta0 = np.array([0.9, 0.2, 0.6, 0.1, 0.7], np.float32)
    theta1 = np.array([0.3, 0.8, 0.5, 0.4, 0.2], np.float32)
    returns = np.asarray(discounted_returns(np.stack([theta0, theta1]), jax.random.key(0)))
    returns = returns.astype(np.float64)
    standard_error = returns.std(0, ddof=1) / np.sqrt(MONTE_CARLO_EPISODES)
    exact = exact_values(theta0, theta1, payoff_tensor("ipd_axelrod"), MONTE_CARLO_GAMMA)
    assert np.all(standard_error > 0)
    assert np.all(np.abs(returns.mean(0) - exact) < 3 * standard_error)


@pytest.mark.parametrize(
    "args, named",
    [
        ((np.ones(4), np.ones(5), payoff_tensor("ipd"), 0.9), "theta0"),
        ((np.ones(5), np.full(5, 1.5), payoff_tensor("ipd"), 0.9), "theta1"),
        ((np.ones(5), np.ones(5), payoff_tensor("climbing"), 0.9), "payoff"),
        ((np.ones(5), np.ones(5), payoff_tensor("ipd"), 1.0), "gamma"),
        ((np.ones(5), np.ones(5), payoff_tensor("ipd"), -0.1), "gamma"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(args, named):
    with pytest.raises(ValueError, match=named):
        exact_values(*args)
