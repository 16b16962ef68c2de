"""DQN with shared, grouped or independent Q-networks over all agents (`algo=dqn`).

Spec: `specs/algos/dqn.md`. Agents are split into K parameter groups (K = 1: one network shared by
all agents, the default; K = N with `share_params=false`: independent learners; 1 < K < N:
`num_param_groups`, a fixed random partition drawn from the run seed). Group parameters, target
networks and optimiser states are stacked on a leading group axis `[K, ...]`; each group samples
its own replay windows from its own agents' transitions and learns n-step double-DQN targets with
a Huber loss. One update runs `num_steps` vectorised env steps: after every `train_every` steps
one gradient step per group (once `learning_starts` steps are stored), and a hard target copy at
every multiple of `target_update_every` steps.

Array layout: observations `[E, N, *obs_shape]` (parallel env, agent); replay `[S, E, N, ...]`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from marl.algos.episode_metrics import completed_episode_metrics
from marl.algos.exploration import (
    boltzmann,
    epsilon_greedy,
    greedy_actions,
    linear_schedule,
    mean_of_linear_schedule,
)
from marl.algos.q_learning import double_q_value, n_step_targets
from marl.algos.replay import ReplayBuffer, add_step, init_buffer, sample_windows
from marl.config import ConfigError, require, require_choice
from marl.envs.base import Env
from marl.envs.wrappers import REWARD_MODES, training_env, tree_select
from marl.networks import (
    INITIALISATIONS,
    QNetwork,
    check_network_keys,
    network_settings,
)

EXPLORATIONS = ("epsilon", "boltzmann")
OPTIMIZERS = ("adamw", "adam", "radam")
# Family defaults of the keys left null (dqn.md §6): grid observations (H, W, C), then vectors.
GRID_DEFAULTS = {"num_envs": 16, "gamma": 0.99, "buffer_steps": 1_000}
VECTOR_DEFAULTS = {"num_envs": 64, "gamma": 0.96, "buffer_steps": 5_000}
EPSILON_DECAY_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of `algo=dqn` (`configs/algo/dqn.yaml` documents each one)."""

    IGNORED_KEYS = ("name",)

    total_timesteps: int = 1_000_000
    num_envs: int | None = None
    num_steps: int = 128
    lr: float = 1e-4
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    anneal_lr: bool = False
    max_grad_norm: float = 0.5
    gamma: float | None = None
    n_step: int = 3
    huber_delta: float = 1.0
    batch_size: int = 256
    buffer_steps: int | None = None
    learning_starts: int = 1_000
    train_every: int = 4
    target_update_every: int = 2_000
    exploration: str = "epsilon"
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_steps: int | None = None
    tau_start: float = 1.0
    tau_end: float = 0.1
    tau_anneal_steps: int | None = None
    tau_eval: float = 0.1
    share_params: bool = True
    num_param_groups: int | None = None
    agent_id: bool = True
    encoder: str = "auto"
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    layer_init: str = "orthogonal"
    cnn_channels: tuple[int, ...] = (32, 32, 32)
    cnn_kernel_sizes: tuple[int, ...] = (5, 3, 3)
    cnn_dense_size: int = 64
    reward_mode: str = "individual"

    def validate(self, where: str = "algo") -> None:
        """Range checks that need no environment; `ConfigError` names the offending key."""
        positive = ("total_timesteps", "num_steps", "n_step", "batch_size", "train_every")
        for key in (*positive, "target_update_every"):
            value = getattr(self, key)
            require(value >= 1, f"{where}.{key} must be >= 1; got {value}")
        for key in ("num_envs", "buffer_steps", "num_param_groups"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"{where}.{key} must be null or >= 1; got {value}")
        for key in ("eps_decay_steps", "tau_anneal_steps"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"{where}.{key} must be null or >= 1; got {value}")
        require(self.lr > 0, f"{where}.lr must be > 0; got {self.lr}")
        for key in ("weight_decay", "max_grad_norm", "huber_delta", "tau_start", "tau_end"):
            value = getattr(self, key)
            require(value >= 0, f"{where}.{key} must be >= 0; got {value}")
        require(self.huber_delta > 0, f"{where}.huber_delta must be > 0; got {self.huber_delta}")
        require(self.tau_eval >= 0, f"{where}.tau_eval must be >= 0; got {self.tau_eval}")
        for key in ("eps_start", "eps_end"):
            value = getattr(self, key)
            require(0 <= value <= 1, f"{where}.{key} must be in [0, 1]; got {value}")
        require(
            self.gamma is None or 0 <= self.gamma <= 1,
            f"{where}.gamma must be null or in [0, 1]; got {self.gamma}",
        )
        require(
            self.learning_starts >= self.n_step,
            f"{where}.learning_starts ({self.learning_starts}) must be >= n_step ({self.n_step}): "
            "a window of n steps must be stored before the first gradient step",
        )
        require(
            self.buffer_steps is None or self.buffer_steps > self.n_step,
            f"{where}.buffer_steps ({self.buffer_steps}) must be > n_step ({self.n_step})",
        )
        for key in ("num_steps", "target_update_every"):
            value = getattr(self, key)
            require(
                value % self.train_every == 0,
                f"{where}.{key} ({value}) must be a multiple of train_every ({self.train_every})",
            )
        require(
            self.share_params or self.num_param_groups is None,
            f"{where}.num_param_groups applies to shared parameters; with share_params=false "
            "every agent is its own group (leave num_param_groups null)",
        )
        require_choice(self.exploration, EXPLORATIONS, f"{where}.exploration")
        require_choice(self.optimizer, OPTIMIZERS, f"{where}.optimizer")
        require_choice(self.reward_mode, REWARD_MODES, f"{where}.reward_mode")
        require_choice(self.layer_init, INITIALISATIONS, f"{where}.layer_init")
        check_network_keys(self, where)


