"""Lattice Prisoner's Dilemma of Weng & Lee 2026 (spec `algos/dqn.md` §5).

An L x L periodic lattice with one agent per cell; agent i sits at cell (i // L, i % L) (row
major). All agents act at once: action 0 cooperates (C), action 1 defects (D). Against one
neighbour "I" earn the entry [my action, neighbour action] of the table [[R, S], [T, P]] with
R = 1, P = 0, S = -Dr, T = 1 + Dr (Dr: the dilemma strength); my reward is the mean over my four
von Neumann neighbours, taken in the order up (i-1, j), right (i, j+1), down (i+1, j), left
(i, j-1), wrapped. Each agent observes those four neighbours' previous actions and its own
previous action last, as 5 floats. The previous actions at reset are Bernoulli(0.5) per cell.
Steps draw no random numbers.

The paper's task is continuing: with `max_steps=None` `done` is always false. An integer
`max_steps` truncates episodes there, for the episodic training stack.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.base import Env, Info
from marl.envs.validation import is_int

# RGB of a cooperating and a defecting cell in `render`, and the side of one cell in pixels.
COOPERATOR_COLOUR = (66, 110, 220)
DEFECTOR_COLOUR = (220, 60, 50)
CELL_PIXELS = 8


def neighbour_grids(grid: jax.Array) -> jax.Array:
    """The four wrapped neighbours of every cell of `grid` `[L, L]`, as `[4, L, L]`.

    Order up, right, down, left: entry [k, i, j] is `grid` at (i-1, j), (i, j+1), (i+1, j),
    (i, j-1) for k = 0, 1, 2, 3, indices mod L.
    """
    return jnp.stack(
        [
            jnp.roll(grid, 1, 0),
            jnp.roll(grid, -1, 1),
            jnp.roll(grid, -1, 0),
            jnp.roll(grid, 1, 1),
        ]
    )


@struct.dataclass
class SpatialPDState:
    """last_actions int32 `[L, L]`: the previous step's actions (Bernoulli(0.5) after reset);
    dilemma_strength float32 `[]`: the Dr that payoffs use; t int32 `[]`: steps taken."""

    last_actions: jax.Array
    dilemma_strength: jax.Array
    t: jax.Array


@dataclasses.dataclass(frozen=True)
class SpatialPD(Env):
    """Lattice Prisoner's Dilemma; N = L² agents, obs float32 `[N, 5]`, global state `[L, L, 1]`.

    size: L >= 3, the side of the periodic lattice. dilemma_strength: Dr in [0, 1] (the paper
    sweeps [0.10, 0.40]); `reset` copies it into `state.dilemma_strength` and `step` reads it from
    there, so Dr can be vmapped by replacing that scalar with a batch. max_steps: None for the
    continuing task (`done` always false) or an integer >= 1 (`done` on step `max_steps`).
    """

    size: int = 30
    dilemma_strength: float = 0.25
    max_steps: int | None = None

    def __post_init__(self):
        if not is_int(self.size) or self.size < 3:
            raise ValueError(f"size must be an integer >= 3; got {self.size!r}")
        object.__setattr__(self, "size", int(self.size))
        if (
            isinstance(self.dilemma_strength, bool)
            or not isinstance(self.dilemma_strength, int | float | np.integer | np.floating)
            or not 0.0 <= self.dilemma_strength <= 1.0
        ):
            raise ValueError(
                f"dilemma_strength must be a number in [0, 1]; got {self.dilemma_strength!r}"
            )
        object.__setattr__(self, "dilemma_strength", float(self.dilemma_strength))
        if self.max_steps is not None:
            if not is_int(self.max_steps) or self.max_steps < 1:
                raise ValueError(
                    f"max_steps must be an integer >= 1 or None; got {self.max_steps!r}"
                )
            object.__setattr__(self, "max_steps", int(self.max_steps))

    @property
    def num_agents(self) -> int:
        return self.size * self.size

    @property
    def num_actions(self) -> int:
        return 2

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return (5,)

    def _observe(self, last_actions: jax.Array) -> jax.Array:
        """obs float32 `[N, 5]` from the actions `[L, L]`: up, right, down, left, own."""
        grids = jnp.concatenate([neighbour_grids(last_actions), last_actions[None]])
        return grids.reshape(5, self.num_agents).T.astype(jnp.float32)

    def reset(self, key: jax.Array) -> tuple[jax.Array, SpatialPDState]:
        """Draws the previous actions Bernoulli(0.5) per cell; returns obs float32 `[N, 5]`."""
        last_actions = jax.random.bernoulli(key, 0.5, (self.size, self.size)).astype(jnp.int32)
        state = SpatialPDState(
            last_actions=last_actions,
            dilemma_strength=jnp.asarray(self.dilemma_strength, jnp.float32),
            t=jnp.zeros((), jnp.int32),
        )
        return self._observe(last_actions), state

    def step(
        self, key: jax.Array, state: SpatialPDState, actions: jax.Array
    ) -> tuple[jax.Array, SpatialPDState, jax.Array, jax.Array, Info]:
        """Plays `actions` int32 `[N]` (0 = C, 1 = D); draws nothing (`key` is unused).

        reward float32 `[N]`: the mean payoff against the 4 neighbours, with
        `state.dilemma_strength` as Dr. obs float32 `[N, 5]`: this step's actions of the
        neighbours and of the agent. Info: `coop_rate` float32 `[]` = mean(actions == 0).
        """
        grid = actions.astype(jnp.int32).reshape(self.size, self.size)
        dilemma = state.dilemma_strength.astype(jnp.float32)
        one, zero = jnp.ones((), jnp.float32), jnp.zeros((), jnp.float32)
        # [my action, neighbour action] -> [[R, S], [T, P]]
        payoff = jnp.stack([jnp.stack([one, -dilemma]), jnp.stack([one + dilemma, zero])])
        per_neighbour = payoff[grid[None], neighbour_grids(grid)]
        reward = per_neighbour.mean(0).reshape(self.num_agents)
        t = state.t + 1
        done = jnp.zeros((), bool) if self.max_steps is None else t >= self.max_steps
        next_state = SpatialPDState(last_actions=grid, dilemma_strength=dilemma, t=t)
        info = {"coop_rate": jnp.mean(grid == 0, dtype=jnp.float32)}
        return self._observe(grid), next_state, reward, done, info

    def global_state(self, state: SpatialPDState) -> jax.Array:
        """The previous actions as a grid, float32 `[L, L, 1]` (1 = D)."""
        return state.last_actions[..., None].astype(jnp.float32)

    def render(self, state: SpatialPDState) -> np.ndarray:
        """uint8 RGB `[8L, 8L, 3]`: each cell an 8 x 8 block, cooperators blue, defectors red."""
        defected = np.asarray(state.last_actions) != 0
        colours = np.asarray([COOPERATOR_COLOUR, DEFECTOR_COLOUR], np.uint8)
        image = colours[defected.astype(np.int64)]
        return np.repeat(np.repeat(image, CELL_PIXELS, axis=0), CELL_PIXELS, axis=1)
