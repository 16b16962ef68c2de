"""Evaluation: load a trained run, play whole episodes, summarise them per episode.

`load_policy(run_dir)` rebuilds the env and trainer from the run's saved `config.yaml` and restores
the latest checkpoint; `policy_actions` turns its parameters into an action function;
`play_episodes` runs `max_steps` steps of many episodes in parallel with an action function;
`summarise` turns the trajectories into returns, cooperation rates, the conditional cooperation
table of two-player matrix games and the social metrics, each aggregated over episodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import OmegaConf

from marl.config import ConfigError
from marl.eval import social_metrics
from marl.run.checkpoint import Checkpoints, has_checkpoint
from marl.run.cli import RESOLVED_CONFIG_FILE
from marl.run.experiment import build_env, build_trainer
from marl.run.runner import seed_keys

OUTCOME_NAMES = ("CC", "CD", "DC", "DD")
NOT_COUNTERS = ("action", "reward", "reward_vector", "joint_action", "cooperated")

# (obs `[E, N, *obs_shape]`, key) -> actions int32 `[E, N]`
ActionFn = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass
class LoadedRun:
    """A trained run: its config, the env and trainer it trained with, and its parameters."""

    cfg: Any
    env: Any
    trainer: Any
    params: Any  # parameters of one seed (leading agent axis unless share_params)
    updates_done: int


def load_policy(run_dir: Path, seed_index: int = 0) -> LoadedRun:
    """Rebuild the run in `run_dir` and restore the parameters of its `seed_index`-th seed."""
    run_dir = Path(run_dir)
    config_path = run_dir / RESOLVED_CONFIG_FILE
    if not config_path.exists() or not has_checkpoint(run_dir):
        raise ConfigError(
            f"{run_dir} is not a training run directory (no config.yaml or checkpoint)"
        )
    cfg = OmegaConf.load(config_path)
    if not 0 <= seed_index < cfg.num_seeds:
        raise ConfigError(f"seed_index must be in [0, {cfg.num_seeds - 1}]; got {seed_index}")
    env = build_env(cfg.env)
    trainer = build_trainer(cfg.algo, env)
    checkpoints = Checkpoints(run_dir, cfg.run.keep_checkpoints)
    try:
        updates_done = checkpoints.latest_step()
        template = jax.eval_shape(jax.vmap(trainer.init), seed_keys(cfg.seed, cfg.num_seeds))
        state = checkpoints.restore(updates_done, template)
    finally:
        checkpoints.close()
    params = jax.tree.map(lambda leaf: leaf[seed_index], state.params)
    return LoadedRun(cfg, env, trainer, params, updates_done)


def with_episode_length(run: LoadedRun, max_steps: int | None) -> LoadedRun:
    """`run` with its game's episodes cut at `max_steps` (None: as trained), e.g. to evaluate a
    Coin Game policy trained on 50-step episodes in the AA league's 16-step ones."""
    if max_steps is None:
        return run
    if not (isinstance(max_steps, int) and max_steps >= 1):
        raise ConfigError(f"max_steps must be an integer >= 1 or null; got {max_steps!r}")
    env_cfg = OmegaConf.merge(run.cfg.env, {"max_steps": max_steps})
    cfg = OmegaConf.merge(run.cfg, {"env": env_cfg})
    return dataclasses.replace(run, cfg=cfg, env=build_env(env_cfg))


def policy_against(run: LoadedRun, opponent: str | None):
    """(env, trainer, params) for playing the trained policy against `opponent`.

    opponent None: the env the run trained on. "self": the trained game without a fixed opponent,
    every seat played by the trained agent 0 (for runs trained against a fixed opponent). A
    strategy name: agent 0 of the trained policy against that fixed strategy.
    """
    if opponent is None:
        return run.env, run.trainer, run.params
    if run.trainer.config.share_params:
        raise ConfigError(
            "opponent needs a run trained with algo.share_params=false; opponents=<list or all> "
            "plays fixed co-players against any run"
        )
    base_env_cfg = {**run.cfg.env, "opponent": None if opponent == "self" else opponent}
    env = build_env(base_env_cfg)
    trainer = build_trainer(run.cfg.algo, env)
    agent_zero = jnp.zeros(env.num_agents, jnp.int32)
    params = jax.tree.map(lambda leaf: leaf[agent_zero], run.params)
    return env, trainer, params


