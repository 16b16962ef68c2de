"""Team objectives of a game for multi-objective learners, and the `vector` reward mode.

Spec: `specs/algos/momix.md` §1. A game names the columns of `info["reward_vector"]`
(`reward_components`, `[N, K]` per step). `ObjectiveSpec` picks m of them with a sign each; the
team reward vector of a step is, for objective k, the mean over agents of
`sign_k * reward_vector[:, column_k]` (a common-payoff game thus gives its shared payoff, a grid
game the per-agent average of the collective count). It also carries what Pareto evaluation needs
per game: the hypervolume reference point and the scale of every objective.

`WithObjectives(game, spec)` declares the objectives (the env's `objectives`); the reward mode
`VectorReward` then gives the learner the team vector float32 `[m]` as its reward, with
`info["individual_reward"]` keeping the game's scalar rewards `[N]`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from marl.envs.base import Env
from marl.envs.wrappers import Wrapper


@dataclasses.dataclass(frozen=True)
class ObjectiveSpec:
    """m objectives from a game's reward components.

    names: the chosen components (m, distinct); columns: their indices in `reward_components`;
    signs: the factor applied to each (e.g. -1 to minimise a cost); ref_point: the hypervolume
    reference point `[m]` in objective units; scale: positive per-objective scale `[m]` (the
    exploration guide and the `scaled_` metrics divide by it).
    """

    names: tuple[str, ...]
    columns: tuple[int, ...]
    signs: tuple[float, ...]
    ref_point: tuple[float, ...]
    scale: tuple[float, ...]

    @property
    def num_objectives(self) -> int:
        return len(self.names)

    def team_vector(self, reward_vector: jax.Array) -> jax.Array:
        """float32 `[m]`: the team objectives of one step from `reward_vector` `[N, K]`."""
        chosen = reward_vector[:, jnp.asarray(self.columns)] * jnp.asarray(self.signs)
        return chosen.mean(axis=0).astype(jnp.float32)


def objective_spec(
    reward_components: Sequence[str],
    components: Sequence[str],
    ref_point: Sequence[float],
    signs: Sequence[float] | None = None,
    scale: Sequence[float] | None = None,
) -> ObjectiveSpec:
    """Check and build an `ObjectiveSpec`; `ValueError` naming the bad entry otherwise.

    signs default to +1 and scale to 1 for every objective."""
    if not reward_components:
        raise ValueError("objectives: this game has no reward components to choose from")
    allowed = ", ".join(reward_components)
    components = tuple(components)
    if not components:
        raise ValueError(f"objectives.components must name at least one of: {allowed}")
    for name in components:
        if name not in reward_components:
            raise ValueError(
                f"objectives.components: unknown component {name!r}; allowed: {allowed}"
            )
    if len(set(components)) != len(components):
        raise ValueError(f"objectives.components must be distinct; got {list(components)}")
    m = len(components)
    signs = (1.0,) * m if signs is None else tuple(float(s) for s in signs)
    scale = (1.0,) * m if scale is None else tuple(float(s) for s in scale)
    ref_point = tuple(float(r) for r in ref_point)
    for key, values in (("signs", signs), ("ref_point", ref_point), ("scale", scale)):
        if len(values) != m:
            raise ValueError(
                f"objectives.{key} needs one value per component ({m}); got {list(values)}"
            )
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"objectives.{key} must be finite; got {list(values)}")
    if any(s == 0 for s in signs):
        raise ValueError(f"objectives.signs must be non-zero; got {list(signs)}")
    if any(s <= 0 for s in scale):
        raise ValueError(f"objectives.scale must be > 0; got {list(scale)}")
    columns = tuple(reward_components.index(name) for name in components)
    return ObjectiveSpec(components, columns, signs, ref_point, scale)


@dataclasses.dataclass(frozen=True)
class WithObjectives(Wrapper):
    """`env` with its team objectives declared (`objectives`); steps are unchanged."""

    spec: ObjectiveSpec

    @property
    def objectives(self) -> ObjectiveSpec:
        return self.spec


@dataclasses.dataclass(frozen=True)
class VectorReward(Wrapper):
    """The learner's reward is the team objective vector float32 `[m]` of `env.objectives`;
    `info["individual_reward"]` keeps the game's rewards `[N]`."""

    def __post_init__(self):
        if self.env.objectives is None:
            raise ValueError(
                "reward_mode=vector needs the env's objectives (env.objectives: components, "
                "signs, ref_point, scale); env presets with them: mo_matrix, cleanup_mo"
            )

    def step(self, key, state, actions):
        obs, state, reward, done, info = self.env.step(key, state, actions)
        team = self.env.objectives.team_vector(info["reward_vector"])
        return obs, state, team, done, {**info, "individual_reward": reward}


def with_objectives(env: Env, objectives: dict | None) -> Env:
    """`env` declaring the objectives of an `env.objectives` config mapping (None: unchanged)."""
    if objectives is None:
        return env
    unknown = sorted(set(objectives) - {"components", "signs", "ref_point", "scale"})
    if unknown:
        raise ValueError(
            f"objectives has no key {', '.join(map(repr, unknown))}; "
            "allowed: components, ref_point, scale, signs"
        )
    if "components" not in objectives or "ref_point" not in objectives:
        raise ValueError("objectives needs components and ref_point")
    return WithObjectives(env, objective_spec(env.reward_components, **objectives))
