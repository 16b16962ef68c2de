"""AutoReset under vmap: resetting only on steps where some env of the batch is done must give
exactly the per-env results, also when the envs of a batch are at different steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.matrix_game import MatrixGame
from marl.envs.wrappers import FINAL_OBS, AutoReset, EpisodeStatistics, any_in_batch

STEPS = 7


def test_any_in_batch_reduces_over_every_vmap_axis():
    flags = jnp.zeros((2, 3), bool)
    nested = jax.vmap(jax.vmap(any_in_batch))
    np.testing.assert_array_equal(nested(flags), False)
    np.testing.assert_array_equal(nested(flags.at[1, 2].set(True)), True)
    assert bool(any_in_batch(jnp.array([False, True])))


def test_batched_auto_reset_equals_each_env_stepped_alone():
    env = AutoReset(MatrixGame(game="ipd", max_steps=3))
    keys = jax.random.split(jax.random.key(0), 4)
    _, state = jax.vmap(env.reset)(keys)
    # put the envs out of step: env k has already taken k steps (one is done every step)
    for k in range(1, 4):
        stepped = env.step(keys[k], jax.tree.map(lambda x, k=k: x[k], state), jnp.zeros(2, int))[1]
        for _ in range(k - 1):
            stepped = env.step(keys[k], stepped, jnp.zeros(2, int))[1]
        state = jax.tree.map(lambda x, s, k=k: x.at[k].set(s), state, stepped)
    actions = jax.random.randint(jax.random.key(1), (STEPS, 4, 2), 0, 2)
    step_keys = jax.random.split(jax.random.key(2), (STEPS, 4))

    def play(step, state):
        def one(state, inputs):
            obs, state, reward, done, _ = step(inputs[0], state, inputs[1])
            return state, (obs, reward, done)

        return jax.lax.scan(one, state, (step_keys, actions))[1]

    batched = jax.jit(lambda s: play(jax.vmap(env.step), s))(state)
    seeds = jax.tree.map(lambda x: jnp.stack([x, x]), state)  # a seeds axis around the envs axis
    nested = jax.jit(jax.vmap(lambda s: play(jax.vmap(env.step), s)))(seeds)
    for k in range(4):
        alone = jax.tree.map(lambda x, k=k: x[:, k], (step_keys, actions))
        one_env = jax.tree.map(lambda x, k=k: x[k], state)

        def one(state, inputs):
            obs, state, reward, done, _ = env.step(inputs[0], state, inputs[1])
            return state, (obs, reward, done)

        expected = jax.lax.scan(one, one_env, alone)[1]
        for got, want in zip(batched, expected, strict=True):
            np.testing.assert_array_equal(got[:, k], want)
        for got, want in zip(nested, expected, strict=True):
            np.testing.assert_array_equal(got[1, :, k], want)
    assert np.asarray(batched[2]).any() and not np.asarray(batched[2]).all()


def play_three_steps(env):
    """Reset, then the joint actions (C, D), (D, D), (D, C) of a 3-step IPD episode: the infos
    and the observations each step returns."""
    _, state = env.reset(jax.random.key(0))
    infos, observations = [], []
    for actions in ([0, 1], [1, 1], [1, 0]):
        obs, state, _, done, info = env.step(jax.random.key(1), state, jnp.array(actions))
        infos.append(info)
        observations.append(obs)
    assert bool(done)
    return infos, observations


SHORT_IPD = MatrixGame(game="ipd", max_steps=3)


def test_auto_reset_keeps_the_final_observation_when_asked():
    table = SHORT_IPD.observation_table  # [outcome, agent, A² + 1]
    infos, observations = play_three_steps(AutoReset(SHORT_IPD, keep_final_obs=True))
    for info, obs in zip(infos[:2], observations[:2], strict=True):  # no reset: the same
        np.testing.assert_array_equal(info[FINAL_OBS], obs)
    np.testing.assert_array_equal(infos[1][FINAL_OBS], table[3])  # DD from both sides
    # the done step: the returned observation is the new episode's START, the final one is DC
    np.testing.assert_array_equal(observations[2], table[SHORT_IPD.start_index])
    np.testing.assert_array_equal(infos[2][FINAL_OBS], table[2])
    np.testing.assert_array_equal(infos[2][FINAL_OBS][0], np.eye(5)[2])  # agent 0 sees DC
    np.testing.assert_array_equal(infos[2][FINAL_OBS][1], np.eye(5)[1])  # agent 1 sees CD


def test_auto_reset_has_no_final_observation_by_default():
    infos, _ = play_three_steps(AutoReset(SHORT_IPD))
    assert all(set(info) == {"joint_action", "cooperated"} for info in infos)


def test_episode_statistics_do_not_total_the_final_observation():
    infos, _ = play_three_steps(EpisodeStatistics(AutoReset(SHORT_IPD, keep_final_obs=True)))
    final = infos[2]
    assert set(final["episode_totals"]) == {"joint_action", "cooperated"}
    np.testing.assert_array_equal(final["episode_totals"]["cooperated"], [1.0, 1.0])
    np.testing.assert_array_equal(final["episode_totals"]["joint_action"], 1 + 3 + 2)
    np.testing.assert_array_equal(final["episode_length"], 3)
    np.testing.assert_array_equal(final[FINAL_OBS], SHORT_IPD.observation_table[2])
