"""Co-play: a trained agent in seat 0 of a two-player game against fixed co-players in seat 1.

A fixed co-player is a pure, jittable function of seat 1's own observation `[*obs_shape]` and a key
to seat 1's action int32 `[]`: a memory-one strategy (`marl.envs.strategies`: allc, alld, tft,
wsls, random) in two-player, two-action games with the memory-one observation, or a Coin Game
strategy (`marl.envs.coin_strategies`: greedy, cooperative, random). The trained policy keeps
computing every seat's action (a shared network with each seat's agent id intact) and the
co-player's action replaces seat 1's, so any trained run can face any co-player that fits its
game. `self` is no fixed co-player: the trained policy in every seat.

`co_player_names` expands and checks the requested names before anything compiles;
`play_matches` plays every match of the table in one compiled program; `co_play_metrics`
summarises the episodes of one match per seat.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from marl.config import ConfigError
from marl.envs.base import Env
from marl.envs.coin_game import CoinGame
from marl.envs.coin_strategies import COIN_STRATEGIES, coin_strategy
from marl.envs.opponent import MEMORY_ONE_OBS_SHAPE
from marl.envs.strategies import STRATEGIES, memory_one_action, strategy_theta
from marl.eval.rollout import ActionFn, LoadedRun, episode_trajectories, policy_actions
from marl.eval.social_metrics import cooperation_rate, mean_and_stderr, own_coin_fraction
from marl.run.experiment import build_env

SELF = "self"
ALL = "all"  # every co-player that fits the game, `self` first

# (obs `[*obs_shape]` of seat 1, key) -> seat 1's action int32 `[]`
CoPlayerFn = Callable[[jax.Array, jax.Array], jax.Array]


def two_player_game(run: LoadedRun) -> Env:
    """The game `run` trained on, without the fixed opponent it may have trained against."""
    return build_env({**run.cfg.env, "opponent": None})


def fixed_co_players(env: Env) -> tuple[str, ...]:
    """Names of the fixed co-players that fit `env` (none for most games)."""
    if isinstance(env, CoinGame):
        return COIN_STRATEGIES
    memory_one = tuple(env.obs_shape) == MEMORY_ONE_OBS_SHAPE
    if env.num_agents == 2 and env.num_actions == 2 and memory_one:
        return STRATEGIES
    return ()


def co_player_names(requested: str | Sequence[str], env: Env, env_name: str) -> tuple[str, ...]:
    """The co-players to play, in order and without repeats; `all` stands for every one that fits.

    requested: one name or a list of names (`self`, a fixed co-player, `all`). Raises
    `ConfigError` naming what is allowed for a game that is not two-player, an unknown name or a
    co-player that does not fit `env` (called `env_name` in messages).
    """
    if env.num_agents != 2:
        raise ConfigError(
            f"opponents needs a two-player game; {env_name} has {env.num_agents} players"
        )
    allowed = (SELF, *fixed_co_players(env))
    choices = f"allowed for {env_name}: {', '.join(allowed)} or {ALL}"
    several = isinstance(requested, Sequence) and not isinstance(requested, str)
    names: list[str] = []
    for name in map(str, requested if several else [requested]):
        if name not in (*allowed, ALL):
            known = name in (*STRATEGIES, *COIN_STRATEGIES)
            problem = f"{name} does not fit {env_name}" if known else f"unknown co-player {name!r}"
            raise ConfigError(f"opponents: {problem}; {choices}")
        names.extend(n for n in (allowed if name == ALL else (name,)) if n not in names)
    if not names:
        raise ConfigError(f"opponents is empty; {choices}")
    return tuple(names)


def co_player_action(name: str, env: Env) -> CoPlayerFn:
    """The action function of fixed co-player `name` (one of `fixed_co_players(env)`)."""
    if isinstance(env, CoinGame):
        return coin_strategy(name, env)
    theta = jnp.asarray(strategy_theta(name))
    return lambda obs, key: memory_one_action(theta, key, obs)


def trained_seats(run: LoadedRun, env: Env, greedy: bool = False) -> ActionFn:
    """The trained policy in every seat of the two-player `env` (`two_player_game(run)`).

    A self-play run plays as trained (each seat its own parameters, or the shared network with
    each seat's agent id). A run trained against a fixed opponent has one learner seat; its
    policy plays each seat on that seat's observation.
    """
    act = policy_actions(run.trainer, run.params, greedy)
    if run.env.num_agents == env.num_agents:
        return act

    def learner_in_each_seat(obs: jax.Array, key: jax.Array) -> jax.Array:
        def one_seat(seat_obs, seat_key):
            return act(seat_obs[:, None], seat_key)[:, 0]

        keys = jax.random.split(key, env.num_agents)
        return jax.vmap(one_seat, in_axes=(1, 0), out_axes=1)(obs, keys)

    return learner_in_each_seat


def match_actions(
    run: LoadedRun, env: Env, names: Sequence[str], greedy: bool = False
) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """Joint actions of the matches of the table, selected by a (possibly traced) match index.

    Returns `act(match int32 [], obs [E, 2, *obs_shape], key) -> int32 [E, 2]`: the trained policy
    in seat 0 against `names[match]` in seat 1 (the trained policy itself for `self`).
    """
    trained = trained_seats(run, env, greedy)

    def seat_one_of(name: str):
        if name == SELF:
            return lambda obs, keys, trained_action: trained_action
        co_player = jax.vmap(co_player_action(name, env))
        return lambda obs, keys, trained_action: co_player(obs, keys)

    branches = [seat_one_of(name) for name in names]

    def act(match: jax.Array, obs: jax.Array, key: jax.Array) -> jax.Array:
        policy_key, co_player_key = jax.random.split(key)
        actions = trained(obs, policy_key)
        keys = jax.random.split(co_player_key, obs.shape[0])
        seat_one = jax.lax.switch(match, branches, obs[:, 1], keys, actions[:, 1])
        return actions.at[:, 1].set(seat_one)

    return act


def play_matches(
    run: LoadedRun,
    env: Env,
    names: Sequence[str],
    key: jax.Array,
    num_episodes: int,
    greedy: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """Trajectories `[T, E, ...]` (as `play_episodes`) of every match, keyed by co-player name.

    The matches are one vmapped axis of one compiled program, so the table compiles once; they
    share `key`, so every match starts from the same resets and draws (common random numbers).
    """
    act = match_actions(run, env, names, greedy)

    def one_match(match: jax.Array):
        return episode_trajectories(env, functools.partial(act, match), key, num_episodes)

    stacked = jax.device_get(jax.jit(jax.vmap(one_match))(jnp.arange(len(names))))
    return {name: jax.tree.map(lambda leaf, i=i: leaf[i], stacked) for i, name in enumerate(names)}


def co_play_metrics(trajectory: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-seat metrics of one match: {name: (mean `[2]`, standard error `[2]`) over episodes}.

    trajectory: `play_episodes` output of a two-player game, arrays `[T, E, ...]`. Metrics:
    `reward_per_step`; with a `cooperated` flag (matrix games) `cooperation_rate`; with pickup
    counters (Coin Game) `own_coin_fraction` (own / all pickups of the episode, averaged over the
    episodes with pickups) and `pickups_per_step` (coins picked by the seat per step).
    """
    per_episode = {"reward_per_step": jnp.mean(jnp.asarray(trajectory["reward"]), axis=0)}
    if "cooperated" in trajectory:
        cooperated = jnp.asarray(trajectory["cooperated"])
        per_episode["cooperation_rate"] = jax.vmap(cooperation_rate, in_axes=1)(cooperated)
    if "own_pickups" in trajectory:
        own = jnp.asarray(trajectory["own_pickups"])
        other = jnp.asarray(trajectory["other_pickups"])
        per_episode["own_coin_fraction"] = jax.vmap(own_coin_fraction, in_axes=1)(own, other)
        per_episode["pickups_per_step"] = jnp.mean(own + other, axis=0)
    return {
        name: tuple(np.asarray(v) for v in mean_and_stderr(values))
        for name, values in per_episode.items()
    }
