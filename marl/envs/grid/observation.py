"""Egocentric observation windows and the allocentric global state of the grid games.

Words. Observations are built from uint32 *words*, one per cell, whose bit c is observation channel
c. Channels, in order: the game's M map channels, SELF, OTHER, OTHER_FACING_UP/RIGHT/DOWN/LEFT (the
other agent's orientation relative to the viewer, (o_j - o) mod 4), the game's E extra channels
(beams), then (optionally) one identity plane per agent (self included). Channel 0 is WALL in
every grid game.

Observation (`egocentric_observations`): window cell (u, v), u, v in 0..2R, of an agent at p
facing o shows map cell p + (R - u) F(o) + (v - R) F((o + 1) mod 4); cells outside the map read as
wall. The map words (map and extra channels only) are padded by R cells of wall; a window's flat
index into them is affine in (u, v), so the windows of all agents are one gather (flattened over
the batch under `vmap`, see `gather_flat`). Agents are then added with one scatter of N x N
entries (agent j seen by viewer i lands at u = R - d.F, v = R + d.Rt with d = p_j - p_i), and the
planes are unpacked with a lookup table (`unpack_planes`). An absent viewer sees all zeros.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import custom_batching

from marl.envs.grid.movement import FORWARD_VECTORS, right_vectors

AGENT_CHANNELS = (
    "self",
    "other",
    "other_facing_up",
    "other_facing_right",
    "other_facing_down",
    "other_facing_left",
)
FACING_CHANNELS = ("facing_up", "facing_right", "facing_down", "facing_left")
_SELF, _OTHER, _OTHER_FACING_UP = 0, 1, 2
_UNPACK_BITS = 12


@custom_batching.custom_vmap
def gather_flat(table: jax.Array, indices: jax.Array) -> jax.Array:
    """`table[indices]` for a 1-D `table` (indices promised in bounds).

    Under `vmap` the batch is folded into the indices (b * len(table) + index) so that XLA emits one
    plain 1-D gather instead of a batched gather, which is several times slower on CPU.
    """
    dimension_numbers = jax.lax.GatherDimensionNumbers(
        offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,)
    )
    return jax.lax.gather(
        table,
        indices[..., None],
        dimension_numbers,
        slice_sizes=(1,),
        mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )


@gather_flat.def_vmap
def _gather_flat_batched(axis_size, in_batched, table, indices):
    table_batched, indices_batched = in_batched
    if not table_batched:
        return gather_flat(table, indices), indices_batched
    if not indices_batched:
        indices = jnp.broadcast_to(indices, (axis_size, *indices.shape))
    table_size = table.shape[1]
    batch_offset = jnp.arange(axis_size, dtype=indices.dtype) * table_size
    flat_indices = indices + batch_offset.reshape((axis_size,) + (1,) * (indices.ndim - 1))
    return gather_flat(table.reshape(-1), flat_indices), True


def agent_codes(
    position: jax.Array, orientation: jax.Array, present: jax.Array, shape: tuple[int, int]
) -> jax.Array:
    """int32 `[H * W]` agent code of every cell: 0 empty, else 1 + 4 * index + orientation.

    position int32 `[N, 2]`, orientation int32 `[N]`, present bool `[N]`; absent agents are left
    out. Present agents must be on distinct cells.
    """
    height, width = shape
    num_agents = position.shape[0]
    flat = jnp.where(present, position[:, 0] * width + position[:, 1], height * width)
    code = 1 + 4 * jnp.arange(num_agents, dtype=jnp.int32) + orientation
    return jnp.zeros(height * width, jnp.int32).at[flat].set(code, mode="drop")


def occupant_index(codes: jax.Array) -> jax.Array:
    """Agent index (int32, -1 if none) from agent codes of any shape."""
    return jnp.where(codes > 0, (codes - 1) >> 2, -1)


def num_observation_channels(
    num_map_channels: int, num_extra_channels: int, num_id_planes: int
) -> int:
    """C = M + 6 + E + (number of identity planes)."""
    return num_map_channels + len(AGENT_CHANNELS) + num_extra_channels + num_id_planes


def padded_map_words(channel_bits, num_map_channels: int, view_radius: int):
    """uint32 `[(H + 2R) * (W + 2R)]`: words of the map and extra channels (no agents), padded by
    R cells of wall, flattened.

    channel_bits int `[H, W]`: bits 0..M-1 the map channels, from bit M the extra channels. Works
    on numpy arrays (constant maps such as the reset map) and on jax arrays. For jax arrays the
    interior is written into a constant wall frame with a scatter: XLA:CPU never fuses a scatter
    into its consumers, so the padded map is computed once instead of once per gathered cell.
    """
    height, width = channel_bits.shape
    padded_width = width + 2 * view_radius
    interior = (
        (np.arange(height)[:, None] + view_radius) * padded_width
        + np.arange(width)[None, :]
        + view_radius
    ).reshape(-1)
    frame = np.ones((height + 2 * view_radius) * padded_width, np.uint32)
    map_mask = (1 << num_map_channels) - 1
    extra_shift = num_map_channels + len(AGENT_CHANNELS)
    if isinstance(channel_bits, np.ndarray):
        bits = channel_bits.astype(np.uint32).reshape(-1)
        frame[interior] = (bits & map_mask) | ((bits >> num_map_channels) << extra_shift)
        return frame
    bits = channel_bits.astype(jnp.uint32).reshape(-1)
    words = (bits & map_mask) | ((bits >> num_map_channels) << extra_shift)
    return jnp.asarray(frame).at[interior].set(words, indices_are_sorted=True, unique_indices=True)


def select_rows(table: np.ndarray, rows: jax.Array) -> jax.Array:
    """float32 `[..., L]`: rows `rows` int32 `[...]` of a constant integer table `[K, L]` with
    entries of magnitude below 2^24, as a one-hot matrix product (exact in float32).

    XLA:CPU emits a gather of rows with per-element index arithmetic and fuses index computations
    into gathers (re-running them for every gathered element); a dot is computed once, by a fast
    library kernel, and never fused into its consumers.
    """
    one_hot = (rows[..., None] == jnp.arange(table.shape[0])).astype(jnp.float32)
    return jnp.dot(one_hot, jnp.asarray(table, jnp.float32), precision=jax.lax.Precision.HIGHEST)


def window_offsets(view_radius: int, padded_width: int) -> np.ndarray:
    """int32 `[4, (2R+1)^2]`: flat offset, in a padded map with rows of `padded_width` cells, from
    the viewer's cell to window cell (u, v) (row-major), for each orientation of the viewer."""
    size = 2 * view_radius + 1
    forward = FORWARD_VECTORS[:, 0] * padded_width + FORWARD_VECTORS[:, 1]
    rightward = right_vectors()[:, 0] * padded_width + right_vectors()[:, 1]
    ahead = (view_radius - np.arange(size))[:, None]
    right = (np.arange(size) - view_radius)[None, :]
    offsets = ahead * forward[:, None, None] + right * rightward[:, None, None]
    return offsets.reshape(4, size * size).astype(np.int32)


