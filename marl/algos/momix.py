"""MO-MIX (`algo=momix`) and its outer-loop QMIX baseline (`algo=qmix_outer`).

Spec: `specs/algos/momix.md` (Hu, Luo, Yang & Huang, TPAMI 2023). The env declares m team
objectives (`env.objectives`) and the learner trains on the team reward vector r `[m]`
(`reward_mode=vector`). Conditional agent networks read [o_i, a_i(t-1), agent id, w] and output
Q_i `[A, m]`; m monotonic mixers (one per objective, hypernetworks on [s, w]) give Q_tot `[m]`;
the loss is the vector double-Q TD error against target networks, on whole episodes replayed with
their own preference and `num_pref_relabel` more drawn from the training distribution. Agents act
epsilon-greedily on wᵀQ_i. Preferences are Dirichlet(1) (`pref_dist=uniform`) or the exploration
guide (`guide`), which favours grid cells where the last evaluated front has its largest gaps.

One update plays one whole episode (T = `env.max_steps` steps) in each of `num_envs` envs, stores
them, then takes `gradient_steps` gradient steps. Every `eval_every` updates (and at the last) the
greedy policies are evaluated on the preference grid: the points `pareto/points` `[G, m]` feed the
guide, and `host_metrics` turns them into hypervolume, sparsity and spacing for the logs.

`outer_loop=true` is the paper's baseline: one scalar QMIX per grid preference w_g, trained on
wᵀr with w not an input (one mixer), the G runs vmapped over w and each evaluated at its own w.
With one objective MO-MIX is exactly this QMIX.

Array layout: rollouts `[T, E, N, ...]`; replayed episodes `[B, T, N, ...]`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from marl.algos.episode_metrics import completed_episode_metrics
from marl.algos.episode_replay import (
    EpisodeBuffer,
    Episodes,
    add_episodes,
    init_episode_buffer,
    sample_episodes,
)
from marl.algos.exploration import epsilon_greedy, greedy_actions, linear_schedule
from marl.algos.mixer import MonotonicMixer, init_mixers, mix
from marl.algos.preferences import (
    PREFERENCE_DISTRIBUTIONS,
    preference_grid,
    sample_preferences,
)
from marl.config import ConfigError, require, require_choice
from marl.envs.base import Env
from marl.envs.wrappers import VECTOR_REWARD, any_in_batch, training_env, tree_select
from marl.eval.pareto import FRONT_METRICS, front_metrics
from marl.networks import (
    INITIALISATIONS,
    ConditionalQNetwork,
    check_network_keys,
    network_settings,
)

OPTIMIZERS = ("rmsprop", "adam")
BUDGETS = ("split", "per_pref")
POINTS_METRIC = "pareto/points"


@dataclasses.dataclass(frozen=True)
class MOMIXConfig:
    """Hyperparameters of `algo=momix` (`configs/algo/momix.yaml` documents each one)."""

    IGNORED_KEYS = ("name",)

    total_timesteps: int = 200_000
    num_envs: int = 8
    gamma: float = 0.99
    lr: float = 5e-4
    optimizer: str = "rmsprop"
    max_grad_norm: float = 10.0
    buffer_episodes: int = 5_000
    batch_episodes: int = 32
    gradient_steps: int = 1
    target_update_every: int = 200
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_steps: int = 50_000
    share_params: bool = True
    agent_id: bool = True
    last_action: bool = True
    rnn_hidden: int = 64
    encoder: str = "auto"
    hidden_sizes: tuple[int, ...] = (64,)
    activation: str = "relu"
    layer_init: str = "uniform_fan_in"
    cnn_channels: tuple[int, ...] = (32, 32, 32)
    cnn_kernel_sizes: tuple[int, ...] = (5, 3, 3)
    cnn_dense_size: int = 64
    mixer_embed_dim: int = 32
    hypernet_hidden: int = 64
    mixer_uses_w: bool = True
    eval_pref_grid: int = 11
    eval_every: int = 50
    eval_episodes: int = 8
    pref_dist: str = "guide"
    guide_mix: float = 0.5
    num_pref_relabel: int = 1
    scalar_loss_coef: float = 0.0
    outer_loop: bool = False
    outer_loop_budget: str = "split"
    outer_loop_runs_at_once: int = 0

    def validate(self, where: str = "algo") -> None:
        """Range checks that need no environment; `ConfigError` names the offending key."""
        at_least_one = (
            "total_timesteps",
            "num_envs",
            "buffer_episodes",
            "batch_episodes",
            "gradient_steps",
            "target_update_every",
            "eps_decay_steps",
            "mixer_embed_dim",
            "hypernet_hidden",
            "eval_every",
            "eval_episodes",
        )
        for key in at_least_one:
            value = getattr(self, key)
            require(value >= 1, f"{where}.{key} must be >= 1; got {value}")
        for key in ("rnn_hidden", "num_pref_relabel", "outer_loop_runs_at_once"):
            value = getattr(self, key)
            require(value >= 0, f"{where}.{key} must be >= 0; got {value}")
        require(
            self.eval_pref_grid >= 2,
            f"{where}.eval_pref_grid must be >= 2; got {self.eval_pref_grid}",
        )
        require(self.lr > 0, f"{where}.lr must be > 0; got {self.lr}")
        require(
            self.max_grad_norm > 0, f"{where}.max_grad_norm must be > 0; got {self.max_grad_norm}"
        )
        require(
            self.scalar_loss_coef >= 0,
            f"{where}.scalar_loss_coef must be >= 0; got {self.scalar_loss_coef}",
        )
        for key in ("gamma", "eps_start", "eps_end", "guide_mix"):
            value = getattr(self, key)
            require(0 <= value <= 1, f"{where}.{key} must be in [0, 1]; got {value}")
        require(
            self.num_envs <= self.buffer_episodes,
            f"{where}.buffer_episodes ({self.buffer_episodes}) must be >= num_envs "
            f"({self.num_envs}): one update stores num_envs episodes",
        )
        require_choice(self.optimizer, OPTIMIZERS, f"{where}.optimizer")
        require_choice(self.pref_dist, PREFERENCE_DISTRIBUTIONS, f"{where}.pref_dist")
        require_choice(self.outer_loop_budget, BUDGETS, f"{where}.outer_loop_budget")
        require_choice(self.layer_init, INITIALISATIONS, f"{where}.layer_init")
        check_network_keys(self, where)


@struct.dataclass
class MOMIXState:
    """Everything a run carries between updates (the checkpointed train state); with
    `outer_loop` every leaf has a leading run axis `[G, ...]`.

    params: {"agent": agent network(s) (`[N, ...]` without share_params), "mixer": mixers stacked
    `[K, ...]`}; target_params: the same; opt_state; buffer: the episode ring; env_state `[E]`,
    last_obs `[E, N, *obs_shape]` (always the first observation of an episode); key; step: int32
    `[]` vectorised env steps taken; update_step: int32 `[]`; front: float32 `[G, m]` the points of
    the last evaluation (the guide's input); front_ready: bool `[]` whether one has happened.
    """

    params: Any
    target_params: Any
    opt_state: Any
    buffer: EpisodeBuffer
    env_state: Any
    last_obs: jax.Array
    key: jax.Array
    step: jax.Array
    update_step: jax.Array
    front: jax.Array
    front_ready: jax.Array


class MOMIX:
    """MO-MIX trainer: `init(key) -> MOMIXState`, `update(state) -> (state, metrics)`,
    `evaluate_front(params, key, episodes)`, `host_metrics(metrics)`."""

    def __init__(self, env: Env, config: MOMIXConfig):
        config.validate()
        objectives = env.objectives
        if objectives is None:
            raise ConfigError(
                "algo=momix trains on a team reward vector: the env declares no objectives "
                "(env.objectives with components, signs, ref_point, scale); choose env=mo_matrix "
                "or env=cleanup_mo, or add env.objectives to your env config"
            )
        if env.max_steps is None:
            raise ConfigError(
                "algo=momix replays whole episodes: the env must have episodes (env.max_steps)"
            )
        self.env = env
        self.config = config
        self.objectives = objectives
        self.num_objectives = objectives.num_objectives
        self.num_agents = env.num_agents
        self.horizon = env.max_steps
        self.outer_loop = config.outer_loop
        # Q heads and mixers: one per objective, or one on the scalarised reward (outer loop).
        self.num_heads = 1 if self.outer_loop else self.num_objectives
        self.conditioned = self.num_heads > 1
        self.grid = preference_grid(self.num_objectives, config.eval_pref_grid)
        self.num_runs = len(self.grid) if self.outer_loop else 1
        self.uses_agent_id = config.agent_id and config.share_params
        require(
            config.batch_episodes <= config.buffer_episodes,
            f"algo.batch_episodes ({config.batch_episodes}) must be <= buffer_episodes "
            f"({config.buffer_episodes})",
        )
        runs = f" for each of the {self.num_runs} runs" if self._budget_share > 1 else ""
        require(
            self.num_updates >= 1,
            f"algo.total_timesteps ({config.total_timesteps}) must be at least "
            f"{self._steps_per_run_update * self._budget_share} (one episode in each of "
            f"num_envs envs{runs})",
        )
        self.train_env = training_env(env, VECTOR_REWARD)
        self.network = ConditionalQNetwork(
            num_actions=env.num_actions,
            num_objectives=self.num_heads,
            rnn_hidden=config.rnn_hidden,
            layer_init=config.layer_init,
            **network_settings(config, env.obs_shape),
        )
        self.mixer = MonotonicMixer(config.mixer_embed_dim, config.hypernet_hidden)
        state_size = int(np.prod(jax.eval_shape(self._first_state, jax.random.PRNGKey(0)).shape))
        self.mixer_input_size = state_size + (self.num_objectives if self._mixer_reads_w else 0)
        optimizer = (
            optax.rmsprop(config.lr, decay=0.99, eps=1e-5)
            if config.optimizer == "rmsprop"
            else optax.adam(config.lr)
        )
        self.optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optimizer)

    # ------------------------------------------------------------------ sizes and schedules
    @property
    def _mixer_reads_w(self) -> bool:
        return self.conditioned and self.config.mixer_uses_w

    @property
    def _steps_per_run_update(self) -> int:
        return self.config.num_envs * self.horizon

    @property
    def _budget_share(self) -> int:
        """How many runs share `total_timesteps` (G with outer_loop_budget=split, else 1)."""
        split = self.outer_loop and self.config.outer_loop_budget == "split"
        return self.num_runs if split else 1

    @property
    def env_steps_per_update(self) -> int:
        return self.num_runs * self._steps_per_run_update

    @property
    def num_updates(self) -> int:
        return self.config.total_timesteps // (self._steps_per_run_update * self._budget_share)

    def epsilon(self, step: jax.Array) -> jax.Array:
        """Exploration rate at vectorised step `step`."""
        config = self.config
        return linear_schedule(config.eps_start, config.eps_end, config.eps_decay_steps, step)

    def _first_state(self, key: jax.Array) -> jax.Array:
        return self.train_env.global_state(self.train_env.reset(key)[1])

    # ------------------------------------------------------------------ networks
    def _agent_extra(self, prev_action: jax.Array, preference: jax.Array) -> jax.Array | None:
        """Extra agent inputs `[B, N, D]` from prev_action int32 `[B, N]` (-1: none yet) and the
        preference `[B, m]`: [one-hot a_i(t-1), agent id, w], each when enabled."""
        batch = prev_action.shape[0]
        parts = []
        if self.config.last_action:
            parts.append(jax.nn.one_hot(prev_action, self.env.num_actions))
        if self.uses_agent_id:
            parts.append(
                jnp.broadcast_to(
                    jnp.eye(self.num_agents), (batch, self.num_agents, self.num_agents)
                )
            )
        if self.conditioned:
            parts.append(
                jnp.broadcast_to(
                    preference[:, None, :], (batch, self.num_agents, self.num_objectives)
                )
            )
        return jnp.concatenate(parts, axis=-1) if parts else None

    def agent_q(self, agent_params, obs, extra, carry) -> tuple[jax.Array, jax.Array]:
        """Q `[B, N, A, heads]` and next carry `[B, N, H]` for obs `[B, N, *obs_shape]`, extra
        `[B, N, D]` (or None) and carry `[B, N, H]`."""
        if self.config.share_params:
            batch = obs.shape[0]
            flat = lambda x: None if x is None else x.reshape(batch * self.num_agents, *x.shape[2:])
            q, carry = self.network.apply(agent_params, flat(obs), flat(extra), flat(carry))
            return q.reshape(batch, self.num_agents, *q.shape[1:]), carry.reshape(
                batch, self.num_agents, -1
            )
        q, carry = jax.vmap(self.network.apply, in_axes=(0, 1, 1, 1), out_axes=(1, 1))(
            agent_params, obs, extra, carry
        )
        return q, carry

    def initial_carry(self, batch: int) -> jax.Array:
        """Zero GRU state `[batch, N, H]` (H = max(rnn_hidden, 1) so the carry always exists)."""
        return jnp.zeros((batch, self.num_agents, max(self.config.rnn_hidden, 1)), jnp.float32)

    def scalarise(self, q: jax.Array, preference: jax.Array) -> jax.Array:
        """wᵀQ `[B, N, A]` of q `[B, N, A, heads]` under preference `[B, m]` (the single head as
        is when the network is not conditioned)."""
        if not self.conditioned:
            return q[..., 0]
        return jnp.einsum("bnah,bh->bna", q, preference)

    def mixer_input(self, state: jax.Array, preference: jax.Array) -> jax.Array:
        """z `[B, Z]`: the flattened global state `[B, *state_shape]`, then w `[B, m]` when the
        mixers read it."""
        z = state.reshape(state.shape[0], -1).astype(jnp.float32)
        if self._mixer_reads_w:
            z = jnp.concatenate([z, preference], axis=-1)
        return z

    def _init_params(self, key: jax.Array):
        agent_key, mixer_key = jax.random.split(key)
        obs = jnp.zeros((1, *self.env.obs_shape), jnp.float32)
        extra = self._agent_extra(
            jnp.zeros((1, self.num_agents), jnp.int32), jnp.ones((1, self.num_objectives))
        )
        extra = None if extra is None else extra[:, 0]
        carry = self.initial_carry(1)[:, 0]
        if self.config.share_params:
            agent = self.network.init(agent_key, obs, extra, carry)
        else:
            agent = jax.vmap(lambda k: self.network.init(k, obs, extra, carry))(
                jax.random.split(agent_key, self.num_agents)
            )
        mixer = init_mixers(
            self.mixer, mixer_key, self.num_heads, self.num_agents, self.mixer_input_size
        )
        return {"agent": agent, "mixer": mixer}

    # ------------------------------------------------------------------ contract
    def init(self, key: jax.Array) -> MOMIXState:
        """Fresh networks (target = online), optimiser state, an empty buffer and reset envs;
        with outer_loop, one such state per grid preference `[G, ...]`."""
        if self.outer_loop:
            # lax.map, not vmap: batched QR decompositions (the GRU's orthogonal init) are slow
            # on XLA:CPU and have hung there.
            return jax.lax.map(self._init_run, jax.random.split(key, self.num_runs))
        return self._init_run(key)

    def _init_run(self, key: jax.Array) -> MOMIXState:
        key, params_key, env_key = jax.random.split(key, 3)
        params = self._init_params(params_key)
        obs, env_state = jax.vmap(self.train_env.reset)(
            jax.random.split(env_key, self.config.num_envs)
        )
        example, _ = jax.eval_shape(
            self._rollout,
            params,
            env_state,
            obs,
            key,
            jnp.zeros((), jnp.int32),
            jnp.ones((self.config.num_envs, self.num_objectives)),
        )
        example = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), example)
        return MOMIXState(
            params=params,
            target_params=params,
            opt_state=self.optimizer.init(params),
            buffer=init_episode_buffer(self.config.buffer_episodes, example),
            env_state=env_state,
            last_obs=obs,
            key=key,
            step=jnp.zeros((), jnp.int32),
            update_step=jnp.zeros((), jnp.int32),
            front=jnp.zeros((len(self.grid), self.num_objectives), jnp.float32),
            front_ready=jnp.zeros((), bool),
        )

    def update(self, state: MOMIXState) -> tuple[MOMIXState, dict[str, jax.Array]]:
        """One episode in every env, stored; `gradient_steps` gradient steps; target copy and
        evaluation when due. With outer_loop every run updates at its own grid preference."""
        if not self.outer_loop:
            return self._update_run(state, None)
        grid = jnp.asarray(self.grid)
        at_once = self.config.outer_loop_runs_at_once
        if at_once == 0 or at_once >= self.num_runs:
            state, metrics = jax.vmap(self._update_run)(state, grid)
        else:
            # `at_once` runs vmapped per step of a sequential map: the update's temporaries
            # shrink by about G / at_once (Cleanup: 61 GB -> about 6 GB per seed)
            state, metrics = jax.lax.map(
                lambda run: self._update_run(*run), (state, grid), batch_size=at_once
            )
        points = metrics.pop(POINTS_METRIC)  # [G, 1, m]: each run's point at its own w
        metrics = jax.tree.map(lambda m: m.mean(axis=0), metrics)
        metrics[POINTS_METRIC] = points[:, 0]
        return state, metrics

    def _behaviour_preferences(
        self, state: MOMIXState, key: jax.Array, num: int, fixed
    ) -> jax.Array:
        """Preferences `[num, m]`: the run's fixed w (outer loop) or draws from pref_dist."""
        if fixed is not None:
            return jnp.broadcast_to(fixed, (num, self.num_objectives))
        config = self.config
        return sample_preferences(
            key,
            num,
            self.num_objectives,
            config.pref_dist,
            jnp.asarray(self.grid),
            state.front,
            jnp.asarray(self.objectives.scale),
            config.guide_mix,
            state.front_ready,
        )

    def _update_run(self, state: MOMIXState, fixed_preference):
        config = self.config
        key, pref_key, rollout_key, learn_key, eval_key = jax.random.split(state.key, 5)
        preference = self._behaviour_preferences(state, pref_key, config.num_envs, fixed_preference)
        episodes, (env_state, last_obs, info) = self._rollout(
            state.params, state.env_state, state.last_obs, rollout_key, state.step, preference
        )
        buffer = add_episodes(state.buffer, episodes)
        state = state.replace(buffer=buffer, env_state=env_state, last_obs=last_obs, key=key)

        learning = buffer.count >= config.batch_episodes
        (params, opt_state), learn_metrics = jax.lax.scan(
            lambda carry, k: self._gradient_step(carry, state, k, fixed_preference),
            (state.params, state.opt_state),
            jax.random.split(learn_key, config.gradient_steps),
        )
        params = tree_select(learning, params, state.params)
        opt_state = tree_select(learning, opt_state, state.opt_state)
        update_step = state.update_step + 1
        copy_target = update_step % config.target_update_every == 0
        state = state.replace(
            params=params,
            target_params=tree_select(copy_target, params, state.target_params),
            opt_state=opt_state,
            step=state.step + self.horizon,
            update_step=update_step,
        )
        due = (update_step % config.eval_every == 0) | (update_step == self.num_updates)
        evaluation_grid = (
            jnp.asarray(self.grid) if fixed_preference is None else fixed_preference[None]
        )

        def evaluate(_):
            return self.evaluate_preferences(
                params["agent"], eval_key, evaluation_grid, config.eval_episodes
            )

        def skip(_):
            return jnp.full((len(evaluation_grid), self.num_objectives), jnp.nan, jnp.float32)

        points = jax.lax.cond(any_in_batch(due), evaluate, skip, None)
        points = jnp.where(due, points, jnp.nan)
        if fixed_preference is None:
            state = state.replace(
                front=jnp.where(due, points, state.front), front_ready=state.front_ready | due
            )
        metrics = {
            **jax.tree.map(lambda m: m.mean() * learning, learn_metrics),
            "learning/active": learning.astype(jnp.float32),
            "exploration/epsilon": self.epsilon(state.step - self.horizon),
            **self._rollout_metrics(episodes, info),
            POINTS_METRIC: points,
        }
        return state, metrics

    # ------------------------------------------------------------------ acting
    def _rollout(self, params, env_state, obs, key, step, preference):
        """One episode of T steps in each of the E envs, epsilon-greedy on wᵀQ.

        Returns (Episodes `[E, T, ...]`, (env state, next first obs, infos `[T, E, ...]`)).
        """
        num_envs = obs.shape[0]
        step_env = jax.vmap(self.train_env.step)
        global_state = jax.vmap(self.train_env.global_state)

        def env_step(carry, inputs):
            env_state, obs, prev_action, rnn_carry = carry
            step_key, t = inputs
            action_key, env_key = jax.random.split(step_key)
            q, rnn_carry = self.agent_q(
                params["agent"], obs, self._agent_extra(prev_action, preference), rnn_carry
            )
            action = epsilon_greedy(
                action_key, self.scalarise(q, preference), self.epsilon(step + t)
            )
            state_t = global_state(env_state)
            next_obs, env_state, reward, done, info = step_env(
                jax.random.split(env_key, num_envs), env_state, action
            )
            record = (obs, state_t, action, reward, done, info)
            return (env_state, next_obs, action, rnn_carry), record

        start = (
            env_state,
            obs,
            jnp.full((num_envs, self.num_agents), -1, jnp.int32),
            self.initial_carry(num_envs),
        )
        (env_state, next_obs, _, _), (obs_t, state_t, action, reward, done, info) = jax.lax.scan(
            env_step, start, (jax.random.split(key, self.horizon), jnp.arange(self.horizon))
        )
        batch_major = lambda x: jnp.swapaxes(x, 0, 1)
        episodes = Episodes(
            obs=batch_major(obs_t),
            state=batch_major(state_t),
            action=batch_major(action),
            reward=batch_major(reward),
            done=batch_major(done),
            preference=preference,
        )
        return episodes, (env_state, next_obs, info)

    def evaluate_preferences(self, agent_params, key, preferences, num_episodes) -> jax.Array:
        """Mean team return `[P, m]` of `num_episodes` greedy episodes of one network's agents at
        each of the preferences `[P, m]`."""
        keys = jax.random.split(key, len(preferences))
        return jax.vmap(lambda w, k: self._greedy_return(agent_params, w, k, num_episodes))(
            preferences, keys
        )

    def _greedy_return(self, agent_params, preference, key, num_episodes) -> jax.Array:
        reset_key, steps_key = jax.random.split(key)
        obs, env_state = jax.vmap(self.train_env.reset)(jax.random.split(reset_key, num_episodes))
        w = jnp.broadcast_to(preference, (num_episodes, self.num_objectives))
        step_env = jax.vmap(self.train_env.step)

        def env_step(carry, step_key):
            env_state, obs, prev_action, rnn_carry, total = carry
            q, rnn_carry = self.agent_q(
                agent_params, obs, self._agent_extra(prev_action, w), rnn_carry
            )
            action = greedy_actions(self.scalarise(q, w))
            obs, env_state, reward, _, _ = step_env(
                jax.random.split(step_key, num_episodes), env_state, action
            )
            return (env_state, obs, action, rnn_carry, total + reward), None

        start = (
            env_state,
            obs,
            jnp.full((num_episodes, self.num_agents), -1, jnp.int32),
            self.initial_carry(num_episodes),
            jnp.zeros((num_episodes, self.num_objectives), jnp.float32),
        )
        (_, _, _, _, total), _ = jax.lax.scan(
            env_step, start, jax.random.split(steps_key, self.horizon)
        )
        return total.mean(axis=0)

    def evaluate_front(self, params, key: jax.Array, num_episodes: int) -> jax.Array:
        """Greedy points `[G, m]` on the preference grid: MO-MIX's one network at every w_g, or
        (outer loop, params `[G, ...]`) run g at its own w_g."""
        grid = jnp.asarray(self.grid)
        if not self.outer_loop:
            return self.evaluate_preferences(params["agent"], key, grid, num_episodes)
        keys = jax.random.split(key, self.num_runs)
        return jax.vmap(lambda p, w, k: self._greedy_return(p["agent"], w, k, num_episodes))(
            params, grid, keys
        )

    def act(
        self, params, obs: jax.Array, key: jax.Array, preference: jax.Array | None = None
    ) -> jax.Array:
        """Greedy actions int32 `[B, N]` from obs `[B, N, *obs_shape]` at `preference` `[m]`
        (default: equal weights). Only for memoryless agents (`rnn_hidden=0`,
        `last_action=false`) and MO-MIX's one network; otherwise use `evaluate_front`."""
        if self.config.rnn_hidden or self.config.last_action or self.outer_loop:
            raise ConfigError(
                "MO-MIX agents with a GRU or the previous action need their episode history, and "
                "outer-loop runs one network per preference: evaluate them with "
                "trainer.evaluate_front (scripts/evaluate.py does)"
            )
        batch = obs.shape[0]
        if preference is None:
            preference = jnp.full((self.num_objectives,), 1.0 / self.num_objectives)
        w = jnp.broadcast_to(preference, (batch, self.num_objectives))
        extra = self._agent_extra(jnp.full((batch, self.num_agents), -1, jnp.int32), w)
        q, _ = self.agent_q(params["agent"], obs, extra, self.initial_carry(batch))
        return greedy_actions(self.scalarise(q, w))

    # ------------------------------------------------------------------ learning
    def _gradient_step(self, carry, state: MOMIXState, key, fixed_preference):
        params, opt_state = carry
        sample_key, relabel_key = jax.random.split(key)
        episodes = sample_episodes(state.buffer, sample_key, self.config.batch_episodes)
        preferences = self.replay_preferences(state, episodes, relabel_key, fixed_preference)
        (loss, metrics), grads = jax.value_and_grad(self.loss, has_aux=True)(
            params, state.target_params, episodes, preferences, fixed_preference
        )
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), {"loss/total": loss, **metrics}

    def replay_preferences(self, state, episodes: Episodes, key, fixed_preference) -> jax.Array:
        """Preferences `[B, 1 + R, m]` to learn each episode under: its own, then R =
        `num_pref_relabel` relabels from the training distribution (none in the outer loop,
        whose w is fixed, nor with one objective)."""
        own = episodes.preference[:, None]
        if (
            fixed_preference is not None
            or not self.conditioned
            or self.config.num_pref_relabel == 0
        ):
            return own
        batch, relabels = own.shape[0], self.config.num_pref_relabel
        drawn = self._behaviour_preferences(state, key, batch * relabels, None)
        return jnp.concatenate([own, drawn.reshape(batch, relabels, -1)], axis=1)

    def loss(self, params, target_params, episodes: Episodes, preferences, fixed_preference=None):
        """Vector TD loss (momix.md §4) over B episodes, each under K preferences `[B, K, m]`:
        mean over episodes, preferences and steps of ‖y − Q_tot‖² (+ scalar_loss_coef·(wᵀy −
        wᵀQ_tot)²). `fixed_preference` `[m]` (outer loop): rewards are scalarised with it.
        Mapped over the K preferences with the episodes unbatched, so the layers that do not
        read w (the agents' convolutions) run once per episode, not once per preference."""
        losses, aux = jax.vmap(self._preference_loss, in_axes=(None, None, None, 1, None))(
            params, target_params, episodes, preferences, fixed_preference
        )
        return losses.mean(), jax.tree.map(jnp.mean, aux)

    def _preference_loss(self, params, target_params, episodes: Episodes, w, fixed_preference):
        """The loss of `loss` with one preference per episode, w `[B, m]`."""
        reward = episodes.reward
        if fixed_preference is not None:
            reward = (reward * fixed_preference).sum(axis=-1, keepdims=True)
        q = self._sequence_q(params["agent"], episodes, w)  # [B, T, N, A, H]
        q_target = self._sequence_q(target_params["agent"], episodes, w)
        taken = jnp.take_along_axis(q, episodes.action[..., None, None], axis=3)[:, :, :, 0]
        # Step t's target reads step t + 1; the last step's (always done) reads itself, masked.
        following = lambda x: jnp.concatenate([x[:, 1:], x[:, -1:]], axis=1)
        online_next = jax.lax.stop_gradient(following(q))
        scalarised = jax.vmap(self.scalarise, in_axes=(1, None), out_axes=1)(online_next, w)
        next_action = greedy_actions(scalarised)  # double Q: argmax of the online network
        target_taken = jnp.take_along_axis(
            following(q_target), next_action[..., None, None], axis=3
        )[:, :, :, 0]
        q_tot = self._mix_sequence(params["mixer"], taken, episodes.state, w)  # [B, T, H]
        next_tot = self._mix_sequence(
            target_params["mixer"], target_taken, following(episodes.state), w
        )
        not_done = 1.0 - episodes.done.astype(jnp.float32)[..., None]
        targets = jax.lax.stop_gradient(reward + self.config.gamma * not_done * next_tot)
        error = targets - q_tot
        loss = (error**2).sum(axis=-1).mean()
        if self.config.scalar_loss_coef:
            head_weights = w[:, None, :] if self.conditioned else jnp.ones((w.shape[0], 1, 1))
            loss = (
                loss + self.config.scalar_loss_coef * ((error * head_weights).sum(-1) ** 2).mean()
            )
        return loss, {"q/total": q_tot.mean(), "q/target": targets.mean()}

    def _sequence_q(self, agent_params, episodes: Episodes, preference) -> jax.Array:
        """Q `[B, T, N, A, heads]` along whole episodes (the GRU from a zero state)."""
        batch = episodes.obs.shape[0]
        prev_action = jnp.concatenate(
            [jnp.full((batch, 1, self.num_agents), -1, jnp.int32), episodes.action[:, :-1]], axis=1
        )
        if not self.config.rnn_hidden:
            flat = lambda x: x.reshape(batch * self.horizon, *x.shape[2:])
            w = jnp.repeat(preference, self.horizon, axis=0)
            extra = self._agent_extra(flat(prev_action), w)
            q, _ = self.agent_q(
                agent_params, flat(episodes.obs), extra, self.initial_carry(batch * self.horizon)
            )
            return q.reshape(batch, self.horizon, *q.shape[1:])

        def step(carry, inputs):
            obs, prev = inputs
            q, carry = self.agent_q(agent_params, obs, self._agent_extra(prev, preference), carry)
            return carry, q

        time_major = lambda x: jnp.swapaxes(x, 0, 1)
        _, q = jax.lax.scan(
            step, self.initial_carry(batch), (time_major(episodes.obs), time_major(prev_action))
        )
        return time_major(q)

    def _mix_sequence(self, mixer_params, taken, state, preference) -> jax.Array:
        """Q_tot `[B, T', H]` of chosen Q `[B, T', N, H]` at global states `[B, T', ...]`."""
        batch, steps = taken.shape[:2]
        w = jnp.repeat(preference, steps, axis=0)
        z = self.mixer_input(state.reshape(batch * steps, *state.shape[2:]), w)
        q_tot = mix(self.mixer, mixer_params, taken.reshape(batch * steps, *taken.shape[2:]), z)
        return q_tot.reshape(batch, steps, -1)

    # ------------------------------------------------------------------ metrics
    def _rollout_metrics(self, episodes: Episodes, info) -> dict[str, jax.Array]:
        """Team return per objective of the update's episodes, and the game's own episode
        metrics (returns per agent, counters) from the rollout's infos."""
        team_return = episodes.reward.sum(axis=1).mean(axis=0)  # [m]
        metrics = {
            f"episode/objective/{name}": team_return[k]
            for k, name in enumerate(self.objectives.names)
        }
        done = jnp.swapaxes(episodes.done, 0, 1)
        metrics.update(completed_episode_metrics(done, info, self.env.reward_components))
        return metrics

    def host_metrics(self, metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Pareto metrics of the evaluated points (host numpy, after a chunk): for metrics
        `[L, S, ...]` adds `pareto/<metric>` `[L, S]` (NaN where no evaluation ran)."""
        points = np.asarray(metrics[POINTS_METRIC])
        rows = {}
        for index in np.ndindex(points.shape[:2]):
            if np.isfinite(points[index]).all():
                rows[index] = front_metrics(
                    points[index], self.objectives.ref_point, self.objectives.scale
                )
        names = FRONT_METRICS
        extra = {}
        for name in names:
            values = np.full(points.shape[:2], np.nan)
            for index, row in rows.items():
                values[index] = row[name]
            extra[f"pareto/{name}"] = values
        return extra
