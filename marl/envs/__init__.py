"""Vectorised, jittable multi-agent environments behind one contract (see `marl.envs.base`)."""

from marl.envs.base import Env
from marl.envs.registry import available, env_class, make

__all__ = ["Env", "available", "env_class", "make"]