def policy_actions(trainer, params, greedy: bool = False, dag: str | None = None) -> ActionFn:
    """The trained policy's actions in every seat: sampled (`trainer.act`), or with `greedy` the
    most likely action (the argmax of `trainer.policy`'s logits or Q values). Trainers that act
    jointly (`acts_in_order`, BN-AC) choose greedy actions themselves, under the graph `dag`."""

    if getattr(trainer, "acts_in_order", False):
        return lambda obs, key: trainer.act(params, obs, key, greedy=greedy, dag=dag)

    def act(obs: jax.Array, key: jax.Array) -> jax.Array:
        if greedy:
            logits, _ = trainer.policy(params, obs)
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return trainer.act(params, obs, key)

    return act


def episode_trajectories(env, act: ActionFn, key: jax.Array, num_episodes: int):
    """Traceable: `num_episodes` whole episodes in parallel from fresh resets, actions from `act`.

    Returns a dict of arrays with leading axes `[T, episodes]`: `action` `[T, E, N]`, `reward`
    `[T, E, N]` and every info entry.
    """
    reset_key, play_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset)(jax.random.split(reset_key, num_episodes))

    def one_step(carry, step_key):
        obs, state = carry
        action_key, env_key = jax.random.split(step_key)
        action = act(obs, action_key)
        next_obs, state, reward, _, info = jax.vmap(env.step)(
            jax.random.split(env_key, num_episodes), state, action
        )
        return (next_obs, state), {"action": action, "reward": reward, **info}

    _, trajectory = jax.lax.scan(one_step, (obs, state), jax.random.split(play_key, env.max_steps))
    return trajectory


def play_episodes(env, act: ActionFn, key: jax.Array, num_episodes: int):
    """`episode_trajectories`, compiled, as host arrays."""
    run = jax.jit(lambda key: episode_trajectories(env, act, key, num_episodes))
    return jax.device_get(run(key))


def conditional_cooperation(actions: np.ndarray) -> dict[str, np.ndarray]:
    """P(agent i cooperates at t | joint outcome at t-1) for two-player games.

    actions `[T, E, 2]`; outcomes are written from agent 0's side (a0 a1); START is the first step.
    Returns outcome name -> `[2]` probabilities (NaN where the outcome never occurred).
    """
    cooperated = actions == 0
    table = {"START": cooperated[0].mean(axis=0)}
    previous = actions[:-1, :, 0] * 2 + actions[:-1, :, 1]
    for index, name in enumerate(OUTCOME_NAMES):
        mask = previous == index
        count = mask.sum()
        table[name] = (
            (cooperated[1:] & mask[..., None]).sum(axis=(0, 1)) / count
            if count
            else np.full(2, np.nan)
        )
    return table


def summarise(trajectory: dict[str, np.ndarray], two_player_matrix: bool) -> dict[str, Any]:
    """Per-episode metrics aggregated over episodes: {name: (mean, standard error)}, plus the
    conditional cooperation table for two-player matrix games."""
    rewards = jnp.asarray(trajectory["reward"]).swapaxes(0, 1)  # [E, T, N]
    present = trajectory.get("present")
    resources = trajectory.get("apples_eaten")
    per_episode = jax.vmap(social_metrics.episode_social_metrics)(
        rewards,
        None if present is None else jnp.asarray(present).swapaxes(0, 1),
        None if resources is None else jnp.asarray(resources).swapaxes(0, 1),
    )
    per_episode["return"] = rewards.sum(axis=1)
    beams = social_metrics.beam_uses(trajectory)
    if beams is not None and present is not None:
        per_episode["beam_use_rate"] = jax.vmap(social_metrics.beam_use_rate)(
            jnp.asarray(beams).swapaxes(0, 1), jnp.asarray(present).swapaxes(0, 1)
        )
    if "cooperated" in trajectory:
        per_episode["cooperation_rate"] = jax.vmap(social_metrics.cooperation_rate)(
            jnp.asarray(trajectory["cooperated"]).swapaxes(0, 1)
        )
    for name, values in trajectory.items():
        if name in NOT_COUNTERS:
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 3:  # per-agent counter [T, E, N]: total per episode
            per_episode[f"total/{name}"] = values.sum(axis=0)
        elif values.ndim == 2:  # map-level count [T, E]: mean over the episode
            per_episode[f"mean/{name}"] = values.mean(axis=0)
    summary = {
        name: tuple(np.asarray(v) for v in social_metrics.mean_and_stderr(values))
        for name, values in per_episode.items()
    }
    result: dict[str, Any] = {"metrics": summary}
    if two_player_matrix:
        result["conditional_cooperation"] = conditional_cooperation(
            np.asarray(trajectory["action"])
        )
    return result