@struct.dataclass
class DQNState:
    """Everything a DQN run carries between updates (the checkpointed train state).

    params: {"network": group parameters `[K, ...]`, "agent_group": int32 `[N]` (each agent's
    group)}; target_network and opt_state `[K, ...]`; buffer: the replay ring; env_state `[E]`;
    last_obs `[E, N, *obs_shape]`; key; step: int32 `[]` vectorised env steps taken;
    update_step: int32 `[]`.
    """

    params: Any
    target_network: Any
    opt_state: Any
    buffer: ReplayBuffer
    env_state: Any
    last_obs: jax.Array
    key: jax.Array
    step: jax.Array
    update_step: jax.Array


class DQN:
    """DQN trainer: `init(key) -> DQNState`, `update(state) -> (state, metrics)`, `act`."""

    def __init__(self, env: Env, config: DQNConfig):
        config.validate()
        defaults = GRID_DEFAULTS if len(env.obs_shape) == 3 else VECTOR_DEFAULTS
        self.num_envs = config.num_envs or defaults["num_envs"]
        self.gamma = defaults["gamma"] if config.gamma is None else config.gamma
        self.buffer_steps = config.buffer_steps or defaults["buffer_steps"]
        require(
            self.buffer_steps > config.n_step,
            f"algo.buffer_steps ({self.buffer_steps}) must be > n_step ({config.n_step})",
        )
        self.env = env
        self.config = config
        self.num_agents = env.num_agents
        self.num_groups = self._num_groups(config, env.num_agents)
        self.uses_agent_id = config.agent_id and self.num_groups < self.num_agents
        require(
            self.num_updates >= 1,
            f"algo.total_timesteps ({config.total_timesteps}) must be at least num_steps x "
            f"num_envs = {self.env_steps_per_update} (one update)",
        )
        self.training_steps = self.num_updates * config.num_steps
        self.eps_decay_steps = config.eps_decay_steps or max(
            int(EPSILON_DECAY_FRACTION * self.training_steps), 1
        )
        self.tau_anneal_steps = config.tau_anneal_steps or self.training_steps
        self.train_env = training_env(env, config.reward_mode)
        self.network = QNetwork(
            num_actions=env.num_actions,
            layer_init=config.layer_init,
            **network_settings(config, env.obs_shape),
        )
        self.sequential_groups = jax.default_backend() == "cpu" and self.network.encoder == "cnn"
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm), self._base_optimizer()
        )

    @staticmethod
    def _num_groups(config: DQNConfig, num_agents: int) -> int:
        if not config.share_params:
            return num_agents
        groups = config.num_param_groups or 1
        if num_agents % groups:
            raise ConfigError(
                f"algo.num_param_groups ({groups}) must divide the number of agents ({num_agents})"
            )
        return groups

    def _base_optimizer(self) -> optax.GradientTransformation:
        config = self.config
        learning_rate: Any = config.lr
        if config.anneal_lr:
            learning_rate = optax.linear_schedule(
                config.lr, 0.0, self.training_steps // config.train_every
            )
        if config.optimizer == "adamw":
            return optax.adamw(learning_rate, weight_decay=config.weight_decay)
        if config.optimizer == "radam":
            return optax.radam(learning_rate)
        return optax.adam(learning_rate)

    # ------------------------------------------------------------------ schedules
    @property
    def env_steps_per_update(self) -> int:
        return self.config.num_steps * self.num_envs

    @property
    def num_updates(self) -> int:
        return self.config.total_timesteps // self.env_steps_per_update

    def epsilon(self, step: jax.Array) -> jax.Array:
        """Exploration rate at vectorised step `step` (epsilon exploration)."""
        config = self.config
        return linear_schedule(config.eps_start, config.eps_end, self.eps_decay_steps, step)

    def temperature(self, step: jax.Array) -> jax.Array:
        """Boltzmann temperature at vectorised step `step`."""
        config = self.config
        return linear_schedule(config.tau_start, config.tau_end, self.tau_anneal_steps, step)

    @property
    def exploration_intensity(self) -> float:
        """B of Weng & Lee: the mean temperature over the first half of the anneal."""
        config = self.config
        return mean_of_linear_schedule(
            config.tau_start,
            config.tau_end,
            self.tau_anneal_steps,
            max(self.tau_anneal_steps // 2, 1),
        )

    # ------------------------------------------------------------------ network application
    def _apply(self, network, obs: jax.Array, agent: jax.Array) -> jax.Array:
        """One group's Q values `[R, A]` for rows obs `[R, *obs_shape]` of agents int32 `[R]`."""
        agent_id = jax.nn.one_hot(agent, self.num_agents) if self.uses_agent_id else None
        return self.network.apply(network, obs, agent_id)

    def q_values(self, params, obs: jax.Array) -> jax.Array:
        """Q values `[B, N, A]` for observations `[B, N, *obs_shape]`, each agent by its group.

        Observations are gathered group by group (`[K, B x N/K]` rows), each group's network
        applied to its rows, and the results put back in agent order.
        """
        batch = obs.shape[0]
        members = self.group_members(params["agent_group"])  # [K, M]
        agents = jnp.broadcast_to(members[:, None, :], (self.num_groups, batch, members.shape[1]))
        rows = jnp.moveaxis(obs[:, members], 1, 0)  # [K, B, M, *obs_shape]
        q = jax.vmap(self._apply)(
            params["network"],
            rows.reshape(self.num_groups, -1, *obs.shape[2:]),
            agents.reshape(self.num_groups, -1),
        )  # [K, B x M, A]
        q = jnp.moveaxis(q.reshape(self.num_groups, batch, -1, q.shape[-1]), 0, 1)
        by_group_order = q.reshape(batch, self.num_agents, -1)  # agents in members order
        return by_group_order[:, jnp.argsort(members.reshape(-1))]

    def group_members(self, agent_group: jax.Array) -> jax.Array:
        """int32 `[K, N/K]`: the agents of each group, in increasing order."""
        return jnp.argsort(agent_group, stable=True).reshape(self.num_groups, -1).astype(jnp.int32)

    def policy(self, params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(Q values `[B, N, A]`, their max `[B, N]`): greedy evaluation takes the argmax."""
        q = self.q_values(params, obs)
        return q, q.max(axis=-1)

    def act(self, params, obs: jax.Array, key: jax.Array) -> jax.Array:
        """Evaluation actions int32 `[B, N]`: greedy (epsilon) or Boltzmann at `tau_eval`."""
        q = self.q_values(params, obs)
        if self.config.exploration == "boltzmann":
            return boltzmann(key, q, self.config.tau_eval)
        return greedy_actions(q)

    def _behaviour_actions(self, key: jax.Array, q: jax.Array, step: jax.Array) -> jax.Array:
        if self.config.exploration == "boltzmann":
            return boltzmann(key, q, self.temperature(step))
        return epsilon_greedy(key, q, self.epsilon(step))

    # ------------------------------------------------------------------ contract
    def agent_groups(self, key: jax.Array) -> jax.Array:
        """int32 `[N]`: each agent's group; K equal groups from a random permutation of agents.

        One group (shared) and one group per agent (independent) need no draw: agent i is in
        group 0, respectively group i.
        """
        if self.num_groups == 1:
            return jnp.zeros(self.num_agents, jnp.int32)
        if self.num_groups == self.num_agents:
            return jnp.arange(self.num_agents, dtype=jnp.int32)
        group_size = self.num_agents // self.num_groups
        order = jax.random.permutation(key, self.num_agents)
        return (
            jnp.zeros(self.num_agents, jnp.int32)
            .at[order]
            .set(jnp.arange(self.num_agents, dtype=jnp.int32) // group_size)
        )

    def _init_networks(self, key: jax.Array):
        dummy_obs = jnp.zeros((1, *self.env.obs_shape), jnp.float32)
        dummy_agent = jnp.zeros((1,), jnp.int32)

        def init_one(group_key):
            agent_id = jax.nn.one_hot(dummy_agent, self.num_agents) if self.uses_agent_id else None
            return self.network.init(group_key, dummy_obs, agent_id)

        return jax.vmap(init_one)(jax.random.split(key, self.num_groups))

    def init(self, key: jax.Array) -> DQNState:
        """Fresh networks (target = online), optimiser states, an empty buffer and reset envs."""
        key, params_key, group_key, env_key = jax.random.split(key, 4)
        network = self._init_networks(params_key)
        obs, env_state = jax.vmap(self.train_env.reset)(jax.random.split(env_key, self.num_envs))
        return DQNState(
            params={"network": network, "agent_group": self.agent_groups(group_key)},
            target_network=network,
            opt_state=jax.vmap(self.optimizer.init)(network),
            buffer=init_buffer(self.buffer_steps, obs),
            env_state=env_state,
            last_obs=obs,
            key=key,
            step=jnp.zeros((), jnp.int32),
            update_step=jnp.zeros((), jnp.int32),
        )

    def update(self, state: DQNState) -> tuple[DQNState, dict[str, jax.Array]]:
        """`num_steps` vectorised env steps with a gradient step every `train_every` of them."""
        key, blocks_key = jax.random.split(state.key)
        num_blocks = self.config.num_steps // self.config.train_every
        carry, (trajectory, learn_metrics) = jax.lax.scan(
            self._block, state, jax.random.split(blocks_key, num_blocks)
        )
        trajectory = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), trajectory)
        new_state = carry.replace(key=key, update_step=state.update_step + 1)
        return new_state, self._metrics(trajectory, learn_metrics)

    # ------------------------------------------------------------------ pieces of an update
    def _block(self, state: DQNState, key: jax.Array):
        """`train_every` env steps stored in the buffer, then one gradient step per group."""
        rollout_key, learn_key = jax.random.split(key)
        step_env = jax.vmap(self.train_env.step)

        def env_step(carry, step_key):
            buffer, env_state, obs, step = carry
            action_key, env_key = jax.random.split(step_key)
            action = self._behaviour_actions(action_key, self.q_values(state.params, obs), step)
            next_obs, env_state, reward, done, info = step_env(
                jax.random.split(env_key, self.num_envs), env_state, action
            )
            buffer = add_step(buffer, obs, action, reward, done, next_obs)
            record = {"reward": reward, "done": done, "info": info, "step": step}
            return (buffer, env_state, next_obs, step + 1), record

        (buffer, env_state, last_obs, step), trajectory = jax.lax.scan(
            env_step,
            (state.buffer, state.env_state, state.last_obs, state.step),
            jax.random.split(rollout_key, self.config.train_every),
        )
        learning = step >= self.config.learning_starts
        network, opt_state, metrics = self._learn(state, buffer, learn_key)
        network = tree_select(learning, network, state.params["network"])
        opt_state = tree_select(learning, opt_state, state.opt_state)
        copy_target = step % self.config.target_update_every == 0
        target_network = tree_select(copy_target, network, state.target_network)
        new_state = state.replace(
            params={**state.params, "network": network},
            target_network=target_network,
            opt_state=opt_state,
            buffer=buffer,
            env_state=env_state,
            last_obs=last_obs,
            step=step,
        )
        return new_state, (trajectory, {**metrics, "learning": learning})

    def _learn(self, state: DQNState, buffer: ReplayBuffer, key: jax.Array):
        """One gradient step for every group; metrics are means over groups."""
        members = self.group_members(state.params["agent_group"])
        inputs = (
            state.params["network"],
            state.target_network,
            state.opt_state,
            members,
            jax.random.split(key, self.num_groups),
        )

        def learn_group(group_inputs):
            return self._learn_group(*group_inputs, buffer)

        # CNN groups one after another on CPU (see PPO: vmapped per-group kernels give grouped
        # convolutions that XLA:CPU runs slowly); MLPs and accelerators vmap.
        if self.sequential_groups:
            network, opt_state, metrics = jax.lax.map(learn_group, inputs)
        else:
            network, opt_state, metrics = jax.vmap(learn_group)(inputs)
        return network, opt_state, jax.tree.map(lambda m: m.mean(), metrics)

    def _learn_group(self, network, target_network, opt_state, members, key, buffer):
        sample_key, tie_key = jax.random.split(key)
        windows = sample_windows(
            buffer, sample_key, self.config.batch_size, members, self.config.n_step
        )
        bootstrap = double_q_value(
            tie_key,
            self._apply(network, windows.bootstrap_obs, windows.agent),
            self._apply(target_network, windows.bootstrap_obs, windows.agent),
        )
        targets = jax.lax.stop_gradient(
            n_step_targets(windows.rewards, windows.dones, bootstrap, self.gamma)
        )

        def loss_fn(network):
            q = self._apply(network, windows.obs, windows.agent)
            taken = jnp.take_along_axis(q, windows.action[:, None], axis=-1)[:, 0]
            loss = optax.huber_loss(taken, targets, delta=self.config.huber_delta).mean()
            return loss, taken.mean()

        (loss, q_taken), grads = jax.value_and_grad(loss_fn, has_aux=True)(network)
        updates, opt_state = self.optimizer.update(grads, opt_state, network)
        network = optax.apply_updates(network, updates)
        return network, opt_state, {"loss/total": loss, "q/taken": q_taken}

    def _metrics(self, trajectory, learn_metrics) -> dict[str, jax.Array]:
        """Learning metrics averaged over the update's gradient steps (0 before learning starts),
        exploration, rollout means and the episodes that ended."""
        learning = learn_metrics.pop("learning").astype(jnp.float32)
        steps_learned = learning.sum()
        metrics = {
            name: (values * learning).sum() / jnp.maximum(steps_learned, 1.0)
            for name, values in learn_metrics.items()
        }
        metrics["learning/gradient_steps"] = steps_learned
        step = trajectory["step"]
        if self.config.exploration == "boltzmann":
            metrics["exploration/tau"] = jax.vmap(self.temperature)(step).mean()
            metrics["exploration/intensity"] = jnp.asarray(self.exploration_intensity)
        else:
            metrics["exploration/epsilon"] = jax.vmap(self.epsilon)(step).mean()
        metrics["rollout/reward"] = trajectory["reward"].mean()
        info = trajectory["info"]
        for name, values in info.items():
            if not name.startswith("episode_") and name != "reward_vector":
                metrics[f"rollout/{name}"] = values.astype(jnp.float32).mean()
        if self.env.max_steps is not None:
            metrics.update(
                completed_episode_metrics(trajectory["done"], info, self.env.reward_components)
            )
        return metrics
