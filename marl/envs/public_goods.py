"""N-player linear public goods game, iterated (spec `matrix_games.md` §5).

Action 0 contributes the unit endowment, action 1 free-rides (keeps it). With x_i = 1 if agent i
contributes and K = Σ x_j contributors, r_i = (1 - x_i) + (multiplier / N)·K. Each agent observes
its own previous action and how many others free-rode, as a one-hot of size 2N + 1:
index a_self·N + (free-riders among the others); index 2N = START, after reset only. For N = 2
this is `matrix_game`'s [CC, CD, DC, DD, START].
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.base import Env, Info
from marl.envs.validation import is_int


@struct.dataclass
class PublicGoodsState:
    """last_actions int32 `[N]` (zeros after reset); at_start bool `[]`; t int32 `[]`."""

    last_actions: jax.Array
    at_start: jax.Array
    t: jax.Array


@dataclasses.dataclass(frozen=True)
class PublicGoods(Env):
    """Linear public goods game; obs float32 `[N, 2N + 1]`, global state float32 `[N + 1]`.

    num_agents: N >= 2; multiplier: r >= 0 (a social dilemma iff 1 < r < N); max_steps >= 1;
    observe_last_actions: false gives the constant START observation and global state.
    """

    num_agents: int = 4
    multiplier: float = 2.0
    max_steps: int = 100
    observe_last_actions: bool = True

    def __post_init__(self):
        if not is_int(self.num_agents) or self.num_agents < 2:
            raise ValueError(f"num_agents must be an integer >= 2; got {self.num_agents!r}")
        if (
            isinstance(self.multiplier, bool)
            or not isinstance(self.multiplier, int | float)
            or not math.isfinite(self.multiplier)
            or self.multiplier < 0
        ):
            raise ValueError(f"multiplier must be a finite number >= 0; got {self.multiplier!r}")
        if not is_int(self.max_steps) or self.max_steps < 1:
            raise ValueError(f"max_steps must be an integer >= 1; got {self.max_steps!r}")
        if self.observe_last_actions not in (True, False):
            raise ValueError(
                f"observe_last_actions must be true or false; got {self.observe_last_actions!r}"
            )
        object.__setattr__(self, "observe_last_actions", bool(self.observe_last_actions))

    @property
    def num_actions(self) -> int:
        return 2

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return (2 * self.num_agents + 1,)

    @property
    def start_index(self) -> int:
        """Observation index of START (2N)."""
        return 2 * self.num_agents

    def _observe(self, state: PublicGoodsState) -> jax.Array:
        """obs float32 `[N, 2N + 1]`."""
        free_riders = jnp.sum(state.last_actions)
        index = state.last_actions * self.num_agents + free_riders - state.last_actions
        show_start = state.at_start | (not self.observe_last_actions)
        index = jnp.where(show_start, self.start_index, index)
        return (index[:, None] == jnp.arange(self.start_index + 1)).astype(jnp.float32)

    def reset(self, key: jax.Array) -> tuple[jax.Array, PublicGoodsState]:
        """Returns obs float32 `[N, 2N + 1]` (START for everyone) and the state; draws nothing."""
        state = PublicGoodsState(
            last_actions=jnp.zeros(self.num_agents, jnp.int32),
            at_start=jnp.ones((), bool),
            t=jnp.zeros((), jnp.int32),
        )
        return self._observe(state), state

    def step(
        self, key: jax.Array, state: PublicGoodsState, actions: jax.Array
    ) -> tuple[jax.Array, PublicGoodsState, jax.Array, jax.Array, Info]:
        """Plays `actions` int32 `[N]` (0 contribute, 1 free-ride); reward float32 `[N]`.

        Info: `contributors` int32 `[]` (K), `cooperated` bool `[N]` (a_i == 0).
        """
        free_rode = (actions != 0).astype(jnp.int32)
        contributors = self.num_agents - jnp.sum(free_rode)
        share = self.multiplier / self.num_agents * contributors
        reward = (free_rode + share).astype(jnp.float32)
        t = state.t + 1
        next_state = PublicGoodsState(last_actions=free_rode, at_start=jnp.zeros((), bool), t=t)
        info = {"contributors": contributors, "cooperated": free_rode == 0}
        return self._observe(next_state), next_state, reward, t >= self.max_steps, info

    def global_state(self, state: PublicGoodsState) -> jax.Array:
        """Previous actions of all agents and a START flag, float32 `[N + 1]`."""
        if not self.observe_last_actions:
            start_only = np.zeros(self.num_agents + 1, np.float32)
            start_only[-1] = 1
            return jnp.asarray(start_only)
        return jnp.concatenate([state.last_actions, state.at_start[None]]).astype(jnp.float32)
