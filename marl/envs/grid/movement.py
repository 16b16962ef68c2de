"""Egocentric actions, turns and simultaneous movement with conflict resolution.

Shared by every grid game (Cleanup, Harvest, Gathering). Orientation o: 0 up, 1 right, 2 down,
3 left; forward vector F(o) = `FORWARD_VECTORS[o]` as (d_row, d_col); the right-hand vector of o is
F((o + 1) mod 4).

Movement conflicts (`resolve_movement`). Every present agent that chose a move (actions 0-3)
targets the neighbouring cell q_i; a wall (or the outside of the map) keeps it where it is. Then:

1. A uniformly random priority permutation is drawn; among movers targeting the same cell only the
   highest-priority one keeps its target, the others stay (and never retry).
2. N times (fixed trip count): a mover stays if its target holds a present agent that stays, or if
   it and another mover target each other's cells (a swap).
3. Movers move.

Invariants: contested cells go to a uniformly random contender; agents that stay keep their cell;
no two agents swap; a train of agents (each entering the cell the one ahead vacates) moves iff its
head moves; closed cycles of 4 or more agents (a 2 x 2 rotation) all move; two present agents
never share a cell afterwards (given they did not before). N rounds suffice because a blocked train
stops one more agent per round and a train has at most N - 1 followers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

STEP_LEFT = 0
STEP_RIGHT = 1
FORWARD = 2
BACKWARD = 3
STAY = 4
TURN_CW = 5
TURN_CCW = 6
FIRE = 7

FORWARD_VECTORS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int32)


def right_vectors() -> np.ndarray:
    """int32 `[4, 2]`: the right-hand vector F((o + 1) mod 4) of each orientation o."""
    return np.roll(FORWARD_VECTORS, -1, axis=0)


def move_displacements() -> np.ndarray:
    """int32 `[5, 4, 2]`: displacement of actions 0-4 (4 = STAY: none) for each orientation."""
    forward = FORWARD_VECTORS
    right = right_vectors()
    return np.stack([-right, right, forward, -forward, np.zeros_like(forward)]).astype(np.int32)


_MOVE_DISPLACEMENTS = move_displacements()


def turn(orientation: jax.Array, actions: jax.Array) -> jax.Array:
    """New orientations int32 `[N]` after TURN_CW / TURN_CCW actions `[N]`."""
    delta = jnp.where(actions == TURN_CW, 1, 0) + jnp.where(actions == TURN_CCW, 3, 0)
    return (orientation + delta) & 3


def move_targets(
    position: jax.Array, orientation: jax.Array, actions: jax.Array, wall: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Cells the agents try to enter.

    position int32 `[N, 2]`, orientation int32 `[N]`, actions int32 `[N]`, wall bool `[H, W]`.
    Returns target int32 `[N, 2]` and `wants_move` bool `[N]` (chose a move whose target is inside
    the map and not a wall). Agents that do not move target their own cell.
    """
    height, width = wall.shape
    move_index = jnp.minimum(actions, STAY)
    displacement = jnp.asarray(_MOVE_DISPLACEMENTS)[move_index, orientation]
    target = position + displacement
    inside = (
        (target[:, 0] >= 0) & (target[:, 0] < height) & (target[:, 1] >= 0) & (target[:, 1] < width)
    )
    clipped = jnp.clip(target, 0, jnp.array([height - 1, width - 1]))
    wants_move = (actions < STAY) & inside & ~wall[clipped[:, 0], clipped[:, 1]]
    return jnp.where(wants_move[:, None], target, position), wants_move


def resolve_movement(
    priority: jax.Array,
    position: jax.Array,
    orientation: jax.Array,
    present: jax.Array,
    actions: jax.Array,
    wall: jax.Array,
) -> jax.Array:
    """Simultaneous moves with the conflict rules of the module docstring.

    priority int32 `[N]`: a permutation of 0..N-1 (higher wins a contested cell; draw it uniformly
    at random, e.g. with `randomness.random_ranks`); position int32 `[N, 2]`, orientation int32
    `[N]`, present bool `[N]`, actions int32 `[N]` (only 0-3 move), wall bool `[H, W]`. Returns
    the new positions int32 `[N, 2]`; absent agents keep theirs.
    """
    num_agents = position.shape[0]
    target, wants_move = move_targets(position, orientation, actions, wall)
    mover = wants_move & present

    same_target = jnp.all(target[:, None, :] == target[None, :, :], axis=-1)
    outranked = same_target & mover[None, :] & (priority[None, :] > priority[:, None])
    mover = mover & ~jnp.any(outranked, axis=1)

    target_is_cell_of = jnp.all(target[:, None, :] == position[None, :, :], axis=-1)
    mutual = target_is_cell_of & target_is_cell_of.T

    def block_round(_, carry):
        mover, _ = carry
        stayer = present & ~mover
        into_stayer = jnp.any(target_is_cell_of & stayer[None, :], axis=1)
        swap = jnp.any(mutual & mover[None, :], axis=1)
        mover = mover & ~into_stayer & ~swap
        return mover, jnp.where(mover[:, None], target, position)

    # The new positions are carried through the loop so that XLA materialises them once rather
    # than re-deriving them inside every consumer (observation gathers index with them).
    _, new_position = jax.lax.fori_loop(0, num_agents, block_round, (mover, position))
    return new_position
