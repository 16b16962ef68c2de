"""`public_goods`: rewards of every joint action, observations, global state (spec §5)."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs import make
from marl.envs.matrix_game import MatrixGame
from marl.envs.public_goods import PublicGoods
from marl.envs.wrappers import AutoReset


@functools.cache
def all_joint_actions_fn(env):
    """Jitted: every joint action (rows of `product([0, 1], repeat=N)`) played after reset."""
    joint_actions = jnp.array(list(itertools.product([0, 1], repeat=env.num_agents)), jnp.int32)

    def play(actions):
        reset_obs, state = env.reset(jax.random.key(0))
        reset_global_state = env.global_state(state)
        obs, next_state, reward, done, info = env.step(jax.random.key(1), state, actions)
        return {
            "reset_obs": reset_obs,
            "reset_global_state": reset_global_state,
            "obs": obs,
            "reward": reward,
            "done": done,
            "info": info,
            "global_state": env.global_state(next_state),
        }

    return jax.jit(lambda: (joint_actions, jax.vmap(play)(joint_actions)))


@functools.cache
def episodes_fn(env):
    """Jitted: plays `actions` int32 `[T, N]` in `env` from reset; obs before each step."""

    def run(actions):
        obs, state = env.reset(jax.random.key(0))

        def body(carry, step_actions):
            obs, state = carry
            next_obs, state, reward, done, _ = env.step(jax.random.key(1), state, step_actions)
            return (next_obs, state), (obs, reward, done)

        return jax.lax.scan(body, (obs, state), actions)[1]

    return jax.jit(run)


def play_all(env):
    joint_actions, out = all_joint_actions_fn(env)()
    return np.asarray(joint_actions), jax.device_get(out)


@pytest.mark.parametrize("num_agents, multiplier", [(2, 1.5), (3, 2.0), (4, 2.0), (5, 3.5)])
def test_rewards_follow_the_linear_public_goods_formula(num_agents, multiplier):
    env = PublicGoods(num_agents=num_agents, multiplier=multiplier)
    joint_actions, out = play_all(env)
    contributes = joint_actions == 0
    contributors = contributes.sum(1)
    expected = (1 - contributes) + multiplier / num_agents * contributors[:, None]
    assert out["reward"].dtype == np.float32 and out["reward"].shape == (2**num_agents, num_agents)
    np.testing.assert_allclose(out["reward"], expected, rtol=1e-6)
    np.testing.assert_array_equal(out["info"]["contributors"], contributors)
    np.testing.assert_array_equal(out["info"]["cooperated"], contributes)


def test_two_players_make_a_prisoners_dilemma():
    multiplier = 1.5
    _, out = play_all(PublicGoods(num_agents=2, multiplier=multiplier))
    reward, temptation, sucker, punishment = multiplier, 1 + multiplier / 2, multiplier / 2, 1.0
    # rows CC, CD, DC, DD
    expected = [
        [reward, reward],
        [sucker, temptation],
        [temptation, sucker],
        [punishment, punishment],
    ]
    np.testing.assert_allclose(out["reward"], expected, rtol=1e-6)


def test_four_player_hand_computed_cases():
    _, out = play_all(PublicGoods(num_agents=4, multiplier=2.0))
    rows = {
        (0, 0, 0, 0): [2, 2, 2, 2],
        (1, 1, 1, 1): [1, 1, 1, 1],
        (1, 0, 0, 0): [2.5, 1.5, 1.5, 1.5],
        (0, 1, 1, 0): [1, 2, 2, 1],
    }
    for actions, expected in rows.items():
        row = int("".join(map(str, actions)), 2)
        np.testing.assert_allclose(out["reward"][row], expected)


def test_observation_counts_the_other_free_riders():
    env = PublicGoods(num_agents=4)
    joint_actions, out = play_all(env)
    assert env.obs_shape == (9,) and out["obs"].shape == (16, 4, 9)
    row = int("0110", 2)  # agents 1 and 2 free-ride
    np.testing.assert_array_equal(np.argmax(out["obs"][row], -1), [2, 5, 5, 2])
    free_riders = joint_actions.sum(1, keepdims=True)
    expected = joint_actions * 4 + free_riders - joint_actions
    np.testing.assert_array_equal(out["obs"], np.eye(9)[expected])
    np.testing.assert_array_equal(out["reset_obs"], np.broadcast_to(np.eye(9)[8], (16, 4, 9)))


def test_two_player_observation_coincides_with_matrix_game():
    _, public_goods = play_all(PublicGoods(num_agents=2))
    matrix_game = MatrixGame(game="ipd")

    @jax.jit
    def matrix_game_observations(key):
        reset_obs, state = matrix_game.reset(key)
        actions = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], jnp.int32)
        step = jax.vmap(matrix_game.step, in_axes=(None, None, 0))
        return reset_obs, step(key, state, actions)[0]

    matrix_reset, matrix_obs = jax.device_get(matrix_game_observations(jax.random.key(0)))
    np.testing.assert_array_equal(public_goods["obs"], matrix_obs)
    np.testing.assert_array_equal(public_goods["reset_obs"][0], matrix_reset)


def test_global_state_is_previous_actions_and_start_flag():
    joint_actions, out = play_all(PublicGoods(num_agents=3))
    np.testing.assert_array_equal(out["reset_global_state"], np.tile([0, 0, 0, 1.0], (8, 1)))
    expected = np.concatenate([joint_actions, np.zeros((8, 1))], 1)
    np.testing.assert_array_equal(out["global_state"], expected)


def test_start_only_after_reset_and_done_exactly_at_max_steps():
    env = PublicGoods(num_agents=3, max_steps=4)
    actions = np.random.default_rng(0).integers(0, 2, (12, 3), dtype=np.int32)
    obs, _, done = jax.device_get(episodes_fn(AutoReset(env))(actions))
    first_step = np.arange(12) % 4 == 0
    np.testing.assert_array_equal(done, np.arange(12) % 4 == 3)
    np.testing.assert_array_equal(obs[:, :, 6] == 1, np.repeat(first_step[:, None], 3, 1))
    _, _, done = jax.device_get(
        episodes_fn(make("public_goods", max_steps=3))(np.zeros((3, 4), np.int32))
    )
    np.testing.assert_array_equal(done, [False, False, True])


def test_without_last_actions_observation_and_global_state_stay_at_start():
    env = PublicGoods(num_agents=2, observe_last_actions=False)
    _, out = play_all(env)
    np.testing.assert_array_equal(out["obs"], np.broadcast_to(np.eye(5)[4], (4, 2, 5)))
    np.testing.assert_array_equal(out["global_state"], np.tile([0, 0, 1.0], (4, 1)))
    np.testing.assert_allclose(out["reward"][:, 0], [2, 1, 2, 1])


def test_defaults():
    env = make("public_goods")
    assert (env.num_agents, env.multiplier, env.max_steps, env.num_actions) == (4, 2.0, 100, 2)


@pytest.mark.parametrize(
    "params, named",
    [
        ({"num_agents": 1}, "num_agents"),
        ({"num_agents": 3.0}, "num_agents"),
        ({"multiplier": -1.0}, "multiplier"),
        ({"multiplier": float("inf")}, "multiplier"),
        ({"max_steps": 0}, "max_steps"),
        ({"observe_last_actions": 2}, "observe_last_actions"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_them(params, named):
    with pytest.raises(ValueError, match=named):
        PublicGoods(**params)
