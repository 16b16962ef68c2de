"""`FixedOpponent`: agent 1 plays a fixed strategy from its own view; agent 0 is the learner."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs import make
from marl.envs.matrix_game import MatrixGame, payoff_tensor
from marl.envs.opponent import FixedOpponent
from marl.envs.strategies import STRATEGIES, deterministic_memory_one_action, strategy_theta
from marl.envs.wrappers import AutoReset, EpisodeStatistics

# Spec §2.1: 100-step totals (learner, opponent) of deterministic pairs.
SPEC_TOTALS = {
    "ipd": {
        ("tft", "tft"): (-100, -100),
        ("alld", "alld"): (-200, -200),
        ("alld", "tft"): (-198, -201),
        ("allc", "alld"): (-300, 0),
        ("wsls", "alld"): (-250, -100),
    },
    "ipd_axelrod": {
        ("tft", "tft"): (300, 300),
        ("alld", "alld"): (100, 100),
        ("alld", "tft"): (104, 99),
        ("allc", "alld"): (0, 500),
        ("wsls", "alld"): (50, 300),
    },
}


@functools.cache
def strategy_rollout_fn(env):
    """Jitted: rewards `[T, 1]` and info of a deterministic learner θ `[5]` for `num_steps`."""

    def run(theta, key, num_steps):
        obs, state = env.reset(key)

        def body(carry, key):
            obs, state = carry
            action = deterministic_memory_one_action(theta, obs[0])[None]
            obs, state, reward, done, info = env.step(key, state, action)
            return (obs, state), (reward, done, info)

        return jax.lax.scan(body, (obs, state), jax.random.split(key, num_steps))[1]

    return jax.jit(run, static_argnums=2)


@functools.cache
def action_rollout_fn(env):
    """Jitted: plays the learner's `actions` int32 `[T]`; returns obs, reward and info per step."""

    def run(actions, key):
        obs, state = env.reset(key)

        def body(carry, step_inputs):
            obs, state = carry
            step_key, action = step_inputs
            next_obs, state, reward, done, info = env.step(step_key, state, action[None])
            return (next_obs, state), (obs, reward, done, info)

        step_keys = jax.random.split(key, actions.shape[0])
        return jax.lax.scan(body, (obs, state), (step_keys, actions))[1]

    return jax.jit(run)


def learner_actions(num_steps: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, num_steps, dtype=np.int32)


def test_the_learner_sees_a_one_agent_env():
    env = FixedOpponent(MatrixGame(game="ipd"), "tft")
    assert (env.num_agents, env.num_actions, env.obs_shape, env.max_steps) == (1, 2, (5,), 100)
    assert env.unwrapped == MatrixGame(game="ipd")

    @jax.jit
    def first_step(key):
        reset_obs, state = env.reset(key)
        step = env.step(key, state, jnp.array([1], jnp.int32))
        return reset_obs, step, env.global_state(step[1])

    reset_obs, (obs, _, reward, done, info), global_state = jax.device_get(
        first_step(jax.random.key(0))
    )
    assert reset_obs.shape == (1, 5) and reset_obs[0, 4] == 1
    assert obs.shape == (1, 5) and reward.shape == (1,) and done.shape == ()
    assert info["cooperated"].shape == (1,) and info["joint_action"].shape == ()
    assert info["opponent_reward"].shape == (1,) and info["opponent_action"].shape == (1,)
    # learner D, TFT opens with C: agent 0 sees DC, reward (0, -3)
    assert np.argmax(obs[0]) == 2 and info["joint_action"] == 2
    np.testing.assert_array_equal(reward, [0.0])
    np.testing.assert_array_equal(info["opponent_reward"], [-3.0])
    np.testing.assert_array_equal(info["opponent_action"], [0])
    np.testing.assert_array_equal(info["cooperated"], [False])
    np.testing.assert_array_equal(global_state, obs[0])


@pytest.mark.parametrize("game", sorted(SPEC_TOTALS))
@pytest.mark.parametrize("opponent", ["tft", "alld"])
def test_learner_strategies_against_a_fixed_opponent_give_the_spec_totals(game, opponent):
    env = FixedOpponent(MatrixGame(game=game), opponent)
    pairs = {pair: totals for pair, totals in SPEC_TOTALS[game].items() if pair[1] == opponent}
    rollout = strategy_rollout_fn(env)
    for (learner, _), (learner_total, opponent_total) in pairs.items():
        reward, done, info = jax.device_get(
            rollout(strategy_theta(learner), jax.random.key(0), 100)
        )
        assert reward.sum() == learner_total
        assert info["opponent_reward"].sum() == opponent_total
        assert done[-1] and not done[:-1].any()