def window_indices(
    position: jax.Array, orientation: jax.Array, view_radius: int, padded_width: int
) -> jax.Array:
    """int32 `[N, (2R+1)^2]`: flat index into the padded map of every window cell (row-major).

    position int32 `[N, 2]`, orientation int32 `[N]`; rows of the padded map are `padded_width`
    = W + 2R cells wide. The index of window cell (u, v) is base + (R - u) * forward_stride +
    (v - R) * right_stride, computed as one small int32 matrix product so that XLA materialises
    the indices instead of re-deriving them inside the gather (see `select_rows`). An integer
    product rather than a float32 one: a float-to-int conversion fused into the gather costs
    more there than the whole gather does.
    """
    size = 2 * view_radius + 1
    forward = jnp.asarray(FORWARD_VECTORS[:, 0] * padded_width + FORWARD_VECTORS[:, 1])
    rightward = jnp.asarray(right_vectors()[:, 0] * padded_width + right_vectors()[:, 1])
    base = (position[:, 0] + view_radius) * padded_width + position[:, 1] + view_radius
    coefficients = jnp.stack([base, forward[orientation], rightward[orientation]], axis=-1)
    ahead = np.repeat(view_radius - np.arange(size), size)
    right = np.tile(np.arange(size) - view_radius, size)
    basis = np.stack([np.ones(size * size), ahead, right]).astype(np.int32)
    return jnp.dot(coefficients, jnp.asarray(basis), preferred_element_type=jnp.int32)


