"""Fixed memory-one strategies: their θ, their actions, and spec §2.1's 100-step env rollouts.

The rollouts play `deterministic_memory_one_action`; `test_deterministic_strategies_ignore_the_key`
shows that it equals `memory_one_action` for these strategies.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs.matrix_game import MatrixGame
from marl.envs.strategies import (
    STRATEGIES,
    deterministic_memory_one_action,
    memory_one_action,
    strategy_theta,
)

# Spec §2.1: θ = P(action 0) over [CC, CD, DC, DD, START].
SPEC_THETAS = {
    "tft": [1, 0, 1, 0, 1],
    "alld": [0, 0, 0, 0, 0],
    "allc": [1, 1, 1, 1, 1],
    "wsls": [1, 0, 0, 1, 1],
    "random": [0.5, 0.5, 0.5, 0.5, 0.5],
}
# Spec §2.1: undiscounted 100-step totals (agent 0, agent 1) of deterministic pairs. ALLC-ALLC and
# WSLS-WSLS cooperate throughout like TFT-TFT (same row of the exact-value table).
PAIRS = [
    ("tft", "tft"),
    ("allc", "allc"),
    ("wsls", "wsls"),
    ("alld", "alld"),
    ("alld", "tft"),
    ("allc", "alld"),
    ("wsls", "alld"),
]
SPEC_TOTALS = {
    "ipd": [
        (-100, -100),
        (-100, -100),
        (-100, -100),
        (-200, -200),
        (-198, -201),
        (-300, 0),
        (-250, -100),
    ],
    "ipd_axelrod": [(300, 300), (300, 300), (300, 300), (100, 100), (104, 99), (0, 500), (50, 300)],
}
# Spec §2.1: Σ_{t<100} 0.96^t r_t for `ipd`.
SPEC_DISCOUNTED_IPD = {
    ("tft", "tft"): (-24.578242, -24.578242),
    ("alld", "alld"): (-49.156484, -49.156484),
    ("alld", "tft"): (-47.156484, -50.156484),
}
ENVS = {game: MatrixGame(game=game, max_steps=100) for game in SPEC_TOTALS}


def _play(env, thetas):
    """Rewards float32 `[T, 2]` of a deterministic θ pair `[2, 5]` playing `env` for an episode."""
    obs, state = env.reset(jax.random.key(0))
    play = jax.vmap(deterministic_memory_one_action)

    def body(carry, step_key):
        obs, state = carry
        obs, state, reward, _, _ = env.step(step_key, state, play(thetas, obs))
        return (obs, state), reward

    step_keys = jax.random.split(jax.random.key(1), env.max_steps)
    return jax.lax.scan(body, (obs, state), step_keys)[1]


@jax.jit
def play_pairs(thetas):
    """Per game: rewards `[P, 100, 2]` of deterministic θ pairs `[P, 2, 5]`."""
    return {game: jax.vmap(lambda t, env=env: _play(env, t))(thetas) for game, env in ENVS.items()}


@jax.jit
def sample_actions(thetas, keys):
    """Actions int32 `[S, 5, K]` of θ `[S, 5]` at each observation index, for each key `[K]`."""
    eye = jnp.eye(5)
    per_key = jax.vmap(memory_one_action, in_axes=(None, 0, None))
    per_obs = jax.vmap(per_key, in_axes=(None, None, 0))
    return jax.vmap(per_obs, in_axes=(0, None, None))(thetas, keys, eye)


@pytest.fixture(scope="module")
def pair_rewards():
    thetas = np.stack([[strategy_theta(a), strategy_theta(b)] for a, b in PAIRS])
    return jax.device_get(play_pairs(thetas))


def test_thetas_match_the_spec():
    assert set(STRATEGIES) == set(SPEC_THETAS)
    for name, theta in SPEC_THETAS.items():
        assert strategy_theta(name).shape == (5,)
        np.testing.assert_array_equal(strategy_theta(name), theta)


def test_unknown_strategy_raises_value_error_listing_the_names():
    with pytest.raises(ValueError, match="strategy") as error:
        strategy_theta("grim")
    assert all(name in str(error.value) for name in STRATEGIES)


def test_deterministic_strategies_ignore_the_key():
    thetas = np.stack([strategy_theta(name) for name in ("allc", "alld", "tft", "wsls")])
    actions = np.asarray(sample_actions(thetas, jax.random.split(jax.random.key(1), 64)))
    expected = np.where(thetas == 1, 0, 1)
    np.testing.assert_array_equal(actions, np.broadcast_to(expected[..., None], actions.shape))
    deterministic = jax.vmap(jax.vmap(deterministic_memory_one_action, (None, 0)), (0, None))
    np.testing.assert_array_equal(deterministic(thetas, jnp.eye(5)), expected)
    assert actions.dtype == np.int32


def test_stochastic_strategy_cooperates_with_probability_theta():
    thetas = np.stack([strategy_theta("random"), [0.9, 0.1, 0.3, 0.7, 0.25]]).astype(np.float32)
    num_keys = 20_000
    actions = np.asarray(sample_actions(thetas, jax.random.split(jax.random.key(2), num_keys)))
    cooperation_rate = (actions == 0).mean(-1)
    standard_error = np.sqrt(thetas * (1 - thetas) / num_keys)
    assert np.all(np.abs(cooperation_rate - thetas) < 3 * standard_error)


@pytest.mark.parametrize("game", sorted(SPEC_TOTALS))
def test_deterministic_pairs_give_the_spec_totals_over_100_steps(game, pair_rewards):
    rewards = pair_rewards[game]
    assert rewards.shape == (len(PAIRS), 100, 2)
    totals = rewards.astype(np.float64).sum(1)
    np.testing.assert_array_equal(totals, np.array(SPEC_TOTALS[game], float))


def test_discounted_ipd_sums_match_the_spec(pair_rewards):
    discounts = 0.96 ** np.arange(100)
    for pair, expected in SPEC_DISCOUNTED_IPD.items():
        rewards = pair_rewards["ipd"][PAIRS.index(pair)].astype(np.float64)
        np.testing.assert_allclose(discounts @ rewards, expected, atol=1e-6)
