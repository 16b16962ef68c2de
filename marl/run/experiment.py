"""From a composed config to checked objects: the env, the trainer and the run settings.

Everything here runs before JAX compiles anything, so that bad input stops with one line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from marl import algos
from marl.config import ConfigError, from_mapping, require
from marl.envs import Env, env_class, make
from marl.envs.objectives import with_objectives

ENV_KEYS_NOT_PASSED_TO_MAKE = ("name", "opponent", "objectives")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Top-level keys of `configs/config.yaml` that the runner consumes."""

    seed: int = 0
    num_seeds: int = 1
    resume: bool = False
    updates_per_chunk: int = 10
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    progress: bool = True
    compilation_cache: str | None = None

    def validate(self, where: str = "run") -> None:
        require(self.seed >= 0, f"seed must be >= 0; got {self.seed}")
        require(self.num_seeds >= 1, f"num_seeds must be >= 1; got {self.num_seeds}")
        for key in ("updates_per_chunk", "checkpoint_every", "keep_checkpoints"):
            value = getattr(self, key)
            require(value >= 1, f"{where}.{key} must be >= 1; got {value}")


def run_settings(cfg: Mapping[str, Any]) -> RunSettings:
    """Check and collect the runner's keys (top level and the `run` group)."""
    values = {key: cfg[key] for key in ("seed", "num_seeds", "resume") if key in cfg}
    values.update(dict(cfg.get("run", {})))
    return from_mapping(RunSettings, values, "run")


def build_env(env_cfg: Mapping[str, Any]) -> Env:
    """The game named by `env_cfg.name` with its parameters, its declared objectives
    (`env.objectives`) and a fixed opponent, if asked."""
    env_cfg = dict(env_cfg)
    if "name" not in env_cfg:
        raise ConfigError("env.name is missing; choose an env with env=<name>")
    name = env_cfg["name"]
    params = {k: v for k, v in env_cfg.items() if k not in ENV_KEYS_NOT_PASSED_TO_MAKE}
    try:
        env_class(name)
        env = make(name, **plain_container(params))
    except ValueError as error:
        raise ConfigError(f"env: {error}") from None
    try:
        env = with_objectives(env, plain_container(env_cfg.get("objectives")))
    except ValueError as error:
        raise ConfigError(f"env.{error}") from None
    opponent = env_cfg.get("opponent")
    if opponent is not None:
        from marl.envs.opponent import FixedOpponent

        try:
            env = FixedOpponent(env, opponent)
        except ValueError as error:
            raise ConfigError(f"env.opponent: {error}") from None
    return env


def build_trainer(algo_cfg: Mapping[str, Any], env: Env):
    """The trainer of `algo_cfg.name` on `env`, its config checked key by key."""
    name = algo_cfg.get("name")
    try:
        trainer_class, schema = algos.trainer_classes(name)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    config = from_mapping(schema, plain_container(dict(algo_cfg)), "algo")
    return trainer_class(env, config)


def plain_container(value: Any) -> Any:
    """OmegaConf containers -> plain dicts and tuples (hashable env parameters)."""
    if isinstance(value, Mapping):
        return {k: plain_container(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "ListConfig":
        return tuple(plain_container(v) for v in value)
    return value
