"""A 2-player, 2-action game against a fixed memory-one opponent, seen as a 1-agent env.

Agent 1 is played by a strategy from `marl.envs.strategies`, acting on its own observation;
agent 0 is the only learner.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.base import Info, PyTree
from marl.envs.strategies import (
    deterministic_memory_one_action,
    is_deterministic,
    memory_one_action,
    strategy_theta,
)
from marl.envs.wrappers import Wrapper

MEMORY_ONE_OBS_SHAPE = (5,)


@struct.dataclass
class FixedOpponentState:
    """env_state: the wrapped game's state; opponent_obs float32 `[5]`: agent 1's observation."""

    env_state: PyTree
    opponent_obs: jax.Array


@dataclasses.dataclass(frozen=True)
class FixedOpponent(Wrapper):
    """Agent 1 of `env` plays `strategy`; the learner (agent 0) sees a 1-agent env.

    obs float32 `[1, 5]`, actions int32 `[1]`, reward float32 `[1]` (agent 0's). Info entries with
    a leading agent axis of size 2 are cut to agent 0; `opponent_reward` float32 `[1]` and
    `opponent_action` int32 `[1]` are added. A stochastic strategy draws from the step key.
    """

    strategy: str

    opponent_theta: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "opponent_theta", strategy_theta(self.strategy))
        if self.env.num_agents != 2:
            raise ValueError(f"env must have 2 agents for FixedOpponent; got {self.env.num_agents}")
        if self.env.num_actions != 2:
            raise ValueError(
                f"env must have 2 actions for FixedOpponent; got {self.env.num_actions}"
            )
        if tuple(self.env.obs_shape) != MEMORY_ONE_OBS_SHAPE:
            raise ValueError(
                "env must give the memory-one observation of shape (5,) for FixedOpponent; "
                f"got {tuple(self.env.obs_shape)}"
            )

    @property
    def num_agents(self) -> int:
        return 1

    def reset(self, key: jax.Array) -> tuple[jax.Array, FixedOpponentState]:
        """Returns the learner's obs float32 `[1, 5]` and the state."""
        obs, env_state = self.env.reset(key)
        return obs[:1], FixedOpponentState(env_state=env_state, opponent_obs=obs[1])

    def step(
        self, key: jax.Array, state: FixedOpponentState, actions: jax.Array
    ) -> tuple[jax.Array, FixedOpponentState, jax.Array, jax.Array, Info]:
        """Plays the learner's `actions` int32 `[1]` against the opponent's move."""
        theta = jnp.asarray(self.opponent_theta)
        if is_deterministic(self.opponent_theta):
            env_key = key
            opponent_action = deterministic_memory_one_action(theta, state.opponent_obs)
        else:
            env_key, opponent_key = jax.random.split(key)
            opponent_action = memory_one_action(theta, opponent_key, state.opponent_obs)
        joint_actions = jnp.stack([actions[0].astype(jnp.int32), opponent_action])
        obs, env_state, reward, done, info = self.env.step(env_key, state.env_state, joint_actions)
        learner_info = jax.tree.map(lambda x: x[:1] if x.ndim >= 1 and x.shape[0] == 2 else x, info)
        info = {
            **learner_info,
            "opponent_reward": reward[1:],
            "opponent_action": opponent_action[None],
        }
        next_state = FixedOpponentState(env_state=env_state, opponent_obs=obs[1])
        return obs[:1], next_state, reward[:1], done, info

    def global_state(self, state: FixedOpponentState) -> jax.Array:
        return self.env.global_state(state.env_state)

    def render(self, state: FixedOpponentState):
        return self.env.render(state.env_state)
