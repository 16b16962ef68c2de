"""Unit checks of the BN-AC / MAPPO trainer (specs/algos/acceptance.md section 5a, items 1, 4, 5).

The graph sampler itself (acyclicity, permutations, schedule, statistics) is tested in
`test_dag.py`; here: the actor's parent inputs, acting in topological order, the update's ratio,
the sparsity term and the configuration checks.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compose_config

from marl.algos import dag as dags
from marl.algos.bnac import BNAC, BNACConfig
from marl.config import ConfigError
from marl.envs import make
from marl.run.experiment import build_trainer

COORDINATION = make("noisy_coordination", num_agents=3, max_steps=5)
SMALL = {
    "total_timesteps": 4 * 8 * 4,
    "num_envs": 4,
    "num_steps": 8,
    "update_epochs": 1,
    "num_minibatches": 2,
    "hidden_sizes": (16,),
    "dag_hidden": 16,
}


@functools.cache
def small_bnac(env=COORDINATION, **overrides) -> BNAC:
    """One trainer per setting with its initial state, shared by the tests."""
    trainer = BNAC(env, BNACConfig(**{**SMALL, **overrides}))
    trainer.initial_state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    return trainer


def random_joint(trainer: BNAC, key: jax.Array, batch: int = 64):
    """Random joint observations `[B, N, n]` (bits) and actions `[B, N]`."""
    obs_key, action_key = jax.random.split(key)
    n = trainer.num_agents
    obs = jax.random.bernoulli(obs_key, 0.5, (batch, n, n)).astype(jnp.float32)
    actions = jax.random.randint(action_key, (batch, n), 0, trainer.num_actions)
    return obs, actions


def test_empty_graph_log_probs_ignore_the_other_agents_actions_bit_for_bit():
    trainer = small_bnac(dag="empty")
    params = trainer.initial_state.params
    obs, actions = random_joint(trainer, jax.random.PRNGKey(1))
    graph = jnp.zeros((obs.shape[0], 3, 3))
    log_prob, _ = trainer.joint_log_probs(params, obs, graph, actions)
    # Agent 0 keeps its action; the others' actions are permuted across the batch.
    shuffled = actions.at[:, 1:].set(jnp.roll(actions[:, 1:], 5, axis=0))
    shuffled_log_prob, _ = trainer.joint_log_probs(params, obs, graph, shuffled)
    assert np.array_equal(log_prob[:, 0], shuffled_log_prob[:, 0])
    # The same actor with pa_i = 0 (no parent inputs at all) gives the same numbers.
    rows = obs.reshape(-1, 3)
    ids = jnp.tile(jnp.eye(3), (obs.shape[0], 1))
    logits = trainer._logits(params, rows, ids, jnp.zeros((rows.shape[0], 3 * 2)))
    direct = jax.nn.log_softmax(logits)[jnp.arange(rows.shape[0]), actions.reshape(-1)]
    assert np.array_equal(log_prob.reshape(-1), direct)


def test_empty_graph_gradients_equal_those_of_the_actor_without_parent_inputs():
    """MAPPO equivalence of the gradients: with G = 0 the parent rows of the output kernel get
    exactly zero gradient and every other parameter the gradient of the parent-free actor."""
    trainer = small_bnac(dag="empty")
    actor = trainer.initial_state.params["params"]["actor"]
    obs, actions = random_joint(trainer, jax.random.PRNGKey(11))
    rows = obs.reshape(-1, 3)
    ids = jnp.tile(jnp.eye(3), (obs.shape[0], 1))
    flat_actions = actions.reshape(-1)
    num_features = actor["kernel"].shape[1] - 3 * 2

    def with_parents(actor_params):
        params = {"params": {"actor": actor_params}}
        log_prob, _ = trainer.joint_log_probs(params, obs, jnp.zeros((64, 3, 3)), actions)
        return log_prob.sum()

    def without_parents(actor_params):
        logits = trainer.actor.apply({"params": actor_params}, rows, ids, None)
        return jax.nn.log_softmax(logits)[jnp.arange(rows.shape[0]), flat_actions].sum()

    grads = jax.grad(with_parents)(actor)
    feature_actor = {**actor, "kernel": actor["kernel"][:, :num_features]}
    reference = jax.grad(without_parents)(feature_actor)
    assert np.array_equal(
        grads["kernel"][:, num_features:], np.zeros_like(grads["kernel"][:, num_features:])
    )
    np.testing.assert_allclose(grads["kernel"][:, :num_features], reference["kernel"], atol=1e-6)
    for name in ("bias", "torso"):
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), grads[name], reference[name]
        )


def test_a_parent_changes_its_childs_log_prob_and_nobody_elses():
    trainer = small_bnac(dag="full", init_logit_std=2.0)
    params = trainer.initial_state.params
    obs, actions = random_joint(trainer, jax.random.PRNGKey(2))
    graph = jnp.broadcast_to(
        jnp.asarray([[0, 1, 0], [0, 0, 0], [0, 0, 0]], jnp.float32), (64, 3, 3)
    )
    flipped = actions.at[:, 0].set(1 - actions[:, 0])
    before, _ = trainer.joint_log_probs(params, obs, graph, actions)
    after, _ = trainer.joint_log_probs(params, obs, graph, flipped)
    assert np.array_equal(before[:, 2], after[:, 2])  # agent 2 has no parent
    assert not np.allclose(before[:, 1], after[:, 1])  # agent 1's parent is agent 0


def test_full_graph_joint_policy_is_a_distribution_over_joint_actions():
    """Σ over all joint actions of Π_i π_i(a_i | o_i, a_Pa(i)) = 1 for the autoregressive graph."""
    trainer = small_bnac(dag="full", init_logit_std=2.0)
    params = trainer.initial_state.params
    obs, _ = random_joint(trainer, jax.random.PRNGKey(3), batch=4)
    joint = jnp.asarray(list(itertools.product(range(2), repeat=3)))  # [8, 3]
    graph = jnp.broadcast_to(jnp.asarray(dags.upper_triangular_mask(3)), (8, 3, 3))
    for b in range(4):
        log_prob, _ = trainer.joint_log_probs(
            params, jnp.broadcast_to(obs[b], (8, 3, 3)), graph, joint
        )
        assert np.exp(log_prob.sum(axis=1)).sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("kind", ["full", "random", "learned"])
def test_acting_follows_the_topological_order_and_matches_the_update_log_probs(kind):
    trainer = small_bnac(dag=kind, init_logit_std=2.0)
    params = trainer.initial_state.params
    obs, _ = random_joint(trainer, jax.random.PRNGKey(4))
    noise = trainer._graph_noise(jax.random.PRNGKey(5), obs.shape[0])
    graph, order = trainer.graphs(params, obs, noise)
    actions, acting_log_prob, ready = trainer.act_in_order(
        params, obs, graph, order, jax.random.PRNGKey(6)
    )
    assert bool(ready.all())
    update_log_prob, _ = trainer.joint_log_probs(params, obs, graph, actions)
    np.testing.assert_allclose(acting_log_prob, update_log_prob, atol=1e-6)
    if kind != "full":
        assert float(graph.sum(axis=(1, 2)).std()) > 0  # graphs vary with the noise


def test_acting_in_a_wrong_order_is_flagged():
    trainer = small_bnac(dag="full")
    obs, _ = random_joint(trainer, jax.random.PRNGKey(7), batch=8)
    graph = jnp.broadcast_to(jnp.asarray(dags.upper_triangular_mask(3)), (8, 3, 3))
    reversed_order = jnp.broadcast_to(jnp.asarray([2, 1, 0]), (8, 3))
    _, _, ready = trainer.act_in_order(
        trainer.initial_state.params, obs, graph, reversed_order, jax.random.PRNGKey(8)
    )
    # Agent 2 acts first although agents 0 and 1 are its parents; agent 0 (no parents) is fine.
    assert not bool(ready[:, 2].any()) and not bool(ready[:, 1].any()) and bool(ready[:, 0].all())


def test_first_minibatch_ratio_is_one_and_the_sparsity_term_reaches_the_graph_network():
    trainer = small_bnac(dag="learned", sparsity_target=0.0, sparsity_alpha=1.0)
    state = trainer.initial_state
    (_, _), trajectory = trainer._rollout(state, jax.random.PRNGKey(9))
    rows = {
        key: trajectory[key]
        for key in ("obs", "global_state", "action", "log_prob", "value", "graph", "noise")
    }
    rows = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), rows)
    rows["advantage"] = jnp.ones_like(rows["log_prob"])
    rows["return"] = rows["value"]
    coefficients = trainer._coefficients(state.update_step)
    (_, aux), grads = jax.value_and_grad(trainer._loss, has_aux=True)(
        state.params, rows, coefficients
    )
    assert float(aux["approx_kl"]) == pytest.approx(0.0, abs=1e-6)
    assert float(aux["clip_frac"]) == 0.0
    assert float(aux["loss/sparsity"]) > 0
    dag_grads = jax.tree.leaves(grads["params"]["dag"])
    assert all(np.isfinite(g).all() for g in dag_grads)
    assert sum(float(jnp.abs(g).sum()) for g in dag_grads) > 0


def test_update_logs_graph_diagnostics_and_the_sparsity_schedule():
    trainer = small_bnac(dag="learned", sparsity_anneal=True)
    state, metrics = jax.jit(trainer.update)(trainer.initial_state)
    assert metrics["dag/edge_freq"].shape == (3, 3)
    assert metrics["dag/top_graphs"].shape == (3, 3, 3)
    assert 0 <= float(metrics["dag/open_ratio"]) <= 1
    assert float(metrics["dag/target_density"]) == 1.0
    assert float(metrics["dag/sparsity_weight"]) == pytest.approx(0.1)
    assert int(state.update_step) == 1


def test_empty_graph_update_runs_and_act_uses_the_evaluation_graph():
    trainer = small_bnac(dag="empty")
    state, metrics = jax.jit(trainer.update)(trainer.initial_state)
    assert not any(name.startswith("dag/") for name in metrics)
    assert np.isfinite(float(metrics["loss/total"]))
    actions = trainer.act(state.params, state.last_obs, jax.random.PRNGKey(0), greedy=True)
    assert actions.shape == (4, 3) and actions.dtype == jnp.int32


def test_critic_reads_the_global_state():
    trainer = small_bnac(dag="empty")
    assert trainer.global_state_shape == (3,)
    state = trainer.initial_state
    global_states = jnp.asarray([[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    values = trainer.values(state.params, global_states)
    assert values.shape == (2,) and float(values[0]) != float(values[1])


def test_mappo_is_the_empty_graph_preset_of_bnac():
    cfg = compose_config(["algo=mappo", "env=bn_coordination"])
    trainer = build_trainer(cfg.algo, make("noisy_coordination"))
    assert isinstance(trainer, BNAC) and trainer.config.dag == "empty"
    bnac = compose_config(["algo=bnac", "env=bn_coordination"])
    assert {k: v for k, v in cfg.algo.items() if k not in ("name", "dag")} == {
        k: v for k, v in bnac.algo.items() if k not in ("name", "dag")
    }


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"dag": "dense"}, "algo.dag"),
        ({"dag": "full", "sparsity_anneal": True}, "algo.dag=learned"),
        ({"sparsity_anneal": True, "sparsity_target": 0.5}, "algo.sparsity_target"),
        ({"num_minibatches": 3}, "algo.num_minibatches"),
        ({"per_agent_heads": True, "agent_id": False}, "algo.agent_id"),
        ({"edge_prob": 1.5}, "algo.edge_prob"),
        ({"eval_dag": "full"}, "algo.eval_dag"),
    ],
)
def test_bad_settings_raise_one_config_error_naming_the_key(overrides, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        BNAC(COORDINATION, BNACConfig(**{**SMALL, **overrides}))
