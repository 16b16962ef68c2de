"""Exploration for value-based learners: linear schedules, epsilon-greedy and Boltzmann actions.

Spec: `specs/algos/dqn.md` §4. Schedules count vectorised env steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MIN_TEMPERATURE = 1e-6


def linear_schedule(start: float, end: float, duration: int, step: jax.Array) -> jax.Array:
    """float32 `[]`: `start` at step 0, linear to `end` at step `duration`, then constant."""
    progress = jnp.minimum(step / max(duration, 1), 1.0)
    return jnp.asarray(start + (end - start) * progress, jnp.float32)


def mean_of_linear_schedule(start: float, end: float, duration: int, num_steps: int) -> float:
    """Mean of `linear_schedule` over steps 0 .. num_steps - 1 (exactly, as the learner sees it).

    With the temperature schedule and `num_steps = duration // 2` this is the exploration
    intensity B of Weng & Lee (the mean temperature over the first half of the anneal).
    """
    steps = np.arange(num_steps, dtype=np.float64)
    progress = np.minimum(steps / max(duration, 1), 1.0)
    return float(np.mean(start + (end - start) * progress))


def greedy_actions(q_values: jax.Array) -> jax.Array:
    """int32 `[...]`: argmax over the last axis of `q_values` `[..., A]` (first index on ties)."""
    return jnp.argmax(q_values, axis=-1).astype(jnp.int32)


def epsilon_greedy(key: jax.Array, q_values: jax.Array, epsilon: jax.Array) -> jax.Array:
    """int32 `[...]`: a uniform random action with probability `epsilon`, else the greedy one."""
    explore_key, action_key = jax.random.split(key)
    random_actions = jax.random.randint(action_key, q_values.shape[:-1], 0, q_values.shape[-1])
    explore = jax.random.uniform(explore_key, q_values.shape[:-1]) < epsilon
    return jnp.where(explore, random_actions, greedy_actions(q_values)).astype(jnp.int32)


def boltzmann_logits(q_values: jax.Array, temperature: jax.Array) -> jax.Array:
    """Logits `[..., A]` of pi(a) ∝ exp((Q(a) - max_b Q(b)) / max(tau, 1e-6))."""
    shifted = q_values - q_values.max(axis=-1, keepdims=True)
    return shifted / jnp.maximum(temperature, MIN_TEMPERATURE)


def boltzmann(key: jax.Array, q_values: jax.Array, temperature: jax.Array) -> jax.Array:
    """int32 `[...]`: actions sampled from the Boltzmann policy at `temperature`."""
    return jax.random.categorical(key, boltzmann_logits(q_values, temperature)).astype(jnp.int32)
