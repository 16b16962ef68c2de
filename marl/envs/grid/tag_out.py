"""Tag-out: agents hit by FIRE leave the map for a fixed number of steps (Cleanup and Harvest
option `tag_out_steps`, Melting Pot style).

An agent hit at step t (any number of hits) is removed at the end of that step's beam phase; it
reappears in the same phase of step t + k on a uniformly random spawn point free of present agents
(distinct if several reappear at once), with a uniformly random orientation. While removed it is
absent: the game ignores its actions and it cannot eat, be hit, block or be seen.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.grid.spawn import choose_spawn_points, occupied_spawn_points


def apply_tag_out(
    bits: jax.Array,
    time: jax.Array,
    tag_out_steps: int,
    hit: jax.Array,
    present: jax.Array,
    removed_until: jax.Array,
    position: jax.Array,
    orientation: jax.Array,
    spawn_cells: np.ndarray,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Remove this step's victims and bring back agents whose removal ends at step `time`.

    bits uint32 `[S + N]` random words (spawn order, then orientations); time int32 `[]`; hit
    bool `[N]` (hit this step); present bool `[N]`; removed_until int32 `[N]`
    (step at which an absent agent reappears); position int32 `[N, 2]`; orientation int32 `[N]`;
    spawn_cells int32 `[S, 2]` with S >= N. Returns the new present, removed_until, position and
    orientation. Removed agents keep their last position (where their last beam came from).
    """
    num_spawn_points = spawn_cells.shape[0]
    removed_now = present & hit
    present = present & ~hit
    removed_until = jnp.where(removed_now, time + tag_out_steps, removed_until)
    returning = ~present & ~removed_now & (removed_until == time)

    occupied = occupied_spawn_points(spawn_cells, position, present)
    slot = jnp.cumsum(returning, dtype=jnp.int32) - 1
    chosen = choose_spawn_points(bits[:num_spawn_points], occupied, slot)
    spawn_position = jnp.asarray(spawn_cells)[chosen]
    spawn_orientation = (bits[num_spawn_points:] >> 30).astype(jnp.int32)
    position = jnp.where(returning[:, None], spawn_position, position)
    orientation = jnp.where(returning, spawn_orientation, orientation)
    return present | returning, removed_until, position, orientation
