"""Helpers for the grid-engine and grid-game tests, imported by the test modules of this folder:
compiled functions cached per env (one compile per configuration for the whole session) and
hand-made states."""

from __future__ import annotations

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.grid.cleanup import Cleanup
from marl.envs.grid.harvest import Harvest
from marl.envs.grid.movement import STAY

SHAPE = (25, 18)
# Fixed batch and rollout sizes, so that each configuration compiles each function once.
MONTE_CARLO_BATCH = 1024
ROLLOUT_STEPS = 32
LONG_ROLLOUT_STEPS = 300
LONG_ROLLOUT_ENVS = 16


def _rollout(env: Cleanup, key: jax.Array, state, actions: jax.Array):
    """Step `state` with joint actions `actions` `[T, N]`; returns the states after each step and
    the step outputs (obs, reward, done, info), each stacked over T."""

    def one_step(state, inputs):
        step_key, action = inputs
        obs, state, reward, done, info = env.step(step_key, state, action)
        return state, (state, obs, reward, done, info)

    step_keys = jax.random.split(key, actions.shape[0])
    return jax.lax.scan(one_step, state, (step_keys, actions))[1]


@functools.cache
def compiled(env: Cleanup) -> types.SimpleNamespace:
    """Jitted entry points of `env`. `step_keys` maps `step` over a batch of keys for one state
    and one joint action (Monte Carlo over the env's randomness); `rollout(key, state, actions)`
    runs `actions` `[T, N]`; `rollouts` maps it over batches of keys and states."""
    rollout = functools.partial(_rollout, env)
    return types.SimpleNamespace(
        reset=jax.jit(env.reset),
        step=jax.jit(env.step),
        observation=jax.jit(env.observation),
        global_state=jax.jit(env.global_state),
        step_keys=jax.jit(jax.vmap(env.step, in_axes=(0, None, None))),
        reset_keys=jax.jit(jax.vmap(env.reset)),
        rollout=jax.jit(rollout),
        rollouts=jax.jit(jax.vmap(rollout, in_axes=(0, 0, None))),
    )


@functools.cache
def cleanup(**params) -> Cleanup:
    """A `Cleanup` with `params`, shared by every test that asks for the same configuration."""
    return Cleanup(**params)


@functools.cache
def harvest(**params) -> Harvest:
    """A `Harvest` with `params`, shared by every test that asks for the same configuration."""
    return Harvest(**params)


def mask(cells, shape=SHAPE) -> np.ndarray:
    """bool `[H, W]` with True exactly at `cells` (an iterable of (row, col))."""
    grid = np.zeros(shape, bool)
    for row, col in cells:
        grid[row, col] = True
    return grid


def hand_state(env: Cleanup, agents, **kwargs):
    """State with agents k = 0.. at `agents` [(row, col, orientation), ...]; the remaining agents
    are absent (parked at (0, 0)). Other keyword arguments go to `env.make_state`."""
    num_agents = env.num_agents
    position = np.zeros((num_agents, 2), np.int32)
    orientation = np.zeros(num_agents, np.int32)
    present = np.zeros(num_agents, bool)
    for index, (row, col, facing) in enumerate(agents):
        position[index] = row, col
        orientation[index] = facing
        present[index] = True
    if "present" in kwargs:
        present = np.asarray(kwargs.pop("present"), bool)
    return env.make_state(position, orientation, present=present, **kwargs)


def joint_action(env: Cleanup, *actions: int) -> jax.Array:
    """int32 `[N]`: `actions` for agents 0.., STAY for the others."""
    padded = list(actions) + [STAY] * (env.num_agents - len(actions))
    return jnp.asarray(padded, jnp.int32)


def keys(count: int, seed: int = 0) -> jax.Array:
    return jax.random.split(jax.random.key(seed), count)


def _concatenate(batches):
    return jax.tree.map(lambda *parts: np.concatenate([np.asarray(p) for p in parts]), *batches)


def monte_carlo(env: Cleanup, state, action: jax.Array, batches: int = 1, seed: int = 0):
    """`step` outputs for `batches` x MONTE_CARLO_BATCH keys from one state and joint action."""
    step_keys = compiled(env).step_keys
    return _concatenate(
        [step_keys(keys(MONTE_CARLO_BATCH, seed + b), state, action) for b in range(batches)]
    )


def resets(env: Cleanup, batches: int = 1, seed: int = 0):
    """`reset` outputs for `batches` x MONTE_CARLO_BATCH keys."""
    reset_keys = compiled(env).reset_keys
    return _concatenate([reset_keys(keys(MONTE_CARLO_BATCH, seed + b)) for b in range(batches)])


def rollout(env: Cleanup, state, actions, key: int = 0):
    """Outputs of `len(actions)` <= ROLLOUT_STEPS steps (actions `[T, N]`; padded with STAY to
    the fixed rollout length and cut back)."""
    actions = jnp.asarray(actions, jnp.int32)
    steps = actions.shape[0]
    padding = jnp.full((ROLLOUT_STEPS - steps, env.num_agents), STAY, jnp.int32)
    outputs = compiled(env).rollout(jax.random.key(key), state, jnp.concatenate([actions, padding]))
    return jax.tree.map(lambda x: np.asarray(x)[:steps], outputs)


def long_rollouts(env: Cleanup, actions: jax.Array, seed: int = 0):
    """LONG_ROLLOUT_ENVS episodes from fresh resets, all with actions `[300, N]`; returns the
    start states and the stacked outputs (env axis first)."""
    _, start = compiled(env).reset_keys(keys(MONTE_CARLO_BATCH, seed))
    start = jax.tree.map(lambda x: x[:LONG_ROLLOUT_ENVS], start)
    outputs = compiled(env).rollouts(keys(LONG_ROLLOUT_ENVS, seed + 1), start, actions)
    return start, outputs
