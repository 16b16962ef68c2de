"""Cleanup: a public-goods sequential social dilemma (spec: `specs/envs/cleanup.md`).

Apples (+1) grow in the orchard only while the river is clean enough; cleaning the river earns
nothing. Default rules reproduce the SSD reference implementation (Vinitsky et al.) in
distribution. The phases shared with Harvest are `SSDGame.step`'s; Cleanup adds the CLEAN beam
(resolved one agent at a time in a random order, after FIRE) and the waste-dependent growth.

Step order: absent agents' actions ignored -> turns -> movement -> eating -> beams (FIRE in
parallel, CLEAN sequentially in a random order) -> tag-out (option) -> apple and waste spawning
from the post-cleaning map -> observations, rewards, info. Truncated at t = `max_steps`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.grid import maps
from marl.envs.grid.beams import clean_beams
from marl.envs.grid.game import map_bit
from marl.envs.grid.randomness import cell_uniforms, random_ranks, uniform_from_bits
from marl.envs.grid.render import (
    APPLE_COLOUR,
    CLEAN_BEAM_COLOUR,
    FIRE_BEAM_COLOUR,
    RIVER_COLOUR,
    WALL_COLOUR,
    WASTE_COLOUR,
)
from marl.envs.grid.ssd_game import BEAM_WIDTH, FIRE_REWARD_COMPONENTS, SSDGame, SSDState
from marl.envs.validation import is_int, is_real, require

CLEAN = 8
NUM_ACTIONS = 9
WASTE_SPAWN_MODES = ("per_cell", "per_step")
REWARD_COMPONENTS = (*FIRE_REWARD_COMPONENTS, "waste_cleaned")
MAP_CHANNELS = ("wall", "apple", "waste", "river_clean", "stream", "orchard")
BEAM_CHANNELS = ("fire_beam", "clean_beam")
MAX_AGENTS = 10

_WALL_BIT = map_bit(MAP_CHANNELS, "wall")
_APPLE_BIT = map_bit(MAP_CHANNELS, "apple")
_WASTE_BIT = map_bit(MAP_CHANNELS, "waste")
_RIVER_CLEAN_BIT = map_bit(MAP_CHANNELS, "river_clean")
_STREAM_BIT = map_bit(MAP_CHANNELS, "stream")
_ORCHARD_BIT = map_bit(MAP_CHANNELS, "orchard")


@struct.dataclass
class CleanupState(SSDState):
    """`SSDState` plus waste bool `[H, W]` and clean_ray_length int32 `[N, 3]` (cells covered by
    each ray of the agent's CLEAN beam in the last step, 0 if it did not clean)."""

    waste: jax.Array
    clean_ray_length: jax.Array


@dataclasses.dataclass(frozen=True, eq=False)
class CleanupLayout:
    """Static arrays derived from the map at construction (numpy).

    Masks bool `[H, W]`: waste_capable (`H` + `R`), orchard, stream, initial_waste (`H`).
    Flat cell lists int32: orchard_cells `[103]`, waste_capable_cells `[119]`. static_bits int32
    `[H, W]`: WALL, STREAM and ORCHARD channel bits.
    """

    waste_capable: np.ndarray
    orchard: np.ndarray
    stream: np.ndarray
    initial_waste: np.ndarray
    orchard_cells: np.ndarray
    waste_capable_cells: np.ndarray
    static_bits: np.ndarray


@dataclasses.dataclass(frozen=True)
class Cleanup(SSDGame):
    """Cleanup on the 25 x 18 reference map; parameters as in the spec's config table.

    Beyond `SSDGame`'s (num_agents 1..10, max_steps, view_radius, fire_cost, hit_penalty,
    tag_out_steps, show_beams: FIRE and CLEAN planes, agent_id_planes):
    waste_spawn_mode: "per_cell" (reference) or "per_step" (Melting Pot). waste_spawn_prob: p_w.
    pollution_stops_at_depletion: no waste spawns while the waste density is at or above
    threshold_depletion. waste_spawn_delay: waste may spawn at step t only if t > delay.
    apple_respawn_prob: largest apple growth probability. threshold_depletion,
    threshold_restoration: waste densities at which apple growth is 0 / maximal.
    """

    map_name = "cleanup"
    map_channels = MAP_CHANNELS
    beam_channels = BEAM_CHANNELS
    beam_colours = (FIRE_BEAM_COLOUR, CLEAN_BEAM_COLOUR)
    max_agents = MAX_AGENTS
    action_count = NUM_ACTIONS
    reward_names = REWARD_COMPONENTS
    state_class = CleanupState

    waste_spawn_mode: str = "per_cell"
    waste_spawn_prob: float = 0.5
    pollution_stops_at_depletion: bool = True
    waste_spawn_delay: int = 0
    apple_respawn_prob: float = 0.05
    threshold_depletion: float = 0.4
    threshold_restoration: float = 0.0

    layout: CleanupLayout = dataclasses.field(init=False, repr=False, compare=False)

    def _validate(self) -> None:
        super()._validate()
        require(
            is_int(self.waste_spawn_delay),
            "waste_spawn_delay",
            "an integer",
            self.waste_spawn_delay,
        )
        require(self.waste_spawn_delay >= 0, "waste_spawn_delay", ">= 0", self.waste_spawn_delay)
        for name in (
            "waste_spawn_prob",
            "apple_respawn_prob",
            "threshold_depletion",
            "threshold_restoration",
        ):
            value = getattr(self, name)
            require(is_real(value) and 0 <= value <= 1, name, "a number in [0, 1]", value)
        require(
            self.threshold_restoration < self.threshold_depletion,
            "threshold_restoration",
            f"smaller than threshold_depletion ({self.threshold_depletion})",
            self.threshold_restoration,
        )
        require(
            self.waste_spawn_mode in WASTE_SPAWN_MODES,
            "waste_spawn_mode",
            f"one of {', '.join(WASTE_SPAWN_MODES)}",
            self.waste_spawn_mode,
        )
        value = self.pollution_stops_at_depletion
        require(
            isinstance(value, (bool, np.bool_)),
            "pollution_stops_at_depletion",
            "true or false",
            value,
        )

    def _setup(self) -> None:
        grid_map = self.grid_map
        wall = grid_map.mask(maps.WALL)
        waste_capable = grid_map.mask(maps.RIVER_WASTE + maps.RIVER_CLEAN)
        orchard = grid_map.mask(maps.ORCHARD)
        stream = grid_map.mask(maps.STREAM)
        static_bits = wall * _WALL_BIT + stream * _STREAM_BIT + orchard * _ORCHARD_BIT
        layout = CleanupLayout(
            waste_capable=waste_capable,
            orchard=orchard,
            stream=stream,
            initial_waste=grid_map.mask(maps.RIVER_WASTE),
            orchard_cells=np.flatnonzero(orchard).astype(np.int32),
            waste_capable_cells=np.flatnonzero(waste_capable).astype(np.int32),
            static_bits=static_bits.astype(np.int32),
        )
        object.__setattr__(self, "layout", layout)
        super()._setup()

    # ----------------------------------------------------------------------------- contract

    @property
    def waste_capable_cells(self) -> int:
        """Size of the waste-capable area (denominator of the waste density)."""
        return int(self.layout.waste_capable_cells.shape[0])

    def apple_probability(self, waste_count: jax.Array) -> jax.Array:
        """float32 growth probability of an empty orchard cell given `waste_count` waste cells."""
        density = waste_count / self.waste_capable_cells
        depletion, restoration = self.threshold_depletion, self.threshold_restoration
        fraction = jnp.clip((depletion - density) / (depletion - restoration), 0.0, 1.0)
        return (self.apple_respawn_prob * fraction).astype(jnp.float32)

    # ------------------------------------------------------------------- SSDGame's hooks

    def _num_random_words(self) -> int:
        """CLEAN order (N words), waste success (1), the two seeds of the per-cell draws."""
        return self.num_agents + 3

    def _reset_fields(self) -> dict[str, jax.Array]:
        """Waste on the `H` cells, no apples, no CLEAN beams."""
        return {
            "apple": jnp.zeros(self._shape, bool),
            "waste": jnp.asarray(self.layout.initial_waste),
            "clean_ray_length": jnp.zeros((self.num_agents, BEAM_WIDTH), jnp.int32),
        }

    def _ray_lengths(self, state: CleanupState) -> tuple[jax.Array, ...]:
        return (state.fire_ray_length, state.clean_ray_length)

    def _other_beams(self, bits, state, actions, footprint, blocked, occupant):
        """CLEAN, one agent at a time in a random order (from the first N of `bits`)."""
        num_agents = self.num_agents
        cleans = state.present & (actions == CLEAN)
        waste, waste_cleaned, clean_ray_length = clean_beams(
            random_ranks(bits[:num_agents]),
            cleans,
            footprint,
            blocked,
            occupant >= 0,
            state.waste.reshape(-1),
        )
        state = state.replace(waste=waste.reshape(self._shape), clean_ray_length=clean_ray_length)
        info = {"cleans": cleans.astype(jnp.int32), "waste_cleaned": waste_cleaned}
        return state, [waste_cleaned.astype(jnp.float32)], info

    def _grow(self, bits: jax.Array, state: CleanupState, agent_here: jax.Array):
        """Apples, then waste, both from the map after cleaning."""
        num_agents = self.num_agents
        layout = self.layout
        num_orchard = layout.orchard_cells.shape[0]
        cell_draws = cell_uniforms(
            bits[num_agents + 1 : num_agents + 3],
            num_orchard + layout.waste_capable_cells.shape[0],
        )
        waste = state.waste.reshape(-1)
        waste_count = waste.sum(dtype=jnp.int32)
        apple = self._grow_apples(
            cell_draws[:num_orchard], waste_count, state.apple.reshape(-1), agent_here
        )
        waste = self._spawn_waste(
            cell_draws[num_orchard:],
            uniform_from_bits(bits[num_agents]),
            state.time,
            waste_count,
            waste,
        )
        return state.replace(apple=apple.reshape(self._shape), waste=waste.reshape(self._shape))

    def _step_info(self, state: CleanupState) -> dict[str, jax.Array]:
        return {"waste_count": state.waste.sum(dtype=jnp.int32)}

    def _map_bits(self, state: CleanupState) -> jax.Array:
        layout = self.layout
        waste_capable = jnp.asarray(layout.waste_capable)
        return (
            jnp.asarray(layout.static_bits)
            | jnp.where(state.apple, _APPLE_BIT, 0)
            | jnp.where(state.waste, _WASTE_BIT, 0)
            | jnp.where(waste_capable & ~state.waste, _RIVER_CLEAN_BIT, 0)
        ).astype(jnp.int32)

    def _render_layers(self, state: CleanupState):
        layout = self.layout
        return [
            (self.wall, WALL_COLOUR),
            (layout.waste_capable | layout.stream, RIVER_COLOUR),
            (np.asarray(state.waste), WASTE_COLOUR),
            (np.asarray(state.apple), APPLE_COLOUR),
        ]

    # ------------------------------------------------------------------------------ helpers

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
