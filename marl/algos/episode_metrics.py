"""Training-log metrics of the episodes that ended during a rollout, shared by every trainer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from marl.eval.social_metrics import beam_uses, metrics_from_episode_totals


def completed_episode_metrics(
    done: jax.Array, info: dict[str, Any], reward_components: Sequence[str]
) -> dict[str, jax.Array]:
    """Means over the episodes that ended in a rollout (NaN when none ended).

    done `[T, E]`; info from `EpisodeStatistics` with leading axes `[T, E]`. Returns
    `episode/return` `[N]` (individual rewards), `episode/collective_return`, `episode/length`,
    `episode/count`, the social metrics that episode totals determine (`social/efficiency`,
    `social/equality`, `social/peace`, ...) and `episode/<counter>` for every info counter summed
    over the episode (reward-vector columns by component name).
    """
    count = done.sum()
    weights = done.astype(jnp.float32)

    def completed_mean(values: jax.Array) -> jax.Array:
        w = weights.reshape(*weights.shape, *([1] * (values.ndim - 2)))
        total = (values * w).sum(axis=(0, 1))
        return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)

    returns = completed_mean(info["episode_return"])
    length = info["episode_length"].astype(jnp.float32)
    metrics = {
        "episode/return": returns,
        "episode/collective_return": returns.sum(),
        "episode/length": completed_mean(length),
        "episode/count": count.astype(jnp.float32),
    }
    totals = info["episode_totals"]
    social = jax.vmap(jax.vmap(metrics_from_episode_totals))(
        info["episode_return"],
        length,
        totals.get("present"),
        totals.get("apples_eaten"),
        beam_uses(totals),
    )
    metrics.update({f"social/{name}": completed_mean(values) for name, values in social.items()})
    for name, values in totals.items():
        if name == "reward_vector":
            per_component = completed_mean(values)
            for index, component in enumerate(reward_components):
                metrics[f"episode/{component}"] = per_component[..., index]
        else:
            metrics[f"episode/{name}"] = completed_mean(values)
    return metrics


# The memory-one observation's outcomes, own action first (`marl.envs.strategies`).
MEMORY_ONE_OUTCOMES = ("CC", "CD", "DC", "DD", "START")


def memory_one_cooperation_metrics(obs: jax.Array, action: jax.Array) -> dict[str, jax.Array]:
    """P(cooperate | own view of the previous outcome) over a rollout of a 2 x 2 matrix game.

    obs one-hot `[T, E, N, 5]` over [CC, CD, DC, DD, START] (own action first); action int
    `[T, E, N]` (0 = cooperate). Returns `coop_given/<outcome>` pooled over agents, NaN for an
    outcome never seen.
    """
    visits = obs.sum(axis=(0, 1, 2))
    cooperations = (obs * (action == 0)[..., None]).sum(axis=(0, 1, 2))
    rates = jnp.where(visits > 0, cooperations / jnp.maximum(visits, 1), jnp.nan)
    return {f"coop_given/{name}": rates[i] for i, name in enumerate(MEMORY_ONE_OUTCOMES)}
