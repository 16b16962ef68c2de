"""Unit checks of MO-MIX and its outer-loop QMIX baseline (specs/algos/acceptance.md §4 (a) 1, 2).

Pareto metrics are tested in `tests/eval/test_pareto.py`, preference sampling in
`test_preferences.py`, the vector reward in `tests/envs/test_objectives.py`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.algos.mixer import MonotonicMixer, init_mixers, mix
from marl.algos.momix import MOMIX, POINTS_METRIC, MOMIXConfig
from marl.config import ConfigError
from marl.envs import make
from marl.envs.objectives import with_objectives

TWO_OBJECTIVES = {"components": ("objective_1", "objective_2"), "ref_point": (-0.1, -0.1)}
SMALL = {
    "total_timesteps": 4 * 3 * 6,  # 6 updates of 4 envs x 3 steps
    "num_envs": 4,
    "buffer_episodes": 16,
    "batch_episodes": 4,
    "rnn_hidden": 8,
    "hidden_sizes": (8,),
    "mixer_embed_dim": 4,
    "hypernet_hidden": 8,
    "eval_pref_grid": 3,
    "eval_every": 2,
    "eval_episodes": 2,
    "target_update_every": 2,
    "eps_decay_steps": 10,
}


def mo_matrix(objectives=TWO_OBJECTIVES, max_steps: int = 3):
    return with_objectives(make("mo_matrix", max_steps=max_steps), objectives)


@functools.cache
def trainer(objectives: str = "two", **overrides) -> MOMIX:
    """One trainer per setting, shared by the tests (compiled functions are cached on it)."""
    spec = (
        TWO_OBJECTIVES
        if objectives == "two"
        else {"components": ("objective_1",), "ref_point": (-0.1,)}
    )
    return MOMIX(mo_matrix(spec), MOMIXConfig(**{**SMALL, **overrides}))


@functools.cache
def whole_run(momix: MOMIX):
    """Jitted: key -> (state after all updates, metrics `[updates, ...]`)."""

    def run(key):
        state = momix.init(key)
        return jax.lax.scan(lambda s, _: momix.update(s), state, None, momix.num_updates)

    return jax.jit(run)


@functools.cache
def trained(objectives: str = "two", **overrides):
    """(trainer, state after all updates, metrics `[updates, ...]`) from seed 0."""
    momix = trainer(objectives, **overrides)
    state, metrics = whole_run(momix)(jax.random.PRNGKey(0))
    return momix, state, jax.device_get(metrics)


@pytest.mark.parametrize("share_params", [True, False])
def test_agent_network_and_mixer_shapes(share_params):
    momix = trainer(share_params=share_params)
    state = jax.jit(momix.init)(jax.random.PRNGKey(0))
    n, actions, m = 2, 4, 2
    obs = jnp.zeros((5, n, 1))
    extra = momix._agent_extra(jnp.full((5, n), -1, jnp.int32), jnp.full((5, m), 0.5))
    q, carry = momix.agent_q(state.params["agent"], obs, extra, momix.initial_carry(5))
    assert q.shape == (5, n, actions, m) and carry.shape == (5, n, 8)
    one_network = jax.eval_shape(
        momix.network.init,
        jax.random.PRNGKey(0),
        obs[:1, 0],
        extra[:1, 0],
        momix.initial_carry(1)[:, 0],
    )
    stacked = (n,) if not share_params else ()
    expected = jax.tree.map(lambda leaf: (*stacked, *leaf.shape), one_network)
    assert jax.tree.map(lambda leaf: leaf.shape, state.params["agent"]) == expected
    if share_params:
        assert extra.shape == (5, n, actions + n + m)  # previous action, agent id, preference
    else:
        assert extra.shape == (5, n, actions + m)  # no agent id for per-agent networks
    assert {leaf.shape[0] for leaf in jax.tree.leaves(state.params["mixer"])} == {m}
    z = momix.mixer_input(jnp.zeros((5, 1)), jnp.full((5, m), 0.5))
    assert z.shape == (5, 1 + m)
    assert mix(momix.mixer, state.params["mixer"], q[:, :, 0], z).shape == (5, m)


def test_mixers_are_monotonic_per_objective_and_ignore_other_objectives():
    mixer = MonotonicMixer(embed_dim=6, hypernet_hidden=10)
    n, k, z_size, batch = 3, 2, 5, 16
    key_params, key_q, key_z = jax.random.split(jax.random.PRNGKey(3), 3)
    params = init_mixers(mixer, key_params, k, n, z_size)
    q = 3.0 * jax.random.normal(key_q, (batch, n, k))
    z = jax.random.normal(key_z, (batch, z_size))
    jacobian = jax.vmap(jax.jacobian(lambda q1, z1: mix(mixer, params, q1[None], z1[None])[0]))(
        q, z
    )
    assert jacobian.shape == (batch, k, n, k)  # dQ_tot^k / dQ^i_l
    own = jnp.stack([jacobian[:, j, :, j] for j in range(k)], axis=1)
    assert (own >= 0).all() and (own > 0).any()
    for j in range(k):
        for other in range(k):
            if other != j:
                np.testing.assert_array_equal(jacobian[:, j, :, other], 0.0)


def test_mixer_reads_the_agents_when_the_state_is_all_zeros():
    # A matrix game's global state is constant zeros: the hypernetworks must still emit non-zero
    # mixing weights (zero biases made W1 = W2 = 0 and the mixer blind to the agents).
    mixer = MonotonicMixer(embed_dim=4, hypernet_hidden=8)
    params = init_mixers(mixer, jax.random.PRNGKey(0), 2, 2, 1)
    z = jnp.zeros((1, 1))
    jacobian = jax.jacobian(lambda q: mix(mixer, params, q, z))(jnp.zeros((1, 2, 2)))
    assert (jnp.abs(jacobian) > 1e-3).sum() == 4  # every objective reads both agents


def test_one_objective_momix_loss_equals_outer_loop_qmix_loss_bit_for_bit():
    momix, state, _ = trained("one")
    outer = trainer("one", outer_loop=True)
    assert not momix.conditioned and outer.num_runs == 1
    episodes = jax.tree.map(lambda x: x[:4], state.buffer.episodes)
    own = episodes.preference[:, None]
    momix_loss = jax.jit(momix.loss)(state.params, state.target_params, episodes, own)
    outer_preference = jnp.asarray(outer.grid[0])
    outer_loss = jax.jit(outer.loss)(
        state.params, state.target_params, episodes, own, outer_preference
    )
    assert float(momix_loss[0]) > 0
    assert np.asarray(momix_loss[0]).tobytes() == np.asarray(outer_loss[0]).tobytes()
    # Same parameter layout: the baseline's run is a QMIX the momix parameters fit exactly.
    outer_state = jax.eval_shape(outer.init, jax.random.PRNGKey(0))
    shapes = jax.tree.map(lambda leaf: leaf.shape[1:], outer_state.params)
    assert shapes == jax.tree.map(lambda leaf: leaf.shape, state.params)


def step_by_step_td_loss(momix: MOMIX, params, target_params, episodes, preferences) -> float:
    """momix.md §4's vector TD loss written as plain loops over episodes b, preferences k and
    steps t, the agents' GRUs stepped one step at a time: the reference for `MOMIX.loss`."""
    gamma, (num_episodes, horizon) = momix.config.gamma, episodes.done.shape
    agents = np.arange(momix.num_agents)

    def stepped_q(agent_params, b, w):
        """[Q `[N, A, m]` at every step t] of episode b under w `[1, m]`."""
        carry, prev_action, qs = momix.initial_carry(1), jnp.full((1, momix.num_agents), -1), []
        for t in range(horizon):
            q, carry = momix.agent_q(
                agent_params,
                episodes.obs[b, t][None],
                momix._agent_extra(prev_action, w),
                carry,
            )
            qs.append(q[0])
            prev_action = episodes.action[b, t][None]
        return qs

    def q_tot(mixer_params, chosen, b, t, w):
        z = momix.mixer_input(episodes.state[b, t][None], w)
        return mix(momix.mixer, mixer_params, chosen[None], z)[0]

    squared_errors = []
    for b in range(num_episodes):
        for k in range(preferences.shape[1]):
            w = preferences[b, k][None]
            online = stepped_q(params["agent"], b, w)
            target = stepped_q(target_params["agent"], b, w)
            for t in range(horizon):
                chosen = online[t][agents, episodes.action[b, t]]  # [N, m]
                y = episodes.reward[b, t]
                if not episodes.done[b, t]:
                    next_action = jnp.argmax(online[t + 1] @ w[0], axis=-1)  # double Q
                    bootstrap = q_tot(
                        target_params["mixer"], target[t + 1][agents, next_action], b, t + 1, w
                    )
                    y = y + gamma * bootstrap
                error = y - q_tot(params["mixer"], chosen, b, t, w)
                squared_errors.append(float((error**2).sum()))
    return float(np.mean(squared_errors))


