"""The DQN trainer (specs/algos/dqn.md): parameter groups, target copies, schedules, episode ends."""

from __future__ import annotations

import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.algos.dqn import DQN, DQNConfig
from marl.config import ConfigError
from marl.envs import make

TINY = DQNConfig(
    total_timesteps=4 * 8 * 6,
    num_envs=4,
    num_steps=8,
    batch_size=8,
    buffer_steps=16,
    n_step=2,
    learning_starts=4,
    train_every=2,
    target_update_every=6,
    hidden_sizes=(8,),
)


@functools.cache
def trainer(env_name: str = "public_goods", **changes) -> DQN:
    env = make(env_name, **({"num_agents": 6} if env_name == "public_goods" else {}))
    return DQN(env, dataclasses.replace(TINY, **changes))


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize(
    ("changes", "groups"),
    [({}, 1), ({"num_param_groups": 3}, 3), ({"share_params": False}, 6)],
)
def test_parameter_groups_stack_on_a_leading_axis(changes, groups):
    dqn = trainer(**changes)
    state = jax.jit(dqn.init)(jax.random.PRNGKey(0))
    for tree in (state.params["network"], state.target_network):
        assert {leaf.shape[0] for leaf in jax.tree.leaves(tree)} == {groups}
    # Shared networks see a one-hot agent id next to the observation; independent ones do not.
    first_kernel = state.params["network"]["params"]["torso"]["Dense_0"]["kernel"]
    obs_size = int(np.prod(dqn.env.obs_shape))
    assert first_kernel.shape[1] == obs_size + (6 if groups < 6 else 0)
    assert dqn.q_values(state.params, jnp.zeros((5, 6, *dqn.env.obs_shape))).shape == (5, 6, 2)


def test_groups_partition_the_agents_into_equal_random_groups():
    dqn = trainer(num_param_groups=3)
    groups = [np.asarray(dqn.agent_groups(jax.random.PRNGKey(seed))) for seed in range(4)]
    for agent_group in groups:
        np.testing.assert_array_equal(np.bincount(agent_group), [2, 2, 2])
    assert len({g.tobytes() for g in groups}) > 1  # the partition depends on the seed
    np.testing.assert_array_equal(trainer(share_params=False).agent_groups(None), np.arange(6))
    np.testing.assert_array_equal(trainer().agent_groups(None), np.zeros(6))


def test_a_group_learns_only_from_its_own_agents():
    dqn = trainer(num_param_groups=3)
    state = jax.jit(dqn.init)(jax.random.PRNGKey(1))
    state, _ = jax.jit(dqn.update)(state)  # fills the buffer
    learn = jax.jit(dqn._learn)
    key = jax.random.PRNGKey(2)
    network, _, _ = learn(state, state.buffer, key)
    outsiders = np.asarray(state.params["agent_group"]) != 0
    # Adam's first step only sees gradient signs: flip them with very negative rewards.
    noisy_buffer = state.buffer.replace(reward=state.buffer.reward.at[:, :, outsiders].set(-1000.0))
    network_noisy, _, _ = learn(state, noisy_buffer, key)

    def group(tree, k):
        return jax.tree.map(lambda leaf: leaf[k], tree)

    assert leaves_equal(group(network, 0), group(network_noisy, 0))  # bit-identical
    assert not leaves_equal(group(network, 1), group(network_noisy, 1))


def test_target_is_a_hard_copy_at_multiples_of_target_update_every():
    dqn = trainer(num_steps=2)  # one gradient step per update; target copies every 6 steps
    state = jax.jit(dqn.init)(jax.random.PRNGKey(3))
    update = jax.jit(dqn.update)
    last_copy = state.params["network"]
    state, _ = update(state)  # step 2: nothing learned yet, the target still equals the network
    for _ in range(8):  # steps 4 .. 18, a gradient step at each
        state, _ = update(state)
        step = int(state.step)
        copied = leaves_equal(state.target_network, state.params["network"])
        assert copied == (step % 6 == 0), step
        if copied:
            last_copy = state.params["network"]
        assert leaves_equal(state.target_network, last_copy), step


