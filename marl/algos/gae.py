"""Generalised advantage estimation, shared by every on-policy trainer."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    last_value: jax.Array,
    gamma: float,
    gae_lambda: float,
    final_values: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and returns by a reverse scan over time.

    rewards, values, dones: `[T, ...]` (dones: step t ended an episode, so nothing is bootstrapped
    across it); last_value: `[...]`, the value of the observation after step T-1.
    delta_t = r_t + gamma (1 - done_t) v_{t+1} - v_t;  A_t = delta_t + gamma lambda (1 - done_t) A_{t+1}.
    final_values `[T, ...]` (optional): where done_t, the episode was cut at its time limit and
    delta_t bootstraps from final_values_t, the value of the observation it ended on:
    delta_t = r_t + gamma final_values_t - v_t (A_t still does not reach into the next episode).
    Returns (advantages `[T, ...]`, returns = advantages + values `[T, ...]`).
    """
    not_done = 1.0 - dones.astype(jnp.float32)
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    if final_values is None:
        deltas = rewards + gamma * not_done * next_values - values
    else:
        deltas = rewards + gamma * jnp.where(dones, final_values, next_values) - values

    def backward(carry: jax.Array, inputs: tuple[jax.Array, jax.Array]):
        delta, keep = inputs
        advantage = delta + gamma * gae_lambda * keep * carry
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(last_value), (deltas, not_done), reverse=True
    )
    return advantages, advantages + values