def test_vector_td_loss_matches_a_step_by_step_reference():
    """Along multi-step episodes: the GRU carried across steps, the previous action as input,
    the double-Q target from step t + 1 and no bootstrap at a done step (one mid-episode)."""
    momix, state, _ = trained()
    assert momix.horizon == 3
    target_params = jax.jit(momix.init)(jax.random.PRNGKey(1)).params  # differs from online
    episodes = jax.tree.map(lambda x: x[:3], state.buffer.episodes)
    episodes = episodes.replace(done=episodes.done.at[0, 1].set(True))
    assert episodes.done[:, -1].all() and int(episodes.done.sum()) == 4
    preferences = jnp.stack(
        [episodes.preference, jnp.tile(jnp.asarray([0.3, 0.7]), (3, 1))], axis=1
    )  # [B, K = 2, m]
    loss, _ = jax.jit(momix.loss)(state.params, target_params, episodes, preferences)
    expected = step_by_step_td_loss(momix, state.params, target_params, episodes, preferences)
    assert expected > 0
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_outer_loop_loss_scalarises_the_reward_vector():
    _, state, _ = trained()
    outer = trainer(outer_loop=True)
    params = jax.tree.map(lambda leaf: leaf[0], jax.jit(outer.init)(jax.random.PRNGKey(1)).params)
    episodes = jax.tree.map(lambda x: x[:4], state.buffer.episodes)
    w = jnp.asarray([0.25, 0.75])
    scalar = episodes.replace(
        reward=(episodes.reward * w).sum(-1, keepdims=True), preference=jnp.ones((4, 1))
    )
    one = trainer("one", outer_loop=True)
    expected = one.loss(params, params, scalar, jnp.ones((4, 1, 1)), jnp.ones(1))[0]
    got = outer.loss(params, params, episodes, episodes.preference[:, None], w)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_update_metrics_evaluations_and_relabelled_preferences():
    momix, state, metrics = trained()
    points = metrics[POINTS_METRIC]  # [updates, G, m]
    assert points.shape == (6, 3, 2)
    evaluated = np.isfinite(points).all(axis=(1, 2))
    np.testing.assert_array_equal(evaluated, [False, True, False, True, False, True])
    assert not np.isnan(points[evaluated]).any()
    np.testing.assert_array_equal(state.front, points[-1])  # the guide reads the last front
    assert bool(state.front_ready)
    assert int(state.buffer.count) == 16 and int(state.update_step) == 6
    assert np.isfinite(metrics["loss/total"]).all() and metrics["loss/total"][-1] > 0
    # Every step's team vector is one of the game's payoffs (or zero).
    assert set(
        map(tuple, np.round(np.asarray(state.buffer.episodes.reward, np.float64).reshape(-1, 2), 4))
    ) <= {(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.6, 0.6), (0.8, 0.2)}
    prefs = momix.replay_preferences(state, state.buffer.episodes, jax.random.PRNGKey(2), None)
    assert prefs.shape == (16, 2, 2)
    np.testing.assert_array_equal(prefs[:, 0], state.buffer.episodes.preference)
    np.testing.assert_allclose(prefs.sum(-1), 1.0, atol=1e-6)
    host = momix.host_metrics({POINTS_METRIC: points[:, None]})
    assert np.isnan(host["pareto/hypervolume"][~evaluated]).all()
    assert np.isfinite(host["pareto/hypervolume"][evaluated]).all()