def agent_overlay(
    position: jax.Array,
    orientation: jax.Array,
    present: jax.Array,
    view_radius: int,
    num_map_channels: int,
    id_shift: int | None,
) -> tuple[jax.Array, jax.Array]:
    """Where and what every present agent j adds to every viewer i's window.

    Returns flat window indices int32 `[N, N]` (i * (2R+1)^2 + u * (2R+1) + v, or N * (2R+1)^2
    when j is out of i's view or absent) and word bits uint32 `[N, N]`: SELF for j = i, else
    OTHER and OTHER_FACING_((o_j - o_i) mod 4); plus identity bit `id_shift + j` unless `id_shift`
    is None.
    """
    num_agents = position.shape[0]
    size = 2 * view_radius + 1
    forward = jnp.asarray(FORWARD_VECTORS)[orientation]
    right = jnp.asarray(right_vectors())[orientation]
    offset = position[None, :, :] - position[:, None, :]
    ahead = jnp.sum(offset * forward[:, None, :], axis=-1)
    rightward = jnp.sum(offset * right[:, None, :], axis=-1)
    visible = (
        (jnp.abs(ahead) <= view_radius) & (jnp.abs(rightward) <= view_radius) & present[None, :]
    )
    viewer = jnp.arange(num_agents, dtype=jnp.int32)[:, None]
    cell = (view_radius - ahead) * size + (view_radius + rightward)
    index = jnp.where(visible, viewer * size * size + cell, num_agents * size * size)
    relative_facing = ((orientation[None, :] - orientation[:, None]) & 3).astype(jnp.uint32)
    other_bits = (jnp.uint32(1) << _OTHER) | (jnp.uint32(1) << (_OTHER_FACING_UP + relative_facing))
    is_self = viewer == jnp.arange(num_agents, dtype=jnp.int32)[None, :]
    bits = jnp.where(is_self, jnp.uint32(1) << _SELF, other_bits) << num_map_channels
    if id_shift is not None:
        identity = jnp.arange(num_agents, dtype=jnp.uint32)[None, :]
        bits = bits | (jnp.uint32(1) << (identity + id_shift))
    return index, bits


