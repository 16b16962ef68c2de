"""n-agent coordination game with a noisy, fully observed binary state (spec `matrix_games.md` §4).

From Chen & Zhang 2023 (context-aware Bayesian-network policies, ICML), code github dchen48/BNPG
`BN_MAPPO_Coordination_Game/onpolicy/envs/coordination_game/cg.py`. The state s ∈ {0,1}^n is the
previous joint action with each bit flipped with probability `flip_prob`; every agent receives
the shared reward R(s') of the new state, which depends only on its number of zeros. The BN-AC spec
(`bnac.md` §7) calls this game `bn_coordination` and adds `init_p0`, the chance that each bit of
the first state is 0.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.base import Env, Info
from marl.envs.validation import is_int

# Default `margin` l by number of agents n (the values of the paper and its code).
DEFAULT_MARGINS: dict[int, int] = {2: 1, 3: 1, 5: 2, 10: 3}


def reward_by_zeros(num_agents: int, margin: int) -> np.ndarray:
    """Shared reward float32 `[n + 1]` indexed by the number of zeros z in the state.

    With o = n - z ones: if |z - o| <= margin, R = 1 when z < o else 0; otherwise R = 3 when
    z > o, else 2.
    """
    zeros = np.arange(num_agents + 1)
    ones = num_agents - zeros
    close = np.abs(zeros - ones) <= margin
    reward = np.where(close, np.where(zeros < ones, 1, 0), np.where(zeros > ones, 3, 2))
    return reward.astype(np.float32)


@struct.dataclass
class NoisyCoordinationState:
    """bits bool `[n]`: the state s; t int32 `[]`."""

    bits: jax.Array
    t: jax.Array


@dataclasses.dataclass(frozen=True)
class NoisyCoordination(Env):
    """Noisy n-agent coordination game; obs float32 `[n, n]` (s for everyone), global state `[n]`.

    num_agents: n >= 2; margin: l >= 0 (None: `DEFAULT_MARGINS[n]`, required for other n);
    flip_prob: ε in [0, 1], the chance that each bit of the joint action flips; init_p0 in [0, 1],
    the chance that each bit of the first state is 0 (0.5: uniform; 1: all zeros); max_steps >= 1.
    """

    num_agents: int = 3
    margin: int | None = None
    flip_prob: float = 0.1
    init_p0: float = 0.5
    max_steps: int = 25

    # float32 [n + 1]: R by number of zeros
    reward_table: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not is_int(self.num_agents) or self.num_agents < 2:
            raise ValueError(f"num_agents must be an integer >= 2; got {self.num_agents!r}")
        if self.margin is None:
            if self.num_agents not in DEFAULT_MARGINS:
                raise ValueError(
                    f"margin is required for num_agents={self.num_agents} (defaults exist only "
                    f"for num_agents in {sorted(DEFAULT_MARGINS)}); give an integer >= 0"
                )
            margin = DEFAULT_MARGINS[self.num_agents]
        elif not is_int(self.margin) or self.margin < 0:
            raise ValueError(f"margin must be an integer >= 0 or None; got {self.margin!r}")
        else:
            margin = self.margin
        for name in ("flip_prob", "init_p0"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1]; got {value!r}")
        if not is_int(self.max_steps) or self.max_steps < 1:
            raise ValueError(f"max_steps must be an integer >= 1; got {self.max_steps!r}")
        object.__setattr__(self, "reward_table", reward_by_zeros(self.num_agents, margin))

    @property
    def num_actions(self) -> int:
        return 2

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return (self.num_agents,)

    def _observe(self, bits: jax.Array) -> jax.Array:
        return jnp.broadcast_to(bits.astype(jnp.float32), (self.num_agents, self.num_agents))

    def reset(self, key: jax.Array) -> tuple[jax.Array, NoisyCoordinationState]:
        """Draws each bit of s independently, 0 with probability `init_p0` (0.5: s uniform over
        {0,1}^n); returns obs float32 `[n, n]` and the state."""
        bits = jax.random.bernoulli(key, 1.0 - self.init_p0, (self.num_agents,))
        return self._observe(bits), NoisyCoordinationState(bits=bits, t=jnp.zeros((), jnp.int32))

    def step(
        self, key: jax.Array, state: NoisyCoordinationState, actions: jax.Array
    ) -> tuple[jax.Array, NoisyCoordinationState, jax.Array, jax.Array, Info]:
        """s' = actions `[n]` with each bit flipped with probability ε; reward `[n]` = R(s').

        With ε = 0 the step is deterministic and draws nothing.

        Info: `optimal_joint_action` bool `[]` (every agent played 0, the optimal joint action).
        """
        bits = actions != 0
        if self.flip_prob > 0:
            bits = bits ^ jax.random.bernoulli(key, float(self.flip_prob), (self.num_agents,))
        num_zeros = self.num_agents - jnp.sum(bits, dtype=jnp.int32)
        reward = jnp.broadcast_to(jnp.asarray(self.reward_table)[num_zeros], (self.num_agents,))
        t = state.t + 1
        info = {"optimal_joint_action": jnp.all(actions == 0)}
        next_state = NoisyCoordinationState(bits=bits, t=t)
        return self._observe(bits), next_state, reward, t >= self.max_steps, info

    def global_state(self, state: NoisyCoordinationState) -> jax.Array:
        """The state s as float32 `[n]`."""
        return state.bits.astype(jnp.float32)
