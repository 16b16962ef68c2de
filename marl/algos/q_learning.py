"""Value-learning targets: n-step returns truncated at episode ends and double-DQN bootstraps.

Spec: `specs/algos/dqn.md` §3. For a window of n steps starting at t, with k the number of steps
up to and including the first `done` (k = n if none):
    y = sum_{i<k} gamma^i r_{t+i} + gamma^k (1 - done) Q_target(o_{t+k}, argmax_a Q_online(o_{t+k}, a)).
When a `done` falls in the window the bootstrap term is 0, so the bootstrap observation is always
o_{t+n} and only used when the window holds no `done`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def n_step_targets(
    rewards: jax.Array, dones: jax.Array, bootstrap_value: jax.Array, gamma: float
) -> jax.Array:
    """float32 `[B]` targets from rewards `[B, n]`, dones bool `[B, n]` and the value of o_{t+n} `[B]`.

    Rewards after the first done of a window are ignored and the bootstrap is dropped there.
    """
    n = rewards.shape[-1]
    discounts = gamma ** jnp.arange(n, dtype=jnp.float32)
    # Step i counts while no done happened at steps < i.
    done_before = jnp.cumsum(dones, axis=-1) - dones
    alive = (done_before == 0).astype(jnp.float32)
    discounted = (rewards * alive * discounts).sum(axis=-1)
    no_done = jnp.logical_not(dones.any(axis=-1)).astype(jnp.float32)
    return discounted + (gamma**n) * no_done * bootstrap_value


def double_q_value(key: jax.Array, online_q: jax.Array, target_q: jax.Array) -> jax.Array:
    """float32 `[B]`: Q_target(o, a*) with a* = argmax_a Q_online(o, a), ties broken uniformly.

    online_q and target_q `[B, A]` at the same observations.
    """
    best = online_q == online_q.max(axis=-1, keepdims=True)
    choice = jax.random.categorical(key, jnp.where(best, 0.0, -jnp.inf))
    return jnp.take_along_axis(target_q, choice[:, None], axis=-1)[:, 0]