def unpack_planes(words: jax.Array, num_channels: int) -> jax.Array:
    """uint8 0/1 `[..., C]`: bit c of uint32 `words` `[...]` as plane c.

    Uses lookup tables of at most 12 bits (one 12-byte row per word value), which XLA:CPU turns
    into row copies: several times faster than shifting each word once per channel.
    """
    chunks = []
    for start in range(0, num_channels, _UNPACK_BITS):
        bits = min(_UNPACK_BITS, num_channels - start)
        table = ((np.arange(1 << bits)[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
        chunks.append(jnp.asarray(table)[(words >> start) & ((1 << bits) - 1)])
    return chunks[0] if len(chunks) == 1 else jnp.concatenate(chunks, axis=-1)


def static_window_words(
    padded_words: np.ndarray, cells: np.ndarray, view_radius: int, padded_width: int
) -> np.ndarray:
    """uint32 `[K * 4, (2R+1)^2]`: the window words of a constant padded map (numpy, from
    `padded_map_words`) seen from each of K `cells` `[K, 2]` in each orientation (row 4k + o).
    Precomputed at construction, they make reset observations a row lookup plus `agent_overlay`.
    """
    base = (cells[:, 0] + view_radius) * padded_width + cells[:, 1] + view_radius
    indices = base[:, None, None] + window_offsets(view_radius, padded_width)[None]
    return padded_words[indices].reshape(cells.shape[0] * 4, -1)


def window_observations(
    words: jax.Array,
    position: jax.Array,
    orientation: jax.Array,
    present: jax.Array,
    view_radius: int,
    num_map_channels: int,
    num_extra_channels: int,
    agent_id_planes: bool,
) -> jax.Array:
    """uint8 0/1 observations `[N, 2R+1, 2R+1, C]` from the map words of every window, uint32
    `[N, (2R+1)^2]`: adds the agents (`agent_overlay`), blanks absent viewers, unpacks planes."""
    num_agents = position.shape[0]
    size = 2 * view_radius + 1
    num_id_planes = num_agents if agent_id_planes else 0
    num_channels = num_observation_channels(num_map_channels, num_extra_channels, num_id_planes)
    id_shift = num_map_channels + len(AGENT_CHANNELS) + num_extra_channels
    overlay_index, overlay_bits = agent_overlay(
        position,
        orientation,
        present,
        view_radius,
        num_map_channels,
        id_shift if agent_id_planes else None,
    )
    words = (
        words.reshape(-1).at[overlay_index.reshape(-1)].add(overlay_bits.reshape(-1), mode="drop")
    )
    words = jnp.where(present[:, None], words.reshape(num_agents, size * size), 0)
    return unpack_planes(words, num_channels).reshape(num_agents, size, size, num_channels)


def egocentric_observations(
    padded_words: jax.Array,
    position: jax.Array,
    orientation: jax.Array,
    present: jax.Array,
    view_radius: int,
    padded_width: int,
    num_map_channels: int,
    num_extra_channels: int,
    agent_id_planes: bool,
) -> jax.Array:
    """uint8 0/1 observations `[N, 2R+1, 2R+1, C]` (channel order of the module docstring).

    padded_words uint32 `[(H + 2R) * padded_width]` from `padded_map_words` (padded_width =
    W + 2R); position int32 `[N, 2]`; orientation int32 `[N]`; present bool `[N]`.
    C = M + 6 + E (+ N with `agent_id_planes`).
    """
    words = gather_flat(
        padded_words, window_indices(position, orientation, view_radius, padded_width)
    )
    return window_observations(
        words,
        position,
        orientation,
        present,
        view_radius,
        num_map_channels,
        num_extra_channels,
        agent_id_planes,
    )


def global_planes(
    channel_bits: jax.Array, agent_code: jax.Array, num_map_channels: int, num_agents: int
) -> jax.Array:
    """uint8 0/1 allocentric state `[H, W, M + N + 4]`: the M map channels, one plane per agent
    (AGENT_k), then FACING_UP/RIGHT/DOWN/LEFT (absolute orientation of the agent in the cell).

    channel_bits int32 `[H, W]` (bits 0..M-1 are the map channels), agent_code int32 `[H * W]`.
    """
    height, width = channel_bits.shape
    agent_code = agent_code.reshape(height, width)
    has_agent = agent_code > 0
    map_planes = (channel_bits[..., None] >> jnp.arange(num_map_channels)) & 1
    agent_planes = has_agent[..., None] & (
        occupant_index(agent_code)[..., None] == jnp.arange(num_agents)
    )
    facing_planes = has_agent[..., None] & (((agent_code - 1) & 3)[..., None] == jnp.arange(4))
    planes = [map_planes.astype(bool), agent_planes, facing_planes]
    return jnp.concatenate(planes, axis=-1).astype(jnp.uint8)
