"""`mo_matrix`: the MO-MIX two-objective toy (spec `algos/momix.md` §8)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs import make
from marl.envs.mo_matrix import MOMatrix

# Spec §8, written out by hand: team vector by joint action (a1, a2); D[k] when a1 = a2 = k.
SPEC_REWARD_VECTOR = {
    (a1, a2): (0.0, 0.0) for a1, a2 in itertools.product(range(4), repeat=2) if a1 != a2
} | {
    (0, 0): (1.0, 0.0),
    (1, 1): (0.0, 1.0),
    (2, 2): (0.6, 0.6),
    (3, 3): (0.8, 0.2),
}


def play_all_joint_actions(env):
    """One jitted, vmapped step from reset for each of the 16 joint actions, in table order."""
    joint = np.array(sorted(SPEC_REWARD_VECTOR), np.int32)
    keys = jax.random.split(jax.random.key(0), len(joint))

    @jax.jit
    @jax.vmap
    def step(key, actions):
        _, state = env.reset(key)
        obs, next_state, reward, done, info = env.step(key, state, actions)
        return obs, env.global_state(next_state), reward, done, info

    return joint, jax.device_get(step(keys, joint))


def test_every_joint_action_gives_the_spec_reward_vector_and_its_sum():
    env = MOMatrix()
    joint, (_, _, reward, _, info) = play_all_joint_actions(env)
    assert len(joint) == 16
    assert env.reward_components == ("objective_1", "objective_2")
    assert info["reward_vector"].shape == (16, 2, 2)
    assert info["reward_vector"].dtype == np.float32
    assert reward.shape == (16, 2) and reward.dtype == np.float32
    for row, actions in enumerate(map(tuple, joint)):
        expected = np.array(SPEC_REWARD_VECTOR[actions], np.float32)
        for agent in range(2):  # common payoff: both agents get the team vector
            np.testing.assert_allclose(info["reward_vector"][row, agent], expected, atol=1e-7)
            # Scalar reward: the equal-weight scalarisation, the sum of the two components.
            np.testing.assert_allclose(reward[row, agent], expected.sum(), atol=1e-6)


def test_coordinated_counter_is_one_for_both_agents_exactly_on_the_diagonal():
    joint, (*_, info) = play_all_joint_actions(MOMatrix())
    assert info["coordinated"].shape == (16, 2) and info["coordinated"].dtype == np.int32
    expected = (joint[:, 0] == joint[:, 1]).astype(np.int32)
    np.testing.assert_array_equal(info["coordinated"], np.stack([expected, expected], axis=1))


@pytest.mark.parametrize("max_steps", [1, 3])
def test_done_exactly_at_max_steps_with_constant_zero_observations(max_steps):
    env = make("mo_matrix", max_steps=max_steps)
    assert env.max_steps == max_steps
    assert (env.num_agents, env.num_actions, env.obs_shape) == (2, 4, (1,))
    obs, state = env.reset(jax.random.key(1))
    assert obs.shape == (2, 1) and obs.dtype == jnp.float32
    np.testing.assert_array_equal(obs, 0.0)
    global_state = env.global_state(state)
    assert global_state.shape == (1,) and global_state.dtype == jnp.float32
    np.testing.assert_array_equal(global_state, 0.0)
    step = jax.jit(env.step)
    dones = []
    for t, actions in enumerate([(2, 2), (0, 3), (1, 1)][:max_steps]):
        obs, state, _, done, _ = step(jax.random.key(t), state, jnp.array(actions, jnp.int32))
        assert done.shape == () and done.dtype == jnp.bool_
        dones.append(bool(done))
        assert obs.shape == (2, 1) and obs.dtype == jnp.float32
        np.testing.assert_array_equal(obs, 0.0)
        np.testing.assert_array_equal(env.global_state(state), np.zeros(1, np.float32))
    assert dones == [False] * (max_steps - 1) + [True]


@pytest.mark.parametrize("max_steps", [0, -1, 1.5, True, "2", None])
def test_bad_max_steps_is_a_value_error_naming_it(max_steps):
    with pytest.raises(ValueError, match="max_steps must be an integer >= 1"):
        MOMatrix(max_steps=max_steps)
    with pytest.raises(ValueError, match="max_steps"):
        make("mo_matrix", max_steps=max_steps)


def test_numpy_integer_max_steps_is_accepted_as_int():
    env = MOMatrix(max_steps=np.int64(2))
    assert env.max_steps == 2 and type(env.max_steps) is int


def test_unknown_parameter_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="no parameter 'num_agents'.*allowed: max_steps"):
        make("mo_matrix", num_agents=3)
