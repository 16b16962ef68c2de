"""Independent PPO (IPPO): one PPO learner per agent, or one network shared by all agents.

Spec: `specs/algos/ppo.md`. With `share_params=false` (default) every agent owns its parameters,
Adam state, gradient clip, minibatch permutation and advantage normalisation: the whole learning
step is mapped over a leading agent axis (`jax.lax.map` on CPU, `jax.vmap` on accelerators).
With `share_params=true` one network sees the rows of all agents, with a one-hot agent id
appended (unless `agent_id=false`).

Array layout inside an update: `[T, E, N, ...]` (time, parallel env, agent).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import distrax
import jax
import jax.numpy as jnp
import optax
from flax import struct

from marl.algos.episode_metrics import completed_episode_metrics
from marl.algos.gae import gae
from marl.config import ConfigError, require, require_choice
from marl.envs.base import Env
from marl.envs.wrappers import FINAL_OBS, REWARD_MODES, any_in_batch, training_env
from marl.networks import ActorCritic, check_network_keys, critic_labels, network_settings

ADV_NORMS = ("minibatch", "batch", "none")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of `algo=ppo` (`configs/algo/ppo.yaml` documents each one)."""

    IGNORED_KEYS = ("name",)

    total_timesteps: int = 1_000_000
    num_envs: int = 16
    num_steps: int = 128
    lr: float = 2.5e-4
    critic_lr: float | None = None
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    clip_value: bool = True
    ent_coef: float = 0.01
    ent_coef_final: float | None = None
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    update_epochs: int = 4
    num_minibatches: int = 4
    bootstrap_time_limits: bool = False
    adv_norm: str = "minibatch"
    target_kl: float | None = None
    share_params: bool = False
    agent_id: bool = True
    encoder: str = "auto"
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    cnn_channels: tuple[int, ...] = (32, 32, 32)
    cnn_kernel_sizes: tuple[int, ...] = (5, 3, 3)
    cnn_dense_size: int = 64
    reward_mode: str = "individual"

    @property
    def env_steps_per_update(self) -> int:
        return self.num_steps * self.num_envs

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.env_steps_per_update

    def validate(self, where: str = "algo") -> None:
        """Range checks that need no environment; `ConfigError` names the offending key."""
        for key in ("total_timesteps", "num_envs", "num_steps", "update_epochs", "num_minibatches"):
            require(
                getattr(self, key) >= 1, f"{where}.{key} must be >= 1; got {getattr(self, key)}"
            )
        require(self.lr > 0, f"{where}.lr must be > 0; got {self.lr}")
        require(
            self.critic_lr is None or self.critic_lr > 0,
            f"{where}.critic_lr must be > 0 or null; got {self.critic_lr}",
        )
        require(
            self.target_kl is None or self.target_kl > 0,
            f"{where}.target_kl must be > 0 or null; got {self.target_kl}",
        )
        for key in ("gamma", "gae_lambda"):
            value = getattr(self, key)
            require(0 <= value <= 1, f"{where}.{key} must be in [0, 1]; got {value}")
        for key in ("clip_eps", "vf_coef", "max_grad_norm", "ent_coef"):
            value = getattr(self, key)
            require(value >= 0, f"{where}.{key} must be >= 0; got {value}")
        require(
            self.num_updates >= 1,
            f"{where}.total_timesteps ({self.total_timesteps}) must be at least num_steps x "
            f"num_envs = {self.env_steps_per_update} (one update)",
        )
        require_choice(self.adv_norm, ADV_NORMS, f"{where}.adv_norm")
        require_choice(self.reward_mode, REWARD_MODES, f"{where}.reward_mode")
        check_network_keys(self, where)

    def rows_per_update(self, num_agents: int) -> int:
        """Rows one learner sees per update: T x E, times N when parameters are shared."""
        return self.env_steps_per_update * (num_agents if self.share_params else 1)


@struct.dataclass
class PPOState:
    """Everything a PPO run carries between updates (the checkpointed train state).

    params / opt_state: leading agent axis `[N]` unless `share_params`; env_state: `[E]` envs;
    last_obs `[E, N, *obs_shape]`; key: PRNG key; update_step: int32 `[]`.
    """

    params: Any
    opt_state: Any
    env_state: Any
    last_obs: jax.Array
    key: jax.Array
    update_step: jax.Array


