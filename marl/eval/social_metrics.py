"""Social outcome metrics of one episode (Perolat et al. 2017) and their companion metrics.

Rules in `specs/envs/social_metrics.md`. Every function is pure `jax.numpy`, takes the arrays of a
single episode and returns scalars or per-agent arrays, so it composes with `jax.jit` and with
`jax.vmap` over a leading episode axis. Shapes (T = steps taken, N = agents):

    rewards          float `[T, N]`  individual env reward r_i(t), before any trainer-side mixing
    resource_events  int   `[T, N]`  c_i(t): `apples_eaten`, or `resource_events_from_rewards`
    present          bool  `[T, N]`  `present` info: agent on the map at the end of step t
    counters         `[T, N]`        per-step info counters (`beam_uses`/`fires`, `cleans`, ...)

Episodes are never pooled: compute the metrics per episode, then aggregate them over episodes with
`mean_and_stderr`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def _as_float(values: ArrayLike) -> jax.Array:
    """`values` in JAX's default float dtype (float32 unless x64 is enabled)."""
    return jnp.asarray(values, dtype=float)


def _safe_ratio(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    """numerator / denominator, NaN where the denominator is 0 (elementwise)."""
    defined = denominator != 0
    return jnp.where(defined, numerator / jnp.where(defined, denominator, 1), jnp.nan)


def collective_return(rewards: ArrayLike) -> jax.Array:
    """R = Σ_i Σ_t r_i(t) from rewards `[T, N]`; returns `[]`."""
    return jnp.sum(_as_float(rewards))


def efficiency(rewards: ArrayLike) -> jax.Array:
    """Efficiency U = R / T, the collective reward per step, from rewards `[T, N]`; returns `[]`."""
    rewards = _as_float(rewards)
    return collective_return(rewards) / rewards.shape[0]


def equality(totals: ArrayLike) -> jax.Array:
    """Equality E = 1 − Σ_i Σ_j |x_i − x_j| / (2 N Σ_i |x_i|) of per-agent totals `[N]`; `[]`.

    With returns R_i this is E; with resource counts C_i it is E_res. The Σ|x_i| denominator keeps
    E in [0, 1] for negative or mixed totals (fines); it is 1 − Gini when all totals are >= 0.
    E = 1 when every total is 0. E is invariant to permuting the agents and to positive scaling,
    so the totals are first scaled by a power of two (exact) to below 1 in magnitude, which keeps
    float32 sums of large returns from overflowing. Subnormal totals may count as 0 (XLA flushes
    them on CPU).
    """
    totals = _as_float(totals)
    num_agents = totals.shape[0]
    _, max_exponent = jnp.frexp(jnp.max(jnp.abs(totals)))
    normalised = jnp.ldexp(totals, -max_exponent)
    pairwise_gaps = jnp.sum(jnp.abs(normalised[:, None] - normalised[None, :]))
    total_magnitude = jnp.sum(jnp.abs(normalised))
    nobody_scored = total_magnitude == 0
    inequality = pairwise_gaps / (2 * num_agents * jnp.where(nobody_scored, 1, total_magnitude))
    return jnp.where(nobody_scored, 1.0, 1.0 - inequality)


def resource_events_from_rewards(rewards: ArrayLike) -> jax.Array:
    """Resource events for envs without an apples counter: c_i(t) = 1 if r_i(t) > 0 else 0.

    rewards `[T, N]` -> int32 `[T, N]`.
    """
    return (jnp.asarray(rewards) > 0).astype(jnp.int32)


def collection_times(resource_events: ArrayLike) -> jax.Array:
    """t_i: mean of the steps t in 1..T with c_i(t) > 0, or T for an agent that never collects.

    resource_events `[T, N]` -> `[N]`. Steps are counted, not events (at most one apple per step).
    """
    collected = jnp.asarray(resource_events) > 0
    num_steps = collected.shape[0]
    steps = jnp.arange(1, num_steps + 1, dtype=float)
    collecting_steps = jnp.sum(collected, axis=0)
    step_sum = jnp.sum(jnp.where(collected, steps[:, None], 0), axis=0)
    mean_step = step_sum / jnp.maximum(collecting_steps, 1)
    return jnp.where(collecting_steps > 0, mean_step, float(num_steps))


def sustainability(resource_events: ArrayLike) -> jax.Array:
    """Sustainability S = (1/N) Σ_i t_i (`collection_times`) from resource_events `[T, N]`; `[]`.

    Larger means resources were collected later in the episode.
    """
    return jnp.mean(collection_times(resource_events))


def sustainability_fraction(resource_events: ArrayLike) -> jax.Array:
    """S / T in (0, 1] from resource_events `[T, N]`; returns `[]`."""
    return sustainability(resource_events) / jnp.shape(resource_events)[0]


def peace(present: ArrayLike) -> jax.Array:
    """Peace P = (N·T − Σ_i Σ_t (1 − present_i(t))) / T from present `[T, N]`; returns `[]`.

    The average number of agents on the map per step, in [0, N]; N in envs without removal.
    """
    present = jnp.asarray(present, dtype=bool)
    return jnp.sum(present, dtype=float) / present.shape[0]


def peace_fraction(present: ArrayLike) -> jax.Array:
    """P / N in [0, 1] from present `[T, N]`; returns `[]`."""
    return peace(present) / jnp.shape(present)[1]


def episode_social_metrics(
    rewards: ArrayLike,
    present: ArrayLike | None = None,
    resource_events: ArrayLike | None = None,
) -> dict[str, jax.Array]:
    """The four social metrics of one episode and their normalised forms, each `[]`.

    rewards `[T, N]`; present `[T, N]` (default: everyone always present); resource_events
    `[T, N]` (default: `resource_events_from_rewards(rewards)`). Keys: `collective_return` (R),
    `efficiency` (U = R/T), `equality` (E on returns), `equality_resources` (E_res on resource
    counts), `sustainability` (S), `sustainability_fraction` (S/T), `peace` (P), `peace_fraction`
    (P/N).
    """
    rewards = _as_float(rewards)
    if present is None:
        present = jnp.ones(rewards.shape, dtype=bool)
    if resource_events is None:
        resource_events = resource_events_from_rewards(rewards)
    return {
        "collective_return": collective_return(rewards),
        "efficiency": efficiency(rewards),
        "equality": equality(jnp.sum(rewards, axis=0)),
        "equality_resources": equality(jnp.sum(jnp.asarray(resource_events), axis=0)),
        "sustainability": sustainability(resource_events),
        "sustainability_fraction": sustainability_fraction(resource_events),
        "peace": peace(present),
        "peace_fraction": peace_fraction(present),
    }


def beam_uses(counters: Mapping[str, Any]) -> Any:
    """The beam-action counter of a grid game's info (`beam_uses` in Gathering, `fires` in
    Cleanup and Harvest), or None for games without beams."""
    return counters.get("beam_uses", counters.get("fires"))


def beam_use_rate(beam_uses: ArrayLike, present: ArrayLike) -> jax.Array:
    """Beam-use rate ("aggressiveness"): Σ beam uses / Σ agent-steps on the map (= P·T); `[]`.

    beam_uses `[T, N]` is the env's counter of beam actions of present agents (`fires` in
    Cleanup/Harvest, `beam_uses` in Gathering), so it is summed as is; present `[T, N]`. NaN if no
    agent was ever on the map.
    """
    agent_steps_on_map = jnp.sum(jnp.asarray(present, dtype=bool), dtype=float)
    return _safe_ratio(jnp.sum(_as_float(beam_uses)), agent_steps_on_map)


def events_per_episode(counts: ArrayLike) -> jax.Array:
    """Σ over steps and agents of a per-step counter `[T, N]` (`hits_taken`, `tagged_out`); `[]`."""
    return jnp.sum(_as_float(counts))


def cleaning_rate(cleans: ArrayLike) -> jax.Array:
    """CLEAN actions per agent-step, Σ `cleans` / (N·T), from cleans `[T, N]`; returns `[]`."""
    return jnp.mean(_as_float(cleans))


def waste_cleaned_per_step(waste_cleaned: ArrayLike) -> jax.Array:
    """Waste cells cleaned per step, Σ `waste_cleaned` / T, from waste_cleaned `[T, N]`; `[]`."""
    waste_cleaned = _as_float(waste_cleaned)
    return jnp.sum(waste_cleaned) / waste_cleaned.shape[0]


def mean_map_count(counts: ArrayLike) -> jax.Array:
    """Mean over steps of a map count `[T]` (`waste_count`, `apple_count`); returns `[]`."""
    return jnp.mean(_as_float(counts))


def own_coin_fraction(own_pickups: ArrayLike, other_pickups: ArrayLike) -> jax.Array:
    """Per agent Σ_t own / Σ_t (own + other) pickups, from `[T, N]` counters; returns `[N]`.

    NaN for an agent without pickups; average over episodes with a NaN-aware mean.
    """
    own = jnp.sum(_as_float(own_pickups), axis=0)
    other = jnp.sum(_as_float(other_pickups), axis=0)
    return _safe_ratio(own, own + other)


def cooperation_rate(cooperated: ArrayLike) -> jax.Array:
    """Per agent fraction of cooperative steps, from the env's `cooperated` flags `[T, N]`; `[N]`.

    Only games with a cooperative action report the flag (matrix games: action 0; public goods:
    contributing), so grid games have no cooperation rate.
    """
    return jnp.mean(jnp.asarray(cooperated), axis=0, dtype=float)


def mean_and_stderr(values: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Mean over episodes and its standard error, ignoring NaN episodes.

    values `[E, ...]` (one metric per episode, possibly per agent) -> mean and stderr, each `[...]`.
    stderr = sample standard deviation (ddof 1) / sqrt(n) over the n non-NaN episodes; the mean is
    NaN when n = 0 and the stderr is NaN when n < 2.
    """
    values = _as_float(values)
    valid = ~jnp.isnan(values)
    count = jnp.sum(valid, axis=0, dtype=float)
    mean = _safe_ratio(jnp.sum(jnp.where(valid, values, 0), axis=0), count)
    squared_deviations = jnp.sum(jnp.where(valid, (values - mean) ** 2, 0), axis=0)
    variance = _safe_ratio(squared_deviations, jnp.where(count >= 2, count - 1, 0))
    return mean, jnp.sqrt(variance / jnp.maximum(count, 1))


def metrics_from_episode_totals(
    returns: ArrayLike,
    length: ArrayLike,
    present_total: ArrayLike | None = None,
    resources_total: ArrayLike | None = None,
    beam_uses_total: ArrayLike | None = None,
) -> dict[str, jax.Array]:
    """The social metrics that episode totals determine, for training logs (each `[]`).

    returns `[N]`: R_i; length `[]`: T; present_total `[N]`: steps each agent was on the map
    (default T); resources_total `[N]`: C_i (default: none, so no `equality_resources`);
    beam_uses_total `[N]`: beam actions of each agent (default: none, so no `beam_use_rate`).
    Sustainability needs the times of collection and is left to full-episode evaluation.
    """
    returns = _as_float(returns)
    length = _as_float(length)
    present = (
        jnp.broadcast_to(length, returns.shape)
        if present_total is None
        else _as_float(present_total)
    )
    metrics = {
        "efficiency": jnp.sum(returns) / length,
        "equality": equality(returns),
        "peace": jnp.sum(present) / length,
        "peace_fraction": jnp.sum(present) / (length * returns.shape[0]),
    }
    if resources_total is not None:
        metrics["equality_resources"] = equality(resources_total)
    if beam_uses_total is not None:
        # Σ beam uses / Σ agent-steps on the map, as `beam_use_rate` (present holds totals here)
        metrics["beam_use_rate"] = _safe_ratio(
            jnp.sum(_as_float(beam_uses_total)), jnp.sum(present)
        )
    return metrics
