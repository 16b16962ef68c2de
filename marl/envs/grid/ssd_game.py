"""The step shared by the games of the SSD reference implementation: Cleanup and Harvest.

Both put the agents on distinct random spawn points, fine FIRE (a 3-wide, 5-long beam; the
shooter pays `fire_cost`, each hit costs the victim `hit_penalty`), optionally tag hit agents out,
and grow apples after the beams. `SSDGame.step` runs the shared phases: absent agents' actions
ignored -> turns -> movement -> eating -> FIRE (all beams at once) -> the game's other beams
(`_other_beams`, Cleanup's CLEAN) -> tag-out (option) -> the game's growth (`_grow`) ->
observations, rewards, info. Truncated at t = `max_steps`.

A game's state class has the fields of `SSDState` and its own (a flax struct subclass).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.base import Info
from marl.envs.grid import maps
from marl.envs.grid.beams import beam_mask, fire_beams, footprint_cells, footprint_offsets
from marl.envs.grid.game import GridGame
from marl.envs.grid.movement import FIRE, STAY, resolve_movement, turn
from marl.envs.grid.observation import (
    agent_codes,
    occupant_index,
    padded_map_words,
    select_rows,
    static_window_words,
    window_observations,
)
from marl.envs.grid.randomness import random_ranks
from marl.envs.grid.spawn import sample_spawn_points
from marl.envs.grid.tag_out import apply_tag_out
from marl.envs.validation import is_int, is_real, require

BEAM_LENGTH = 5
BEAM_WIDTH = 3
FIRE_REWARD_COMPONENTS = ("apples", "fire_cost", "hit_penalty")


@struct.dataclass
class SSDState:
    """Dynamic state shared by the SSD games (N agents, map H x W).

    time int32 `[]` (steps taken); position int32 `[N, 2]` (row, col); orientation int32 `[N]`
    (0 up, 1 right, 2 down, 3 left); present bool `[N]`; removed_until int32 `[N]` (step at which a
    tagged-out agent reappears); apple bool `[H, W]`; fire_ray_length int32 `[N, 3]`: cells covered
    by each ray (left, centre, right) of the agent's FIRE beam in the last step, 0 if it did not
    fire (beams start at `position` / `orientation`).
    """

    time: jax.Array
    position: jax.Array
    orientation: jax.Array
    present: jax.Array
    removed_until: jax.Array
    apple: jax.Array
    fire_ray_length: jax.Array


@dataclasses.dataclass(frozen=True)
class SSDGame(GridGame):
    """Parameters of the SSD games beyond `GridGame`'s. fire_cost: paid by the shooter per FIRE.
    hit_penalty: paid per FIRE ray that hits the agent. tag_out_steps: 0 off; k > 0 removes an
    agent hit by FIRE for k steps.

    A game supplies `state_class`, `_reset_fields` (its own state fields at reset, also the
    defaults of `make_state`), `_map_bits`, `_render_layers` and `_grow`, and optionally
    `_other_beams`, `_step_info` and `_num_random_words` (random words per step for its phases).
    """

    state_class: ClassVar[type]
    reward_names = FIRE_REWARD_COMPONENTS

    fire_cost: float = 1.0
    hit_penalty: float = 50.0
    tag_out_steps: int = 0

    spawn_cells: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    spawn_window_words: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    footprint: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    wall: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

    def _setup(self) -> None:
        """Spawn points, beam offsets, and the reset map's window words from every spawn point
        (the game's own constants must be set before this runs)."""
        super()._setup()
        grid_map = self.grid_map
        object.__setattr__(self, "wall", grid_map.mask(maps.WALL))
        object.__setattr__(self, "footprint", footprint_offsets(BEAM_LENGTH, BEAM_WIDTH))
        spawn_cells = grid_map.cells(maps.SPAWN)
        object.__setattr__(self, "spawn_cells", spawn_cells)
        agents = jnp.zeros(self.num_agents, jnp.int32)
        reset_bits = self._map_bits(self._reset_state(jnp.stack([agents, agents], -1), agents))
        reset_words = padded_map_words(
            np.asarray(reset_bits), len(self.map_channels), self.view_radius
        )
        window_words = static_window_words(
            reset_words, spawn_cells, self.view_radius, grid_map.width + 2 * self.view_radius
        )
        object.__setattr__(self, "spawn_window_words", window_words)

    def _validate(self) -> None:
        super()._validate()
        require(is_int(self.tag_out_steps), "tag_out_steps", "an integer", self.tag_out_steps)
        require(self.tag_out_steps >= 0, "tag_out_steps", ">= 0", self.tag_out_steps)
        for name in ("fire_cost", "hit_penalty"):
            value = getattr(self, name)
            require(is_real(value) and value >= 0, name, "a finite number >= 0", value)

    def reset(self, key: jax.Array) -> tuple[jax.Array, SSDState]:
        """Agents on distinct uniformly drawn spawn points with uniform orientations; the game's
        reset map; t = 0. Returns obs uint8 `[N, 2R+1, 2R+1, C]` and the state."""
        num_agents = self.num_agents
        num_spawn_points = self.spawn_cells.shape[0]
        bits = jax.random.bits(key, (num_spawn_points + num_agents,), jnp.uint32)
        spawn_index = sample_spawn_points(bits[:num_spawn_points], num_agents)
        orientation = (bits[num_spawn_points:] >> 30).astype(jnp.int32)
        state = self._reset_state(jnp.asarray(self.spawn_cells)[spawn_index], orientation)
        # The reset map is fixed: each window's map part is a row of a precomputed table.
        rows = spawn_index * 4 + orientation
        obs = window_observations(
            select_rows(self.spawn_window_words, rows).astype(jnp.uint32),
            state.position,
            state.orientation,
            state.present,
            self.view_radius,
            len(self.map_channels),
            self._num_beam_planes,
            self.agent_id_planes,
        )
        return obs, state

    def step(
        self, key: jax.Array, state: SSDState, actions: jax.Array
    ) -> tuple[jax.Array, SSDState, jax.Array, jax.Array, Info]:
        """One step with `actions` int32 `[N]`; see the module docstring for the phases."""
        num_agents = self.num_agents
        num_spawn_points = self.spawn_cells.shape[0]
        # One threefry call per step: priorities, the game's own words and (tag-out only)
        # respawn points and orientations.
        own_end = num_agents + self._num_random_words()
        num_words = own_end + (num_spawn_points + num_agents) * (self.tag_out_steps > 0)
        bits = jax.random.bits(key, (num_words,), jnp.uint32)
        own_bits = bits[num_agents:own_end]
        height, width = self._shape
        wall = jnp.asarray(self.wall)
        time = state.time + 1
        present = state.present
        actions = jnp.where(present, jnp.asarray(actions, jnp.int32), STAY)

        orientation = turn(state.orientation, actions)
        position = resolve_movement(
            random_ranks(bits[:num_agents]), state.position, orientation, present, actions, wall
        )

        codes = agent_codes(position, orientation, present, self._shape)
        apple = state.apple.reshape(-1)
        eaten = present & apple[position[:, 0] * width + position[:, 1]]
        apple = apple & (codes == 0)
        footprint, blocked = footprint_cells(position, orientation, self.footprint, wall)
        occupant = occupant_index(codes[footprint])
        fires = present & (actions == FIRE)
        hits_taken, hits_dealt, fire_ray_length = fire_beams(fires, blocked, occupant)
        next_state = state.replace(
            time=time,
            position=position,
            orientation=orientation,
            apple=apple.reshape(height, width),
            fire_ray_length=fire_ray_length,
        )
        next_state, own_rewards, own_info = self._other_beams(
            own_bits, next_state, actions, footprint, blocked, occupant
        )

        if self.tag_out_steps > 0:
            present, removed_until, position, orientation = apply_tag_out(
                bits[own_end:],
                time,
                self.tag_out_steps,
                hits_taken > 0,
                present,
                state.removed_until,
                position,
                orientation,
                self.spawn_cells,
            )
            next_state = next_state.replace(
                present=present,
                removed_until=removed_until,
                position=position,
                orientation=orientation,
            )
            codes = agent_codes(position, orientation, present, self._shape)

        next_state = self._grow(own_bits, next_state, codes > 0)
        obs = self.observation(next_state)

        fire_cost = -self.fire_cost * fires.astype(jnp.float32)
        hit_penalty = -self.hit_penalty * hits_taken.astype(jnp.float32)
        reward_vector = jnp.stack(
            [eaten.astype(jnp.float32), fire_cost, hit_penalty, *own_rewards], axis=-1
        )
        # Only the FIRE components are paid; a game's own components are measurements.
        reward = reward_vector[:, : len(FIRE_REWARD_COMPONENTS)].sum(axis=-1)
        info = {
            "apples_eaten": eaten.astype(jnp.int32),
            "fires": fires.astype(jnp.int32),
            "hits_taken": hits_taken,
            "hits_dealt": hits_dealt,
            **own_info,
            "present": present,
            **self._step_info(next_state),
            "apple_count": next_state.apple.sum(dtype=jnp.int32),
            "reward_vector": reward_vector,
        }
        done = time >= self.max_steps
        return obs, next_state, reward, done, info

    def beam_masks(self, state) -> tuple[jax.Array, ...]:
        """bool `[H, W]` per beam type (`beam_channels`): cells covered in the last step."""
        return tuple(
            beam_mask(state.position, state.orientation, ray_length, self.footprint, self._shape)
            for ray_length in self._ray_lengths(state)
        )

    def make_state(
        self,
        position: Sequence[Sequence[int]],
        orientation: Sequence[int],
        *,
        present: Sequence[bool] | None = None,
        removed_until: Sequence[int] | None = None,
        time: int = 0,
        **game_fields,
    ):
        """A hand-made state (tests, demos): positions `[N, 2]`, orientations `[N]`, present
        `[N]` (default all), removed_until `[N]` (default 0), step counter `time`, and the game's
        own fields by name (default: as at reset, e.g. `apple` bool `[H, W]`). No beams in the
        last step."""
        shape = (self.num_agents,)
        state = self._reset_state(
            jnp.asarray(position, jnp.int32).reshape(self.num_agents, 2),
            jnp.asarray(orientation, jnp.int32).reshape(shape),
        )
        unknown = sorted(set(game_fields) - set(self._reset_fields()))
        if unknown:
            raise ValueError(
                f"make_state: unknown field(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(self._reset_fields()))}"
            )
        overrides = {
            name: jnp.asarray(value, getattr(state, name).dtype)
            for name, value in game_fields.items()
            if value is not None
        }
        if present is not None:
            overrides["present"] = jnp.asarray(present, bool)
        if removed_until is not None:
            overrides["removed_until"] = jnp.asarray(removed_until, jnp.int32)
        return state.replace(time=jnp.asarray(time, jnp.int32), **overrides)

    # ------------------------------------------------------------------------- game's part

    def _reset_fields(self) -> dict[str, jax.Array]:
        """The game's own state fields (and `apple`) at reset."""
        raise NotImplementedError

    def _ray_lengths(self, state) -> tuple[jax.Array, ...]:
        """int32 `[N, 3]` per beam type: ray lengths of the last step (FIRE first)."""
        return (state.fire_ray_length,)

    def _other_beams(self, bits, state, actions, footprint, blocked, occupant):
        """The game's beams other than FIRE, after FIRE: returns the state, its reward
        components (float32 `[N]` each, measured, not paid) and its info entries."""
        return state, [], {}

    def _num_random_words(self) -> int:
        """How many random words the game's own phases use per step."""
        return 0

    def _step_info(self, state) -> dict[str, jax.Array]:
        """The game's info entries computed from the state after the step."""
        return {}

    def _grow(self, bits: jax.Array, state, agent_here: jax.Array):
        """State after the growth phase; agent_here bool `[H * W]` marks the cells of present
        agents (after tag-out)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ helpers

    def _reset_state(self, position: jax.Array, orientation: jax.Array):
        """The state at t = 0 with agents at `position` `[N, 2]` facing `orientation` `[N]`."""
        num_agents = self.num_agents
        return self.state_class(
            time=jnp.zeros((), jnp.int32),
            position=position,
            orientation=orientation,
            present=jnp.ones(num_agents, bool),
            removed_until=jnp.zeros(num_agents, jnp.int32),
            fire_ray_length=jnp.zeros((num_agents, BEAM_WIDTH), jnp.int32),
            **self._reset_fields(),
        )
