"""`matrix_game`: every payoff cell, observations from both sides, START, episode length."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs import make
from marl.envs.matrix_game import GAMES, MatrixGame, payoff_tensor
from marl.envs.wrappers import AutoReset

# Spec §2: rows [CC, CD, DC, DD], each [r0, r1].
SPEC_TWO_ACTION = {
    "ipd": [[-1, -1], [-3, 0], [0, -3], [-2, -2]],
    "ipd_axelrod": [[3, 3], [0, 5], [5, 0], [1, 1]],
    "stag_hunt": [[4, 4], [1, 3], [3, 1], [2, 2]],
    "chicken": [[0, 0], [-1, 1], [1, -1], [-2, -2]],
    "matching_pennies": [[1, -1], [-1, 1], [-1, 1], [1, -1]],
    "battle_of_sexes": [[3, 2], [0, 0], [0, 0], [2, 3]],
}
# Spec §3: common payoff rows a0 = 0, 1, 2 (penalty with the default k = -100).
SPEC_COMMON = {
    "climbing": [[11, -30, 0], [-30, 7, 6], [0, 0, 5]],
    "penalty": [[10, 0, -100], [0, 2, 0], [-100, 0, 10]],
    "nonmonotonic": [[8, -12, -12], [-12, 0, 0], [-12, 0, 0]],
}
SPEC_MAX_STEPS = {
    **{g: 100 for g in SPEC_TWO_ACTION},
    "climbing": 25,
    "penalty": 25,
    "nonmonotonic": 1,
}
# Spec §2: pure NE and mixed NE (P(a0 = 0), P(a1 = 0); values).
SPEC_PURE_NE = {
    "ipd": {(1, 1)},
    "ipd_axelrod": {(1, 1)},
    "stag_hunt": {(0, 0), (1, 1)},
    "chicken": {(0, 1), (1, 0)},
    "matching_pennies": set(),
    "battle_of_sexes": {(0, 0), (1, 1)},
    "climbing": {(0, 0), (1, 1)},
    "nonmonotonic": {(0, 0), (1, 1), (1, 2), (2, 1), (2, 2)},
}
SPEC_MIXED_NE = {
    "stag_hunt": (0.5, 0.5, 2.5, 2.5),
    "chicken": (0.5, 0.5, -0.5, -0.5),
    "matching_pennies": (0.5, 0.5, 0.0, 0.0),
    "battle_of_sexes": (0.6, 0.4, 1.2, 1.2),
}


def spec_payoff(game: str) -> np.ndarray:
    if game in SPEC_TWO_ACTION:
        return np.array(SPEC_TWO_ACTION[game], float).reshape(2, 2, 2)
    common = np.array(SPEC_COMMON[game], float)
    return np.stack([common, common], -1)


@functools.cache
def all_outcomes_fn(env: MatrixGame):
    """Jitted: every joint action played from the reset state (leading axis A², a0-major)."""
    num_actions = env.num_actions

    def play(outcome):
        actions = jnp.stack([outcome // num_actions, outcome % num_actions]).astype(jnp.int32)
        reset_obs, state = env.reset(jax.random.key(0))
        obs, next_state, reward, done, info = env.step(jax.random.key(1), state, actions)
        return reset_obs, obs, reward, done, info, env.global_state(next_state), next_state.t

    return jax.jit(lambda: jax.vmap(play)(jnp.arange(num_actions**2)))


@functools.cache
def episodes_fn(env):
    """Jitted: plays `actions` int32 `[T, 2]` in `env` (usually AutoReset-wrapped) from reset."""

    def run(key, actions):
        obs, state = env.reset(key)

        def body(carry, step_inputs):
            obs, state = carry
            step_key, step_actions = step_inputs
            next_obs, state, reward, done, info = env.step(step_key, state, step_actions)
            return (next_obs, state), (obs, reward, done, info)

        step_keys = jax.random.split(key, actions.shape[0])
        return jax.lax.scan(body, (obs, state), (step_keys, actions))[1]

    return jax.jit(run)


def random_actions(num_steps: int, num_actions: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, num_actions, (num_steps, 2), dtype=np.int32)


@pytest.mark.parametrize("game", GAMES)
def test_every_payoff_cell_matches_the_spec(game):
    env = MatrixGame(game=game)
    expected = spec_payoff(game)
    np.testing.assert_array_equal(payoff_tensor(game), expected)
    _, _, reward, _, info, _, _ = all_outcomes_fn(env)()
    assert reward.dtype == jnp.float32
    np.testing.assert_array_equal(reward, expected.reshape(-1, 2))
    num_actions = expected.shape[0]
    outcomes = np.arange(num_actions**2)
    np.testing.assert_array_equal(info["joint_action"], outcomes)
    assert info["joint_action"].dtype == jnp.int32
    cooperated = np.stack([outcomes // num_actions == 0, outcomes % num_actions == 0], -1)
    np.testing.assert_array_equal(info["cooperated"], cooperated)


@pytest.mark.parametrize("game", sorted(SPEC_PURE_NE))
def test_pure_nash_equilibria_match_the_spec(game):
    payoff = payoff_tensor(game)
    equilibria = {
        (a0, a1)
        for a0, a1 in itertools.product(range(payoff.shape[0]), repeat=2)
        if payoff[a0, a1, 0] >= payoff[:, a1, 0].max()
        and payoff[a0, a1, 1] >= payoff[a0, :, 1].max()
    }
    assert equilibria == SPEC_PURE_NE[game]


@pytest.mark.parametrize("game", sorted(SPEC_MIXED_NE))
def test_mixed_nash_equilibrium_matches_the_spec(game):
    p0, p1, value0, value1 = SPEC_MIXED_NE[game]
    payoff = payoff_tensor(game)
    mix0, mix1 = np.array([p0, 1 - p0]), np.array([p1, 1 - p1])
    action_values0 = payoff[:, :, 0] @ mix1
    action_values1 = mix0 @ payoff[:, :, 1]
    np.testing.assert_allclose(action_values0, [value0, value0], atol=1e-12)
    np.testing.assert_allclose(action_values1, [value1, value1], atol=1e-12)


def test_cooperative_optima_match_the_spec():
    assert payoff_tensor("climbing")[:, :, 0].max() == payoff_tensor("climbing")[0, 0, 0] == 11
    penalty = payoff_tensor("penalty", penalty_k=-25.0)[:, :, 0]
    assert set(map(tuple, np.argwhere(penalty == penalty.max()))) == {(0, 0), (2, 2)}
    assert penalty[0, 2] == penalty[2, 0] == -25.0
    nonmonotonic = payoff_tensor("nonmonotonic")[:, :, 0]
    assert set(map(tuple, np.argwhere(nonmonotonic == nonmonotonic.max()))) == {(0, 0)}


def test_penalty_k_sets_the_miscoordination_cost_in_the_env():
    _, _, reward, _, _, _, _ = all_outcomes_fn(MatrixGame(game="penalty", penalty_k=-50.0))()
    expected = np.array([[10, 0, -50], [0, 2, 0], [-50, 0, 10]], float).reshape(-1)
    np.testing.assert_array_equal(reward[:, 0], expected)
    np.testing.assert_array_equal(reward[:, 1], expected)


@pytest.mark.parametrize("game", ["ipd", "stag_hunt", "climbing", "nonmonotonic"])
def test_observation_is_the_previous_joint_action_from_each_side(game):
    env = MatrixGame(game=game)
    num_actions = env.num_actions
    reset_obs, obs, _, _, _, global_state, _ = all_outcomes_fn(env)()
    assert env.obs_shape == (num_actions**2 + 1,)
    assert obs.shape == (num_actions**2, 2, num_actions**2 + 1) and obs.dtype == jnp.float32
    start = np.zeros(num_actions**2 + 1)
    start[-1] = 1
    np.testing.assert_array_equal(reset_obs, np.broadcast_to(start, reset_obs.shape))
    eye = np.eye(num_actions**2 + 1)
    for a0, a1 in itertools.product(range(num_actions), repeat=2):
        outcome_obs = obs[a0 * num_actions + a1]
        np.testing.assert_array_equal(outcome_obs[0], eye[a0 * num_actions + a1])
        np.testing.assert_array_equal(outcome_obs[1], eye[a1 * num_actions + a0])
    np.testing.assert_array_equal(global_state, obs[:, 0])


def test_two_action_observation_order_is_cc_cd_dc_dd_with_agent_one_swapped():
    _, obs, _, _, _, _, _ = all_outcomes_fn(MatrixGame(game="ipd"))()
    # (a0, a1) -> (agent 0 sees, agent 1 sees) in [CC, CD, DC, DD, START]
    expected = {(0, 0): (0, 0), (0, 1): (1, 2), (1, 0): (2, 1), (1, 1): (3, 3)}
    for (a0, a1), (seen0, seen1) in expected.items():
        assert int(jnp.argmax(obs[2 * a0 + a1, 0])) == seen0
        assert int(jnp.argmax(obs[2 * a0 + a1, 1])) == seen1


@pytest.mark.parametrize("game", GAMES)
def test_default_episode_length_matches_the_spec(game):
    assert MatrixGame(game=game).max_steps == SPEC_MAX_STEPS[game]
    assert make("matrix_game", game=game).max_steps == SPEC_MAX_STEPS[game]


@pytest.mark.parametrize("game, max_steps", [("ipd", 6), ("climbing", 4), ("nonmonotonic", None)])
def test_done_exactly_at_max_steps_and_start_only_after_reset(game, max_steps):
    env = MatrixGame(game=game, max_steps=max_steps)
    episode_length = env.max_steps
    num_steps = 3 * episode_length
    actions = random_actions(num_steps, env.num_actions)
    obs, reward, done, _ = jax.device_get(episodes_fn(AutoReset(env))(jax.random.key(3), actions))
    step_in_episode = np.arange(num_steps) % episode_length + 1
    np.testing.assert_array_equal(done, step_in_episode == episode_length)
    start = env.start_index
    is_start = obs[:, :, start] == 1
    first_step = step_in_episode == 1
    np.testing.assert_array_equal(is_start, np.stack([first_step, first_step], -1))
    num_actions = env.num_actions
    previous = actions[:-1]
    later = ~first_step[1:]
    seen0 = np.argmax(obs[1:, 0], -1)
    np.testing.assert_array_equal(
        seen0[later], (previous[:, 0] * num_actions + previous[:, 1])[later]
    )
    np.testing.assert_array_equal(reward, payoff_tensor(game)[actions[:, 0], actions[:, 1]])


def test_step_counter_and_done_without_auto_reset():
    env = MatrixGame(game="ipd", max_steps=5)
    _, _, _, done, _, _, t = all_outcomes_fn(env)()
    np.testing.assert_array_equal(t, np.ones(4))
    assert not np.any(done)
    _, _, done, _ = episodes_fn(env)(jax.random.key(0), random_actions(5, 2))
    np.testing.assert_array_equal(done, [False, False, False, False, True])


def test_without_last_actions_every_observation_is_start():
    env = MatrixGame(game="climbing", observe_last_actions=False)
    _, obs, reward, _, _, global_state, _ = all_outcomes_fn(env)()
    assert np.all(np.asarray(obs)[..., env.start_index] == 1)
    assert np.all(np.asarray(obs).sum(-1) == 1)
    assert np.all(np.asarray(global_state)[..., env.start_index] == 1)
    np.testing.assert_array_equal(reward[:, 0], spec_payoff("climbing")[..., 0].reshape(-1))


def test_explicit_payoff_overrides_game():
    payoff = [[[5, 1], [0, 0]], [[2, 2], [7, -1]]]
    env = make("matrix_game", game="ipd", payoff=payoff, max_steps=3)
    assert env.payoff == (((5.0, 1.0), (0.0, 0.0)), ((2.0, 2.0), (7.0, -1.0)))
    hash(env)
    _, _, reward, _, _, _, _ = all_outcomes_fn(env)()
    np.testing.assert_array_equal(reward, np.array(payoff, float).reshape(-1, 2))
    three_actions = MatrixGame(
        payoff=tuple(tuple((i + j, i - j) for j in range(3)) for i in range(3))
    )
    assert three_actions.num_actions == 3 and three_actions.obs_shape == (10,)
    assert three_actions.max_steps == 100


def test_env_is_hashable_and_equal_by_parameters():
    assert MatrixGame(game="ipd") == MatrixGame(game="ipd", max_steps=100)
    assert hash(MatrixGame(game="ipd")) == hash(MatrixGame(game="ipd", max_steps=100))
    assert MatrixGame(game="ipd") != MatrixGame(game="ipd_axelrod")


def test_reset_and_step_vmap_over_envs():
    env = MatrixGame(game="ipd")
    keys = jax.random.split(jax.random.key(0), 8)
    obs, state = jax.vmap(env.reset)(keys)
    assert obs.shape == (8, 2, 5)
    actions = jnp.tile(jnp.array([[0, 1]], jnp.int32), (8, 1))
    obs, state, reward, done, _ = jax.jit(jax.vmap(env.step))(keys, state, actions)
    assert obs.shape == (8, 2, 5) and reward.shape == (8, 2) and done.shape == (8,)
    np.testing.assert_array_equal(reward, np.tile([[-3.0, 0.0]], (8, 1)))
    np.testing.assert_array_equal(state.t, np.ones(8))


@pytest.mark.parametrize(
    "params, named",
    [
        ({"game": "prisoners"}, "game"),
        ({"penalty_k": 5.0}, "penalty_k"),
        ({"penalty_k": float("nan")}, "penalty_k"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 2.5}, "max_steps"),
        ({"observe_last_actions": "yes"}, "observe_last_actions"),
        ({"payoff": ((1, 2), (3, 4))}, "payoff"),
        ({"payoff": (((1, 2, 3), (1, 2, 3)), ((1, 2, 3), (1, 2, 3)))}, "payoff"),
        ({"payoff": (((1, 2),),)}, "payoff"),
        ({"payoff": (((1, float("inf")), (0, 0)), ((0, 0), (0, 0)))}, "payoff"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_them(params, named):
    with pytest.raises(ValueError, match=named):
        MatrixGame(**params)


def test_unknown_game_error_lists_the_games():
    with pytest.raises(ValueError) as error:
        make("matrix_game", game="prisoners")
    assert all(game in str(error.value) for game in GAMES)
    with pytest.raises(ValueError, match="game"):
        payoff_tensor("prisoners")
