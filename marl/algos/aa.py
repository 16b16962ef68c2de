"""Advantage Alignment (AA) and Proximal Advantage Alignment (PAA), one opponent-shaping trainer.

Spec: `specs/algos/advantage_alignment.md` (Duque et al., ICLR 2025). The trainer is the PPO
trainer with a hook between GAE and the loss: every agent's advantages Â^i (GAE on its own critic
and reward, normalised per agent over the batch) become

    A*^i_t = Â^i_t + β · w^i_t · Σ_{j≠i} Â^j_t

where w^i_t summarises how the episode has gone for i before step t (`alignment_terms`):
`discounted` (the paper's two-player Eq. 8) w_t = γ_aa Σ_{k<t} γ_aa^{t-k} Â^i_k, or `mean` (the
N-player Melting Pot form) w_t = (1/t) Σ_{k<t} Â^i_k. The sums restart at every episode start and
are carried between rollouts, like a recurrent state. `proximal=false` takes one policy-gradient
step on −A*·log π per batch (AA); `proximal=true` is PPO's clipped surrogate on A* (PAA).

Co-players whose advantages enter A* without learning:
* a fixed strategy (`env.opponent=...` on a 2 x 2 matrix game): its advantage comes from a second
  value head of the learner's critic, trained on the co-player's reward (`opponent_reward`);
* the agent replay buffer (`agent_buffer_size` > 0): past parameter snapshots play
  `num_buffer_agents` seats of every env for a rollout; they act and their snapshot critic gives
  their advantages, but their rows carry zero weight in the losses.

Array layout inside an update: `[T, E, N, ...]` (time, parallel env, agent).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from marl.algos.episode_metrics import memory_one_cooperation_metrics
from marl.algos.ppo import PPO, PPOConfig, clipped_surrogate, normalize_per_agent
from marl.config import ConfigError, require, require_choice
from marl.envs.base import Env
from marl.envs.opponent import MEMORY_ONE_OBS_SHAPE, FixedOpponent

AA_FORMS = ("auto", "discounted", "mean")
ACTOR_LOSS_MODES = ("integrated", "separated")
CRITIC_TARGETS = ("gae", "td1")


@dataclasses.dataclass(frozen=True)
class AAConfig(PPOConfig):
    """Hyperparameters of `algo=aa` (`configs/algo/aa.yaml` documents each one).

    PPO's keys keep their meaning, except `adv_norm`, which AA replaces by
    `normalize_advantages` (before the product) and `normalize_aa_advantage` (after it). The
    defaults are those of `configs/algo/aa.yaml` (the spec's IPD column).
    """

    num_envs: int = 64
    num_steps: int = 50
    lr: float = 3e-4
    critic_lr: float | None = 1e-2
    anneal_lr: bool = False
    gamma: float = 0.96
    clip_value: bool = False
    ent_coef: float = 0.1
    max_grad_norm: float = 10.0
    update_epochs: int = 1
    num_minibatches: int = 1
    bootstrap_time_limits: bool = True
    share_params: bool = True
    agent_id: bool = False
    adv_norm: str = dataclasses.field(default="none", init=False)
    beta: float = 1.0
    aa_form: str = "auto"
    aa_gamma: float | None = None
    aa_include_current: bool = False
    discount_weighting: bool = False
    normalize_advantages: bool = True
    normalize_aa_advantage: bool = False
    proximal: bool = False
    actor_loss_mode: str = "integrated"
    critic_target: str = "gae"
    target_tau: float = 0.01
    agent_buffer_size: int = 0
    agent_buffer_push_every: int = 10
    num_buffer_agents: int = 1

    def validate(self, where: str = "algo") -> None:
        super().validate(where)
        require_choice(self.aa_form, AA_FORMS, f"{where}.aa_form")
        require_choice(self.actor_loss_mode, ACTOR_LOSS_MODES, f"{where}.actor_loss_mode")
        require_choice(self.critic_target, CRITIC_TARGETS, f"{where}.critic_target")
        require(
            self.aa_gamma is None or 0 <= self.aa_gamma <= 1,
            f"{where}.aa_gamma must be in [0, 1] or null (= gamma); got {self.aa_gamma}",
        )
        require(
            0 < self.target_tau <= 1, f"{where}.target_tau must be in (0, 1]; got {self.target_tau}"
        )
        if not self.proximal:
            require(
                self.update_epochs == 1 and self.num_minibatches == 1,
                f"{where}.proximal=false takes one policy-gradient step per batch: set "
                f"{where}.update_epochs=1 and {where}.num_minibatches=1 (got "
                f"{self.update_epochs} and {self.num_minibatches}), or {where}.proximal=true",
            )
            require(
                self.actor_loss_mode == "integrated",
                f"{where}.actor_loss_mode=separated needs {where}.proximal=true",
            )
        require(
            self.agent_buffer_size >= 0,
            f"{where}.agent_buffer_size must be >= 0; got {self.agent_buffer_size}",
        )
        for key in ("agent_buffer_push_every", "num_buffer_agents"):
            value = getattr(self, key)
            require(value >= 1, f"{where}.{key} must be >= 1; got {value}")


@struct.dataclass
class AgentBuffer:
    """Ring of past parameter snapshots: snapshots `[capacity, ...]` (the network's parameter
    tree with a leading slot axis), size int32 `[]` filled slots, next_slot int32 `[]`."""

    snapshots: Any
    size: jax.Array
    next_slot: jax.Array


@struct.dataclass
class AAState:
    """PPO's train state plus what AA carries between updates.

    alignment_past float32 `[E, M]`: each aligned agent's running history of normalised own
    advantages (the discounted sum c or the plain sum s) up to `last_obs`; alignment_steps int32
    `[E]`: steps since the episode of `last_obs` began. M = N, plus 1 with a fixed co-player.
    target_params: the critic's Polyak target (`critic_target=td1`), else None. buffer:
    `AgentBuffer` when `agent_buffer_size` > 0, else None.
    """

    params: Any
    opt_state: Any
    env_state: Any
    last_obs: jax.Array
    key: jax.Array
    update_step: jax.Array
    alignment_past: jax.Array
    alignment_steps: jax.Array
    target_params: Any
    buffer: Any


def alignment_terms(
    own: jax.Array,
    done: jax.Array,
    past: jax.Array,
    steps: jax.Array,
    form: str,
    gamma_aa: float,
    include_current: bool = False,
) -> tuple[jax.Array, jax.Array, tuple[jax.Array, jax.Array]]:
    """The AA terms w^i_t · Σ_{j≠i} Â^j_t by a forward scan, with the carried histories.

    own `[T, E, M]`: normalised advantages of every aligned agent; done bool `[T, E]`: step t
    ended the episode (the next observation starts a new one); past `[E, M]` and steps int32 `[E]`:
    the histories carried from the previous segment (zeros at the start of training).
    form `discounted`: w_t = γ_aa c_t, c_0 = 0, c_{t+1} = γ_aa (c_t + Â_t), so
    c_t = Σ_{k<t} γ_aa^{t-k} Â_k. form `mean`: w_t = s_t / max(t, 1), s_{t+1} = s_t + Â_t.
    `include_current` sums over k <= t instead (c_t + Â_t, (s_t + Â_t) / (t + 1)).
    Returns (terms `[T, E, M]`, t of every observation int32 `[T, E]`, (past, steps) after T).
    """
    others = own.sum(axis=-1, keepdims=True) - own

    def step(carry, inputs):
        history, count = carry
        advantage, other, ended = inputs
        seen = history + advantage if include_current else history
        if form == "discounted":
            weight = gamma_aa * seen
            history = gamma_aa * (history + advantage)
        else:
            weight = seen / jnp.maximum(count + int(include_current), 1)[:, None]
            history = history + advantage
        history = jnp.where(ended[:, None], 0.0, history)
        next_count = jnp.where(ended, 0, count + 1)
        return (history, next_count), (weight * other, count)

    carry, (terms, step_index) = jax.lax.scan(step, (past, steps), (own, others, done))
    return terms, step_index, carry


class AA(PPO):
    """Advantage Alignment trainer: `init(key) -> AAState`, `update(state)`, `act` (as PPO)."""

    def __init__(self, env: Env, config: AAConfig):
        config.validate()
        self.fixed_co_player = isinstance(env, FixedOpponent)
        self.num_values = 2 if self.fixed_co_player else 1
        self._check_env(env, config)
        super().__init__(env, config)
        self.num_aligned = env.num_agents + int(self.fixed_co_player)
        form = config.aa_form
        self.form = form if form != "auto" else ("discounted" if self.num_aligned == 2 else "mean")
        self.gamma_aa = config.gamma if config.aa_gamma is None else config.aa_gamma
        self.uses_buffer = config.agent_buffer_size > 0
        self.memory_one = tuple(env.obs_shape) == MEMORY_ONE_OBS_SHAPE and env.num_actions == 2

    @staticmethod
    def _check_env(env: Env, config: AAConfig) -> None:
        """Environment-dependent checks, before anything compiles."""
        if config.reward_mode != "individual":
            raise ConfigError(
                "algo=aa needs every agent's own reward: set algo.reward_mode=individual; "
                f"got {config.reward_mode}"
            )
        if env.num_agents < 2 and not isinstance(env, FixedOpponent):
            raise ConfigError(
                f"algo=aa needs at least 2 agents or a fixed co-player; this env has {env.num_agents}"
            )
        if config.agent_buffer_size > 0:
            if not config.share_params:
                raise ConfigError(
                    "algo.agent_buffer_size > 0 replays snapshots of one shared network: set "
                    "algo.share_params=true"
                )
            if config.num_buffer_agents >= env.num_agents:
                raise ConfigError(
                    f"algo.num_buffer_agents must be below the number of agents "
                    f"({env.num_agents}) so that someone learns; got {config.num_buffer_agents}"
                )

    # ------------------------------------------------------------------ contract
    def init(self, key: jax.Array) -> AAState:
        """PPO's fresh state, zero alignment histories, the critic target and an empty buffer."""
        ppo_state = super().init(key)
        config = self.config
        buffer = None
        if self.uses_buffer:
            buffer = AgentBuffer(
                snapshots=jax.tree.map(
                    lambda leaf: jnp.zeros((config.agent_buffer_size, *leaf.shape), leaf.dtype),
                    ppo_state.params,
                ),
                size=jnp.zeros((), jnp.int32),
                next_slot=jnp.zeros((), jnp.int32),
            )
        return AAState(
            params=ppo_state.params,
            opt_state=ppo_state.opt_state,
            env_state=ppo_state.env_state,
            last_obs=ppo_state.last_obs,
            key=ppo_state.key,
            update_step=ppo_state.update_step,
            alignment_past=jnp.zeros((config.num_envs, self.num_aligned), jnp.float32),
            alignment_steps=jnp.zeros((config.num_envs,), jnp.int32),
            target_params=ppo_state.params if config.critic_target == "td1" else None,
            buffer=buffer,
        )

    def update(self, state: AAState) -> tuple[AAState, dict[str, jax.Array]]:
        """One rollout, the aligned advantages, then PPO's epochs (or one PG step) on them."""
        config = self.config
        if self.uses_buffer:
            key, rollout_key, learn_key, buffer_key = jax.random.split(state.key, 4)
            policy, from_buffer = self._buffer_policy(state, buffer_key)
        else:
            key, rollout_key, learn_key = jax.random.split(state.key, 3)
            policy, from_buffer = (lambda obs: self.policy(state.params, obs)), None
        (env_state, last_obs), trajectory = self._rollout(state, rollout_key, policy)
        _, last_values = policy(last_obs)

        rewards, values, last_values, final_values = self._aligned_streams(trajectory, last_values)
        done = trajectory["done"]
        advantages, returns = self._gae(rewards, values, done, last_values, final_values)
        if config.critic_target == "td1":
            returns = self._td1_targets(
                state.target_params, trajectory, last_obs, rewards, done, final_values
            )
        own = normalize_per_agent(advantages) if config.normalize_advantages else advantages
        terms, step_index, (past, steps) = alignment_terms(
            own,
            done,
            state.alignment_past,
            state.alignment_steps,
            self.form,
            self.gamma_aa,
            config.aa_include_current,
        )
        learners = self.num_agents
        own, terms = own[..., :learners], terms[..., :learners]
        extra_rows = {}
        if config.actor_loss_mode == "integrated":
            actor_advantage = own + config.beta * terms
        else:
            actor_advantage = own
            extra_rows["alignment"] = config.beta * terms
        if config.discount_weighting:
            actor_advantage = actor_advantage * (config.gamma**step_index)[..., None]
        if config.normalize_aa_advantage:
            actor_advantage = normalize_per_agent(actor_advantage)
        if self.fixed_co_player:  # own and co-player's return side by side: `[T, E, 1, 2]`
            returns = returns[..., None, :]
        if from_buffer is not None:
            extra_rows["weight"] = jnp.broadcast_to(
                1.0 - from_buffer.astype(jnp.float32), own.shape
            )

        ent_coef = self.entropy_coef(state.update_step)
        params, opt_state, learn_metrics = self._learn(
            state.params,
            state.opt_state,
            trajectory,
            actor_advantage,
            returns,
            ent_coef,
            learn_key,
            extra_rows,
        )
        metrics = {
            **learn_metrics,
            **self._rollout_metrics(trajectory, state.update_step),
            "aa/alignment_term": jnp.abs(config.beta * terms).mean(),
            "aa/actor_advantage_std": actor_advantage.std(),
        }
        if self.memory_one:
            metrics.update(memory_one_cooperation_metrics(trajectory["obs"], trajectory["action"]))
        target_params = state.target_params
        if target_params is not None:
            target_params = optax.incremental_update(params, target_params, config.target_tau)
        buffer = state.buffer
        if buffer is not None:
            buffer = self._push(buffer, params, state.update_step)
            metrics["aa/buffer_size"] = buffer.size.astype(jnp.float32)
        new_state = AAState(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            last_obs=last_obs,
            key=key,
            update_step=state.update_step + 1,
            alignment_past=past,
            alignment_steps=steps,
            target_params=target_params,
            buffer=buffer,
        )
        return new_state, metrics

    # ------------------------------------------------------------------ pieces of an update
    def _aligned_streams(self, trajectory, last_values: jax.Array):
        """Rewards, values and time-limit bootstrap values (or None) `[T, E, M]` and last values
        `[E, M]` of every aligned agent: the learners, then a fixed co-player (its reward from the
        info, its values from the critic's second head)."""
        final_values = trajectory.get("final_value")
        if not self.fixed_co_player:
            return trajectory["reward"], trajectory["value"], last_values, final_values
        rewards = jnp.concatenate(
            [trajectory["reward"], trajectory["info"]["opponent_reward"]], axis=-1
        )
        if final_values is not None:
            final_values = final_values[:, :, 0]
        return rewards, trajectory["value"][:, :, 0], last_values[:, 0], final_values

    def _td1_targets(self, target_params, trajectory, last_obs, rewards, done, final_values):
        """TD(0) targets `[T, E, M]`: r_t + γ V_target(obs_{t+1}), where an episode ended at t
        the bootstrap is 0, or with `bootstrap_time_limits` the rollout's value of its last
        observation (`final_values`)."""
        obs = trajectory["obs"]
        next_obs = jnp.concatenate([obs[1:], last_obs[None]], axis=0)
        _, next_values = self.policy(target_params, next_obs.reshape(-1, *obs.shape[2:]))
        next_values = next_values.reshape(rewards.shape)
        dones = jnp.broadcast_to(done[..., None], rewards.shape)
        if final_values is None:
            next_values = jnp.where(dones, 0.0, next_values)
        else:
            next_values = jnp.where(dones, final_values, next_values)
        return rewards + self.config.gamma * next_values

    def _buffer_policy(self, state: AAState, key: jax.Array):
        """The rollout's acting policy when snapshots play some seats.

        In every env, `num_buffer_agents` seats drawn at random play one snapshot drawn uniformly
        from the filled slots (none while the buffer is empty). Returns (policy(obs `[E, N, ...]`)
        -> (logits `[E, N, A]`, values `[E, N]`), from_buffer bool `[E, N]`).
        """
        num_envs = self.config.num_envs
        seat_key, snapshot_key = jax.random.split(key)
        seat_rank = jnp.argsort(
            jax.random.uniform(seat_key, (num_envs, self.num_agents)), axis=-1
        ).argsort(axis=-1)
        from_buffer = (seat_rank < self.config.num_buffer_agents) & (state.buffer.size > 0)
        slots = jax.random.randint(snapshot_key, (num_envs,), 0, jnp.maximum(state.buffer.size, 1))
        snapshots = jax.tree.map(lambda leaf: leaf[slots], state.buffer.snapshots)

        def policy(obs: jax.Array) -> tuple[jax.Array, jax.Array]:
            logits, values = self.policy(state.params, obs)
            old_logits, old_values = jax.vmap(lambda p, o: self.policy(p, o[None]))(snapshots, obs)
            return (
                jnp.where(from_buffer[..., None], old_logits[:, 0], logits),
                jnp.where(from_buffer, old_values[:, 0], values),
            )

        return policy, from_buffer

    def _push(self, buffer: AgentBuffer, params, update_step: jax.Array) -> AgentBuffer:
        """Write `params` into the next slot when `update_step` is a multiple of the push period."""
        push = update_step % self.config.agent_buffer_push_every == 0
        slot = buffer.next_slot
        snapshots = jax.tree.map(
            lambda ring, leaf: ring.at[slot].set(jnp.where(push, leaf, ring[slot])),
            buffer.snapshots,
            params,
        )
        capacity = self.config.agent_buffer_size
        return AgentBuffer(
            snapshots=snapshots,
            size=jnp.minimum(buffer.size + push, capacity),
            next_slot=(slot + push) % capacity,
        )

    # ------------------------------------------------------------------ loss
    def _row_mean(self, values: jax.Array, minibatch: dict[str, jax.Array]) -> jax.Array:
        """Mean over rows `[R, ...]`; rows played by buffer snapshots weigh 0."""
        if "weight" not in minibatch:
            return values.mean()
        weight = minibatch["weight"].reshape(-1, *([1] * (values.ndim - 1)))
        per_row = values.size // values.shape[0]
        return (values * weight).sum() / (minibatch["weight"].sum() * per_row)

    def _policy_loss(self, log_prob: jax.Array, minibatch: dict[str, jax.Array]) -> jax.Array:
        """AA: −A*·log π. PAA: the clipped surrogate on A* (`separated`: on Â, plus a second
        clipped surrogate on the alignment term)."""
        advantage = minibatch["advantage"]
        if not self.config.proximal:
            return self._row_mean(-advantage * log_prob, minibatch)
        clip_eps = self.config.clip_eps
        loss = clipped_surrogate(log_prob, minibatch["log_prob"], advantage, clip_eps)
        if "alignment" in minibatch:
            loss = loss + clipped_surrogate(
                log_prob, minibatch["log_prob"], minibatch["alignment"], clip_eps
            )
        return self._row_mean(loss, minibatch)

    def _value_loss(self, value: jax.Array, minibatch: dict[str, jax.Array]) -> jax.Array:
        """PPO's value loss on GAE returns, or Huber (δ = 1) to the TD(0) targets (`td1`)."""
        if self.config.critic_target == "gae":
            return super()._value_loss(value, minibatch)
        return self._row_mean(optax.huber_loss(value, minibatch["return"]), minibatch)
