"""Context-aware Bayesian-network actor-critic (BN-AC) on MAPPO; `algo=mappo` is its empty graph.

Spec: `specs/algos/bnac.md` (Chen & Zhang, ICML 2023, code dchen48/BNPG). The joint policy is a
Bayesian network over the agents: π(a | s) = Π_i π_i(a_i | o_i, a_Pa(i)) for a DAG G with
G[j, i] = 1 when j is a parent of i (`marl/algos/dag.py`). Per env step the graph is

* `empty`: G = 0, independent agents: MAPPO (`algo=mappo` is this preset);
* `full`: every lower index is a parent of every higher one (an autoregressive joint policy);
* `random`: each edge of `full` kept with probability `edge_prob`;
* `learned`: sampled from a context network on all agents' observations (Gumbel-Sinkhorn order,
  Gumbel-sigmoid edges, straight-through gradients), pruned toward the empty graph by the
  sparsity schedule when `sparsity_anneal=true` so that execution ends decentralised.

Agents act in the graph's topological order (a `lax.scan` over ranks); the update evaluates every
agent's log-probability in parallel from the stored joint action, reusing the graph noise drawn
while acting. The critic is centralised, V(global state), trained on the team reward (the mean
over agents of the rewards after `reward_mode`); every agent's clipped surrogate uses the shared
team advantage. PPO's optimiser, schedules, GAE, minibatch epochs and losses are reused.

Array layout inside an update: `[T, E, N, ...]` (time, parallel env, agent).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from marl.algos import dag as dags
from marl.algos.ppo import PPO, PPOConfig, PPOState, _policy_entropy_logp
from marl.config import ConfigError, require, require_choice
from marl.envs.base import Env
from marl.envs.wrappers import training_env
from marl.networks import ParentConditionedPolicy, StateValue, encoder_for, network_settings

DAG_KINDS = ("empty", "full", "random", "learned")
EVAL_DAGS = ("auto", "same", "empty")
# Edge logit of `full` graphs: every edge of the mask is kept whatever the logistic noise.
_ALWAYS = 1e9


@dataclasses.dataclass(frozen=True)
class BNACConfig(PPOConfig):
    """Hyperparameters of `algo=bnac` / `algo=mappo` (`configs/algo/bnac.yaml` documents each).

    PPO's keys keep their meaning; parameters are always shared by the agents (with a one-hot id
    unless `agent_id=false`), and minibatches are made of joint transitions (T x E rows). The
    learning rate is constant by default (`anneal_lr=false`, as the reference MAPPO): with a
    decaying one the DAG network cannot follow the sparsity schedule's late drop to an empty graph.
    """

    IGNORED_KEYS = ("name",)

    anneal_lr: bool = False
    share_params: bool = dataclasses.field(default=True, init=False)
    bootstrap_time_limits: bool = dataclasses.field(default=False, init=False)
    dag: str = "learned"
    edge_prob: float = 0.5
    per_agent_heads: bool = False
    dag_hidden: int = 64
    perm_temp: float = 1.0
    edge_temp: float = 1.0
    perm_noise: float = 1.0
    sinkhorn_iters: int = 20
    perm_hard: str = "greedy"
    sparsity_anneal: bool = False
    num_decay: int = 40
    sparsity_alpha: float = 0.1
    sparsity_alpha_final: float = 1.0
    sparsity_target: float | None = None
    eval_dag: str = "auto"
    init_logit_std: float | None = None

    def validate(self, where: str = "algo") -> None:
        super().validate(where)
        require_choice(self.dag, DAG_KINDS, f"{where}.dag")
        require_choice(self.eval_dag, EVAL_DAGS, f"{where}.eval_dag")
        require_choice(self.perm_hard, dags.PERM_HARD, f"{where}.perm_hard")
        require(
            0 <= self.edge_prob <= 1, f"{where}.edge_prob must be in [0, 1]; got {self.edge_prob}"
        )
        for key in ("perm_temp", "edge_temp"):
            require(getattr(self, key) > 0, f"{where}.{key} must be > 0; got {getattr(self, key)}")
        for key in ("dag_hidden", "sinkhorn_iters", "num_decay"):
            require(
                getattr(self, key) >= 1, f"{where}.{key} must be >= 1; got {getattr(self, key)}"
            )
        for key in ("perm_noise", "sparsity_alpha", "sparsity_alpha_final"):
            require(
                getattr(self, key) >= 0, f"{where}.{key} must be >= 0; got {getattr(self, key)}"
            )
        require(
            self.sparsity_target is None or 0 <= self.sparsity_target <= 1,
            f"{where}.sparsity_target must be in [0, 1] or null; got {self.sparsity_target}",
        )
        require(
            not (self.sparsity_anneal and self.sparsity_target is not None),
            f"{where}.sparsity_anneal=true sets the target density by schedule: leave "
            f"{where}.sparsity_target null (got {self.sparsity_target})",
        )
        if self.dag != "learned":
            require(
                not self.sparsity_anneal and self.sparsity_target is None,
                f"{where}.sparsity_anneal / {where}.sparsity_target shape a learned graph: set "
                f"{where}.dag=learned (got dag={self.dag})",
            )
        require(
            self.init_logit_std is None or self.init_logit_std > 0,
            f"{where}.init_logit_std must be > 0 or null; got {self.init_logit_std}",
        )

    def rows_per_update(self, num_agents: int) -> int:
        """Rows per update: one per joint transition (T x E), all agents together."""
        return self.env_steps_per_update

    @property
    def sparsity_active(self) -> bool:
        return self.sparsity_anneal or (
            self.sparsity_target is not None and self.sparsity_alpha > 0
        )

    @property
    def resolved_eval_dag(self) -> str:
        """The graph `act` uses: `empty` or `same`; `auto` is empty after sparsity annealing."""
        if self.eval_dag != "auto":
            return self.eval_dag
        return "empty" if self.sparsity_anneal else "same"


class BNAC(PPO):
    """BN-AC / MAPPO trainer: `init(key) -> PPOState`, `update(state)`, `act(params, obs, key)`.

    params: `{"params": {"actor": ..., "critic": ..., "dag": ...}}` (`dag` only for `learned`).
    """

    acts_in_order = True  # `act` samples the joint action itself (evaluation calls it for greedy)

    def __init__(self, env: Env, config: BNACConfig):
        config.validate()
        rows = config.rows_per_update(env.num_agents)
        if rows % config.num_minibatches:
            raise ConfigError(
                f"algo.num_minibatches ({config.num_minibatches}) must divide the joint "
                f"transitions per update ({rows} = num_steps {config.num_steps} x num_envs "
                f"{config.num_envs})"
            )
        if config.per_agent_heads and not config.agent_id:
            raise ConfigError(
                "algo.per_agent_heads=true picks each agent's head by its id: set algo.agent_id=true"
            )
        self.env = env
        self.config = config
        self.train_env = training_env(env, config.reward_mode)
        self.num_agents = env.num_agents
        self.num_actions = env.num_actions
        self.uses_agent_id = config.agent_id
        self.minibatches_per_update = config.update_epochs * config.num_minibatches
        reset_state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))[1]
        self.global_state_shape = tuple(jax.eval_shape(env.global_state, reset_state).shape)
        settings = network_settings(config, env.obs_shape)
        self.actor = ParentConditionedPolicy(
            num_actions=env.num_actions,
            num_heads=env.num_agents if config.per_agent_heads else 0,
            init_logit_std=config.init_logit_std,
            **settings,
        )
        critic_settings = {
            **settings,
            "encoder": encoder_for(self.global_state_shape, "auto"),
        }
        self.critic = StateValue(**critic_settings)
        self.proposer = dags.DagProposer(num_agents=env.num_agents, hidden_size=config.dag_hidden)
        self.optimizer = self._optimizer()

    # ------------------------------------------------------------------ parameters
    def init(self, key: jax.Array) -> PPOState:
        """Fresh actor, critic (and DAG network) parameters, optimiser state and reset envs."""
        key, actor_key, critic_key, dag_key, env_key = jax.random.split(key, 5)
        n, a = self.num_agents, self.num_actions
        obs = jnp.zeros((1, *self.env.obs_shape), jnp.float32)
        ids = jnp.zeros((1, n), jnp.float32) if self.uses_agent_id else None
        params = {
            "actor": self.actor.init(actor_key, obs, ids, jnp.zeros((1, n * a)))["params"],
            "critic": self.critic.init(
                critic_key, jnp.zeros((1, *self.global_state_shape), jnp.float32)
            )["params"],
        }
        if self.config.dag == "learned":
            params["dag"] = self.proposer.init(dag_key, jnp.zeros((1, n, *self.env.obs_shape)))[
                "params"
            ]
        params = {"params": params}
        obs, env_state = jax.vmap(self.train_env.reset)(
            jax.random.split(env_key, self.config.num_envs)
        )
        return PPOState(
            params=params,
            opt_state=self.optimizer.init(params),
            env_state=env_state,
            last_obs=obs,
            key=key,
            update_step=jnp.zeros((), jnp.int32),
        )

    # ------------------------------------------------------------------ graphs
    def graphs(
        self, params, obs: jax.Array, noise: dags.DagNoise | None, kind: str | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """Graphs for a batch of joint observations `[B, N, *obs_shape]`.

        noise: `DagNoise` with leaves `[B, N, N]` (None: zero noise, the deterministic graph);
        kind: `empty | full | random | learned` (default: the configured `dag`). Returns G
        float32 `[B, N, N]` (straight-through for `learned`) and order int32 `[B, N]`.
        """
        kind = kind or self.config.dag
        batch, n = obs.shape[0], self.num_agents
        if noise is None:
            noise = jax.tree.map(lambda x: jnp.broadcast_to(x, (batch, n, n)), dags.zero_noise(n))
        if kind == "empty":
            return jnp.zeros((batch, n, n)), jnp.broadcast_to(jnp.arange(n), (batch, n))
        if kind in ("full", "random"):
            logit = _ALWAYS if kind == "full" else _logit(self.config.edge_prob)
            logits = jnp.full((n, n), logit, jnp.float32)
            return jax.vmap(dags.fixed_order_dag, in_axes=(None, 0))(logits, noise)
        config = self.config
        edge_logits, order_scores = self.proposer.apply({"params": params["params"]["dag"]}, obs)
        sample = jax.vmap(
            lambda edges, order, one_noise: dags.learned_dag(
                edges,
                order,
                one_noise,
                edge_temp=config.edge_temp,
                perm_temp=config.perm_temp,
                perm_noise=config.perm_noise,
                sinkhorn_iters=config.sinkhorn_iters,
                perm_hard=config.perm_hard,
            )
        )
        return sample(edge_logits, order_scores, noise)

    def _graph_noise(self, key: jax.Array, batch: int) -> dags.DagNoise | None:
        """Fresh noise `[B, N, N]` for a batch of graphs (None when the graph needs none)."""
        if self.config.dag in ("empty", "full"):
            return None
        return jax.vmap(dags.sample_noise, in_axes=(0, None))(
            jax.random.split(key, batch), self.num_agents
        )

    # ------------------------------------------------------------------ the actor
    def _logits(self, params, obs: jax.Array, agent_ids: jax.Array, parents: jax.Array):
        """Actor logits `[R, A]` of rows: obs `[R, *obs_shape]`, one-hot ids `[R, N]`, parents'
        action one-hots `[R, N x A]`."""
        ids = agent_ids if self.uses_agent_id else None
        return self.actor.apply({"params": params["params"]["actor"]}, obs, ids, parents)

    def parent_inputs(self, graph: jax.Array, actions: jax.Array) -> jax.Array:
        """pa_i = concat_j G[j, i] onehot(a_j): graph `[B, N, N]`, actions `[B, N]` ->
        `[B, N, N x A]`."""
        one_hot = jax.nn.one_hot(actions, self.num_actions)
        parents = jnp.einsum("bji,bja->bija", graph, one_hot)
        return parents.reshape(*parents.shape[:2], -1)

    def _all_agents_logits(self, params, obs: jax.Array, parents: jax.Array) -> jax.Array:
        """Logits `[B, N, A]` of every agent at once: joint observations `[B, N, *obs_shape]`,
        parent inputs `[B, N, N x A]`."""
        batch, n = obs.shape[:2]
        ids = jnp.broadcast_to(jnp.eye(n), (batch, n, n)).reshape(batch * n, n)
        logits = self._logits(
            params, obs.reshape(batch * n, *obs.shape[2:]), ids, parents.reshape(batch * n, -1)
        )
        return logits.reshape(batch, n, -1)

    def joint_log_probs(self, params, obs, graph, actions):
        """Every agent's log π_i(a_i | o_i, a_Pa(i)) and entropy `[B, N]`, all agents at once,
        from joint observations `[B, N, *obs_shape]`, graphs `[B, N, N]`, actions `[B, N]`."""
        logits = self._all_agents_logits(params, obs, self.parent_inputs(graph, actions))
        return _policy_entropy_logp(logits, actions)

    def act_in_order(self, params, obs, graph, order, key, greedy: bool = False):
        """Sample (or with `greedy` take the most likely) joint action in topological order.

        obs `[B, N, *obs_shape]`, graph `[B, N, N]`, order int32 `[B, N]` (agent at each rank).
        Returns actions int32 `[B, N]`, log-probs `[B, N]` and parents_ready bool `[B, N]`
        (every parent of the agent had acted before it: true for a valid order).
        """
        batch, n = order.shape
        eye = jnp.eye(n)
        rows = jnp.arange(batch)

        def one_rank(carry, rank_key):
            actions, acted = carry
            rank, step_key = rank_key
            agent = order[:, rank]
            incoming = graph[rows, :, agent]  # [B, N]: parents of the acting agent
            ready = jnp.all((incoming == 0) | acted, axis=-1)
            one_hot = jax.nn.one_hot(actions, self.num_actions) * acted[..., None]
            parents = (incoming[..., None] * one_hot).reshape(batch, -1)
            logits = self._logits(params, obs[rows, agent], eye[agent], parents)
            action = _choose(logits, step_key, greedy)
            log_prob, _ = _policy_entropy_logp(logits, action)
            actions = actions.at[rows, agent].set(action)
            acted = acted.at[rows, agent].set(True)
            return (actions, acted), (agent, log_prob, ready)

        start = (jnp.zeros((batch, n), jnp.int32), jnp.zeros((batch, n), bool))
        (actions, _), (agents, log_probs, ready) = jax.lax.scan(
            one_rank, start, (jnp.arange(n), jax.random.split(key, n))
        )
        # Per-rank outputs `[N, B]` back to agent order `[B, N]`.
        by_agent = jnp.argsort(agents.T, axis=-1)
        return (
            actions,
            jnp.take_along_axis(log_probs.T, by_agent, axis=-1),
            jnp.take_along_axis(ready.T, by_agent, axis=-1),
        )

    def joint_action(self, params, obs, key, kind: str | None = None, greedy=False, noise=None):
        """Graphs and joint actions for joint observations `[B, N, *obs_shape]`.

        Returns (actions int32 `[B, N]`, log-probs `[B, N]`, graph `[B, N, N]`)."""
        kind = kind or self.config.dag
        if kind == "empty":
            batch, n = obs.shape[:2]
            parents = jnp.zeros((batch, n, n * self.num_actions))
            logits = self._all_agents_logits(params, obs, parents)
            actions = _choose(logits, key, greedy)
            log_probs, _ = _policy_entropy_logp(logits, actions)
            return actions, log_probs, jnp.zeros((batch, n, n))
        graph, order = self.graphs(params, obs, noise, kind)
        graph = jax.lax.stop_gradient(graph)
        actions, log_probs, _ = self.act_in_order(params, obs, graph, order, key, greedy)
        return actions, log_probs, graph

    def act(self, params, obs: jax.Array, key: jax.Array, greedy: bool = False, dag=None):
        """Joint actions int32 `[B, N]` for observations `[B, N, *obs_shape]` under the evaluation
        graph: `dag=None` is `eval_dag`; `same` is the trained graph kind (a learned graph without
        noise, a random graph freshly sampled); `empty` is the decentralised policy."""
        dag = dag or self.config.resolved_eval_dag
        kind = "empty" if dag == "empty" else self.config.dag
        graph_key, action_key = jax.random.split(key)
        noise = self._graph_noise(graph_key, obs.shape[0]) if kind == "random" else None
        actions, _, _ = self.joint_action(params, obs, action_key, kind, greedy, noise)
        return actions

    def evaluation_graphs(self) -> dict[str, str]:
        """Label -> `act`'s `dag` for evaluation: the graph policy and the graph-free
        (decentralised) one; empty for `dag=empty`, which has only the latter."""
        if self.config.dag == "empty":
            return {}
        noise = ", no sampling noise" if self.config.dag == "learned" else ""
        return {
            f"graph policy (dag={self.config.dag}{noise})": "same",
            "graph-free policy (empty graph, decentralised)": "empty",
        }

    def policy(self, params, obs: jax.Array):
        """Not defined: a Bayesian-network policy has no per-agent logits without the other
        agents' actions; `act` (sampled or greedy) draws joint actions in topological order."""
        raise NotImplementedError("BN-AC acts jointly: call act(params, obs, key, greedy=...)")

    def values(self, params, global_state: jax.Array) -> jax.Array:
        """Centralised critic V(s) `[B]` of global states `[B, *state_shape]`."""
        return self.critic.apply({"params": params["params"]["critic"]}, global_state)

    # ------------------------------------------------------------------ update
    def update(self, state: PPOState) -> tuple[PPOState, dict[str, jax.Array]]:
        """One rollout acting through the graphs, team GAE, then PPO epochs on joint rows."""
        key, rollout_key, learn_key = jax.random.split(state.key, 3)
        (env_state, last_obs), trajectory = self._rollout(state, rollout_key)
        last_values = self.values(state.params, jax.vmap(self.train_env.global_state)(env_state))
        advantages, returns = self._gae(
            trajectory["team_reward"][..., None],
            trajectory["value"][..., None],
            trajectory["done"],
            last_values[..., None],
        )
        advantages, returns = advantages[..., 0], returns[..., 0]
        if self.config.adv_norm == "batch":
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        coefficients = self._coefficients(state.update_step)
        rows = {
            "obs": trajectory["obs"],
            "global_state": trajectory["global_state"],
            "action": trajectory["action"],
            "log_prob": trajectory["log_prob"],
            "value": trajectory["value"],
            "advantage": jnp.broadcast_to(advantages[..., None], trajectory["log_prob"].shape),
            "return": returns,
            "graph": trajectory["graph"],
        }
        if "noise" in trajectory:
            rows["noise"] = trajectory["noise"]
        rows = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), rows)
        params, opt_state, learn_metrics = self._learn_one(
            state.params, state.opt_state, rows, coefficients, learn_key
        )
        metrics = {
            **learn_metrics,
            **self._rollout_metrics(trajectory, state.update_step),
            "team_reward": trajectory["team_reward"].mean(),
        }
        if self.config.dag != "empty":
            graphs = trajectory["graph"].reshape(-1, self.num_agents, self.num_agents)
            statistics = dags.graph_statistics(graphs)
            metrics.update({f"dag/{name}": value for name, value in statistics.items()})
        if self.config.sparsity_active:
            metrics["dag/target_density"] = coefficients["theta"]
            metrics["dag/sparsity_weight"] = coefficients["alpha"]
        new_state = PPOState(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            last_obs=last_obs,
            key=key,
            update_step=state.update_step + 1,
        )
        return new_state, metrics

    def _coefficients(self, update_step: jax.Array) -> dict[str, jax.Array]:
        """Loss weights of one update: entropy, and the sparsity target θ and weight α."""
        config = self.config
        if config.sparsity_anneal:
            theta, alpha = dags.sparsity_schedule(
                update_step,
                self.num_updates,
                config.num_decay,
                config.sparsity_alpha,
                config.sparsity_alpha_final,
            )
        elif config.sparsity_target is not None:
            theta = jnp.asarray(config.sparsity_target, jnp.float32)
            alpha = jnp.asarray(config.sparsity_alpha, jnp.float32)
        else:
            theta = alpha = jnp.zeros((), jnp.float32)
        return {"ent": self.entropy_coef(update_step), "theta": theta, "alpha": alpha}

    def _rollout(self, state: PPOState, key: jax.Array, policy=None):
        """`num_steps` vectorised steps acting through sampled graphs. Returns ((env_state,
        last_obs), trajectory `[T, E, ...]`: obs, global_state, action, log_prob (per agent),
        value, team_reward, reward, done, info, graph and (random / learned) the graph noise)."""
        step_env = jax.vmap(self.train_env.step)
        global_state = jax.vmap(self.train_env.global_state)
        params, num_envs = state.params, self.config.num_envs

        def one_step(carry, step_key):
            env_state, obs = carry
            noise_key, action_key, env_key = jax.random.split(step_key, 3)
            noise = self._graph_noise(noise_key, num_envs)
            action, log_prob, graph = self.joint_action(params, obs, action_key, noise=noise)
            states = global_state(env_state)
            next_obs, env_state, reward, done, info = step_env(
                jax.random.split(env_key, num_envs), env_state, action
            )
            transition = {
                "obs": obs,
                "global_state": states,
                "action": action,
                "log_prob": log_prob,
                "value": self.values(params, states),
                "team_reward": reward.mean(axis=-1),
                "reward": reward,
                "done": done,
                "info": info,
                "graph": graph,
            }
            if noise is not None:
                transition["noise"] = noise
            return (env_state, next_obs), transition

        return jax.lax.scan(
            one_step,
            (state.env_state, state.last_obs),
            jax.random.split(key, self.config.num_steps),
        )

    def _loss(self, params, minibatch: dict[str, jax.Array], coefficients):
        """Per-agent clipped surrogates on the team advantage, the centralised value loss, the
        entropy bonus and (when active) α |open_ratio − θ|; returns (total, named parts)."""
        graph = minibatch["graph"]
        if self.config.dag == "learned":
            graph, _ = self.graphs(params, minibatch["obs"], minibatch["noise"])
        log_prob, entropy = self.joint_log_probs(
            params, minibatch["obs"], graph, minibatch["action"]
        )
        policy_loss = self._policy_loss(log_prob, minibatch)
        value_loss = self._value_loss(self.values(params, minibatch["global_state"]), minibatch)
        mean_entropy = entropy.mean()
        total = policy_loss + self.config.vf_coef * value_loss - coefficients["ent"] * mean_entropy
        aux = {}
        if self.config.sparsity_active:
            density = dags.open_ratio(graph).mean()
            sparsity_loss = coefficients["alpha"] * jnp.abs(density - coefficients["theta"])
            total = total + sparsity_loss
            aux["loss/sparsity"] = sparsity_loss
        log_ratio = log_prob - minibatch["log_prob"]
        ratio = jnp.exp(log_ratio)
        aux.update(
            {
                "loss/total": total,
                "loss/policy": policy_loss,
                "loss/value": value_loss,
                "entropy": mean_entropy,
                "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
                "clip_frac": (jnp.abs(ratio - 1.0) > self.config.clip_eps).mean(),
            }
        )
        return total, aux


def _choose(logits: jax.Array, key: jax.Array, greedy: bool) -> jax.Array:
    """Actions int32 `[...]` from logits `[..., A]`: sampled, or the most likely with `greedy`."""
    if greedy:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def _logit(probability: float) -> float:
    """log(p / (1 - p)), ±1e9 at the ends (an edge always / never kept)."""
    if probability <= 0:
        return -_ALWAYS
    if probability >= 1:
        return _ALWAYS
    return float(np.log(probability / (1 - probability)))
