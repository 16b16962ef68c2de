"""A jitted ring buffer of whole episodes, for recurrent value learners (QMIX, MO-MIX).

Spec: `specs/algos/momix.md` §4. Every episode has the env's fixed length T. Slot c holds one
episode: observations `[T, N, *obs_shape]` (the env's dtype), global states `[T, *state_shape]`,
actions int32 `[T, N]`, reward vectors float32 `[T, m]`, dones bool `[T]` and the preference
float32 `[m]` the behaviour policy acted under.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Episodes:
    """A batch of B episodes (leading axis B), laid out as in the buffer's slots."""

    obs: jax.Array  # [B, T, N, *obs_shape]
    state: jax.Array  # [B, T, *state_shape]
    action: jax.Array  # int32 [B, T, N]
    reward: jax.Array  # float32 [B, T, m]
    done: jax.Array  # bool [B, T]
    preference: jax.Array  # float32 [B, m]


@struct.dataclass
class EpisodeBuffer:
    """Ring storage of C episodes (`episodes` with leading axis C); `pointer` is the slot written
    next and `count` (<= C) how many slots hold an episode."""

    episodes: Episodes
    pointer: jax.Array  # int32 []
    count: jax.Array  # int32 []

    @property
    def capacity(self) -> int:
        return self.episodes.done.shape[0]


def init_episode_buffer(capacity: int, example: Episodes) -> EpisodeBuffer:
    """An empty buffer of `capacity` slots for episodes shaped like `example` (any batch size)."""
    empty = jax.tree.map(lambda x: jnp.zeros((capacity, *x.shape[1:]), x.dtype), example)
    return EpisodeBuffer(empty, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add_episodes(buffer: EpisodeBuffer, new: Episodes) -> EpisodeBuffer:
    """Write the E episodes of `new` (leading axis E <= C) into the next E slots, oldest out."""
    num_new = new.done.shape[0]
    slots = (buffer.pointer + jnp.arange(num_new)) % buffer.capacity
    episodes = jax.tree.map(lambda store, x: store.at[slots].set(x), buffer.episodes, new)
    return EpisodeBuffer(
        episodes,
        (buffer.pointer + num_new) % buffer.capacity,
        jnp.minimum(buffer.count + num_new, buffer.capacity),
    )


def sample_episodes(buffer: EpisodeBuffer, key: jax.Array, batch: int) -> Episodes:
    """`batch` stored episodes drawn uniformly with replacement (the buffer must not be empty)."""
    slots = jax.random.randint(key, (batch,), 0, jnp.maximum(buffer.count, 1))
    return jax.tree.map(lambda store: store[slots], buffer.episodes)
