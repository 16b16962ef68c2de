"""Name -> environment class registry behind `marl.envs.make`."""

from __future__ import annotations

import dataclasses
import importlib

from marl.envs.base import Env

# name -> "module:ClassName"; modules are imported on first use so that listing names is free.
_REGISTRY: dict[str, str] = {
    "matrix_game": "marl.envs.matrix_game:MatrixGame",
    "noisy_coordination": "marl.envs.noisy_coordination:NoisyCoordination",
    "mo_matrix": "marl.envs.mo_matrix:MOMatrix",
    "public_goods": "marl.envs.public_goods:PublicGoods",
    "spatial_pd": "marl.envs.spatial_pd:SpatialPD",
    "coin_game": "marl.envs.coin_game:CoinGame",
    "cleanup": "marl.envs.grid.cleanup:Cleanup",
    "gathering": "marl.envs.grid.gathering:Gathering",
    "harvest": "marl.envs.grid.harvest:Harvest",
}


def available() -> tuple[str, ...]:
    """Names accepted by `make`, sorted."""
    return tuple(sorted(_REGISTRY))


def env_class(name: str) -> type[Env]:
    """The class registered under `name`; `ValueError` listing the known names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown env {name!r}; available: {', '.join(available())}")
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make(name: str, **params) -> Env:
    """Build the environment `name` with keyword `params` (its dataclass fields).

    Raises `ValueError` for an unknown name, an unknown parameter or an invalid value.
    """
    cls = env_class(name)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ValueError(
            f"env {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(fields))}"
        )
    return cls(**params)
