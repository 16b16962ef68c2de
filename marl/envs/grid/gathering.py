"""Gathering: the two-player resource-competition game of Leibo et al. 2017 (spec:
`specs/envs/gathering.md`).

Two players collect apples (+1 each) from a diamond of 13 apple cells in the middle of a 13 x 33
map. A 1-wide beam that runs to the wall hits the first player on its way; a player hit
`hits_to_tag` times is tagged out of the game for `n_tagged` steps. Beams cost and earn nothing.
The reset is deterministic: player 0 on its start cell `1` facing right, player 1 on `2` facing
left, all 13 apples present, hit marks 0, t = 0.

Step order (spec §4): the counter advances to t and the actions of absent (tagged-out) players are
ignored -> turns -> movement (shared conflict rules: a contested cell goes to a uniformly random
player, swaps are blocked) -> eating (+1; the cell's respawn step becomes t + `n_apple`) -> beams
from the post-move cells, all traced against the same positions, each to the wall (exclusive) or
the first present player (inclusive, hit) -> hits: the victim's mark += 1; a player whose mark
reaches `hits_to_tag` is tagged out (mark reset to 0) and leaves the map until step t + `n_tagged`
-> respawn of the players whose absence ends at t, on their start cell with their start
orientation, or on the nearest free non-wall cell if the other player stands there -> apples
return on apple cells whose respawn step is <= t and that hold no present player -> observations,
rewards, info. Truncated at t = `max_steps`; the game never terminates.

With `n_tagged` = 0 nobody is ever removed: hits are still counted, a mark that reaches
`hits_to_tag` is still reset to 0 and `tagged_out` still reports the event.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.base import Info
from marl.envs.grid import maps
from marl.envs.grid.beams import beam_mask, fire_beams, footprint_cells, footprint_offsets
from marl.envs.grid.game import GridGame, map_bit
from marl.envs.grid.movement import (
    FIRE,
    FORWARD_VECTORS,
    STAY,
    resolve_movement,
    right_vectors,
    turn,
)
from marl.envs.grid.observation import (
    gather_flat,
    padded_map_words,
    window_indices,
    window_observations,
)
from marl.envs.grid.randomness import random_ranks
from marl.envs.grid.render import APPLE_COLOUR, FIRE_BEAM_COLOUR, WALL_COLOUR
from marl.envs.validation import is_int, require

BEAM = FIRE  # action 7: the engine's FIRE index, Gathering's tagging beam
NUM_ACTIONS = 8
NUM_PLAYERS = 2
MAP_CHANNELS = ("wall", "apple", "orchard")
BEAM_CHANNELS = ("beam",)
REWARD_COMPONENTS = ("apples",)
START_CHARS = (maps.START_0, maps.START_1)
START_ORIENTATIONS = (1, 3)  # player 0 faces right, player 1 faces left
PLAYER_COLOURS = ((0, 0, 255), (255, 0, 0))  # player 0 blue, player 1 red

_WALL_BIT = map_bit(MAP_CHANNELS, "wall")
_APPLE_BIT = map_bit(MAP_CHANNELS, "apple")
_ORCHARD_BIT = map_bit(MAP_CHANNELS, "orchard")


@struct.dataclass
class GatheringState:
    """Dynamic state of Gathering (N = 2 players, map H x W, A = 13 apple cells).

    time int32 `[]` (steps taken); position int32 `[N, 2]` (row, col; a tagged-out player keeps
    its last cell); orientation int32 `[N]` (0 up, 1 right, 2 down, 3 left); present bool `[N]`;
    hit_marks int32 `[N]` (hits taken since the last tag-out); removed_until int32 `[N]` (step at
    which a tagged-out player reappears); apple bool `[H, W]` (only ever on apple cells);
    apple_respawn_step int32 `[A]` (per apple cell, in `GatheringLayout.apple_cells` order: the
    first step at which an eaten apple may reappear); beam_ray_length int32 `[N, 1]`: cells
    covered by each player's beam in the last step, 0 if it did not fire (beams start at
    `position` / `orientation`).
    """

    time: jax.Array
    position: jax.Array
    orientation: jax.Array
    present: jax.Array
    hit_marks: jax.Array
    removed_until: jax.Array
    apple: jax.Array
    apple_respawn_step: jax.Array
    beam_ray_length: jax.Array


@dataclasses.dataclass(frozen=True, eq=False)
class GatheringLayout:
    """Static arrays derived from the map at construction (numpy).

    wall bool `[H, W]`; static_bits int32 `[H, W]`: WALL and ORCHARD channel bits; apple_cells
    int32 `[A, 2]` (row, col) in row-major order and apple_flat int32 `[A]` (row * W + col);
    start_position int32 `[N, 2]`, start_orientation int32 `[N]`; respawn_cells int32 `[N, 2, 2]`:
    for each player the first two non-wall cells in order of Manhattan distance from its start
    cell (ties: smaller row, then smaller column), i.e. its start cell and the nearest other cell
    (the other player blocks at most one cell); beam_offsets int32 `[4, 1, L, 2]`: a 1-wide ray as
    long as the map is wide or high; static_words uint32 `[(H + 2R) * (W + 2R)]`: the padded
    observation words of the map without apples (`padded_map_words`).
    """

    wall: np.ndarray
    static_bits: np.ndarray
    apple_cells: np.ndarray
    apple_flat: np.ndarray
    start_position: np.ndarray
    start_orientation: np.ndarray
    respawn_cells: np.ndarray
    beam_offsets: np.ndarray
    static_words: np.ndarray


def respawn_order(wall: np.ndarray, start: np.ndarray) -> np.ndarray:
    """int32 `[K, 2]`: every non-wall cell of `wall` bool `[H, W]` by Manhattan distance from
    `start` (row, col), ties to the smaller row, then the smaller column."""
    cells = np.argwhere(~wall)
    distance = np.abs(cells - start).sum(axis=1)
    return cells[np.lexsort((cells[:, 1], cells[:, 0], distance))].astype(np.int32)


@dataclasses.dataclass(frozen=True)
class Gathering(GridGame):
    """Gathering on the 13 x 33 map; parameters as in the spec's config table.

    num_agents: must be 2. max_steps: truncation horizon. view_radius: R, observations are
    (2R+1) x (2R+1) x 9. n_apple: an eaten apple reappears `n_apple` steps later (later while a
    present player stands on its cell). n_tagged: a tagged player is absent for `n_tagged` steps;
    0 disables removal (hits, mark resets and `tagged_out` are still counted). hits_to_tag: hits
    that tag a player out. show_beams: one observation plane with the cells the beams covered in
    the last step. agent_id_planes: one observation plane per player with its identity.

    Constants set at construction: `layout` (`GatheringLayout`) and `reset_observation` uint8
    `[N, 2R+1, 2R+1, C]` (the reset is deterministic, so is its observation).
    """

    map_name = "gathering"
    map_channels = MAP_CHANNELS
    beam_channels = BEAM_CHANNELS
    beam_colours = (FIRE_BEAM_COLOUR,)
    max_agents = NUM_PLAYERS
    action_count = NUM_ACTIONS
    reward_names = REWARD_COMPONENTS

    num_agents: int = NUM_PLAYERS
    n_apple: int = 10
    n_tagged: int = 25
    hits_to_tag: int = 2

    layout: GatheringLayout = dataclasses.field(init=False, repr=False, compare=False)
    reset_observation: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

    def _validate(self) -> None:
        require(
            is_int(self.num_agents) and self.num_agents == NUM_PLAYERS,
            "num_agents",
            "2 (Gathering is a two-player game)",
            self.num_agents,
        )
        super()._validate()
        minimums = {"n_apple": 1, "n_tagged": 0, "hits_to_tag": 1}
        for name, minimum in minimums.items():
            value = getattr(self, name)
            require(is_int(value) and value >= minimum, name, f"an integer >= {minimum}", value)

    def _setup(self) -> None:
        super()._setup()
        grid_map = self.grid_map
        wall = grid_map.mask(maps.WALL)
        apple = grid_map.mask(maps.APPLE)
        apple_cells = grid_map.cells(maps.APPLE)
        start_position = np.concatenate([grid_map.cells(char) for char in START_CHARS])
        static_bits = (wall * _WALL_BIT + apple * _ORCHARD_BIT).astype(np.int32)
        layout = GatheringLayout(
            wall=wall,
            static_bits=static_bits,
            apple_cells=apple_cells,
            apple_flat=(apple_cells[:, 0] * grid_map.width + apple_cells[:, 1]).astype(np.int32),
            start_position=start_position,
            start_orientation=np.array(START_ORIENTATIONS, np.int32),
            respawn_cells=np.stack([respawn_order(wall, start)[:2] for start in start_position]),
            beam_offsets=footprint_offsets(max(self._shape), 1),
            static_words=padded_map_words(static_bits, len(MAP_CHANNELS), self.view_radius),
        )
        object.__setattr__(self, "layout", layout)
        # The reset is deterministic: its observation is computed once, here.
        object.__setattr__(
            self, "reset_observation", np.asarray(jax.jit(self.observation)(self._reset_state()))
        )

    # ----------------------------------------------------------------------------- contract

    def reset(self, key: jax.Array) -> tuple[jax.Array, GatheringState]:
        """The deterministic start (`key` is unused). Returns obs uint8 `[N, 2R+1, 2R+1, C]`
        (`reset_observation`, computed at construction) and the state."""
        del key
        return jnp.asarray(self.reset_observation), self._reset_state()

    def step(
        self, key: jax.Array, state: GatheringState, actions: jax.Array
    ) -> tuple[jax.Array, GatheringState, jax.Array, jax.Array, Info]:
        """One step with `actions` int32 `[N]`; see the module docstring for the phases."""
        layout = self.layout
        wall = jnp.asarray(layout.wall)
        time = state.time + 1
        present = state.present
        actions = jnp.where(present, jnp.asarray(actions, jnp.int32), STAY)

        orientation = turn(state.orientation, actions)
        priority = random_ranks(jax.random.bits(key, (NUM_PLAYERS,), jnp.uint32))
        position = resolve_movement(priority, state.position, orientation, present, actions, wall)

        # Eating: which player stands on which apple cell (A x N comparisons, no grid scatter).
        apple_here = state.apple.reshape(-1)[jnp.asarray(layout.apple_flat)]
        on_cell = self._on_apple_cells(position, present)
        eaten_by = apple_here[:, None] & on_cell
        eaten = jnp.any(eaten_by, axis=0)
        eaten_cell = jnp.any(eaten_by, axis=1)
        apple_here = apple_here & ~eaten_cell
        respawn_step = jnp.where(eaten_cell, time + self.n_apple, state.apple_respawn_step)

        footprint, blocked = footprint_cells(position, orientation, layout.beam_offsets, wall)
        beams = present & (actions == BEAM)
        hits_taken, hits_dealt, beam_ray_length = fire_beams(
            beams, blocked, self._occupant(footprint, position, present)
        )

        hit_marks = state.hit_marks + hits_taken
        tagged = (hits_taken > 0) & (hit_marks >= self.hits_to_tag)
        hit_marks = jnp.where(tagged, 0, hit_marks)
        removed_until = state.removed_until
        if self.n_tagged > 0:
            present = present & ~tagged
            removed_until = jnp.where(tagged, time + self.n_tagged, removed_until)
            position, orientation, present = self._respawn(
                time, position, orientation, present, removed_until
            )

        free = ~jnp.any(self._on_apple_cells(position, present), axis=1)
        apple_here = apple_here | (free & (respawn_step <= time))
        apple = (
            jnp.zeros(self._shape[0] * self._shape[1], bool)
            .at[layout.apple_flat]
            .set(apple_here, indices_are_sorted=True, unique_indices=True)
        )
        next_state = GatheringState(
            time=time,
            position=position,
            orientation=orientation,
            present=present,
            hit_marks=hit_marks,
            removed_until=removed_until,
            apple=apple.reshape(self._shape),
            apple_respawn_step=respawn_step,
            beam_ray_length=beam_ray_length,
        )
        obs = self.observation(next_state)
        reward = eaten.astype(jnp.float32)
        info = {
            "apples_eaten": eaten.astype(jnp.int32),
            "beam_uses": beams.astype(jnp.int32),
            "hits_dealt": hits_dealt,
            "hits_taken": hits_taken,
            "tagged_out": tagged.astype(jnp.int32),
            "present": present,
            "apple_count": apple_here.sum(dtype=jnp.int32),
            "reward_vector": reward[:, None],
        }
        return obs, next_state, reward, time >= self.max_steps, info

    def observation(self, state: GatheringState) -> jax.Array:
        """uint8 `[N, 2R+1, 2R+1, C]`: the observations of `state`, as `GridGame.observation`.

        Without `show_beams` the windows are gathered from the constant words of the map without
        apples and the apples are added like the agents, with a scatter of N x A entries: no
        per-step padded map.
        """
        if self.show_beams:
            return super().observation(state)
        radius = self.view_radius
        size = 2 * radius + 1
        words = gather_flat(
            jnp.asarray(self.layout.static_words),
            window_indices(state.position, state.orientation, radius, self._shape[1] + 2 * radius),
        )
        apple_index = self._apple_window_index(state)
        words = words.reshape(-1).at[apple_index.reshape(-1)].add(_APPLE_BIT, mode="drop")
        return window_observations(
            words.reshape(NUM_PLAYERS, size * size),
            state.position,
            state.orientation,
            state.present,
            radius,
            len(MAP_CHANNELS),
            0,
            self.agent_id_planes,
        )

    def beam_masks(self, state: GatheringState) -> tuple[jax.Array, ...]:
        """(bool `[H, W]`,): the cells the beams covered in the last step."""
        mask = beam_mask(
            state.position,
            state.orientation,
            state.beam_ray_length,
            self.layout.beam_offsets,
            self._shape,
        )
        return (mask,)

    def make_state(
        self,
        position: Sequence[Sequence[int]],
        orientation: Sequence[int],
        *,
        present: Sequence[bool] | None = None,
        removed_until: Sequence[int] | None = None,
        hit_marks: Sequence[int] | None = None,
        time: int = 0,
        apple: np.ndarray | None = None,
        apple_respawn_step: Sequence[int] | None = None,
    ) -> GatheringState:
        """A hand-made state (tests, demos): positions `[N, 2]`, orientations `[N]`, present `[N]`
        (default both), removed_until `[N]` (default 0; an absent player reappears in the step
        that reaches it) and hit_marks `[N]` (default 0), step counter `time`,
        apple bool `[H, W]` (default all 13; apples only on apple cells) and apple_respawn_step
        int32 `[A]` (default 0: a missing apple returns on the next step its cell is free). No
        beams in the last step."""
        state = self._reset_state()
        overrides = {
            "position": jnp.asarray(position, jnp.int32).reshape(NUM_PLAYERS, 2),
            "orientation": jnp.asarray(orientation, jnp.int32).reshape(NUM_PLAYERS),
            "time": jnp.asarray(time, jnp.int32),
        }
        if apple is not None:
            apple = np.asarray(apple, bool)
            shape_ok = apple.shape == self._shape
            off_cells = int((apple & ~self.grid_map.mask(maps.APPLE)).sum()) if shape_ok else 0
            require(
                shape_ok and off_cells == 0,
                "apple",
                f"a bool array of shape {self._shape} true only on apple cells",
                f"shape {apple.shape}, {off_cells} apple(s) off the apple cells",
            )
            overrides["apple"] = jnp.asarray(apple)
        optional = {
            "present": (present, bool),
            "removed_until": (removed_until, jnp.int32),
            "hit_marks": (hit_marks, jnp.int32),
            "apple_respawn_step": (apple_respawn_step, jnp.int32),
        }
        for name, (value, dtype) in optional.items():
            if value is not None:
                overrides[name] = jnp.asarray(value, dtype).reshape(getattr(state, name).shape)
        return state.replace(**overrides)

    # --------------------------------------------------------------------- GridGame's hooks

    def _map_bits(self, state: GatheringState) -> jax.Array:
        return jnp.asarray(self.layout.static_bits) | jnp.where(state.apple, _APPLE_BIT, 0)

    def _render_layers(self, state: GatheringState):
        return [(self.layout.wall, WALL_COLOUR), (np.asarray(state.apple), APPLE_COLOUR)]

    def _agent_colour(self, index: int) -> tuple[int, int, int]:
        return PLAYER_COLOURS[index]

    # ------------------------------------------------------------------------------ helpers

    def _reset_state(self) -> GatheringState:
        """The state at t = 0: players on their start cells, all apples, no marks, no beams."""
        layout = self.layout
        zeros = jnp.zeros(NUM_PLAYERS, jnp.int32)
        return GatheringState(
            time=jnp.zeros((), jnp.int32),
            position=jnp.asarray(layout.start_position),
            orientation=jnp.asarray(layout.start_orientation),
            present=jnp.ones(NUM_PLAYERS, bool),
            hit_marks=zeros,
            removed_until=zeros,
            apple=jnp.asarray(self.grid_map.mask(maps.APPLE)),
            apple_respawn_step=jnp.zeros(layout.apple_flat.shape[0], jnp.int32),
            beam_ray_length=jnp.zeros((NUM_PLAYERS, 1), jnp.int32),
        )

    def _on_apple_cells(self, position: jax.Array, present: jax.Array) -> jax.Array:
        """bool `[A, N]`: present player n stands on apple cell a."""
        cells = jnp.asarray(self.layout.apple_cells)
        return jnp.all(cells[:, None, :] == position[None, :, :], axis=-1) & present[None, :]

    def _apple_window_index(self, state: GatheringState) -> jax.Array:
        """int32 `[N, A]`: flat index (n * (2R+1)^2 + u * (2R+1) + v) of window cell (u, v) of
        player n that shows apple cell a, or N * (2R+1)^2 if the cell holds no apple or is out of
        view."""
        radius = self.view_radius
        size = 2 * radius + 1
        layout = self.layout
        offset = jnp.asarray(layout.apple_cells)[None, :, :] - state.position[:, None, :]
        ahead = jnp.sum(offset * jnp.asarray(FORWARD_VECTORS)[state.orientation][:, None], -1)
        rightward = jnp.sum(offset * jnp.asarray(right_vectors())[state.orientation][:, None], -1)
        apple_here = state.apple.reshape(-1)[jnp.asarray(layout.apple_flat)]
        visible = (jnp.abs(ahead) <= radius) & (jnp.abs(rightward) <= radius) & apple_here
        viewer = jnp.arange(NUM_PLAYERS, dtype=jnp.int32)[:, None]
        cell = viewer * size * size + (radius - ahead) * size + radius + rightward
        return jnp.where(visible, cell, NUM_PLAYERS * size * size)

    def _occupant(self, footprint: jax.Array, position: jax.Array, present: jax.Array) -> jax.Array:
        """int32 `[N, 1, L]`: index of the present player on each beam cell (flat indices
        `footprint` `[N, 1, L]`), -1 if none."""
        width = self._shape[1]
        player_flat = position[:, 0] * width + position[:, 1]
        here = (footprint[..., None] == player_flat) & present
        return jnp.max(jnp.where(here, jnp.arange(NUM_PLAYERS), -1), axis=-1)

    def _respawn(
        self,
        time: jax.Array,
        position: jax.Array,
        orientation: jax.Array,
        present: jax.Array,
        removed_until: jax.Array,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Bring back the absent players whose absence ends at step `time`: on their start cell
        with their start orientation, or on the nearest free cell if the other (present) player
        stands there. Returns the new position `[N, 2]`, orientation `[N]` and present `[N]`."""
        layout = self.layout
        respawn_cells = jnp.asarray(layout.respawn_cells)
        returning = ~present & (removed_until == time)
        # With two players, the other one is the reversed axis.
        start_taken = present[::-1] & jnp.all(position[::-1] == respawn_cells[:, 0], axis=-1)
        cell = jnp.where(start_taken[:, None], respawn_cells[:, 1], respawn_cells[:, 0])
        position = jnp.where(returning[:, None], cell, position)
        orientation = jnp.where(returning, jnp.asarray(layout.start_orientation), orientation)
        return position, orientation, present | returning
