"""Cheap random draws for the grid games, all derived from the PRNG key passed to `step`/`reset`.

Small draws (priorities, orders, spawn choices) use `jax.random.bits` directly. Per-cell draws
(one uniform per cell per step) would cost hundreds of threefry evaluations per environment step,
so `cell_uniforms` expands two threefry words into one word per cell with a counter-based integer
hash (`triple32` of C. Wellons' hash-prospector: a bijection of uint32 with very low bias, i.e.
good avalanche on consecutive inputs); distinct cells get distinct words within a step and every
step gets fresh seeds from its key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def uniform_from_bits(bits: jax.Array) -> jax.Array:
    """float32 uniforms in [0, 1) (23-bit resolution) from uint32 `bits` of any shape."""
    mantissa = (bits >> 9) | jnp.uint32(0x3F800000)
    return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0


def triple32(x: jax.Array) -> jax.Array:
    """The `triple32` integer hash of uint32 `x` (any shape): a bijection of uint32."""
    x = x ^ (x >> 17)
    x = x * jnp.uint32(0xED5AD4BB)
    x = x ^ (x >> 11)
    x = x * jnp.uint32(0xAC4C1B51)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x31848BAB)
    return x ^ (x >> 14)


def cell_uniforms(seed: jax.Array, num_cells: int) -> jax.Array:
    """float32 `[num_cells]` uniforms in [0, 1), one per cell, from uint32 `seed` `[2]` (two words
    of `jax.random.bits`): the hash of (cell index + seed[0]), xor seed[1]."""
    counter = jnp.arange(num_cells, dtype=jnp.uint32) + seed[0]
    return uniform_from_bits(triple32(counter) ^ seed[1])


def random_ranks(bits: jax.Array) -> jax.Array:
    """int32 `[K]`: a uniformly random permutation of 0..K-1 from uint32 `bits` `[K]` (the rank
    of each word; ties, probability ~K^2 / 2^33, broken by index). No sort: K^2 comparisons."""
    index = jnp.arange(bits.shape[0])
    before = (bits[None, :] < bits[:, None]) | (
        (bits[None, :] == bits[:, None]) & (index[None, :] < index[:, None])
    )
    return before.sum(axis=1, dtype=jnp.int32)
