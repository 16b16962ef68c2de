"""The env contract (DESIGN.md), checked on every registered environment with default parameters."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs import Env, available, make
from marl.envs.wrappers import training_env

NUM_ENVS = 3


@pytest.fixture(scope="module", params=available())
def env(request) -> Env:
    return make(request.param, max_steps=4)


def test_env_is_a_frozen_dataclass_of_static_parameters(env):
    assert dataclasses.is_dataclass(env)
    field = dataclasses.fields(env)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(env, field, None)
    hash(env)


def test_reset_and_step_shapes_dtypes_and_horizon_under_jit_and_vmap(env):
    n = env.num_agents

    @jax.jit
    def episode(key):
        reset_key, step_key = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(reset_key, NUM_ENVS))

        def one_step(carry, key):
            state = carry
            action_key, env_key = jax.random.split(key)
            actions = jax.random.randint(action_key, (NUM_ENVS, n), 0, env.num_actions)
            obs, state, reward, done, info = jax.vmap(env.step)(
                jax.random.split(env_key, NUM_ENVS), state, actions
            )
            return state, (obs, reward, done, info, jax.vmap(env.global_state)(state))

        _, outputs = jax.lax.scan(one_step, state, jax.random.split(step_key, env.max_steps))
        return obs, outputs

    first_obs, (obs, reward, done, info, global_state) = episode(jax.random.PRNGKey(0))
    assert first_obs.shape == (NUM_ENVS, n, *env.obs_shape)
    assert obs.shape == (env.max_steps, NUM_ENVS, n, *env.obs_shape)
    assert reward.shape == (env.max_steps, NUM_ENVS, n) and reward.dtype == jnp.float32
    assert done.shape == (env.max_steps, NUM_ENVS) and done.dtype == jnp.bool_
    np.testing.assert_array_equal(done[-1], True)
    np.testing.assert_array_equal(done[:-1], False)
    assert global_state.shape[:2] == (env.max_steps, NUM_ENVS)
    assert np.isfinite(np.asarray(reward)).all()
    if "reward_vector" in info:
        assert info["reward_vector"].shape[2:] == (n, len(env.reward_components))


def test_training_stack_auto_resets_and_counts_episodes(env):
    wrapped = training_env(env)
    n = env.num_agents

    @jax.jit
    def run(key):
        _, state = wrapped.reset(key)

        def one_step(state, key):
            _, state, reward, done, info = wrapped.step(key, state, jnp.zeros(n, jnp.int32))
            return state, (done, info["episode_length"], info["episode_return"], reward)

        return jax.lax.scan(one_step, state, jax.random.split(key, 2 * env.max_steps + 1))[1]

    done, length, episode_return, reward = run(jax.random.PRNGKey(1))
    assert np.flatnonzero(done).tolist() == [env.max_steps - 1, 2 * env.max_steps - 1]
    assert length[env.max_steps - 1] == env.max_steps and length[env.max_steps] == 1
    np.testing.assert_allclose(
        episode_return[env.max_steps - 1], reward[: env.max_steps].sum(0), rtol=1e-5, atol=1e-5
    )


def test_unknown_parameter_is_a_value_error_naming_it():
    for name in available():
        with pytest.raises(ValueError, match="no parameter 'colour'"):
            make(name, colour="red")