@pytest.mark.parametrize("opponent", ["tft", "wsls", "allc", "alld"])
def test_opponent_plays_its_strategy_from_its_own_side(opponent):
    env = FixedOpponent(MatrixGame(game="ipd"), opponent)
    actions = learner_actions(60)
    obs, reward, _, info = jax.device_get(action_rollout_fn(env)(actions, jax.random.key(0)))
    opponent_actions = info["opponent_action"][:, 0]
    previous_learner = np.concatenate([[-1], actions[:-1]])
    previous_opponent = np.concatenate([[-1], opponent_actions[:-1]])
    if opponent == "tft":  # copies the learner's previous action, opens with C
        expected = np.where(previous_learner < 0, 0, previous_learner)
    elif opponent == "wsls":  # cooperates after matching actions, opens with C
        expected = np.where((previous_learner < 0) | (previous_learner == previous_opponent), 0, 1)
    else:
        expected = np.full(60, 0 if opponent == "allc" else 1)
    np.testing.assert_array_equal(opponent_actions, expected)
    payoff = payoff_tensor("ipd")
    np.testing.assert_array_equal(reward[:, 0], payoff[actions, opponent_actions, 0])
    np.testing.assert_array_equal(
        info["opponent_reward"][:, 0], payoff[actions, opponent_actions, 1]
    )
    np.testing.assert_array_equal(info["joint_action"], 2 * actions + opponent_actions)
    np.testing.assert_array_equal(info["cooperated"][:, 0], actions == 0)
    seen = np.argmax(obs[1:, 0], -1)
    np.testing.assert_array_equal(seen, 2 * actions[:-1] + opponent_actions[:-1])


def test_random_opponent_draws_from_the_step_key():
    env = FixedOpponent(MatrixGame(game="ipd", max_steps=1000), "random")
    actions = learner_actions(1000)
    rollout = action_rollout_fn(env)
    opponent_actions = np.asarray(rollout(actions, jax.random.key(0))[3]["opponent_action"][:, 0])
    again = np.asarray(rollout(actions, jax.random.key(0))[3]["opponent_action"][:, 0])
    other_key = np.asarray(rollout(actions, jax.random.key(1))[3]["opponent_action"][:, 0])
    np.testing.assert_array_equal(opponent_actions, again)
    assert np.any(opponent_actions != other_key)
    assert abs((opponent_actions == 0).mean() - 0.5) < 3 * np.sqrt(0.25 / 1000)


def test_auto_reset_and_episode_statistics_stack_on_top():
    env = EpisodeStatistics(AutoReset(FixedOpponent(MatrixGame(game="ipd", max_steps=10), "tft")))
    _, done, info = jax.device_get(
        strategy_rollout_fn(env)(strategy_theta("alld"), jax.random.key(0), 35)
    )
    np.testing.assert_array_equal(np.nonzero(done)[0], [9, 19, 29])
    # ALLD vs TFT over 10 steps: DC then DD -> learner 0 - 2*9, opponent -3 - 2*9
    np.testing.assert_array_equal(info["episode_return"][done], np.full((3, 1), -18.0))
    np.testing.assert_array_equal(
        info["episode_totals"]["opponent_reward"][done], np.full((3, 1), -21.0)
    )
    np.testing.assert_array_equal(info["episode_length"][done], [10, 10, 10])


def test_works_on_two_player_public_goods():
    env = FixedOpponent(make("public_goods", num_agents=2, multiplier=1.5), "tft")
    reward, _, info = jax.device_get(
        strategy_rollout_fn(env)(strategy_theta("alld"), jax.random.key(0), 3)
    )
    # (R, S, T, P) = (r, r/2, 1 + r/2, 1): learner gets T then P, TFT gets S then P
    np.testing.assert_allclose(reward[:, 0], [1.75, 1.0, 1.0])
    np.testing.assert_allclose(info["opponent_reward"][:, 0], [0.75, 1.0, 1.0])
    np.testing.assert_array_equal(info["contributors"], [1, 0, 0])


@pytest.mark.parametrize(
    "env, strategy, named",
    [
        (MatrixGame(game="ipd"), "grim", "strategy"),
        (MatrixGame(game="climbing"), "tft", "actions"),
        (make("noisy_coordination", num_agents=3), "tft", "agents"),
        (make("noisy_coordination", num_agents=2), "tft", "observation"),
        (make("public_goods", num_agents=3), "tft", "agents"),
    ],
)
def test_invalid_construction_raises_value_error_naming_the_problem(env, strategy, named):
    with pytest.raises(ValueError, match=named) as error:
        FixedOpponent(env, strategy)
    if named == "strategy":
        assert all(name in str(error.value) for name in STRATEGIES)
