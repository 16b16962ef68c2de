"""A jitted, time-major ring buffer of multi-agent transitions with n-step window sampling.

Spec: `specs/algos/dqn.md` §2. Slot `s` of the ring holds one vectorised step for every env and
agent: `obs_t` `[E, N, *obs_shape]`, `action_t` and `reward_t` `[E, N]`, `done_t` `[E]`. The
observation after the newest step is kept apart (`newest_obs`), so `obs_{t+1}` always exists. A
window is n consecutive steps of one (env, agent): its observation, action, rewards, dones and the
observation n steps later. Only windows whose n steps are all written are sampled, so none crosses
the write pointer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayBuffer:
    """Ring storage `[S, ...]` with S = `buffer_steps`; `pointer` is the slot written next and
    `count` (<= S) how many slots hold data. Observations keep the env's dtype (uint8 grids)."""

    obs: jax.Array  # [S, E, N, *obs_shape]
    action: jax.Array  # int32 [S, E, N]
    reward: jax.Array  # float32 [S, E, N]
    done: jax.Array  # bool [S, E]
    newest_obs: jax.Array  # [E, N, *obs_shape]: the observation after the newest step
    pointer: jax.Array  # int32 []
    count: jax.Array  # int32 []

    @property
    def capacity(self) -> int:
        return self.obs.shape[0]


@struct.dataclass
class Windows:
    """A batch of B sampled n-step windows, one (time, env, agent) each."""

    obs: jax.Array  # [B, *obs_shape]: o_t
    action: jax.Array  # int32 [B]: a_t
    rewards: jax.Array  # float32 [B, n]: r_t .. r_{t+n-1}
    dones: jax.Array  # bool [B, n]: done_t .. done_{t+n-1}
    bootstrap_obs: jax.Array  # [B, *obs_shape]: o_{t+n}
    agent: jax.Array  # int32 [B]: which agent's transitions


def init_buffer(buffer_steps: int, first_obs: jax.Array) -> ReplayBuffer:
    """An empty buffer of `buffer_steps` slots for observations shaped like `first_obs` `[E, N, ...]`."""
    num_envs, num_agents = first_obs.shape[:2]
    return ReplayBuffer(
        obs=jnp.zeros((buffer_steps, *first_obs.shape), first_obs.dtype),
        action=jnp.zeros((buffer_steps, num_envs, num_agents), jnp.int32),
        reward=jnp.zeros((buffer_steps, num_envs, num_agents), jnp.float32),
        done=jnp.zeros((buffer_steps, num_envs), jnp.bool_),
        newest_obs=first_obs,
        pointer=jnp.zeros((), jnp.int32),
        count=jnp.zeros((), jnp.int32),
    )


def add_step(
    buffer: ReplayBuffer,
    obs: jax.Array,
    action: jax.Array,
    reward: jax.Array,
    done: jax.Array,
    next_obs: jax.Array,
) -> ReplayBuffer:
    """Write one vectorised step at the pointer (overwriting the oldest once full).

    obs / next_obs `[E, N, *obs_shape]`, action and reward `[E, N]`, done `[E]`.
    """
    slot = buffer.pointer
    return buffer.replace(
        obs=buffer.obs.at[slot].set(obs.astype(buffer.obs.dtype)),
        action=buffer.action.at[slot].set(action),
        reward=buffer.reward.at[slot].set(reward),
        done=buffer.done.at[slot].set(done),
        newest_obs=next_obs.astype(buffer.newest_obs.dtype),
        pointer=(slot + 1) % buffer.capacity,
        count=jnp.minimum(buffer.count + 1, buffer.capacity),
    )


def sample_windows(
    buffer: ReplayBuffer, key: jax.Array, batch_size: int, agents: jax.Array, n_step: int
) -> Windows:
    """`batch_size` windows of `n_step` steps, uniform over complete windows, envs and `agents`.

    agents int32 `[M]`: the agents whose transitions may be drawn (a parameter group). The buffer
    must hold at least `n_step` steps (callers gate learning on that). The window start is drawn
    by age: u uniform in [0, count - n], where age 0 is the oldest stored step; the observation n
    steps later is `newest_obs` when u + n = count.
    """
    time_key, env_key, agent_key = jax.random.split(key, 3)
    capacity = buffer.capacity
    num_envs = buffer.done.shape[1]
    oldest = (buffer.pointer - buffer.count) % capacity
    age = jax.random.randint(time_key, (batch_size,), 0, buffer.count - n_step + 1)
    env = jax.random.randint(env_key, (batch_size,), 0, num_envs)
    agent = agents[jax.random.randint(agent_key, (batch_size,), 0, agents.shape[0])]
    slots = (oldest + age[:, None] + jnp.arange(n_step)) % capacity  # [B, n]
    first = slots[:, 0]
    stored_bootstrap = buffer.obs[(oldest + age + n_step) % capacity, env, agent]
    bootstrap_obs = jnp.where(
        (age + n_step < buffer.count).reshape(-1, *([1] * (stored_bootstrap.ndim - 1))),
        stored_bootstrap,
        buffer.newest_obs[env, agent],
    )
    return Windows(
        obs=buffer.obs[first, env, agent],
        action=buffer.action[first, env, agent],
        rewards=buffer.reward[slots, env[:, None], agent[:, None]],
        dones=buffer.done[slots, env[:, None]],
        bootstrap_obs=bootstrap_obs,
        agent=agent,
    )
