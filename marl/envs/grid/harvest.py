"""Harvest: a common-pool resource dilemma (spec: `specs/envs/harvest.md`).

Apples (+1) regrow only near other apples, so greedy harvesting destroys the orchard. Default
rules reproduce the SSD reference implementation's Harvest in distribution. The step is
`SSDGame.step` (turns -> movement -> eating -> FIRE -> tag-out option -> regrowth ->
observations); Harvest adds the neighbourhood-dependent regrowth.

Regrowth: every apple cell without an apple and without a present agent counts the apples in its
neighbourhood (offsets (dr, dc) != (0, 0) with dr^2 + dc^2 <= `regrowth_radius`^2, on the map
after this step's eating) and grows an apple with probability `regrowth_probs[min(count, 3)]`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.grid import maps
from marl.envs.grid.game import map_bit
from marl.envs.grid.randomness import cell_uniforms
from marl.envs.grid.render import APPLE_COLOUR, FIRE_BEAM_COLOUR, WALL_COLOUR
from marl.envs.grid.ssd_game import SSDGame, SSDState
from marl.envs.validation import is_real, require

NUM_ACTIONS = 8
MAP_CHANNELS = ("wall", "apple", "orchard")
BEAM_CHANNELS = ("fire_beam",)
MAX_AGENTS = 20
REFERENCE_REGROWTH_PROBS = (0.0, 0.005, 0.02, 0.05)

_WALL_BIT = map_bit(MAP_CHANNELS, "wall")
_APPLE_BIT = map_bit(MAP_CHANNELS, "apple")
_ORCHARD_BIT = map_bit(MAP_CHANNELS, "orchard")


@struct.dataclass
class HarvestState(SSDState):
    """`SSDState` (apple bool `[H, W]` holds the apples); Harvest has no state of its own."""


def neighbour_table(cells: np.ndarray, radius: float) -> np.ndarray:
    """int32 `[A, K]`: for each of the A cells `[A, 2]` (row, col), the indices (into `cells`) of
    the cells at offsets (dr, dc) != (0, 0) with dr^2 + dc^2 <= radius^2, padded with A (a slot
    that never holds an apple); K is the largest neighbourhood."""
    index_of = {tuple(cell): index for index, cell in enumerate(cells.tolist())}
    reach = int(np.floor(radius))
    offsets = [
        (d_row, d_col)
        for d_row in range(-reach, reach + 1)
        for d_col in range(-reach, reach + 1)
        if (d_row, d_col) != (0, 0) and d_row * d_row + d_col * d_col <= radius * radius
    ]
    lists = [
        [index_of[(row + dr, col + dc)] for dr, dc in offsets if (row + dr, col + dc) in index_of]
        for row, col in cells.tolist()
    ]
    width = max(1, max(len(neighbours) for neighbours in lists))
    table = np.full((len(lists), width), len(lists), np.int32)
    for index, neighbours in enumerate(lists):
        table[index, : len(neighbours)] = neighbours
    return table


@dataclasses.dataclass(frozen=True)
class Harvest(SSDGame):
    """Harvest on the 16 x 38 reference map; parameters as in the spec's config table.

    Beyond `SSDGame`'s (num_agents 1..20, max_steps, view_radius, fire_cost, hit_penalty,
    tag_out_steps, show_beams: the FIRE plane, agent_id_planes): regrowth_probs, four growth
    probabilities indexed by min(neighbouring apples, 3); regrowth_radius, the neighbourhood
    radius (1.5: the 3 x 3 square of the reference; 2.0: the 12-cell disc of Melting Pot).
    """

    map_name = "harvest"
    map_channels = MAP_CHANNELS
    beam_channels = BEAM_CHANNELS
    beam_colours = (FIRE_BEAM_COLOUR,)
    max_agents = MAX_AGENTS
    action_count = NUM_ACTIONS
    state_class = HarvestState

    regrowth_probs: tuple[float, ...] = REFERENCE_REGROWTH_PROBS
    regrowth_radius: float = 1.5

    apple_cells: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    neighbours: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

    def _validate(self) -> None:
        probs = self.regrowth_probs
        require(
            isinstance(probs, (list, tuple))
            and len(probs) == 4
            and all(is_real(p) and 0 <= p <= 1 for p in probs),
            "regrowth_probs",
            "a list of 4 probabilities in [0, 1] (for 0, 1, 2, 3+ neighbouring apples)",
            probs,
        )
        object.__setattr__(self, "regrowth_probs", tuple(float(p) for p in probs))
        radius = self.regrowth_radius
        require(
            is_real(radius) and 1 <= radius <= 10,
            "regrowth_radius",
            "a number in [1, 10]",
            radius,
        )
        super()._validate()

    def _setup(self) -> None:
        apple_cells = self.grid_map.cells(maps.APPLE)
        object.__setattr__(self, "apple_cells", apple_cells)
        object.__setattr__(self, "neighbours", neighbour_table(apple_cells, self.regrowth_radius))
        super()._setup()

    def regrowth_probability(self, neighbour_apples: jax.Array) -> jax.Array:
        """float32 growth probability of an empty apple cell with `neighbour_apples` int32
        apples in its neighbourhood (any shape)."""
        table = jnp.asarray(self.regrowth_probs, jnp.float32)
        return table[jnp.minimum(neighbour_apples, len(self.regrowth_probs) - 1)]

    # ------------------------------------------------------------------- SSDGame's hooks

    def _num_random_words(self) -> int:
        """The two seeds of the per-cell regrowth draws."""
        return 2

    def _reset_fields(self) -> dict[str, jax.Array]:
        """Every apple cell holds an apple."""
        return {"apple": jnp.asarray(self.grid_map.mask(maps.APPLE))}

    def _grow(self, bits: jax.Array, state: HarvestState, agent_here: jax.Array):
        """Regrowth from the map after eating; apples grown now do not count (synchronous)."""
        cells = self.apple_cells
        flat_cells = jnp.asarray(cells[:, 0] * self.grid_map.width + cells[:, 1])
        apple = state.apple.reshape(-1)
        on_cells = apple[flat_cells]
        padded = jnp.concatenate([on_cells, jnp.zeros(1, bool)])
        count = padded[jnp.asarray(self.neighbours)].sum(axis=1, dtype=jnp.int32)
        draws = cell_uniforms(bits[:2], cells.shape[0])
        grown = ~on_cells & ~agent_here[flat_cells] & (draws < self.regrowth_probability(count))
        apple = apple.at[flat_cells].set(
            on_cells | grown, indices_are_sorted=True, unique_indices=True
        )
        return state.replace(apple=apple.reshape(self._shape))

    def _map_bits(self, state: HarvestState) -> jax.Array:
        static = self.wall * _WALL_BIT + self.grid_map.mask(maps.APPLE) * _ORCHARD_BIT
        return (jnp.asarray(static, jnp.int32) | jnp.where(state.apple, _APPLE_BIT, 0)).astype(
            jnp.int32
        )

    def _render_layers(self, state: HarvestState):
        return [(self.wall, WALL_COLOUR), (np.asarray(state.apple), APPLE_COLOUR)]