def test_outer_loop_runs_one_qmix_per_grid_preference():
    outer = trainer(outer_loop=True)
    assert outer.num_runs == 3 and outer.env_steps_per_update == 3 * 4 * 3
    assert outer.num_updates == SMALL["total_timesteps"] // (3 * 4 * 3)  # split budget
    assert trainer(outer_loop=True, outer_loop_budget="per_pref").num_updates == 6
    state = jax.jit(outer.init)(jax.random.PRNGKey(0))
    assert state.update_step.shape == (3,)
    state, metrics = jax.jit(outer.update)(state)
    assert metrics[POINTS_METRIC].shape == (3, 2) and metrics["loss/total"].shape == ()
    # Each run acts at its own preference; the network has one head and no preference input.
    np.testing.assert_array_equal(state.buffer.episodes.preference[:, 0], np.asarray(outer.grid))
    assert outer.network.num_objectives == 1 and not outer.conditioned


def test_outer_loop_runs_in_groups_give_the_vmapped_numbers():
    _, together, together_metrics = trained(outer_loop=True)
    _, apart, apart_metrics = trained(outer_loop=True, outer_loop_runs_at_once=2)
    for name in together_metrics:
        np.testing.assert_allclose(
            apart_metrics[name], together_metrics[name], rtol=1e-5, atol=1e-6, err_msg=name
        )
    for got, expected in zip(jax.tree.leaves(apart), jax.tree.leaves(together), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_same_seed_same_numbers():
    _, _, first = trained()
    second = jax.device_get(whole_run(trainer())(jax.random.PRNGKey(0))[1])
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_act_is_greedy_on_the_scalarised_q_of_memoryless_agents():
    momix = trainer(rnn_hidden=0, last_action=False)
    params = jax.jit(momix.init)(jax.random.PRNGKey(0)).params
    obs = jnp.zeros((3, 2, 1))
    for w in ([1.0, 0.0], [0.0, 1.0]):
        extra = momix._agent_extra(jnp.zeros((3, 2), jnp.int32), jnp.tile(jnp.asarray(w), (3, 1)))
        q, _ = momix.agent_q(params["agent"], obs, extra, momix.initial_carry(3))
        expected = jnp.argmax(jnp.einsum("bnam,m->bna", q, jnp.asarray(w)), axis=-1)
        np.testing.assert_array_equal(
            momix.act(params, obs, jax.random.PRNGKey(0), jnp.asarray(w)), expected
        )
    with pytest.raises(ConfigError, match="evaluate_front"):
        trainer().act(params, obs, jax.random.PRNGKey(0))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pref_dist": "sobol"}, "algo.pref_dist"),
        ({"eval_pref_grid": 1}, "algo.eval_pref_grid"),
        ({"buffer_episodes": 2}, "algo.buffer_episodes"),
        ({"guide_mix": 1.5}, "algo.guide_mix"),
        ({"outer_loop_budget": "half"}, "algo.outer_loop_budget"),
        ({"outer_loop_runs_at_once": -1}, "algo.outer_loop_runs_at_once"),
        ({"total_timesteps": 5}, "algo.total_timesteps"),
    ],
)
def test_bad_config_is_one_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        MOMIX(mo_matrix(), MOMIXConfig(**{**SMALL, **overrides}))


def test_env_without_objectives_is_a_clear_error():
    with pytest.raises(ConfigError, match="objectives"):
        MOMIX(make("mo_matrix"), MOMIXConfig(**SMALL))
