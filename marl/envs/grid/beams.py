"""Beam geometry and resolution (FIRE for Cleanup and Harvest, CLEAN for Cleanup).

A beam of an agent at p facing o is a set of parallel rays, each a list of cells walked in order.
With F = F(o) and Rt = F((o + 1) mod 4), a beam of `length` L and `width` 2w + 1 has the centre ray
p + kF for k = 1..L and, for every lateral offset s in ±1..±w, the side ray p + sRt + kF for
k = 0..L-1 (side rays start beside the agent). Rays are ordered by lateral offset, left to right.

Walking a ray: it stops before a blocking cell (a wall or the outside of the map) and stops at
(including) the first cell that holds a stopper (a present agent; for CLEAN also waste). The cells
it walks are the ray's cover, a prefix of the ray given by its length (number of covered cells).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.grid.movement import FORWARD_VECTORS, right_vectors


def footprint_offsets(length: int, width: int) -> np.ndarray:
    """int32 `[4, width, length, 2]`: (d_row, d_col) of every ray cell for each orientation.

    Rays are ordered by lateral offset from left (-w) to right (+w); `width` must be odd.
    """
    if width < 1 or width % 2 == 0:
        raise ValueError(f"beam width must be a positive odd number; got {width}")
    half = width // 2
    offsets = np.zeros((4, width, length, 2), dtype=np.int32)
    right = right_vectors()
    for orientation in range(4):
        forward = FORWARD_VECTORS[orientation]
        for ray, lateral in enumerate(range(-half, half + 1)):
            first_step = 1 if lateral == 0 else 0
            for index in range(length):
                step = first_step + index
                offsets[orientation, ray, index] = lateral * right[orientation] + step * forward
    return offsets


def footprint_cells(
    position: jax.Array, orientation: jax.Array, offsets: np.ndarray, wall: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Cells of every agent's beam footprint.

    position int32 `[N, 2]`, orientation int32 `[N]`, offsets from `footprint_offsets`
    `[4, R, L, 2]`, wall bool `[H, W]`. Returns flat cell indices int32 `[N, R, L]` (row * W + col,
    clipped into the map) and `blocked` bool `[N, R, L]` (wall or outside the map).
    """
    height, width = wall.shape
    cells = position[:, None, None, :] + jnp.asarray(offsets)[orientation]
    rows, cols = cells[..., 0], cells[..., 1]
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    flat = jnp.clip(rows, 0, height - 1) * width + jnp.clip(cols, 0, width - 1)
    blocked = ~inside | wall.reshape(-1)[flat]
    return flat, blocked


def ray_lengths(blocked: jax.Array, stops: jax.Array) -> jax.Array:
    """int32 `[...]`: number of cells each ray covers: it covers cell k iff no blocking cell among
    0..k and no stopper among 0..k-1. `blocked`, `stops`: bool `[..., L]`, cells in walking order.
    The covered cells are `arange(L) < ray_length[..., None]`."""
    length = blocked.shape[-1]
    index = jnp.arange(length, dtype=jnp.int32)
    first_blocked = jnp.min(jnp.where(blocked, index, length), axis=-1)
    first_stop = jnp.min(jnp.where(stops, index, length), axis=-1)
    return jnp.minimum(first_blocked, first_stop + 1)


def covered(ray_length: jax.Array, length: int) -> jax.Array:
    """bool `[..., L]`: the cells covered by rays of `ray_length` int32 `[...]` (a prefix)."""
    return jnp.arange(length, dtype=jnp.int32) < ray_length[..., None]


def fire_beams(
    firing: jax.Array, blocked: jax.Array, occupant: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Resolve FIRE beams, all at once (they do not change anything another beam sees).

    firing bool `[N]`; blocked bool `[N, R, L]` from `footprint_cells`; occupant int32 `[N, R, L]`:
    index of the present agent on each footprint cell, -1 if none. Returns `hits_taken` int32
    `[N]` (rays that hit each agent), `hits_dealt` int32 `[N]` (rays of each shooter that hit
    someone) and `ray_length` int32 `[N, R]` (0 for agents that did not fire).
    """
    num_agents = firing.shape[0]
    ray_length = jnp.where(firing[:, None], ray_lengths(blocked, occupant >= 0), 0)
    cover = covered(ray_length, blocked.shape[-1])
    hit_agent = jnp.max(jnp.where(cover, occupant, -1), axis=-1)
    hits_taken = jnp.sum(hit_agent[..., None] == jnp.arange(num_agents), axis=(0, 1))
    hits_dealt = jnp.sum(hit_agent >= 0, axis=-1)
    return hits_taken.astype(jnp.int32), hits_dealt.astype(jnp.int32), ray_length


def clean_beams(
    order: jax.Array,
    cleaning: jax.Array,
    flat: jax.Array,
    blocked: jax.Array,
    occupied: jax.Array,
    waste: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Resolve CLEAN beams one agent at a time in `order`, each seeing the waste left by the
    earlier ones; a ray removes the first waste cell it reaches and stops there.

    order int32 `[N]` (a permutation of agent indices: `order[m]` acts m-th); cleaning bool `[N]`;
    flat, blocked from `footprint_cells` `[N, R, L]`; occupied bool `[N, R, L]` (a present agent on
    the cell); waste bool `[H * W]`. Returns the new waste `[H * W]`, `waste_cleaned` int32 `[N]`
    (cells each agent cleaned) and `ray_length` int32 `[N, R]` (0 for agents that did not clean).
    A fixed trip count of N turns; the turn of an agent that does not clean changes nothing.
    """
    num_agents = order.shape[0]
    num_cells = waste.shape[0]
    length = blocked.shape[-1]

    def clean_turn(turn, carry):
        waste, waste_cleaned, ray_length = carry
        agent = order[turn]
        waste_on_ray = waste[flat[agent]]
        agent_ray_length = jnp.where(
            cleaning[agent], ray_lengths(blocked[agent], waste_on_ray | occupied[agent]), 0
        )
        cleaned = covered(agent_ray_length, length) & waste_on_ray
        waste = waste.at[jnp.where(cleaned, flat[agent], num_cells)].set(False, mode="drop")
        waste_cleaned = waste_cleaned.at[agent].set(cleaned.sum(dtype=jnp.int32))
        ray_length = ray_length.at[agent].set(agent_ray_length)
        return waste, waste_cleaned, ray_length

    carry = (
        waste,
        jnp.zeros(num_agents, jnp.int32),
        jnp.zeros(blocked.shape[:2], jnp.int32),
    )
    return jax.lax.fori_loop(0, num_agents, clean_turn, carry)


def beam_mask(
    position: jax.Array,
    orientation: jax.Array,
    ray_length: jax.Array,
    offsets: np.ndarray,
    shape: tuple[int, int],
) -> jax.Array:
    """bool `[H, W]`: cells covered by the rays of length `ray_length` int32 `[N, R]` of agents at
    `position` `[N, 2]` facing `orientation` `[N]`; `offsets` `[4, R, L, 2]`, `shape` = (H, W)."""
    height, width = shape
    cells = position[:, None, None, :] + jnp.asarray(offsets)[orientation]
    cover = covered(ray_length, offsets.shape[2])
    flat = jnp.where(cover, cells[..., 0] * width + cells[..., 1], height * width)
    mask = jnp.zeros(height * width, bool).at[flat.reshape(-1)].set(True, mode="drop")
    return mask.reshape(height, width)
