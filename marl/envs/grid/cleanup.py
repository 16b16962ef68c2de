"""Cleanup: a public-goods sequential social dilemma (spec: `specs/envs/cleanup.md`).

Apples (+1) grow in the orchard only while the river is clean enough; cleaning the river earns
nothing. Default rules reproduce the SSD reference implementation (Vinitsky et al.) in
distribution; the grid engine (movement, beams, observations, tag-out) lives in the sibling
modules and is shared with Harvest and Gathering.

Step order: absent agents' actions ignored -> turns -> movement -> eating -> beams (FIRE in
parallel, CLEAN sequentially in a random order) -> tag-out (option) -> apple and waste spawning
from the post-cleaning map -> observations, rewards, info. Truncated at t = `max_steps`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.base import Env, Info
from marl.envs.grid import maps
from marl.envs.grid.beams import (
    beam_mask,
    clean_beams,
    fire_beams,
    footprint_cells,
    footprint_offsets,
)
from marl.envs.grid.movement import FIRE, STAY, resolve_movement, turn
from marl.envs.grid.observation import (
    AGENT_CHANNELS,
    FACING_CHANNELS,
    agent_codes,
    egocentric_observations,
    global_planes,
    occupant_index,
    padded_map_words,
    select_rows,
    static_window_words,
    window_observations,
)
from marl.envs.grid.randomness import cell_uniforms, random_ranks, uniform_from_bits
from marl.envs.grid.render import (
    APPLE_COLOUR,
    CLEAN_BEAM_COLOUR,
    FIRE_BEAM_COLOUR,
    RIVER_COLOUR,
    WALL_COLOUR,
    WASTE_COLOUR,
    agent_colour,
    paint,
    upscale,
)
from marl.envs.grid.spawn import sample_spawn_points
from marl.envs.grid.tag_out import apply_tag_out

CLEAN = 8
NUM_ACTIONS = 9
BEAM_LENGTH = 5
BEAM_WIDTH = 3
WASTE_SPAWN_MODES = ("per_cell", "per_step")
REWARD_COMPONENTS = ("apples", "fire_cost", "hit_penalty", "waste_cleaned")
MAP_CHANNELS = ("wall", "apple", "waste", "river_clean", "stream", "orchard")
BEAM_CHANNELS = ("fire_beam", "clean_beam")
MAX_AGENTS = 10

_WALL_BIT = 1 << MAP_CHANNELS.index("wall")
_APPLE_BIT = 1 << MAP_CHANNELS.index("apple")
_WASTE_BIT = 1 << MAP_CHANNELS.index("waste")
_RIVER_CLEAN_BIT = 1 << MAP_CHANNELS.index("river_clean")
_STREAM_BIT = 1 << MAP_CHANNELS.index("stream")
_ORCHARD_BIT = 1 << MAP_CHANNELS.index("orchard")
_FIRE_BEAM_BIT = 1 << len(MAP_CHANNELS)
_CLEAN_BEAM_BIT = 1 << (len(MAP_CHANNELS) + 1)


@struct.dataclass
class CleanupState:
    """Dynamic state of one Cleanup episode (N agents, map H x W).

    time int32 `[]` (steps taken); position int32 `[N, 2]` (row, col); orientation int32 `[N]`
    (0 up, 1 right, 2 down, 3 left); present bool `[N]`; removed_until int32 `[N]` (step at which a
    tagged-out agent reappears); waste, apple bool `[H, W]`; fire_ray_length, clean_ray_length
    int32 `[N, 3]`: cells covered by each ray (left, centre, right) of the agent's FIRE / CLEAN beam
    in the last step, 0 if it did not use that beam (beams start at `position` / `orientation`).
    """

    time: jax.Array
    position: jax.Array
    orientation: jax.Array
    present: jax.Array
    removed_until: jax.Array
    waste: jax.Array
    apple: jax.Array
    fire_ray_length: jax.Array
    clean_ray_length: jax.Array


@dataclasses.dataclass(frozen=True, eq=False)
class CleanupLayout:
    """Static arrays derived from the map and the config at construction (numpy).

    Masks bool `[H, W]`: wall, waste_capable (`H` + `R`), orchard, stream, initial_waste (`H`).
    Flat cell lists int32: orchard_cells `[103]`, waste_capable_cells `[119]`; spawn_cells int32
    `[10, 2]`. static_bits int32 `[H, W]`: WALL, STREAM and ORCHARD channel bits.
    spawn_window_words uint32 `[10 * 4, (2R+1)^2]`: reset-map window words per spawn point and
    orientation. footprint int32 `[4, 3, 5, 2]`: beam cell offsets per orientation.
    """

    wall: np.ndarray
    waste_capable: np.ndarray
    orchard: np.ndarray
    stream: np.ndarray
    initial_waste: np.ndarray
    orchard_cells: np.ndarray
    waste_capable_cells: np.ndarray
    spawn_cells: np.ndarray
    static_bits: np.ndarray
    spawn_window_words: np.ndarray
    footprint: np.ndarray


def map_channel_bits(static_bits, waste_capable, waste, apple):
    """int32 `[H, W]`: bit c set where map channel c (`MAP_CHANNELS`) is on, from static_bits
    int32 `[H, W]` (WALL, STREAM, ORCHARD) and bool `[H, W]` masks (numpy or jax arrays)."""
    xp = np if isinstance(waste, np.ndarray) else jnp
    return (
        static_bits
        | xp.where(apple, _APPLE_BIT, 0)
        | xp.where(waste, _WASTE_BIT, 0)
        | xp.where(waste_capable & ~waste, _RIVER_CLEAN_BIT, 0)
    ).astype(xp.int32)


def _require(condition: bool, name: str, allowed: str, value) -> None:
    """Raise `ValueError` naming parameter `name` and what is allowed unless `condition`."""
    if not condition:
        raise ValueError(f"{name} must be {allowed}; got {value!r}")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return _is_int(value) or (isinstance(value, (float, np.floating)) and math.isfinite(value))


@dataclasses.dataclass(frozen=True)
class Cleanup(Env):
    """Cleanup on the 25 x 18 reference map; parameters as in the spec's config table.

    num_agents: 1..10 agents. max_steps: truncation horizon. view_radius: R, observations are
    (2R+1) x (2R+1). fire_cost: paid by the shooter per FIRE. hit_penalty: paid per FIRE ray that
    hits the agent. tag_out_steps: 0 off; k > 0 removes an agent hit by FIRE for k steps.
    waste_spawn_mode: "per_cell" (reference) or "per_step" (Melting Pot). waste_spawn_prob: p_w.
    pollution_stops_at_depletion: no waste spawns while the waste density is at or above
    threshold_depletion. waste_spawn_delay: waste may spawn at step t only if t > delay.
    apple_respawn_prob: largest apple growth probability. threshold_depletion,
    threshold_restoration: waste densities at which apple growth is 0 / maximal. show_beams: FIRE
    and CLEAN beam observation planes. agent_id_planes: one observation plane per agent.
    """

    num_agents: int = 5
    max_steps: int = 1000
    view_radius: int = 7
    fire_cost: float = 1.0
    hit_penalty: float = 50.0
    tag_out_steps: int = 0
    waste_spawn_mode: str = "per_cell"
    waste_spawn_prob: float = 0.5
    pollution_stops_at_depletion: bool = True
    waste_spawn_delay: int = 0
    apple_respawn_prob: float = 0.05
    threshold_depletion: float = 0.4
    threshold_restoration: float = 0.0
    show_beams: bool = False
    agent_id_planes: bool = False

    grid_map: maps.GridMap = dataclasses.field(init=False, repr=False, compare=False)
    layout: CleanupLayout = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate()
        grid_map = maps.load_map("cleanup")
        object.__setattr__(self, "grid_map", grid_map)
        object.__setattr__(self, "layout", self._build_layout(grid_map))

    def _validate(self) -> None:
        integers = ("num_agents", "max_steps", "view_radius", "tag_out_steps", "waste_spawn_delay")
        for name in integers:
            _require(_is_int(getattr(self, name)), name, "an integer", getattr(self, name))
        _require(
            1 <= self.num_agents <= MAX_AGENTS,
            "num_agents",
            f"in 1..{MAX_AGENTS} (one spawn point each)",
            self.num_agents,
        )
        _require(self.max_steps >= 1, "max_steps", ">= 1", self.max_steps)
        _require(self.view_radius >= 1, "view_radius", ">= 1", self.view_radius)
        for name in ("tag_out_steps", "waste_spawn_delay"):
            _require(getattr(self, name) >= 0, name, ">= 0", getattr(self, name))
        for name in ("fire_cost", "hit_penalty"):
            value = getattr(self, name)
            _require(_is_real(value) and value >= 0, name, "a finite number >= 0", value)
        for name in (
            "waste_spawn_prob",
            "apple_respawn_prob",
            "threshold_depletion",
            "threshold_restoration",
        ):
            value = getattr(self, name)
            _require(_is_real(value) and 0 <= value <= 1, name, "a number in [0, 1]", value)
        _require(
            self.threshold_restoration < self.threshold_depletion,
            "threshold_restoration",
            f"smaller than threshold_depletion ({self.threshold_depletion})",
            self.threshold_restoration,
        )
        _require(
            self.waste_spawn_mode in WASTE_SPAWN_MODES,
            "waste_spawn_mode",
            f"one of {', '.join(WASTE_SPAWN_MODES)}",
            self.waste_spawn_mode,
        )
        for name in ("pollution_stops_at_depletion", "show_beams", "agent_id_planes"):
            value = getattr(self, name)
            _require(isinstance(value, (bool, np.bool_)), name, "true or false", value)

    def _build_layout(self, grid_map: maps.GridMap) -> CleanupLayout:
        wall = grid_map.mask(maps.WALL)
        waste_capable = grid_map.mask(maps.RIVER_WASTE + maps.RIVER_CLEAN)
        orchard = grid_map.mask(maps.ORCHARD)
        stream = grid_map.mask(maps.STREAM)
        initial_waste = grid_map.mask(maps.RIVER_WASTE)
        static_bits = (wall * _WALL_BIT + stream * _STREAM_BIT + orchard * _ORCHARD_BIT).astype(
            np.int32
        )
        initial_bits = map_channel_bits(
            static_bits, waste_capable, initial_waste, np.zeros_like(wall)
        )
        initial_words = padded_map_words(initial_bits, len(MAP_CHANNELS), self.view_radius)
        spawn_cells = grid_map.cells(maps.SPAWN)
        padded_width = grid_map.width + 2 * self.view_radius
        return CleanupLayout(
            wall=wall,
            waste_capable=waste_capable,
            orchard=orchard,
            stream=stream,
            initial_waste=initial_waste,
            orchard_cells=np.flatnonzero(orchard).astype(np.int32),
            waste_capable_cells=np.flatnonzero(waste_capable).astype(np.int32),
            spawn_cells=spawn_cells,
            static_bits=static_bits,
            spawn_window_words=static_window_words(
                initial_words, spawn_cells, self.view_radius, padded_width
            ),
            footprint=footprint_offsets(BEAM_LENGTH, BEAM_WIDTH),
        )

    # ----------------------------------------------------------------------------- contract

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Names of the observation channels, in order."""
        names = MAP_CHANNELS + AGENT_CHANNELS
        if self.show_beams:
            names += BEAM_CHANNELS
        if self.agent_id_planes:
            names += tuple(f"agent_{index}" for index in range(self.num_agents))
        return names

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        size = 2 * self.view_radius + 1
        return (size, size, len(self.channel_names))

    @property
    def global_state_channel_names(self) -> tuple[str, ...]:
        """Names of the global-state channels, in order."""
        agents = tuple(f"agent_{index}" for index in range(self.num_agents))
        return MAP_CHANNELS + agents + FACING_CHANNELS

    @property
    def global_state_shape(self) -> tuple[int, int, int]:
        return (self.grid_map.height, self.grid_map.width, len(self.global_state_channel_names))

    @property
    def reward_components(self) -> tuple[str, ...]:
        return REWARD_COMPONENTS

    @property
    def waste_capable_cells(self) -> int:
        """Size of the waste-capable area (denominator of the waste density)."""
        return int(self.layout.waste_capable_cells.shape[0])

    def reset(self, key: jax.Array) -> tuple[jax.Array, CleanupState]:
        """Agents on distinct uniformly drawn spawn points with uniform orientations; waste on the
        `H` cells, no apples, t = 0. Returns obs uint8 `[N, 2R+1, 2R+1, C]` and the state."""
        layout = self.layout
        num_agents = self.num_agents
        num_spawn_points = layout.spawn_cells.shape[0]
        bits = jax.random.bits(key, (num_spawn_points + num_agents,), jnp.uint32)
        spawn_index = sample_spawn_points(bits[:num_spawn_points], num_agents)
        orientation = (bits[num_spawn_points:] >> 30).astype(jnp.int32)
        state = CleanupState(
            time=jnp.zeros((), jnp.int32),
            position=jnp.asarray(layout.spawn_cells)[spawn_index],
            orientation=orientation,
            present=jnp.ones(num_agents, bool),
            removed_until=jnp.zeros(num_agents, jnp.int32),
            waste=jnp.asarray(layout.initial_waste),
            apple=jnp.zeros(layout.wall.shape, bool),
            fire_ray_length=jnp.zeros((num_agents, BEAM_WIDTH), jnp.int32),
            clean_ray_length=jnp.zeros((num_agents, BEAM_WIDTH), jnp.int32),
        )
        # The reset map is fixed: each window's map part is a row of a precomputed table.
        rows = spawn_index * 4 + orientation
        obs = window_observations(
            select_rows(layout.spawn_window_words, rows).astype(jnp.uint32),
            state.position,
            state.orientation,
            state.present,
            self.view_radius,
            len(MAP_CHANNELS),
            len(BEAM_CHANNELS) if self.show_beams else 0,
            self.agent_id_planes,
        )
        return obs, state

    def step(
        self, key: jax.Array, state: CleanupState, actions: jax.Array
    ) -> tuple[jax.Array, CleanupState, jax.Array, jax.Array, Info]:
        """One step with `actions` int32 `[N]`; see the module docstring for the phases."""
        layout = self.layout
        num_agents = self.num_agents
        num_spawn_points = layout.spawn_cells.shape[0]
        # One threefry call per step: priorities, CLEAN order, waste success, the seed of the
        # per-cell draws and (tag-out only) respawn points and orientations.
        num_words = 2 * num_agents + 3 + (num_spawn_points + num_agents) * (self.tag_out_steps > 0)
        bits = jax.random.bits(key, (num_words,), jnp.uint32)
        move_priority = random_ranks(bits[:num_agents])
        clean_order = random_ranks(bits[num_agents : 2 * num_agents])
        waste_success_draw = uniform_from_bits(bits[2 * num_agents])
        num_orchard = layout.orchard_cells.shape[0]
        cell_draws = cell_uniforms(
            bits[2 * num_agents + 1 : 2 * num_agents + 3],
            num_orchard + layout.waste_capable_cells.shape[0],
        )
        respawn_bits = bits[2 * num_agents + 3 :]
        height, width = self._shape
        wall = jnp.asarray(layout.wall)
        time = state.time + 1
        present = state.present
        actions = jnp.where(present, jnp.asarray(actions, jnp.int32), STAY)

        orientation = turn(state.orientation, actions)
        position = resolve_movement(
            move_priority, state.position, orientation, present, actions, wall
        )

        codes = agent_codes(position, orientation, present, self._shape)
        apple = state.apple.reshape(-1)
        eaten = present & apple[position[:, 0] * width + position[:, 1]]
        apple = apple & (codes == 0)
        footprint, blocked = footprint_cells(position, orientation, layout.footprint, wall)
        occupant = occupant_index(codes[footprint])
        fires = present & (actions == FIRE)
        hits_taken, hits_dealt, fire_ray_length = fire_beams(fires, blocked, occupant)
        cleans = present & (actions == CLEAN)
        waste, waste_cleaned, clean_ray_length = clean_beams(
            clean_order, cleans, footprint, blocked, occupant >= 0, state.waste.reshape(-1)
        )

        removed_until = state.removed_until
        if self.tag_out_steps > 0:
            present, removed_until, position, orientation = apply_tag_out(
                respawn_bits,
                time,
                self.tag_out_steps,
                hits_taken > 0,
                present,
                removed_until,
                position,
                orientation,
                layout.spawn_cells,
            )
            codes = agent_codes(position, orientation, present, self._shape)

        waste_count = waste.sum(dtype=jnp.int32)
        apple = self._grow_apples(cell_draws[:num_orchard], waste_count, apple, codes > 0)
        waste = self._spawn_waste(
            cell_draws[num_orchard:], waste_success_draw, time, waste_count, waste
        )

        next_state = CleanupState(
            time=time,
            position=position,
            orientation=orientation,
            present=present,
            removed_until=removed_until,
            waste=waste.reshape(height, width),
            apple=apple.reshape(height, width),
            fire_ray_length=fire_ray_length,
            clean_ray_length=clean_ray_length,
        )
        obs = self.observation(next_state)

        fire_cost = -self.fire_cost * fires.astype(jnp.float32)
        hit_penalty = -self.hit_penalty * hits_taken.astype(jnp.float32)
        reward_vector = jnp.stack(
            [eaten.astype(jnp.float32), fire_cost, hit_penalty, waste_cleaned.astype(jnp.float32)],
            axis=-1,
        )
        reward = reward_vector @ jnp.array([1.0, 1.0, 1.0, 0.0], jnp.float32)
        info = {
            "apples_eaten": eaten.astype(jnp.int32),
            "fires": fires.astype(jnp.int32),
            "hits_taken": hits_taken,
            "hits_dealt": hits_dealt,
            "cleans": cleans.astype(jnp.int32),
            "waste_cleaned": waste_cleaned,
            "present": present,
            "waste_count": waste.sum(dtype=jnp.int32),
            "apple_count": apple.sum(dtype=jnp.int32),
            "reward_vector": reward_vector,
        }
        done = time >= self.max_steps
        return obs, next_state, reward, done, info

    def global_state(self, state: CleanupState) -> jax.Array:
        """uint8 0/1 `[H, W, 6 + N + 4]`: map channels, AGENT_k planes, absolute FACING planes."""
        codes = agent_codes(state.position, state.orientation, state.present, self._shape)
        return global_planes(self._channel_bits(state), codes, len(MAP_CHANNELS), self.num_agents)

    def render(self, state: CleanupState, scale: int = 1) -> np.ndarray:
        """uint8 RGB `[H * scale, W * scale, 3]` with the reference colours; last step's beams
        drawn over everything."""
        layout = self.layout
        position = np.asarray(state.position)
        present = np.asarray(state.present)
        layers = [
            (layout.wall, WALL_COLOUR),
            (layout.waste_capable | layout.stream, RIVER_COLOUR),
            (np.asarray(state.waste), WASTE_COLOUR),
            (np.asarray(state.apple), APPLE_COLOUR),
        ]
        for index in np.flatnonzero(present):
            cell = np.zeros(self._shape, bool)
            cell[tuple(position[index])] = True
            layers.append((cell, agent_colour(int(index))))
        fire_mask, clean_mask = self.beam_masks(state)
        layers += [
            (np.asarray(fire_mask), FIRE_BEAM_COLOUR),
            (np.asarray(clean_mask), CLEAN_BEAM_COLOUR),
        ]
        return upscale(paint(self._shape, layers), scale)

    # ------------------------------------------------------------------------------ helpers

    def observation(self, state: CleanupState) -> jax.Array:
        """uint8 `[N, 2R+1, 2R+1, C]`: the observations of `state` (as `step` returns them)."""
        radius = self.view_radius
        return egocentric_observations(
            padded_map_words(self._channel_bits(state), len(MAP_CHANNELS), radius),
            state.position,
            state.orientation,
            state.present,
            radius,
            self.grid_map.width + 2 * radius,
            len(MAP_CHANNELS),
            len(BEAM_CHANNELS) if self.show_beams else 0,
            self.agent_id_planes,
        )

    def beam_masks(self, state: CleanupState) -> tuple[jax.Array, jax.Array]:
        """bool `[H, W]` cells covered by FIRE rays and by CLEAN rays in the last step."""
        footprint = self.layout.footprint
        return tuple(
            beam_mask(state.position, state.orientation, ray_length, footprint, self._shape)
            for ray_length in (state.fire_ray_length, state.clean_ray_length)
        )

    def make_state(
        self,
        position: Sequence[Sequence[int]],
        orientation: Sequence[int],
        *,
        waste: np.ndarray | None = None,
        apple: np.ndarray | None = None,
        present: Sequence[bool] | None = None,
        removed_until: Sequence[int] | None = None,
        time: int = 0,
    ) -> CleanupState:
        """A hand-made state (tests, demos): positions `[N, 2]`, orientations `[N]`, optional
        waste / apple bool `[H, W]` (default: the reset map), present `[N]` (default all),
        removed_until `[N]` (default 0) and step counter `time`. No beams in the last step."""
        shape = (self.num_agents,)
        return CleanupState(
            time=jnp.asarray(time, jnp.int32),
            position=jnp.asarray(position, jnp.int32).reshape(self.num_agents, 2),
            orientation=jnp.asarray(orientation, jnp.int32).reshape(shape),
            present=jnp.ones(shape, bool) if present is None else jnp.asarray(present, bool),
            removed_until=(
                jnp.zeros(shape, jnp.int32)
                if removed_until is None
                else jnp.asarray(removed_until, jnp.int32)
            ),
            waste=jnp.asarray(self.layout.initial_waste if waste is None else waste, bool),
            apple=jnp.zeros(self._shape, bool) if apple is None else jnp.asarray(apple, bool),
            fire_ray_length=jnp.zeros((self.num_agents, BEAM_WIDTH), jnp.int32),
            clean_ray_length=jnp.zeros((self.num_agents, BEAM_WIDTH), jnp.int32),
        )

    def apple_probability(self, waste_count: jax.Array) -> jax.Array:
        """float32 growth probability of an empty orchard cell given `waste_count` waste cells."""
        density = waste_count / self.waste_capable_cells
        depletion, restoration = self.threshold_depletion, self.threshold_restoration
        fraction = jnp.clip((depletion - density) / (depletion - restoration), 0.0, 1.0)
        return (self.apple_respawn_prob * fraction).astype(jnp.float32)

    @property
    def _shape(self) -> tuple[int, int]:
        return (self.grid_map.height, self.grid_map.width)

    def _channel_bits(self, state: CleanupState) -> jax.Array:
        """int32 `[H, W]`: bits of the map channels and, with `show_beams`, of the beams."""
        layout = self.layout
        bits = map_channel_bits(
            jnp.asarray(layout.static_bits),
            jnp.asarray(layout.waste_capable),
            state.waste,
            state.apple,
        )
        if self.show_beams:
            fire_mask, clean_mask = self.beam_masks(state)
            bits = bits | jnp.where(fire_mask, _FIRE_BEAM_BIT, 0)
            bits = bits | jnp.where(clean_mask, _CLEAN_BEAM_BIT, 0)
        return bits

    def _grow_apples(
        self,
        orchard_draws: jax.Array,
        waste_count: jax.Array,
        apple: jax.Array,
        agent_here: jax.Array,
    ) -> jax.Array:
        """bool `[H * W]` apples after growth: each orchard cell without apple and present agent
        grows one with probability `apple_probability(waste_count)`.

        orchard_draws float32 `[B]` uniforms, one per orchard cell. Written as a scatter over the
        orchard cells, which XLA materialises instead of recomputing it inside every consumer.
        """
        orchard = jnp.asarray(self.layout.orchard_cells)
        eligible = ~apple[orchard] & ~agent_here[orchard]
        grown = eligible & (orchard_draws < self.apple_probability(waste_count))
        return apple.at[orchard].set(
            apple[orchard] | grown, indices_are_sorted=True, unique_indices=True
        )

    def _spawn_waste(
        self,
        candidate_draws: jax.Array,
        success_draw: jax.Array,
        time: jax.Array,
        waste_count: jax.Array,
        waste: jax.Array,
    ) -> jax.Array:
        """bool `[H * W]` waste after spawning: a uniformly chosen waste-capable cell without
        waste becomes waste with probability 1 - (1 - p_w)^k (`per_cell`) or p_w (`per_step`),
        k = the number of such cells, if spawning is enabled at step `time`.

        candidate_draws float32 `[K]` uniforms, one per waste-capable cell (the candidate with the
        largest draw is chosen), success_draw float32 `[]` uniform.
        """
        capable = jnp.asarray(self.layout.waste_capable_cells)
        candidates = ~waste[capable]
        num_candidates = candidates.sum(dtype=jnp.int32)
        if self.waste_spawn_mode == "per_cell":
            success_prob = 1.0 - (1.0 - self.waste_spawn_prob) ** num_candidates
        else:
            success_prob = jnp.float32(self.waste_spawn_prob)
        enabled = (time > self.waste_spawn_delay) & (num_candidates > 0)
        if self.pollution_stops_at_depletion:
            density = waste_count / self.waste_capable_cells
            enabled = enabled & (density < self.threshold_depletion)
        success = enabled & (success_draw < success_prob)
        choice = capable[jnp.argmax(jnp.where(candidates, candidate_draws, -1.0))]
        return waste.at[jnp.where(success, choice, waste.shape[0])].set(True, mode="drop")
