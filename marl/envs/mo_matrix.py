"""Two-objective one-shot coordination game, the MO-MIX toy (spec `algos/momix.md` §8).

Two agents each pick one of four actions. If both pick the same action k, the team receives the
reward vector D[k] (`PAYOFF_VECTORS`, two objectives); otherwise (0, 0). The Pareto front is all
four rows of D; (0.8, 0.2) is Pareto-optimal but unsupported (no linear preference selects it).
Observations and the global state are constant zeros and steps draw no random numbers. Every step
is an independent one-shot play; an episode lasts `max_steps` steps (1 by default).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.base import Env, Info
from marl.envs.validation import is_int, require

# D of the spec, float32 [4 (joint action k, k), 2 (objective)]: the team vector when a1 = a2 = k.
PAYOFF_VECTORS = np.array([(1, 0), (0, 1), (0.6, 0.6), (0.8, 0.2)], np.float32)
REWARD_COMPONENTS: tuple[str, ...] = ("objective_1", "objective_2")


@struct.dataclass
class MOMatrixState:
    """t int32 `[]`: steps taken in the episode."""

    t: jax.Array


@dataclasses.dataclass(frozen=True)
class MOMatrix(Env):
    """MO-MIX toy: 2 agents, 4 actions; obs float32 `[2, 1]` and global state `[1]`, all zeros.

    max_steps: episode length, an integer >= 1 (each step is an independent one-shot play).

    `info["reward_vector"]` float32 `[2, 2]` holds the team vector (every agent gets the same
    row: common payoff). The scalar `reward` float32 `[2]` is its equal-weight scalarisation, the
    sum of the two components, so that scalar learners can run on the game.
    """

    max_steps: int = 1

    def __post_init__(self):
        require(
            is_int(self.max_steps) and self.max_steps >= 1,
            "max_steps",
            "an integer >= 1",
            self.max_steps,
        )
        object.__setattr__(self, "max_steps", int(self.max_steps))

    @property
    def num_agents(self) -> int:
        return 2

    @property
    def num_actions(self) -> int:
        return PAYOFF_VECTORS.shape[0]

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return (1,)

    @property
    def reward_components(self) -> tuple[str, ...]:
        return REWARD_COMPONENTS

    def _observe(self) -> jax.Array:
        return jnp.zeros((self.num_agents, *self.obs_shape), jnp.float32)

    def reset(self, key: jax.Array) -> tuple[jax.Array, MOMatrixState]:
        """Returns obs float32 `[2, 1]` (zeros) and the state; draws nothing."""
        return self._observe(), MOMatrixState(t=jnp.zeros((), jnp.int32))

    def step(
        self, key: jax.Array, state: MOMatrixState, actions: jax.Array
    ) -> tuple[jax.Array, MOMatrixState, jax.Array, jax.Array, Info]:
        """Plays `actions` int32 `[2]`; draws nothing.

        The team vector is D[k] when a1 = a2 = k, else (0, 0); reward float32 `[2]` is its sum
        for both agents. Info: `reward_vector` float32 `[2, 2]` (the team vector per agent),
        `coordinated` int32 `[2]` (1 for both agents when a1 = a2, else 0).
        """
        actions = actions.astype(jnp.int32)
        coordinated = actions[0] == actions[1]
        team_vector = jnp.where(coordinated, jnp.asarray(PAYOFF_VECTORS)[actions[0]], 0.0)
        reward_vector = jnp.broadcast_to(team_vector, (self.num_agents, len(REWARD_COMPONENTS)))
        reward = reward_vector.sum(axis=-1)
        t = state.t + 1
        info = {
            "reward_vector": reward_vector,
            "coordinated": jnp.broadcast_to(coordinated.astype(jnp.int32), (self.num_agents,)),
        }
        return self._observe(), MOMatrixState(t=t), reward, t >= self.max_steps, info

    def global_state(self, state: MOMatrixState) -> jax.Array:
        """Constant zeros, float32 `[1]`."""
        return jnp.zeros((1,), jnp.float32)
