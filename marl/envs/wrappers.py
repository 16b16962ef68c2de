"""Wrappers that every trainer stacks on a game: auto-reset, episode statistics, reward modes.

The usual stack is `RewardMode(EpisodeStatistics(AutoReset(game)))`: statistics see the game's
individual rewards whatever the reward mode the learner trains on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax import custom_batching

from marl.envs.base import Env, Info, PyTree

# Scalar reward modes, for every learner; `vector` (the team objective vector, `[m]` instead of
# `[N]`) is only for multi-objective learners (`marl.envs.objectives.VectorReward`).
REWARD_MODES = ("individual", "collective")
VECTOR_REWARD = "vector"


@dataclasses.dataclass(frozen=True)
class Wrapper(Env):
    """Delegates the whole contract to `env`; subclasses override what they change."""

    env: Env

    @property
    def num_agents(self) -> int:
        return self.env.num_agents

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.env.obs_shape

    @property
    def max_steps(self) -> int:
        return self.env.max_steps

    @property
    def reward_components(self) -> tuple[str, ...]:
        return self.env.reward_components

    @property
    def objectives(self) -> Any:
        return self.env.objectives

    @property
    def unwrapped(self) -> Env:
        return self.env.unwrapped

    def reset(self, key: jax.Array) -> tuple[jax.Array, PyTree]:
        return self.env.reset(key)

    def step(self, key, state, actions):
        return self.env.step(key, state, actions)

    def global_state(self, state: PyTree) -> jax.Array:
        return self.env.global_state(state)

    def render(self, state: PyTree) -> Any:
        return self.env.render(state)


@custom_batching.custom_vmap
def any_in_batch(flag: jax.Array) -> jax.Array:
    """bool `[]`: whether `flag` is true anywhere, across every `vmap` axis it is batched over.

    Unbatched it is `jnp.any(flag)`; under `vmap` it reduces over the batch too and returns an
    unbatched scalar, so that a `lax.cond` on it stays a branch instead of becoming a select that
    computes both sides. Only for predicates whose branches agree wherever the flag is false.
    """
    return jnp.any(flag)


@any_in_batch.def_vmap
def _any_in_batch_batched(axis_size, in_batched, flag):
    return any_in_batch(flag), False


def tree_select(flag: jax.Array, if_true: PyTree, otherwise: PyTree) -> PyTree:
    """Leafwise `jnp.where(flag, if_true, otherwise)` over two pytrees of the same structure."""
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), if_true, otherwise)


# Info key of the pre-reset observation (`AutoReset(keep_final_obs=True)`); not an episode counter.
FINAL_OBS = "final_obs"


@dataclasses.dataclass(frozen=True)
class AutoReset(Wrapper):
    """On the last step of an episode, returns the first observation and state of a new one.

    `reward`, `done` and `info` still describe the step that ended the episode. The reset runs
    only on steps where some env of the whole batch (all `vmap` axes) is done, via `lax.cond` on
    `any_in_batch(done)`; envs that are not done keep their step's results either way. With a
    fixed horizon and envs started together that is one reset per episode instead of one per step.

    `keep_final_obs`: also return the observation the step produced, before any reset, as
    `info[FINAL_OBS]` (`[N, *obs_shape]`), for learners that bootstrap the value of an episode cut
    at its time limit.
    """

    keep_final_obs: bool = False

    def step(self, key, state, actions):
        step_key, reset_key = jax.random.split(key)
        obs, next_state, reward, done, info = self.env.step(step_key, state, actions)
        if self.keep_final_obs:
            info = {**info, FINAL_OBS: obs}

        def restart_if_done(stepped):
            return tree_select(done, self.env.reset(reset_key), stepped)

        obs, next_state = jax.lax.cond(
            any_in_batch(done), restart_if_done, lambda stepped: stepped, (obs, next_state)
        )
        return obs, next_state, reward, done, info


@struct.dataclass
class EpisodeStatisticsState:
    """Running totals of the current episode next to the wrapped env's state.

    episode_return `[N]`, episode_length `[]` int32, info_totals: the running sum of every info
    entry (same shapes as the info).
    """

    env_state: PyTree
    episode_return: jax.Array
    episode_length: jax.Array
    info_totals: Info


def _counters(info: Info) -> Info:
    """The info entries that episode totals sum: all but the final observation."""
    return {name: value for name, value in info.items() if name != FINAL_OBS}


@dataclasses.dataclass(frozen=True)
class EpisodeStatistics(Wrapper):
    """Carries episode returns, lengths and summed info counters in the state, as arrays.

    Adds to `info`: `episode_return` `[N]`, `episode_length` `[]` and `episode_totals` (a dict
    with the episode sum of every info entry). They hold the totals of the episode up to and
    including this step; read them where `done` is true to get completed episodes.
    """

    def _zero_totals(self, key: jax.Array) -> Info:
        def first_step_info(key):
            _, state = self.env.reset(key)
            info = self.env.step(key, state, jnp.zeros(self.num_agents, jnp.int32))[4]
            return _counters(info)

        info_shapes = jax.eval_shape(first_step_info, key)
        return jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), info_shapes)

    def reset(self, key: jax.Array) -> tuple[jax.Array, EpisodeStatisticsState]:
        obs, env_state = self.env.reset(key)
        state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=jnp.zeros(self.num_agents, jnp.float32),
            episode_length=jnp.zeros((), jnp.int32),
            info_totals=self._zero_totals(key),
        )
        return obs, state

    def step(self, key, state: EpisodeStatisticsState, actions):
        obs, env_state, reward, done, info = self.env.step(key, state.env_state, actions)
        episode_return = state.episode_return + reward
        episode_length = state.episode_length + 1
        totals = jax.tree.map(
            lambda t, x: t + x.astype(jnp.float32), state.info_totals, _counters(info)
        )
        keep = jnp.logical_not(done)
        next_state = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=episode_return * keep,
            episode_length=episode_length * keep,
            info_totals=jax.tree.map(lambda t: t * keep, totals),
        )
        info = {
            **info,
            "episode_return": episode_return,
            "episode_length": episode_length,
            "episode_totals": totals,
        }
        return obs, next_state, reward, done, info

    def global_state(self, state: EpisodeStatisticsState) -> jax.Array:
        return self.env.global_state(state.env_state)

    def render(self, state: EpisodeStatisticsState) -> Any:
        return self.env.render(state.env_state)


@dataclasses.dataclass(frozen=True)
class CollectiveReward(Wrapper):
    """Every agent receives the sum of all agents' rewards; `info["individual_reward"]` keeps r_i."""

    def step(self, key, state, actions):
        obs, state, reward, done, info = self.env.step(key, state, actions)
        collective = jnp.broadcast_to(reward.sum(), reward.shape)
        return obs, state, collective, done, {**info, "individual_reward": reward}


def with_reward_mode(env: Env, reward_mode: str) -> Env:
    """Wrap `env` so that learners receive rewards in `reward_mode` (see `REWARD_MODES`)."""
    if reward_mode == "individual":
        return env
    if reward_mode == "collective":
        return CollectiveReward(env)
    if reward_mode == VECTOR_REWARD:
        from marl.envs.objectives import VectorReward

        return VectorReward(env)
    allowed = ", ".join((*REWARD_MODES, VECTOR_REWARD))
    raise ValueError(f"reward_mode must be one of {allowed}; got {reward_mode!r}")


def training_env(env: Env, reward_mode: str = "individual", keep_final_obs: bool = False) -> Env:
    """The stack trainers step: auto-reset, episode statistics, then the learner's reward mode.

    `keep_final_obs`: the step's info carries the pre-reset observation (see `AutoReset`)."""
    return with_reward_mode(EpisodeStatistics(AutoReset(env, keep_final_obs)), reward_mode)
