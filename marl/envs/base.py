"""The environment contract shared by every game in `marl`.

An environment is a frozen dataclass holding only static configuration; all mutable state lives in
a pytree that the caller threads through `reset` and `step`, so `jax.jit`, `jax.vmap` and
`lax.scan` compose freely.

Shapes (N = `num_agents`):
    obs      `[N, *obs_shape]`
    actions  int32 `[N]`
    reward   float32 `[N]`
    done     bool `[]` (the last step of an episode; every game here is truncated at `max_steps`)
    info     dict of fixed-shape per-step arrays (never cumulative); `reward_vector` `[N, K]` with
             components named by `reward_components` when the game has a reward vector.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import jax

PyTree = Any
Info = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Env(abc.ABC):
    """Base class of all environments; subclasses are frozen dataclasses of static parameters.

    Subclasses validate their parameters in `__post_init__` and raise `ValueError` naming the
    parameter and what is allowed, so that nothing invalid ever reaches `jit`.
    """

    @property
    @abc.abstractmethod
    def num_agents(self) -> int:
        """Number of agents N (the leading axis of obs, actions and rewards)."""

    @property
    @abc.abstractmethod
    def num_actions(self) -> int:
        """Size of every agent's discrete action space."""

    @property
    @abc.abstractmethod
    def obs_shape(self) -> tuple[int, ...]:
        """Shape of one agent's observation."""

    @property
    def max_steps(self) -> int:
        """Episode length: `done` is true on step `max_steps`."""
        raise NotImplementedError

    @property
    def reward_components(self) -> tuple[str, ...]:
        """Names of the columns of `info["reward_vector"]` (empty if the game has none)."""
        return ()

    @property
    def objectives(self) -> Any:
        """The team objectives (`marl.envs.objectives.ObjectiveSpec`) multi-objective learners
        maximise, or None when none were declared (see `WithObjectives`)."""
        return None

    @abc.abstractmethod
    def reset(self, key: jax.Array) -> tuple[jax.Array, PyTree]:
        """Start an episode. Returns `obs [N, *obs_shape]` and the state pytree."""

    @abc.abstractmethod
    def step(
        self, key: jax.Array, state: PyTree, actions: jax.Array
    ) -> tuple[jax.Array, PyTree, jax.Array, jax.Array, Info]:
        """Advance one step with `actions` int32 `[N]`.

        Returns `obs [N, *obs_shape]`, the next state, `reward` float32 `[N]`, `done` bool `[]`
        and `info`.
        """

    @abc.abstractmethod
    def global_state(self, state: PyTree) -> jax.Array:
        """Whole-environment view for centralised critics and mixers."""

    def render(self, state: PyTree) -> Any:
        """uint8 RGB image `[H, W, 3]` of `state` (not for the jitted hot path)."""
        raise NotImplementedError(f"{type(self).__name__} has no renderer")

    @property
    def unwrapped(self) -> Env:
        """The innermost environment (wrappers override this)."""
        return self
