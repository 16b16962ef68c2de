"""Fixed memory-one strategies for 2-action iterated matrix games (spec `matrix_games.md` §2.1).

A memory-one strategy is θ float32 `[5]` = P(action 0 | observation index) over the player's own
view of the previous outcome [CC, CD, DC, DD, START] (own action first).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# θ over [CC, CD, DC, DD, START]
_THETAS: dict[str, tuple[float, ...]] = {
    "allc": (1.0, 1.0, 1.0, 1.0, 1.0),
    "alld": (0.0, 0.0, 0.0, 0.0, 0.0),
    "tft": (1.0, 0.0, 1.0, 0.0, 1.0),
    "wsls": (1.0, 0.0, 0.0, 1.0, 1.0),
    "random": (0.5, 0.5, 0.5, 0.5, 0.5),
}

STRATEGIES: tuple[str, ...] = tuple(_THETAS)


def strategy_theta(name: str) -> np.ndarray:
    """θ float32 `[5]` of strategy `name` (one of `STRATEGIES`)."""
    if name not in _THETAS:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    return np.asarray(_THETAS[name], np.float32)


def is_deterministic(theta: np.ndarray) -> bool:
    """Whether every entry of θ `[5]` is 0 or 1 (the strategy needs no random numbers)."""
    return bool(np.all((theta == 0) | (theta == 1)))


def memory_one_action(theta: jax.Array, key: jax.Array, obs: jax.Array) -> jax.Array:
    """Samples an action int32 `[]`: 0 with probability θ · obs.

    theta float `[5]`, obs one-hot float `[5]`. Deterministic θ (entries 0 or 1) give their
    action whatever the key.
    """
    cooperate_prob = jnp.dot(theta, obs)
    return jnp.where(jax.random.uniform(key) < cooperate_prob, 0, 1).astype(jnp.int32)


def deterministic_memory_one_action(theta: jax.Array, obs: jax.Array) -> jax.Array:
    """Action int32 `[]` of a deterministic θ `[5]` (entries 0 or 1) at one-hot obs `[5]`."""
    return jnp.where(jnp.dot(theta, obs) >= 0.5, 0, 1).astype(jnp.int32)
