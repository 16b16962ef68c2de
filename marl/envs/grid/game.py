"""The frame every grid game (Cleanup, Harvest, Gathering) is built in.

`GridGame` holds what the games share beyond the engine functions: the common parameters and
their validation, the packaged map, the observation and global-state layout (the game's map
channels, the agent channels, the beam channels of the last step, identity planes), and the
renderer. A game supplies its map channels as bits (`_map_bits`), the cells its beams covered in
the last step (`beam_masks`), what lies under the agents in a picture (`_render_layers`), and its
own `reset` and `step`. Every game state has `position` int32 `[N, 2]`, `orientation` int32 `[N]`
and `present` bool `[N]`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.base import Env
from marl.envs.grid import maps
from marl.envs.grid.observation import (
    AGENT_CHANNELS,
    FACING_CHANNELS,
    agent_codes,
    egocentric_observations,
    global_planes,
    padded_map_words,
)
from marl.envs.grid.render import agent_colour, paint, upscale
from marl.envs.validation import is_int, require


def map_bit(channels: tuple[str, ...], name: str) -> int:
    """The bit of channel `name` in the words of a game whose map channels are `channels`."""
    return 1 << channels.index(name)


@dataclasses.dataclass(frozen=True)
class GridGame(Env):
    """Parameters every grid game has. num_agents: number of agents (1..`max_agents`).
    max_steps: truncation horizon. view_radius: R, observations are (2R+1) x (2R+1).
    show_beams: one observation plane per beam type with the cells beams covered in the last step.
    agent_id_planes: one observation plane per agent with its identity.

    Class attributes of a game: `map_name` (packaged map), `map_channels` (names of the map
    channels, channel 0 is "wall"), `beam_channels` and `beam_colours` (one per beam type, in the
    order of `beam_masks`), `max_agents`, `action_count` (`num_actions`) and `reward_names`
    (`reward_components`).
    """

    map_name: ClassVar[str]
    action_count: ClassVar[int]
    reward_names: ClassVar[tuple[str, ...]]
    map_channels: ClassVar[tuple[str, ...]]
    beam_channels: ClassVar[tuple[str, ...]]
    beam_colours: ClassVar[tuple[tuple[int, int, int], ...]]
    max_agents: ClassVar[int]

    num_agents: int = 5
    max_steps: int = 1000
    view_radius: int = 7
    show_beams: bool = False
    agent_id_planes: bool = False

    grid_map: maps.GridMap = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._validate()
        object.__setattr__(self, "grid_map", maps.load_map(self.map_name))
        self._setup()

    def _setup(self) -> None:
        """Precompute the game's constants from `grid_map` (games extend this)."""

    def _validate(self) -> None:
        """Check the common parameters; games extend this with their own."""
        for name in ("num_agents", "max_steps", "view_radius"):
            require(is_int(getattr(self, name)), name, "an integer", getattr(self, name))
        require(
            1 <= self.num_agents <= self.max_agents,
            "num_agents",
            f"in 1..{self.max_agents}",
            self.num_agents,
        )
        require(self.max_steps >= 1, "max_steps", ">= 1", self.max_steps)
        require(self.view_radius >= 1, "view_radius", ">= 1", self.view_radius)
        for name in ("show_beams", "agent_id_planes"):
            value = getattr(self, name)
            require(isinstance(value, (bool, np.bool_)), name, "true or false", value)

    # ----------------------------------------------------------------------------- contract

    @property
    def num_actions(self) -> int:
        return self.action_count

    @property
    def reward_components(self) -> tuple[str, ...]:
        return self.reward_names

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Names of the observation channels, in order."""
        names = self.map_channels + AGENT_CHANNELS
        if self.show_beams:
            names += self.beam_channels
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
        return self.map_channels + agents + FACING_CHANNELS

    @property
    def global_state_shape(self) -> tuple[int, int, int]:
        return (self.grid_map.height, self.grid_map.width, len(self.global_state_channel_names))

    def global_state(self, state) -> jax.Array:
        """uint8 0/1 `[H, W, M + N + 4]`: map channels, AGENT_k planes, absolute FACING planes."""
        codes = agent_codes(state.position, state.orientation, state.present, self._shape)
        return global_planes(self._map_bits(state), codes, len(self.map_channels), self.num_agents)

    def observation(self, state) -> jax.Array:
        """uint8 `[N, 2R+1, 2R+1, C]`: the observations of `state` (as `step` returns them)."""
        radius = self.view_radius
        return egocentric_observations(
            padded_map_words(self._channel_bits(state), len(self.map_channels), radius),
            state.position,
            state.orientation,
            state.present,
            radius,
            self.grid_map.width + 2 * radius,
            len(self.map_channels),
            self._num_beam_planes,
            self.agent_id_planes,
        )

    def render(self, state, scale: int = 1) -> np.ndarray:
        """uint8 RGB `[H * scale, W * scale, 3]`: the game's layers, present agents in their
        colours, and the last step's beams drawn over everything."""
        layers = list(self._render_layers(state))
        position = np.asarray(state.position)
        for index in np.flatnonzero(np.asarray(state.present)):
            cell = np.zeros(self._shape, bool)
            cell[tuple(position[index])] = True
            layers.append((cell, self._agent_colour(int(index))))
        for beam, colour in zip(self.beam_masks(state), self.beam_colours, strict=True):
            layers.append((np.asarray(beam), colour))
        return upscale(paint(self._shape, layers), scale)

    # ------------------------------------------------------------------------- game's part

    def beam_masks(self, state) -> tuple[jax.Array, ...]:
        """bool `[H, W]` per beam type: the cells its beams covered in the last step."""
        raise NotImplementedError

    def _map_bits(self, state) -> jax.Array:
        """int32 `[H, W]`: bit c set where map channel c (`map_channels`) is on."""
        raise NotImplementedError

    def _render_layers(self, state) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
        """(mask bool `[H, W]`, colour) layers under the agents, painted in order."""
        raise NotImplementedError

    def _agent_colour(self, index: int) -> tuple[int, int, int]:
        """Colour of agent `index` in `render` (the reference colours unless a game overrides)."""
        return agent_colour(index)

    # ------------------------------------------------------------------------------ helpers

    @property
    def _shape(self) -> tuple[int, int]:
        return (self.grid_map.height, self.grid_map.width)

    @property
    def _num_beam_planes(self) -> int:
        return len(self.beam_channels) if self.show_beams else 0

    def _channel_bits(self, state) -> jax.Array:
        """int32 `[H, W]`: map channel bits and, with `show_beams`, beam bits from bit M on."""
        bits = self._map_bits(state)
        if self.show_beams:
            first = len(self.map_channels)
            for index, beam in enumerate(self.beam_masks(state)):
                bits = bits | jnp.where(beam, 1 << (first + index), 0)
        return bits