def test_logged_temperature_averages_to_the_exploration_intensity():
    dqn = trainer(
        exploration="boltzmann", tau_start=0.6, tau_end=0.1, tau_anneal_steps=32, num_steps=4
    )
    state = jax.jit(dqn.init)(jax.random.PRNGKey(4))
    update = jax.jit(dqn.update)
    logged = []
    for _ in range(4):  # 16 steps: the first half of the anneal
        state, metrics = update(state)
        logged.append(float(metrics["exploration/tau"]))
    np.testing.assert_allclose(np.mean(logged), dqn.exploration_intensity, rtol=1e-6)
    np.testing.assert_allclose(float(metrics["exploration/intensity"]), dqn.exploration_intensity)
    np.testing.assert_allclose(logged[0], np.mean(0.6 - 0.5 * np.arange(4) / 32), rtol=1e-6)


def test_epsilon_decays_over_the_first_tenth_of_training_by_default():
    dqn = trainer()  # 6 updates x 8 steps = 48 training steps
    assert dqn.eps_decay_steps == 4
    np.testing.assert_allclose(
        [float(dqn.epsilon(jnp.array(t))) for t in (0, 2, 4, 40)],
        [1.0, 0.525, 0.05, 0.05],
        rtol=1e-6,
    )


def test_episode_ends_are_stored_and_followed_by_the_reset_observation():
    env = make("matrix_game", game="ipd", max_steps=3)
    dqn = DQN(env, dataclasses.replace(TINY, total_timesteps=4 * 8, buffer_steps=8))
    state, metrics = jax.jit(dqn.update)(jax.jit(dqn.init)(jax.random.PRNGKey(5)))
    done = np.asarray(state.buffer.done)  # [8 steps, 4 envs]
    np.testing.assert_array_equal(done[:, 0], [False, False, True] * 2 + [False, False])
    start = env.reset(jax.random.PRNGKey(0))[0]
    obs = np.asarray(state.buffer.obs)
    for t in (0, 3, 6):  # the first observation of every episode is the START observation
        np.testing.assert_array_equal(obs[t, 0], start)
    assert not np.array_equal(obs[4, 0], start)
    assert float(metrics["episode/count"]) == 2 * 4
    assert float(metrics["episode/length"]) == 3


def test_evaluation_actions():
    greedy = trainer()
    state = jax.jit(greedy.init)(jax.random.PRNGKey(6))
    obs = jnp.zeros((64, 6, *greedy.env.obs_shape))
    q = greedy.q_values(state.params, obs)
    np.testing.assert_array_equal(
        greedy.act(state.params, obs, jax.random.PRNGKey(0)), jnp.argmax(q, -1)
    )
    hot = trainer(exploration="boltzmann", tau_eval=100.0)
    sampled = hot.act(state.params, obs, jax.random.PRNGKey(0))
    assert len(np.unique(np.asarray(sampled))) == 2


def test_family_defaults_follow_the_observation():
    grid = DQN(make("cleanup"), DQNConfig())
    vector = DQN(make("matrix_game", game="ipd"), DQNConfig())
    assert (grid.num_envs, grid.gamma, grid.buffer_steps) == (16, 0.99, 1000)
    assert (vector.num_envs, vector.gamma, vector.buffer_steps) == (64, 0.96, 5000)
    assert grid.network.encoder == "cnn" and vector.network.encoder == "mlp"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"learning_starts": 1}, "learning_starts (1) must be >= n_step (2)"),
        ({"num_steps": 7}, "num_steps (7) must be a multiple of train_every (2)"),
        ({"target_update_every": 5}, "target_update_every (5) must be a multiple of train_every"),
        ({"buffer_steps": 2}, "buffer_steps (2) must be > n_step (2)"),
        ({"exploration": "ucb"}, "algo.exploration must be one of"),
        ({"optimizer": "sgd"}, "algo.optimizer must be one of"),
        ({"eps_end": 1.5}, "algo.eps_end must be in [0, 1]"),
        ({"share_params": False, "num_param_groups": 2}, "leave num_param_groups null"),
        ({"num_param_groups": 4}, "num_param_groups (4) must divide the number of agents (6)"),
        ({"total_timesteps": 10}, "must be at least num_steps x num_envs = 32"),
        ({"encoder": "cnn"}, "encoder=cnn needs grid observations"),
    ],
)
def test_bad_config_is_one_clear_error(changes, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        DQN(make("public_goods", num_agents=6), dataclasses.replace(TINY, **changes))
