"""Iterated two-player matrix games with a memory-one observation (spec `matrix_games.md` §1-3).

Action 0 is "cooperate" (C, stag, swerve, first option). The payoff tensor is
`payoff[a0, a1] = (r0, r1)`, shape `[A, A, 2]`; 2 x 2 tables are written as rows
[CC, CD, DC, DD] = (a0, a1) = (0,0), (0,1), (1,0), (1,1), each (r0, r1).

Every agent observes the previous joint action from its own side as a one-hot of size A² + 1:
index a_self·A + a_other, and index A² (START) after reset only. For A = 2 the order is
[CC, CD, DC, DD, START]; agent 1 sees CD and DC swapped relative to agent 0. Steps draw no
random numbers.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.base import Env, Info

# 2 x 2 games: rows [CC, CD, DC, DD], each (r0, r1).
_TWO_ACTION_PAYOFFS: dict[str, tuple[tuple[float, float], ...]] = {
    "ipd": ((-1, -1), (-3, 0), (0, -3), (-2, -2)),
    "ipd_axelrod": ((3, 3), (0, 5), (5, 0), (1, 1)),
    "stag_hunt": ((4, 4), (1, 3), (3, 1), (2, 2)),
    "chicken": ((0, 0), (-1, 1), (1, -1), (-2, -2)),
    "matching_pennies": ((1, -1), (-1, 1), (-1, 1), (1, -1)),
    "battle_of_sexes": ((3, 2), (0, 0), (0, 0), (2, 3)),
}

# Common-payoff 3 x 3 games: rows a0 = 0, 1, 2; both agents receive payoff[a0][a1].
_COMMON_PAYOFFS: dict[str, tuple[tuple[float, ...], ...]] = {
    "climbing": ((11, -30, 0), (-30, 7, 6), (0, 0, 5)),
    "nonmonotonic": ((8, -12, -12), (-12, 0, 0), (-12, 0, 0)),
}

GAMES: tuple[str, ...] = (
    "ipd",
    "ipd_axelrod",
    "stag_hunt",
    "chicken",
    "matching_pennies",
    "battle_of_sexes",
    "climbing",
    "penalty",
    "nonmonotonic",
)

DEFAULT_MAX_STEPS: dict[str, int] = {
    **{name: 100 for name in _TWO_ACTION_PAYOFFS},
    "climbing": 25,
    "penalty": 25,
    "nonmonotonic": 1,
}

# Episode length of a game given by an explicit `payoff` without `max_steps`.
EXPLICIT_PAYOFF_MAX_STEPS = 100


def _check_game(game: str) -> None:
    if game not in GAMES:
        raise ValueError(f"game must be one of {', '.join(GAMES)}; got {game!r}")


def _check_penalty_k(penalty_k: float) -> None:
    if (
        isinstance(penalty_k, bool)
        or not isinstance(penalty_k, int | float)
        or not (math.isfinite(penalty_k) and penalty_k <= 0)
    ):
        raise ValueError(f"penalty_k must be a finite number <= 0; got {penalty_k!r}")


def payoff_tensor(game: str, penalty_k: float = -100.0) -> np.ndarray:
    """Payoff tensor float64 `[A, A, 2]` of `game`: `payoff[a0, a1] = (r0, r1)`.

    `penalty_k` (<= 0) is the miscoordination cost of `penalty`; other games ignore it.
    """
    _check_game(game)
    _check_penalty_k(penalty_k)
    if game in _TWO_ACTION_PAYOFFS:
        return np.asarray(_TWO_ACTION_PAYOFFS[game], np.float64).reshape(2, 2, 2)
    if game == "penalty":
        k = float(penalty_k)
        common = np.asarray([[10, 0, k], [0, 2, 0], [k, 0, 10]], np.float64)
    else:
        common = np.asarray(_COMMON_PAYOFFS[game], np.float64)
    return np.stack([common, common], axis=-1)


def _explicit_payoff(payoff) -> np.ndarray:
    """Validates an explicit payoff (nested sequence `[A, A, 2]`, A >= 2) as float64."""
    try:
        table = np.array(payoff, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"payoff must be a nested sequence of numbers of shape (A, A, 2); got {payoff!r}"
        ) from error
    if table.ndim != 3 or table.shape[0] != table.shape[1] or table.shape[2] != 2:
        raise ValueError(f"payoff must have shape (A, A, 2); got shape {table.shape}")
    if table.shape[0] < 2:
        raise ValueError(f"payoff must have at least 2 actions per agent; got {table.shape[0]}")
    if not np.all(np.isfinite(table)):
        raise ValueError("payoff must contain only finite numbers")
    return table


def observation_indices(num_actions: int) -> np.ndarray:
    """int32 `[A² + 1, 2]`: each agent's observation index after each outcome a0·A + a1.

    Row A² is START (the outcome index after reset), observed as A² by both agents.
    """
    outcome = np.arange(num_actions**2)
    own, other = outcome // num_actions, outcome % num_actions
    per_agent = np.stack([own * num_actions + other, other * num_actions + own], axis=-1)
    start = np.full((1, 2), num_actions**2)
    return np.concatenate([per_agent, start]).astype(np.int32)


@struct.dataclass
class MatrixGameState:
    """last_outcome int32 `[]`: previous joint action a0·A + a1 (A² = START); t int32 `[]`."""

    last_outcome: jax.Array
    t: jax.Array


@dataclasses.dataclass(frozen=True)
class MatrixGame(Env):
    """Iterated 2-player matrix game; obs float32 `[2, A² + 1]`, global state `[A² + 1]`.

    game: name from `GAMES`; payoff: explicit nested tuple `[A, A, 2]` that overrides `game`;
    max_steps: episode length (None: the game's default, `EXPLICIT_PAYOFF_MAX_STEPS` with an
    explicit payoff; replaced by the resolved value at construction); observe_last_actions: false
    gives the constant START observation; penalty_k: miscoordination cost of `penalty` (<= 0).
    """

    game: str = "ipd"
    payoff: tuple | None = None
    max_steps: int | None = None
    observe_last_actions: bool = True
    penalty_k: float = -100.0

    # float32 [A, A, 2] and float32 [A² + 1 (previous outcome or START), 2 (agent), A² + 1]
    payoff_table: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    observation_table: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        _check_game(self.game)
        _check_penalty_k(self.penalty_k)
        if self.observe_last_actions not in (True, False):
            raise ValueError(
                f"observe_last_actions must be true or false; got {self.observe_last_actions!r}"
            )
        object.__setattr__(self, "observe_last_actions", bool(self.observe_last_actions))
        if self.payoff is None:
            table = payoff_tensor(self.game, self.penalty_k)
            default_max_steps = DEFAULT_MAX_STEPS[self.game]
        else:
            table = _explicit_payoff(self.payoff)
            object.__setattr__(self, "payoff", _nested_tuple(table))
            default_max_steps = EXPLICIT_PAYOFF_MAX_STEPS
        max_steps = default_max_steps if self.max_steps is None else self.max_steps
        if (
            isinstance(max_steps, bool)
            or not isinstance(max_steps, int | np.integer)
            or max_steps < 1
        ):
            raise ValueError(f"max_steps must be an integer >= 1 or None; got {max_steps!r}")
        object.__setattr__(self, "max_steps", int(max_steps))

        num_actions = table.shape[0]
        indices = observation_indices(num_actions)
        if not self.observe_last_actions:
            indices = np.full_like(indices, num_actions**2)
        observations = np.eye(num_actions**2 + 1, dtype=np.float32)[indices]
        object.__setattr__(self, "payoff_table", table.astype(np.float32))
        object.__setattr__(self, "observation_table", observations)

    @property
    def num_agents(self) -> int:
        return 2

    @property
    def num_actions(self) -> int:
        return self.payoff_table.shape[0]

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return (self.num_actions**2 + 1,)

    @property
    def start_index(self) -> int:
        """Observation index of START (A²)."""
        return self.num_actions**2

    def reset(self, key: jax.Array) -> tuple[jax.Array, MatrixGameState]:
        """Returns obs float32 `[2, A² + 1]` (START for both) and the state; draws nothing."""
        state = MatrixGameState(
            last_outcome=jnp.asarray(self.start_index, jnp.int32), t=jnp.zeros((), jnp.int32)
        )
        return jnp.asarray(self.observation_table[self.start_index]), state

    def step(
        self, key: jax.Array, state: MatrixGameState, actions: jax.Array
    ) -> tuple[jax.Array, MatrixGameState, jax.Array, jax.Array, Info]:
        """Plays `actions` int32 `[2]`; reward float32 `[2]` = payoff[a0, a1]; draws nothing.

        Info: `joint_action` int32 `[]` (a0·A + a1), `cooperated` bool `[2]` (a_i == 0).
        """
        actions = actions.astype(jnp.int32)
        outcome = actions[0] * self.num_actions + actions[1]
        obs = jnp.asarray(self.observation_table)[outcome]
        reward = jnp.asarray(self.payoff_table)[actions[0], actions[1]]
        t = state.t + 1
        info = {"joint_action": outcome, "cooperated": actions == 0}
        return obs, MatrixGameState(last_outcome=outcome, t=t), reward, t >= self.max_steps, info

    def global_state(self, state: MatrixGameState) -> jax.Array:
        """Agent 0's observation, float32 `[A² + 1]`."""
        return jnp.asarray(self.observation_table[:, 0])[state.last_outcome]


def _nested_tuple(table: np.ndarray) -> tuple:
    """`[A, A, 2]` array as a hashable nested tuple of floats."""
    return tuple(tuple(tuple(float(r) for r in cell) for cell in row) for row in table)