def _policy_entropy_logp(logits: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array]:
    dist = distrax.Categorical(logits=logits)
    return dist.log_prob(actions), dist.entropy()


class PPO:
    """IPPO trainer: `init(key) -> PPOState`, `update(state) -> (state, metrics)`, `act`."""

    def __init__(self, env: Env, config: PPOConfig):
        config.validate()
        rows = config.rows_per_update(env.num_agents)
        if rows % config.num_minibatches:
            raise ConfigError(
                f"algo.num_minibatches ({config.num_minibatches}) must divide the rows per update "
                f"({rows} = num_steps {config.num_steps} x num_envs {config.num_envs}"
                + (f" x agents {env.num_agents}" if config.share_params else "")
                + ")"
            )
        self.env = env
        self.config = config
        self.train_env = training_env(env, config.reward_mode, config.bootstrap_time_limits)
        self.num_agents = env.num_agents
        self.uses_agent_id = config.share_params and config.agent_id
        self.network = ActorCritic(
            num_actions=env.num_actions,
            separate_critic_encoder=config.critic_lr is not None,
            num_values=self.num_values,
            **network_settings(config, env.obs_shape),
        )
        self.minibatches_per_update = config.update_epochs * config.num_minibatches
        self.sequential_agents = jax.default_backend() == "cpu"
        self.optimizer = self._optimizer()

    num_values = 1  # values per observation the critic predicts (subclasses may add co-players')

    def _optimizer(self) -> optax.GradientTransformation:
        """clip + Adam on all parameters; with `critic_lr`, one such chain for the actor (`lr`)
        and one for the critic (`critic_lr`), each with its own global-norm clip."""

        def chain(base_lr: float) -> optax.GradientTransformation:
            return optax.chain(
                optax.clip_by_global_norm(self.config.max_grad_norm),
                optax.adam(lambda step: self._learning_rate(step, base_lr), eps=1e-5),
            )

        if self.config.critic_lr is None:
            return chain(self.config.lr)
        return optax.multi_transform(
            {"actor": chain(self.config.lr), "critic": chain(self.config.critic_lr)},
            critic_labels,
        )

    # ------------------------------------------------------------------ schedules
    @property
    def num_updates(self) -> int:
        return self.config.num_updates

    @property
    def env_steps_per_update(self) -> int:
        return self.config.env_steps_per_update

    def _learning_rate(self, optimizer_step: jax.Array, base_lr: float | None = None) -> jax.Array:
        """Learning rate at optimiser step k: base (1 - floor(k / (epochs x minibatches)) /
        num_updates) with `anneal_lr`, never below 0 (updates past `num_updates` do not climb
        the loss), else base; base is `lr` unless given."""
        base_lr = self.config.lr if base_lr is None else base_lr
        if not self.config.anneal_lr:
            return jnp.asarray(base_lr, jnp.float32)
        update_index = optimizer_step // self.minibatches_per_update
        return base_lr * jnp.maximum(1.0 - update_index / self.num_updates, 0.0)

    def entropy_coef(self, update_step: jax.Array) -> jax.Array:
        """Entropy weight at update u: linear from ent_coef to ent_coef_final over the updates."""
        start, final = self.config.ent_coef, self.config.ent_coef_final
        if final is None:
            return jnp.asarray(start, jnp.float32)
        progress = jnp.minimum(update_step / max(self.num_updates - 1, 1), 1.0)
        return start + (final - start) * progress

    # ------------------------------------------------------------------ network application
    def _agent_ids(self, batch_shape: tuple[int, ...]) -> jax.Array:
        """One-hot ids `[*batch_shape, N, N]` for observations laid out `[*batch_shape, N, ...]`."""
        return jnp.broadcast_to(
            jnp.eye(self.num_agents), (*batch_shape, self.num_agents, self.num_agents)
        )

    def _apply_rows(self, params, obs: jax.Array, agent_id: jax.Array | None):
        """One network on rows: obs `[R, *obs_shape]` -> logits `[R, A]`, values `[R]`."""
        return self.network.apply(params, obs, agent_id)

    def policy(self, params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Logits `[B, N, A]` and values `[B, N]` (`[B, N, num_values]` if several) for
        observations `[B, N, *obs_shape]`."""
        batch = obs.shape[0]
        if self.config.share_params:
            rows = obs.reshape(batch * self.num_agents, *obs.shape[2:])
            ids = self._agent_ids((batch,)).reshape(batch * self.num_agents, -1)
            logits, values = self._apply_rows(params, rows, ids if self.uses_agent_id else None)
            return logits.reshape(batch, self.num_agents, -1), values.reshape(
                batch, self.num_agents, *values.shape[1:]
            )
        return jax.vmap(self._apply_rows, in_axes=(0, 1, None), out_axes=(1, 1))(params, obs, None)

    # ------------------------------------------------------------------ contract
    def init(self, key: jax.Array) -> PPOState:
        """Fresh parameters, optimiser state and `num_envs` reset environments."""
        key, params_key, env_key = jax.random.split(key, 3)
        dummy_obs = jnp.zeros((1, *self.env.obs_shape), jnp.float32)
        dummy_id = jnp.zeros((1, self.num_agents), jnp.float32) if self.uses_agent_id else None
        if self.config.share_params:
            params = self.network.init(params_key, dummy_obs, dummy_id)
            opt_state = self.optimizer.init(params)
        else:
            # One init per agent, stacked: a vmapped init would batch the QR decompositions of
            # the orthogonal initialiser, which XLA runs orders of magnitude slower on CPU.
            agent_keys = jax.random.split(params_key, self.num_agents)
            params = jax.tree.map(
                lambda *leaves: jnp.stack(leaves),
                *[self.network.init(k, dummy_obs, None) for k in agent_keys],
            )
            opt_state = jax.vmap(self.optimizer.init)(params)
        obs, env_state = jax.vmap(self.train_env.reset)(
            jax.random.split(env_key, self.config.num_envs)
        )
        return PPOState(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            last_obs=obs,
            key=key,
            update_step=jnp.zeros((), jnp.int32),
        )

    def act(self, params, obs: jax.Array, key: jax.Array) -> jax.Array:
        """Sample actions int32 `[B, N]` for observations `[B, N, *obs_shape]`."""
        logits, _ = self.policy(params, obs)
        return jax.random.categorical(key, logits).astype(jnp.int32)

    def update(self, state: PPOState) -> tuple[PPOState, dict[str, jax.Array]]:
        """Collect `num_steps` x `num_envs` transitions, then learn for `update_epochs` epochs."""
        key, rollout_key, learn_key = jax.random.split(state.key, 3)
        (env_state, last_obs), trajectory = self._rollout(state, rollout_key)
        _, last_values = self.policy(state.params, last_obs)
        advantages, returns = self._gae(
            trajectory["reward"],
            trajectory["value"],
            trajectory["done"],
            last_values,
            trajectory.get("final_value"),
        )
        if self.config.adv_norm == "batch":
            advantages = normalize_per_agent(advantages)
        ent_coef = self.entropy_coef(state.update_step)
        params, opt_state, learn_metrics = self._learn(
            state.params, state.opt_state, trajectory, advantages, returns, ent_coef, learn_key
        )
        metrics = {**learn_metrics, **self._rollout_metrics(trajectory, state.update_step)}
        new_state = PPOState(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            last_obs=last_obs,
            key=key,
            update_step=state.update_step + 1,
        )
        return new_state, metrics

    # ------------------------------------------------------------------ pieces of an update
    def _gae(self, rewards, values, done, last_values, final_values=None):
        """Advantages and returns `[T, E, M]` of rewards and values `[T, E, M]`, episode ends
        done `[T, E]`, last values `[E, M]` and time-limit bootstraps (`[T, E, M]` or None)."""
        return gae(
            rewards,
            values,
            jnp.broadcast_to(done[..., None], rewards.shape),
            last_values,
            self.config.gamma,
            self.config.gae_lambda,
            final_values,
        )

    def _rollout_metrics(self, trajectory, update_step: jax.Array) -> dict[str, jax.Array]:
        """Episode metrics of the rollout, and the entropy weight and lr of this update."""
        return {
            **completed_episode_metrics(
                trajectory["done"], trajectory["info"], self.env.reward_components
            ),
            "ent_coef": self.entropy_coef(update_step),
            "lr": self._learning_rate(update_step * self.minibatches_per_update),
        }

    def _rollout(self, state: PPOState, key: jax.Array, policy=None):
        """`num_steps` vectorised steps from the state's envs; `policy(obs) -> (logits, values)`
        acts (default: the state's parameters). Returns ((env_state, last_obs), trajectory with
        leading axes `[T, E]`)."""
        step_env = jax.vmap(self.train_env.step)
        policy = policy or (lambda obs: self.policy(state.params, obs))

        def one_step(carry, step_key):
            env_state, obs = carry
            action_key, env_key = jax.random.split(step_key)
            logits, value = policy(obs)
            action = jax.random.categorical(action_key, logits).astype(jnp.int32)
            log_prob, _ = _policy_entropy_logp(logits, action)
            next_obs, env_state, reward, done, info = step_env(
                jax.random.split(env_key, self.config.num_envs), env_state, action
            )
            extra = {}
            if self.config.bootstrap_time_limits:
                info = dict(info)
                final_obs = info.pop(FINAL_OBS)
                extra["final_value"] = jax.lax.cond(
                    any_in_batch(done),
                    lambda: jnp.where(
                        done.reshape(-1, *[1] * (value.ndim - 1)), policy(final_obs)[1], 0.0
                    ),
                    lambda: jnp.zeros_like(value),
                )
            transition = {
                **extra,
                "obs": obs,
                "action": action,
                "log_prob": log_prob,
                "value": value,
                "reward": reward,
                "done": done,
                "info": info,
            }
            return (env_state, next_obs), transition

        return jax.lax.scan(
            one_step,
            (state.env_state, state.last_obs),
            jax.random.split(key, self.config.num_steps),
        )

    def _learn(
        self, params, opt_state, trajectory, advantages, returns, ent_coef, key, extra_rows=None
    ):
        """Epochs of minibatch updates; mapped over agents unless parameters are shared.

        advantages, returns and every `extra_rows` entry have leading axes `[T, E, N]`; the
        extra entries reach the loss's minibatches under their names."""
        per_agent = {
            "obs": trajectory["obs"],
            "action": trajectory["action"],
            "log_prob": trajectory["log_prob"],
            "value": trajectory["value"],
            "advantage": advantages,
            "return": returns,
            **(extra_rows or {}),
        }
        if self.config.share_params:
            if self.uses_agent_id:
                per_agent["agent_id"] = self._agent_ids(trajectory["action"].shape[:2])
            rows = jax.tree.map(lambda x: x.reshape(-1, *x.shape[3:]), per_agent)
            return self._learn_one(params, opt_state, rows, ent_coef, key)
        rows = jax.tree.map(
            lambda x: jnp.moveaxis(x, 2, 0).reshape(self.num_agents, -1, *x.shape[3:]), per_agent
        )
        agent_keys = jax.random.split(key, self.num_agents)
        inputs = (params, opt_state, rows, agent_keys)

        def learn_agent(agent_inputs):
            agent_params, agent_opt_state, agent_rows, agent_key = agent_inputs
            return self._learn_one(agent_params, agent_opt_state, agent_rows, ent_coef, agent_key)

        # On CPU, one agent after another (lax.map): vmapping the CNN's backward pass over
        # per-agent kernels gives grouped convolutions that XLA:CPU runs several times slower.
        # Accelerators run the vmapped form well.
        if self.sequential_agents:
            params, opt_state, metrics = jax.lax.map(learn_agent, inputs)
        else:
            params, opt_state, metrics = jax.vmap(learn_agent)(inputs)
        return params, opt_state, jax.tree.map(lambda m: m.mean(), metrics)

    def _learn_one(self, params, opt_state, rows: dict[str, jax.Array], ent_coef, key):
        """One learner's epochs over its rows `[R, ...]`."""
        num_rows = rows["action"].shape[0]
        minibatch_size = num_rows // self.config.num_minibatches
        grad_fn = jax.value_and_grad(self._loss, has_aux=True)
        target_kl = self.config.target_kl

        def minibatch_step(carry, minibatch):
            params, opt_state, stopped = carry
            (_, aux), grads = grad_fn(params, minibatch, ent_coef)

            def apply(state):
                params, opt_state = state
                updates, opt_state = self.optimizer.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), opt_state

            if target_kl is None:
                return (*apply((params, opt_state)), stopped), aux
            # Once a minibatch's approx-KL (measured before its step) passes target_kl, that step
            # and the remaining ones of this update leave the parameters as they are (ppo.md 3.7).
            stopped = stopped | (aux["approx_kl"] > target_kl)
            params, opt_state = jax.lax.cond(
                stopped, lambda state: state, apply, (params, opt_state)
            )
            return (params, opt_state, stopped), {**aux, "kl_stopped": stopped.astype(jnp.float32)}

        def epoch(carry, epoch_key):
            order = jax.random.permutation(epoch_key, num_rows)
            minibatches = jax.tree.map(
                lambda x: x[order].reshape(
                    self.config.num_minibatches, minibatch_size, *x.shape[1:]
                ),
                rows,
            )
            return jax.lax.scan(minibatch_step, carry, minibatches)

        (params, opt_state, _), aux = jax.lax.scan(
            epoch,
            (params, opt_state, jnp.zeros((), bool)),
            jax.random.split(key, self.config.update_epochs),
        )
        return params, opt_state, jax.tree.map(lambda m: m.mean(), aux)

    def _loss(self, params, minibatch: dict[str, jax.Array], ent_coef):
        """Policy, value and entropy terms on one minibatch of rows; returns (total, named parts)."""
        logits, value = self._apply_rows(params, minibatch["obs"], minibatch.get("agent_id"))
        log_prob, entropy = _policy_entropy_logp(logits, minibatch["action"])
        policy_loss = self._policy_loss(log_prob, minibatch)
        value_loss = self._value_loss(value, minibatch)
        mean_entropy = self._row_mean(entropy, minibatch)
        total = policy_loss + self.config.vf_coef * value_loss - ent_coef * mean_entropy
        log_ratio = log_prob - minibatch["log_prob"]
        ratio = jnp.exp(log_ratio)
        aux = {
            "loss/total": total,
            "loss/policy": policy_loss,
            "loss/value": value_loss,
            "entropy": mean_entropy,
            "approx_kl": self._row_mean((ratio - 1.0) - log_ratio, minibatch),
            "clip_frac": self._row_mean(jnp.abs(ratio - 1.0) > self.config.clip_eps, minibatch),
        }
        return total, aux

    def _row_mean(self, values: jax.Array, minibatch: dict[str, jax.Array]) -> jax.Array:
        """Mean over a minibatch's rows `[R, ...]` (subclasses may weight rows)."""
        return values.mean()

    def _policy_loss(self, log_prob: jax.Array, minibatch: dict[str, jax.Array]) -> jax.Array:
        """Clipped surrogate on the rows' advantages (normalised per minibatch if asked)."""
        advantage = minibatch["advantage"]
        if self.config.adv_norm == "minibatch":
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        return clipped_surrogate(
            log_prob, minibatch["log_prob"], advantage, self.config.clip_eps
        ).mean()

    def _value_loss(self, value: jax.Array, minibatch: dict[str, jax.Array]) -> jax.Array:
        """0.5 squared error to the returns, clipped around the rollout values if asked."""
        config = self.config
        value_error = jnp.square(value - minibatch["return"])
        if config.clip_value:
            clipped_value = minibatch["value"] + jnp.clip(
                value - minibatch["value"], -config.clip_eps, config.clip_eps
            )
            value_error = jnp.maximum(value_error, jnp.square(clipped_value - minibatch["return"]))
        return 0.5 * self._row_mean(value_error, minibatch)


def normalize_per_agent(advantages: jax.Array) -> jax.Array:
    """(A - mean) / (std + 1e-8) per agent over the whole batch: advantages `[T, E, N]`."""
    mean = advantages.mean(axis=(0, 1), keepdims=True)
    std = advantages.std(axis=(0, 1), keepdims=True)
    return (advantages - mean) / (std + 1e-8)


def clipped_surrogate(
    log_prob: jax.Array, old_log_prob: jax.Array, advantage: jax.Array, clip_eps: float
) -> jax.Array:
    """Per-row PPO surrogate loss -min(ρA, clip(ρ, 1-ε, 1+ε)A), ρ = exp(logp - old logp): `[R]`."""
    ratio = jnp.exp(log_prob - old_log_prob)
    clipped_ratio = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return -jnp.minimum(ratio * advantage, clipped_ratio * advantage)
