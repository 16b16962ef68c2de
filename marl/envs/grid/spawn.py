"""Placing agents on spawn points: at reset and when a tagged-out agent reappears."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.grid.randomness import random_ranks


def choose_spawn_points(bits: jax.Array, occupied: jax.Array, slots: jax.Array) -> jax.Array:
    """int32 `[M]`: index of the spawn point given to each of M requests.

    bits uint32 `[S]` random words, occupied bool `[S]`, slots int32 `[M]` (distinct values in
    0..#free-1 for the requests that are served; other values give an arbitrary point). The free
    points are put in a uniformly random order (from `bits`) and request m gets the point at
    position `slots[m]`, so distinct slots draw distinct free points uniformly without replacement.
    """
    high_bit = jnp.uint32(1 << 31)
    order_key = jnp.where(occupied, bits | high_bit, bits & ~high_bit)
    rank = random_ranks(order_key)
    return jnp.argmax(rank[None, :] == slots[:, None], axis=1).astype(jnp.int32)


def sample_spawn_points(bits: jax.Array, count: int) -> jax.Array:
    """int32 `[count]`: indices of `count` distinct spawn points out of S, drawn uniformly
    without replacement from random words uint32 `bits` `[S]` (`count` <= S); S^2 comparisons."""
    free = jnp.zeros(bits.shape[0], bool)
    return choose_spawn_points(bits, free, jnp.arange(count, dtype=jnp.int32))


def occupied_spawn_points(
    spawn_cells: np.ndarray, position: jax.Array, present: jax.Array
) -> jax.Array:
    """bool `[S]`: spawn points of `spawn_cells` `[S, 2]` on which a present agent stands.

    position int32 `[N, 2]`, present bool `[N]`.
    """
    on_point = jnp.all(jnp.asarray(spawn_cells)[:, None, :] == position[None, :, :], axis=-1)
    return jnp.any(on_point & present[None, :], axis=1)
