"""Unit checks of Advantage Alignment (specs/algos/acceptance.md section 3a)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.algos.aa import AA, AAConfig, alignment_terms
from marl.algos.gae import gae
from marl.algos.ppo import PPO, PPOConfig, normalize_per_agent
from marl.config import ConfigError
from marl.envs import make
from marl.networks import CRITIC_SUBTREES
from marl.run.experiment import build_env

SMALL = {
    "total_timesteps": 4 * 16 * 3,
    "num_envs": 4,
    "num_steps": 16,
    "update_epochs": 1,
    "num_minibatches": 1,
    "hidden_sizes": (8,),
    "share_params": True,
    "agent_id": False,
}

IPD = make("matrix_game", game="ipd", max_steps=10)


@functools.cache
def small_aa(env=IPD, **overrides) -> AA:
    """One trainer per setting with its jitted init and update, shared by the tests."""
    trainer = AA(env, AAConfig(**{**SMALL, **overrides}))
    trainer.jit_init = jax.jit(trainer.init)
    trainer.jit_update = jax.jit(trainer.update)
    return trainer


def one_update(trainer, seed: int = 0):
    return trainer.jit_update(trainer.jit_init(jax.random.PRNGKey(seed)))


def assert_trees_equal(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def explicit_terms(own, form, gamma_aa, include_current=False):
    """Σ-form of the AA term for one episode `own` `[T, M]` (no resets), by loops."""
    num_steps, num_agents = own.shape
    terms = np.zeros_like(own)
    for t in range(num_steps):
        last = t + 1 if include_current else t
        for i in range(num_agents):
            others = own[t].sum() - own[t, i]
            if form == "discounted":
                weight = gamma_aa * sum(gamma_aa ** (t - k) * own[k, i] for k in range(last))
            else:
                weight = sum(own[k, i] for k in range(last)) / max(last, 1)
            terms[t, i] = weight * others
    return terms


# ---------------------------------------------------------------------- the recursions
@pytest.mark.parametrize("form", ["discounted", "mean"])
@pytest.mark.parametrize("include_current", [False, True])
def test_recursions_equal_explicit_sums(form, include_current):
    own = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (12, 1, 3)))
    done = jnp.zeros((12, 1), bool)
    terms, step_index, _ = alignment_terms(
        own, done, jnp.zeros((1, 3)), jnp.zeros(1, jnp.int32), form, 0.9, include_current
    )
    np.testing.assert_allclose(
        terms[:, 0], explicit_terms(own[:, 0], form, 0.9, include_current), atol=1e-6
    )
    np.testing.assert_array_equal(step_index[:, 0], np.arange(12))


def test_include_current_switches_the_range_of_the_sum():
    own = jnp.array([[[1.0, 0.5]], [[2.0, 1.0]]])  # [T=2, E=1, M=2]
    done = jnp.zeros((2, 1), bool)
    start = (jnp.zeros((1, 2)), jnp.zeros(1, jnp.int32))
    past_only, _, _ = alignment_terms(own, done, *start, "mean", 1.0, False)
    with_current, _, _ = alignment_terms(own, done, *start, "mean", 1.0, True)
    # t = 0, agent 1 (others 1.0): no past (k < 0) vs its own current advantage 0.5 (k <= 0).
    assert float(past_only[0, 0, 1]) == 0.0
    assert float(with_current[0, 0, 1]) == pytest.approx(0.5)
    # t = 1, agent 0 (others 1.0): mean over k < 1 is 1.0, over k <= 1 it is (1 + 2) / 2.
    assert float(past_only[1, 0, 0]) == pytest.approx(1.0)
    assert float(with_current[1, 0, 0]) == pytest.approx(1.5)


def test_mean_form_starts_at_the_plain_advantage():
    own = jnp.array([[[0.7, -0.3]], [[0.2, 0.5]]])
    terms, _, (past, steps) = alignment_terms(
        own, jnp.zeros((2, 1), bool), jnp.zeros((1, 2)), jnp.zeros(1, jnp.int32), "mean", 1.0
    )
    np.testing.assert_array_equal(terms[0], 0.0)  # A*_0 = Â_0
    # m_1 = Â_0, so the term of agent 0 at t = 1 is Â^0_0 · Â^1_1.
    assert float(terms[1, 0, 0]) == pytest.approx(0.7 * 0.5)
    np.testing.assert_allclose(past[0], [0.9, 0.2], atol=1e-7)
    assert int(steps[0]) == 2


@pytest.mark.parametrize("form", ["discounted", "mean"])
def test_histories_reset_at_episode_starts(form):
    key = jax.random.PRNGKey(2)
    own = jax.random.normal(key, (10, 1, 2))
    done = jnp.zeros((10, 1), bool).at[3, 0].set(True)  # obs 4 starts a new episode
    terms, step_index, _ = alignment_terms(
        own, done, jnp.zeros((1, 2)), jnp.zeros(1, jnp.int32), form, 0.9
    )
    second = explicit_terms(np.asarray(own[4:, 0]), form, 0.9)
    np.testing.assert_allclose(terms[4:, 0], second, atol=1e-6)
    np.testing.assert_array_equal(step_index[:, 0], [0, 1, 2, 3, 0, 1, 2, 3, 4, 5])


@pytest.mark.parametrize("form", ["discounted", "mean"])
def test_two_segments_equal_one_long_segment(form):
    own = jax.random.normal(jax.random.PRNGKey(3), (14, 3, 2))
    done = jax.random.bernoulli(jax.random.PRNGKey(4), 0.2, (14, 3))
    start = (jnp.zeros((3, 2)), jnp.zeros(3, jnp.int32))
    whole, whole_index, whole_carry = alignment_terms(own, done, *start, form, 0.8)
    first, first_index, carry = alignment_terms(own[:6], done[:6], *start, form, 0.8)
    second, second_index, second_carry = alignment_terms(own[6:], done[6:], *carry, form, 0.8)
    np.testing.assert_allclose(jnp.concatenate([first, second]), whole, atol=1e-6)
    np.testing.assert_array_equal(jnp.concatenate([first_index, second_index]), whole_index)
    assert_trees_equal(second_carry, whole_carry)


@pytest.mark.parametrize("form", ["discounted", "mean"])
def test_one_step_episodes_have_no_alignment_term(form):
    own = jax.random.normal(jax.random.PRNGKey(5), (8, 4, 2))
    terms, _, _ = alignment_terms(
        own, jnp.ones((8, 4), bool), jnp.zeros((4, 2)), jnp.zeros(4, jnp.int32), form, 0.9
    )
    np.testing.assert_array_equal(terms, 0.0)


def test_one_step_episodes_make_beta_irrelevant_in_training():
    one_shot = make("matrix_game", game="ipd", max_steps=1)
    with_beta = one_update(small_aa(one_shot, beta=1.0))
    without = one_update(small_aa(one_shot, beta=0.0))
    assert_trees_equal(with_beta[0].params, without[0].params)


def test_normalised_alignment_is_invariant_to_reward_scale():
    key_r, key_v, key_d = jax.random.split(jax.random.PRNGKey(6), 3)
    rewards = jax.random.normal(key_r, (20, 5, 2))
    values = jax.random.normal(key_v, (20, 5, 2))
    done = jax.random.bernoulli(key_d, 0.1, (20, 5))
    dones = jnp.broadcast_to(done[..., None], rewards.shape)

    def aligned(scale):
        adv, _ = gae(scale * rewards, scale * values, dones, scale * values[-1], 0.96, 0.95)
        own = normalize_per_agent(adv)
        terms, _, _ = alignment_terms(
            own, done, jnp.zeros((5, 2)), jnp.zeros(5, jnp.int32), "discounted", 0.96
        )
        return own + terms

    np.testing.assert_allclose(aligned(1.0), aligned(37.0), atol=1e-5)


# ---------------------------------------------------------------------- the signs
@pytest.mark.parametrize("past_sign", [1.0, -1.0])
@pytest.mark.parametrize("opponent_sign", [1.0, -1.0])
def test_sign_quadrants(past_sign, opponent_sign):
    """Two-step episode, tabular softmax: one SGD step on the AA term alone moves
    log π(a_1 | s_1) with the sign of Â¹_0 · Â²_1."""
    own = jnp.array([[[past_sign, 0.0]], [[0.0, opponent_sign]]])  # [T=2, E=1, agents 1, 2]
    terms, _, _ = alignment_terms(
        own,
        jnp.array([[False], [True]]),
        jnp.zeros((1, 2)),
        jnp.zeros(1, jnp.int32),
        "discounted",
        0.9,
    )
    term = terms[1, 0, 0]  # agent 1 at t = 1
    logits = jnp.zeros((2, 2))  # state x action table of agent 1; s_1 = 1, a_1 = 0

    def log_prob(table):
        return jax.nn.log_softmax(table[1])[0]

    def aa_loss(table):
        return -term * log_prob(table)

    stepped = logits - 0.1 * jax.grad(aa_loss)(logits)
    change = float(log_prob(stepped) - log_prob(logits))
    assert np.sign(change) == past_sign * opponent_sign


# ---------------------------------------------------------------------- β = 0
def test_beta_zero_proximal_equals_ppo_with_batch_normalisation():
    settings = {**SMALL, "update_epochs": 2, "num_minibatches": 2, "clip_value": True}
    ppo_config = PPOConfig(**settings, adv_norm="batch")
    # Every PPO key as PPO has it (AA's own defaults differ), so only AA's features differ.
    shared = {
        field.name: getattr(ppo_config, field.name)
        for field in dataclasses.fields(PPOConfig)
        if field.init and field.name != "adv_norm"
    }
    ppo = PPO(IPD, ppo_config)
    aa = AA(IPD, AAConfig(**shared, beta=0.0, proximal=True))
    key = jax.random.PRNGKey(7)
    ppo_state, ppo_metrics = jax.jit(ppo.update)(jax.jit(ppo.init)(key))
    aa_state, aa_metrics = jax.jit(aa.update)(jax.jit(aa.init)(key))
    assert_trees_equal(aa_state.params, ppo_state.params)
    assert_trees_equal(aa_state.opt_state, ppo_state.opt_state)
    for name in ("loss/total", "loss/policy", "loss/value", "entropy", "approx_kl"):
        np.testing.assert_array_equal(aa_metrics[name], ppo_metrics[name])


def test_beta_zero_policy_gradient_is_the_plain_policy_gradient():
    trainer = small_aa(beta=0.0)
    state = trainer.jit_init(jax.random.PRNGKey(8))
    (_, last_obs), trajectory = trainer._rollout(state, jax.random.PRNGKey(9))
    _, last_values = trainer.policy(state.params, last_obs)
    advantages, _ = gae(
        trajectory["reward"],
        trajectory["value"],
        jnp.broadcast_to(trajectory["done"][..., None], trajectory["reward"].shape),
        last_values,
        trainer.config.gamma,
        trainer.config.gae_lambda,
        trajectory["final_value"],
    )
    rows = {
        "obs": trajectory["obs"].reshape(-1, 5),
        "action": trajectory["action"].reshape(-1),
        "log_prob": trajectory["log_prob"].reshape(-1),
        "advantage": normalize_per_agent(advantages).reshape(-1),
    }

    def aa_policy_loss(params):
        logits, _ = trainer._apply_rows(params, rows["obs"], None)
        log_prob = jax.nn.log_softmax(logits)[jnp.arange(rows["action"].size), rows["action"]]
        return trainer._policy_loss(log_prob, rows)

    def reference(params):
        logits, _ = trainer._apply_rows(params, rows["obs"], None)
        log_prob = jax.nn.log_softmax(logits)[jnp.arange(rows["action"].size), rows["action"]]
        return -(rows["advantage"] * log_prob).mean()

    loss, grads = jax.value_and_grad(aa_policy_loss)(state.params)
    expected_loss, expected_grads = jax.value_and_grad(reference)(state.params)
    assert float(loss) == float(expected_loss)
    assert_trees_equal(grads, expected_grads)


def test_actor_loss_sends_no_gradient_to_the_critic():
    trainer = small_aa(beta=1.0, critic_lr=1e-2)
    state = trainer.jit_init(jax.random.PRNGKey(10))
    obs = jax.random.normal(jax.random.PRNGKey(11), (32, 5))
    rows = {
        "action": jax.random.randint(jax.random.PRNGKey(12), (32,), 0, 2),
        "advantage": jax.random.normal(jax.random.PRNGKey(13), (32,)),
    }

    def actor_loss(params):
        logits, _ = trainer._apply_rows(params, obs, None)
        log_prob = jax.nn.log_softmax(logits)[jnp.arange(32), rows["action"]]
        return trainer._policy_loss(log_prob, rows)

    grads = jax.grad(actor_loss)(state.params)["params"]
    critic = [name for name in grads if name in CRITIC_SUBTREES]
    assert critic, "the network has critic subtrees"
    for name in critic:
        jax.tree.map(lambda g: np.testing.assert_array_equal(g, 0.0), grads[name])
    assert any(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads["actor"]))


# ---------------------------------------------------------------------- trainer pieces
def test_update_carries_alignment_histories_and_counts_steps():
    trainer = small_aa()
    state, metrics = one_update(trainer)
    # 16 steps of 10-step episodes: the carried step count is 6 in every env.
    np.testing.assert_array_equal(state.alignment_steps, 6)
    assert state.alignment_past.shape == (4, 2)
    assert float(jnp.abs(state.alignment_past).sum()) > 0
    for outcome in ("CC", "CD", "DC", "DD", "START"):
        assert f"coop_given/{outcome}" in metrics
    assert float(metrics["aa/alignment_term"]) > 0


def test_fixed_co_player_gets_its_own_value_head():
    env = build_env({"name": "matrix_game", "game": "ipd", "max_steps": 10, "opponent": "alld"})
    trainer = small_aa(env, critic_lr=1e-2)
    state, metrics = one_update(trainer)
    _, values = trainer.policy(state.params, state.last_obs)
    assert values.shape == (4, 1, 2)  # [E, learner, (own, co-player)]
    assert state.alignment_past.shape == (4, 2)
    assert np.isfinite(float(metrics["loss/total"]))


def test_td1_critic_target_follows_by_polyak_averaging():
    trainer = small_aa(critic_target="td1", target_tau=0.25)
    state = trainer.jit_init(jax.random.PRNGKey(14))
    assert_trees_equal(state.target_params, state.params)
    new_state, _ = trainer.jit_update(state)
    expected = jax.tree.map(
        lambda old, new: 0.75 * old + 0.25 * new, state.target_params, new_state.params
    )
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        new_state.target_params,
        expected,
    )


def test_separated_actor_loss_adds_a_clipped_surrogate_on_the_term():
    trainer = small_aa(proximal=True, actor_loss_mode="separated", clip_eps=0.2)
    log_prob = jnp.log(jnp.array([0.5, 0.5, 0.5]))
    old_log_prob = jnp.log(jnp.array([0.5, 0.25, 0.5]))  # ratios 1, 2, 1
    rows = {
        "advantage": jnp.array([1.0, 1.0, -1.0]),
        "alignment": jnp.array([2.0, 3.0, 0.5]),
        "log_prob": old_log_prob,
    }
    # Surrogates -min(ρA, clip(ρ)A) per row; ρ = 2 is clipped to 1.2 for positive A.
    own = [-1.0, -1.2, 1.0]
    term = [-2.0, -1.2 * 3.0, -0.5]
    expected = (np.sum(own) + np.sum(term)) / 3
    assert float(trainer._policy_loss(log_prob, rows)) == pytest.approx(expected)


# ---------------------------------------------------------------------- agent buffer
def buffer_trainer(**overrides):
    public_goods = make("public_goods", num_agents=3, max_steps=8)
    return small_aa(
        public_goods,
        agent_buffer_size=2,
        agent_buffer_push_every=2,
        num_buffer_agents=1,
        **overrides,
    )


def test_buffer_pushes_every_period_and_wraps_around():
    trainer = buffer_trainer()
    state = trainer.jit_init(jax.random.PRNGKey(15))
    sizes, slots, pushed = [], [], []
    for _ in range(6):
        before = state.params
        state, _ = trainer.jit_update(state)
        sizes.append(int(state.buffer.size))
        slots.append(int(state.buffer.next_slot))
        pushed.append(before)
    # Pushes after updates 0, 2, 4 (update_step % 2 == 0): slots 0, 1, then 0 again.
    assert sizes == [1, 1, 2, 2, 2, 2]
    assert slots == [1, 1, 0, 0, 1, 1]
    newest = jax.tree.map(lambda ring: ring[0], state.buffer.snapshots)
    oldest = jax.tree.map(lambda ring: ring[1], state.buffer.snapshots)
    # Update 4 pushed the parameters it produced, i.e. those before update 5, into slot 0.
    assert_trees_equal(newest, pushed[5])
    assert_trees_equal(oldest, pushed[3])


def test_empty_buffer_means_no_buffer_agents():
    trainer = buffer_trainer()
    state = trainer.jit_init(jax.random.PRNGKey(16))
    _, from_buffer = trainer._buffer_policy(state, jax.random.PRNGKey(17))
    assert not bool(from_buffer.any())
    state, _ = trainer.jit_update(state)
    _, from_buffer = trainer._buffer_policy(state, jax.random.PRNGKey(17))
    np.testing.assert_array_equal(from_buffer.sum(axis=1), 1)  # one seat per env


def test_buffer_agents_get_zero_weight_in_the_loss():
    trainer = buffer_trainer()
    rows = {
        "advantage": jnp.array([1.0, 2.0, 3.0]),
        "weight": jnp.array([1.0, 0.0, 1.0]),
    }
    log_prob = jnp.array([-0.5, -0.7, -0.9])
    grad = jax.grad(lambda lp: trainer._policy_loss(lp, rows))(log_prob)
    assert float(grad[1]) == 0.0
    np.testing.assert_allclose(grad[jnp.array([0, 2])], [-0.5, -1.5])


# ---------------------------------------------------------------------- bad configs
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"update_epochs": 2}, "proximal=false takes one policy-gradient step"),
        ({"actor_loss_mode": "separated"}, "needs algo.proximal=true"),
        ({"aa_form": "sum"}, "algo.aa_form"),
        ({"critic_target": "td2"}, "algo.critic_target"),
        ({"aa_gamma": 1.5}, "algo.aa_gamma"),
        ({"target_tau": 0.0}, "algo.target_tau"),
        ({"agent_buffer_size": -1}, "algo.agent_buffer_size"),
    ],
)
def test_bad_configs_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        AA(IPD, AAConfig(**{**SMALL, **overrides}))


def test_env_dependent_checks():
    with pytest.raises(ConfigError, match="reward_mode=individual"):
        AA(IPD, AAConfig(**{**SMALL, "reward_mode": "collective"}))
    with pytest.raises(ConfigError, match="share_params=true"):
        AA(IPD, AAConfig(**{**SMALL, "share_params": False, "agent_buffer_size": 4}))
    with pytest.raises(ConfigError, match="num_buffer_agents must be below"):
        AA(IPD, AAConfig(**{**SMALL, "agent_buffer_size": 4, "num_buffer_agents": 2}))
