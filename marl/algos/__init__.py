"""Trainers behind one contract: `Trainer(env, config)`, `init`, `update`, `act`."""

from __future__ import annotations

import importlib

# algo name -> ("module", "TrainerClass", "ConfigClass"); imported on first use.
_TRAINERS: dict[str, tuple[str, str, str]] = {
    "aa": ("marl.algos.aa", "AA", "AAConfig"),
    "bnac": ("marl.algos.bnac", "BNAC", "BNACConfig"),
    "dqn": ("marl.algos.dqn", "DQN", "DQNConfig"),
    "mappo": ("marl.algos.bnac", "BNAC", "BNACConfig"),
    "momix": ("marl.algos.momix", "MOMIX", "MOMIXConfig"),
    "ppo": ("marl.algos.ppo", "PPO", "PPOConfig"),
    "qmix_outer": ("marl.algos.momix", "MOMIX", "MOMIXConfig"),
}


def available() -> tuple[str, ...]:
    """Names accepted by `trainer_classes`, sorted."""
    return tuple(sorted(_TRAINERS))


def trainer_classes(name: str) -> tuple[type, type]:
    """(Trainer class, config schema) registered under `name`."""
    if name not in _TRAINERS:
        raise ValueError(f"unknown algo {name!r}; available: {', '.join(available())}")
    module_name, trainer, config = _TRAINERS[name]
    module = importlib.import_module(module_name)
    return getattr(module, trainer), getattr(module, config)
