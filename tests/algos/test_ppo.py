"""Unit checks of independent PPO (specs/algos/acceptance.md section 1a)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from marl.algos.ppo import PPO, PPOConfig
from marl.config import ConfigError
from marl.envs import make
from marl.envs.wrappers import Wrapper
from marl.networks import ActorCritic, critic_labels
from marl.run.experiment import build_env

SMALL = {
    "total_timesteps": 4 * 16 * 3,
    "num_envs": 4,
    "num_steps": 16,
    "num_minibatches": 2,
    "update_epochs": 2,
    "hidden_sizes": (8,),
}


IPD = make("matrix_game", game="ipd", max_steps=10)


def small_ppo(env=None, **overrides) -> PPO:
    return _cached_ppo(env if env is not None else IPD, tuple(sorted(overrides.items())))


@functools.cache
def _cached_ppo(env, overrides: tuple) -> PPO:
    """One trainer per setting, with its jitted functions, shared by every test that uses it."""
    trainer = PPO(env, PPOConfig(**{**SMALL, **dict(overrides)}))
    trainer.jit_init = jax.jit(trainer.init)
    trainer.jit_update = jax.jit(trainer.update)
    trainer.jit_loss = jax.jit(trainer._loss)
    trainer.jit_rollout = jax.jit(trainer._rollout)
    return trainer


@dataclasses.dataclass(frozen=True)
class ScaleAgentZeroReward(Wrapper):
    """Multiplies agent 0's reward (and so its losses) by `scale`."""

    scale: float = 1e6

    def step(self, key, state, actions):
        obs, state, reward, done, info = self.env.step(key, state, actions)
        return obs, state, reward.at[0].multiply(self.scale), done, info


def one_update(trainer: PPO, seed: int = 0):
    return trainer.jit_update(trainer.jit_init(jax.random.PRNGKey(seed)))


def test_agents_start_with_different_parameters():
    state = small_ppo().jit_init(jax.random.PRNGKey(0))
    leaves = jax.tree.leaves(state.params)
    assert all(leaf.shape[0] == 2 for leaf in leaves)
    assert any(not np.array_equal(leaf[0], leaf[1]) for leaf in leaves if leaf[0].any())


def test_scaling_agent_zero_loss_leaves_agent_one_untouched():
    plain, _ = one_update(small_ppo())
    scaled, _ = one_update(small_ppo(ScaleAgentZeroReward(IPD)))
    for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(scaled.params), strict=True):
        np.testing.assert_array_equal(a[1], b[1])
    assert any(
        not np.array_equal(a[0], b[0])
        for a, b in zip(jax.tree.leaves(plain.opt_state), jax.tree.leaves(scaled.opt_state))
    )


def test_shared_parameters_take_one_hot_agent_ids():
    trainer = small_ppo(share_params=True)
    state = trainer.jit_init(jax.random.PRNGKey(1))
    first_kernel = state.params["params"]["actor"]["Dense_0"]["kernel"]
    assert first_kernel.shape[0] == 5 + 2  # observation width + one id per agent
    without_id = small_ppo(share_params=True, agent_id=False).jit_init(jax.random.PRNGKey(1))
    assert without_id.params["params"]["actor"]["Dense_0"]["kernel"].shape[0] == 5


def test_swapping_agent_ids_swaps_outputs_for_equal_observations():
    trainer = small_ppo(share_params=True)
    params = trainer.jit_init(jax.random.PRNGKey(2)).params
    obs = jnp.zeros((3, 5)).at[:, 2].set(1.0)
    ids = jnp.eye(2)
    logits_0, value_0 = trainer.network.apply(params, obs, jnp.broadcast_to(ids[0], (3, 2)))
    logits_1, value_1 = trainer.network.apply(params, obs, jnp.broadcast_to(ids[1], (3, 2)))
    both_logits, both_values = trainer.policy(params, jnp.broadcast_to(obs[:, None], (3, 2, 5)))
    np.testing.assert_allclose(both_logits[:, 0], logits_0, atol=1e-6)
    np.testing.assert_allclose(both_logits[:, 1], logits_1, atol=1e-6)
    np.testing.assert_allclose(both_values[:, 1], value_1, atol=1e-6)
    assert not np.allclose(logits_0, logits_1)
    assert not np.allclose(value_0, value_1)


@functools.cache
def agent_zero_params():
    """Agent 0's initial parameters (the network is the same for every loss setting below)."""
    return jax.tree.map(lambda leaf: leaf[0], small_ppo().jit_init(jax.random.PRNGKey(3)).params)


apply_network = jax.jit(small_ppo().network.apply)


def loss_parts(trainer: PPO, **minibatch_overrides):
    params = agent_zero_params()
    obs = jnp.eye(5)[jnp.array([0, 1, 2, 3, 4, 0])]
    logits, value = apply_network(params, obs)
    actions = jnp.array([0, 1, 0, 1, 1, 0])
    log_prob = jax.nn.log_softmax(logits)[jnp.arange(6), actions]
    minibatch = {
        "obs": obs,
        "action": actions,
        "log_prob": log_prob,
        "value": value,
        "advantage": jnp.array([1.0, -2.0, 0.5, 3.0, -1.0, 0.0]),
        "return": value + 1.0,
    }
    minibatch.update(minibatch_overrides)
    _, parts = trainer.jit_loss(params, minibatch, 0.0)
    return parts, minibatch


def test_policy_loss_at_ratio_one_is_minus_mean_advantage():
    parts, minibatch = loss_parts(small_ppo(adv_norm="none"))
    np.testing.assert_allclose(parts["loss/policy"], -minibatch["advantage"].mean(), atol=1e-6)
    np.testing.assert_allclose(parts["approx_kl"], 0.0, atol=1e-6)
    normalised, minibatch = loss_parts(small_ppo(adv_norm="minibatch"))
    np.testing.assert_allclose(normalised["loss/policy"], 0.0, atol=1e-6)


def test_value_clip_on_and_off():
    # Current values sit 1.0 above the stored ones and the targets 2.0 above: the clipped value
    # can move only clip_eps = 0.2, so its error (1.8) dominates the unclipped one (1.0).
    trainer_clip = small_ppo(clip_value=True)
    obs = jnp.eye(5)
    _, value = apply_network(agent_zero_params(), obs)
    overrides = {
        "obs": obs,
        "action": jnp.zeros(5, jnp.int32),
        "advantage": jnp.zeros(5),
        "value": value - 1.0,
        "return": value + 1.0,
    }
    clipped, _ = loss_parts(trainer_clip, **overrides, log_prob=jnp.zeros(5))
    unclipped, _ = loss_parts(small_ppo(clip_value=False), **overrides, log_prob=jnp.zeros(5))
    np.testing.assert_allclose(unclipped["loss/value"], 0.5 * 1.0, atol=1e-5)
    np.testing.assert_allclose(clipped["loss/value"], 0.5 * 1.8**2, atol=1e-5)


def test_entropy_of_equal_logits_is_log_num_actions():
    trainer = small_ppo()
    params = jax.tree.map(jnp.zeros_like, agent_zero_params())
    parts, _ = loss_parts(trainer)
    _, uniform_parts = trainer.jit_loss(
        params,
        {
            "obs": jnp.eye(5),
            "action": jnp.zeros(5, jnp.int32),
            "log_prob": jnp.log(jnp.full(5, 0.5)),
            "value": jnp.zeros(5),
            "advantage": jnp.zeros(5),
            "return": jnp.zeros(5),
        },
        0.0,
    )
    np.testing.assert_allclose(uniform_parts["entropy"], np.log(2), atol=1e-6)
    assert parts["entropy"] < np.log(2)


def test_learning_rate_and_entropy_schedules():
    trainer = small_ppo(lr=0.1, anneal_lr=True, ent_coef=0.2, ent_coef_final=0.02)
    steps_per_update = SMALL["update_epochs"] * SMALL["num_minibatches"]
    assert trainer.num_updates == 3
    np.testing.assert_allclose(trainer._learning_rate(jnp.int32(0)), 0.1, rtol=1e-6)
    np.testing.assert_allclose(
        trainer._learning_rate(jnp.int32(steps_per_update - 1)), 0.1, rtol=1e-6
    )
    np.testing.assert_allclose(
        trainer._learning_rate(jnp.int32(steps_per_update)), 0.1 * 2 / 3, rtol=1e-6
    )
    # Past the last update the annealed rate stays at 0 instead of turning negative.
    assert float(trainer._learning_rate(jnp.int32(5 * steps_per_update))) == 0.0
    np.testing.assert_allclose(trainer.entropy_coef(jnp.int32(0)), 0.2, rtol=1e-6)
    np.testing.assert_allclose(trainer.entropy_coef(jnp.int32(1)), 0.11, rtol=1e-6)
    np.testing.assert_allclose(trainer.entropy_coef(jnp.int32(2)), 0.02, rtol=1e-6)
    constant = small_ppo(lr=0.1, anneal_lr=False)
    np.testing.assert_allclose(constant._learning_rate(jnp.int32(5)), 0.1, rtol=1e-6)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_minibatches": 7}, "num_minibatches"),
        ({"total_timesteps": 10}, "total_timesteps"),
        ({"adv_norm": "sometimes"}, "adv_norm"),
        ({"reward_mode": "selfish"}, "reward_mode"),
        ({"gamma": 1.5}, "gamma"),
        ({"encoder": "cnn"}, "encoder"),
        ({"cnn_channels": (8, 8), "cnn_kernel_sizes": (3,)}, "same length"),
        ({"cnn_channels": ()}, "cnn_channels must be a non-empty list"),
        ({"cnn_kernel_sizes": (3, 0, 3)}, "cnn_kernel_sizes must be a non-empty list"),
        ({"cnn_dense_size": 0}, "cnn_dense_size"),
    ],
)
def test_bad_settings_raise_at_construction(overrides, message):
    with pytest.raises(ConfigError, match=message):
        small_ppo(**overrides)


def test_cnn_layers_follow_the_config():
    network = ActorCritic(
        num_actions=9, encoder="cnn", cnn_channels=(6, 4), cnn_kernel_sizes=(3, 5), cnn_dense_size=7
    )
    params = network.init(jax.random.PRNGKey(0), jnp.zeros((1, 9, 9, 3)))["params"]["cnn"]
    assert params["Conv_0"]["kernel"].shape == (3, 3, 3, 6)
    assert params["Conv_1"]["kernel"].shape == (5, 5, 6, 4)
    assert params["Dense_0"]["kernel"].shape == (9 * 9 * 4, 7)
    assert "Conv_2" not in params


def test_collective_reward_trains_on_the_sum_and_logs_individual_returns():
    trainer = small_ppo(reward_mode="collective", num_steps=10, total_timesteps=40)
    state = trainer.jit_init(jax.random.PRNGKey(4))
    _, trajectory = trainer.jit_rollout(state, jax.random.PRNGKey(5))
    rewards = trajectory["reward"]
    individual = trajectory["info"]["individual_reward"]
    np.testing.assert_allclose(rewards[..., 0], individual.sum(-1))
    np.testing.assert_allclose(rewards[..., 1], individual.sum(-1))
    last = trajectory["done"]
    assert last[-1].all()
    np.testing.assert_allclose(
        trajectory["info"]["episode_return"][-1], individual.sum(0), atol=1e-5
    )


def test_same_seed_same_metrics_and_vmapped_seeds_equal_separate_runs():
    trainer = small_ppo()
    update, init = trainer.jit_update, trainer.jit_init
    separate = [update(init(jax.random.PRNGKey(s)))[1] for s in (7, 8)]
    again = update(init(jax.random.PRNGKey(7)))[1]
    for key in separate[0]:
        np.testing.assert_array_equal(separate[0][key], again[key])
    keys = jnp.stack([jax.random.PRNGKey(7), jax.random.PRNGKey(8)])
    _, vmapped = jax.jit(jax.vmap(trainer.update))(jax.jit(jax.vmap(trainer.init))(keys))
    for key in separate[0]:
        for seed in range(2):
            np.testing.assert_allclose(vmapped[key][seed], separate[seed][key], atol=1e-6)


def test_first_minibatch_has_unit_ratio():
    trainer = small_ppo(adv_norm="none")
    state = trainer.jit_init(jax.random.PRNGKey(9))
    _, trajectory = trainer.jit_rollout(state, jax.random.PRNGKey(10))
    params0 = jax.tree.map(lambda leaf: leaf[0], state.params)
    rows = {
        "obs": trajectory["obs"][:, :, 0].reshape(-1, 5),
        "action": trajectory["action"][:, :, 0].reshape(-1),
        "log_prob": trajectory["log_prob"][:, :, 0].reshape(-1),
        "value": trajectory["value"][:, :, 0].reshape(-1),
        "advantage": jnp.ones(64),
        "return": trajectory["value"][:, :, 0].reshape(-1),
    }
    _, parts = trainer.jit_loss(params0, rows, 0.0)
    np.testing.assert_allclose(parts["approx_kl"], 0.0, atol=1e-6)
    np.testing.assert_allclose(parts["loss/policy"], -1.0, atol=1e-6)


# --- critic_lr, target_kl, bootstrap_time_limits, num_values (ppo.md §3 items 6-7) ------------

TINY_CNN = {"cnn_channels": (4,), "cnn_kernel_sizes": (3,), "cnn_dense_size": 8}
COIN_GAME_GRID = make("coin_game", cnn=True)  # observations (3, 3, 4): the CNN encoder


def adam_counts(opt_state) -> list[np.ndarray]:
    """The step counts of every Adam state in an optimiser state (one per chain)."""

    def is_adam(node) -> bool:
        return isinstance(node, optax.ScaleByAdamState)

    return [np.asarray(s.count) for s in jax.tree.leaves(opt_state, is_leaf=is_adam) if is_adam(s)]


@functools.cache
def learn_rows() -> dict[str, jax.Array]:
    """16 rows of IPD observations with agent_zero_params()'s own log-probabilities and values
    (so the first minibatch has ratio 1), nonzero advantages and returns away from the values."""
    obs = jnp.eye(5)[jnp.arange(16) % 5]
    logits, value = apply_network(agent_zero_params(), obs)
    action = jnp.arange(16, dtype=jnp.int32) % 2
    return {
        "obs": obs,
        "action": action,
        "log_prob": jax.nn.log_softmax(logits)[jnp.arange(16), action],
        "value": value,
        "advantage": jnp.linspace(-2.0, 3.0, 16),
        "return": value + jnp.linspace(1.0, -1.0, 16),
    }


@functools.cache
def loss_gradients():
    """Gradients of the PPO loss on learn_rows() at agent_zero_params() (no optimiser involved)."""
    grad_fn = jax.jit(jax.grad(small_ppo()._loss, has_aux=True))
    return grad_fn(agent_zero_params(), learn_rows(), 0.0)[0]


@functools.cache
def jitted_update(optimizer: optax.GradientTransformation):
    return jax.jit(optimizer.update)


def optimizer_step(trainer: PPO, grads):
    """Parameters after one step of the trainer's optimiser from agent_zero_params()."""
    params = agent_zero_params()
    updates, _ = jitted_update(trainer.optimizer)(grads, trainer.optimizer.init(params), params)
    return optax.apply_updates(params, updates)


def learned_once(**overrides):
    """One learner's epochs (`_learn_one`, 2 epochs x 2 minibatches of 8 rows) on learn_rows()
    from agent_zero_params(): (params, opt_state, metrics)."""
    trainer = small_ppo(**overrides)
    params = agent_zero_params()
    learn = jax.jit(trainer._learn_one)
    return learn(params, trainer.optimizer.init(params), learn_rows(), 0.0, jax.random.PRNGKey(0))


def max_change_per_subtree(before, after) -> dict[str, float]:
    """Largest absolute parameter change in each top-level subtree of the parameters."""
    return {
        name: max(
            float(jnp.abs(a - b).max())
            for a, b in zip(jax.tree.leaves(sub), jax.tree.leaves(after["params"][name]))
        )
        for name, sub in before["params"].items()
    }


def test_critic_lr_gives_the_cnn_critic_its_own_trunk():
    shared = PPO(COIN_GAME_GRID, PPOConfig(**SMALL, **TINY_CNN))
    separate = PPO(COIN_GAME_GRID, PPOConfig(**SMALL, **TINY_CNN, critic_lr=1e-3))
    key = jax.random.PRNGKey(0)
    assert set(jax.eval_shape(shared.init, key).params["params"]) == {
        "cnn",
        "actor",
        "critic",
        "Dense_0",
        "Dense_1",
    }
    state = jax.eval_shape(separate.init, key)
    assert set(state.params["params"]) == {
        "cnn",
        "critic_cnn",
        "actor",
        "critic",
        "Dense_0",
        "Dense_1",
    }
    assert state.params["params"]["critic_cnn"]["Conv_0"]["kernel"].shape == (2, 3, 3, 4, 4)
    assert isinstance(state.opt_state, optax.MultiTransformState)
    assert set(state.opt_state.inner_states) == {"actor", "critic"}
    new_state, _ = jax.eval_shape(separate.update, state)  # the whole update traces
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


def random_params(params_shape, seed: int = 0):
    """Normal(0, 0.5) parameters of the given shapes (drawn by numpy: nothing to compile)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda leaf: jnp.asarray(0.5 * rng.standard_normal(leaf.shape), jnp.float32), params_shape
    )


def test_separate_cnn_trunks_feed_only_their_own_head():
    network = ActorCritic(num_actions=5, encoder="cnn", separate_critic_encoder=True, **TINY_CNN)
    obs = jax.random.uniform(jax.random.PRNGKey(1), (3, 3, 3, 4))
    params = random_params(jax.eval_shape(network.init, jax.random.PRNGKey(0), obs))
    apply = jax.jit(network.apply)
    logits, value = apply(params, obs)

    def perturbed(subtree):
        inner = dict(params["params"])
        inner[subtree] = jax.tree.map(lambda x: x + 0.5, inner[subtree])
        return apply({"params": inner}, obs)

    critic_logits, critic_value = perturbed("critic_cnn")
    np.testing.assert_array_equal(critic_logits, logits)
    assert not np.allclose(critic_value, value)
    actor_logits, actor_value = perturbed("cnn")
    np.testing.assert_array_equal(actor_value, value)
    assert not np.allclose(actor_logits, logits)


def test_critic_labels_mark_exactly_the_critic_trunks_and_the_value_head():
    trainer = PPO(COIN_GAME_GRID, PPOConfig(**SMALL, **TINY_CNN, critic_lr=1e-3))
    params = jax.eval_shape(trainer.init, jax.random.PRNGKey(0)).params  # stacked over agents
    labels = critic_labels(params)
    assert jax.tree.structure(labels) == jax.tree.structure(params)
    assert {name: set(jax.tree.leaves(sub)) for name, sub in labels["params"].items()} == {
        "cnn": {"actor"},
        "actor": {"actor"},
        "Dense_0": {"actor"},
        "critic_cnn": {"critic"},
        "critic": {"critic"},
        "Dense_1": {"critic"},
    }
    # Dense_1 is the value head (one output), Dense_0 the policy head (one logit per action)
    assert params["params"]["Dense_1"]["kernel"].shape[-1] == 1
    assert params["params"]["Dense_0"]["kernel"].shape[-1] == COIN_GAME_GRID.num_actions


@pytest.mark.parametrize("frozen", ["actor", "critic"])
def test_critic_lr_steps_actor_and_critic_with_their_own_learning_rates(frozen):
    tiny, normal = 1e-12, 1e-2
    lrs = (
        {"lr": tiny, "critic_lr": normal}
        if frozen == "actor"
        else {"lr": normal, "critic_lr": tiny}
    )
    trainer = small_ppo(**lrs)
    assert [int(c) for c in adam_counts(trainer.optimizer.init(agent_zero_params()))] == [0, 0]
    change = max_change_per_subtree(agent_zero_params(), optimizer_step(trainer, loss_gradients()))
    assert set(change) == {"actor", "Dense_0", "critic", "Dense_1"}
    for name, amount in change.items():
        if (name in ("critic", "Dense_1")) == (frozen == "critic"):
            assert amount < 1e-9, (name, amount)
        else:  # Adam's first step moves a parameter by at most about lr
            assert 0.5 * normal < amount < 1.001 * normal, (name, amount)


def test_critic_lr_chains_clip_actor_and_critic_gradients_separately():
    # Actor gradients 1e8 times too large: one global clip would shrink the critic's gradients
    # below Adam's eps (so it barely moves); with critic_lr each chain clips its own norm.
    params = agent_zero_params()
    grads = jax.tree.map(
        lambda x, label: jnp.full_like(x, 1e7 if label == "actor" else 0.1),
        params,
        critic_labels(params),
    )
    separate = optimizer_step(small_ppo(lr=1e-12, critic_lr=1e-2), grads)
    single = optimizer_step(small_ppo(lr=1e-2), grads)
    np.testing.assert_allclose(max_change_per_subtree(params, single)["actor"], 1e-2, rtol=1e-3)
    np.testing.assert_allclose(max_change_per_subtree(params, separate)["Dense_1"], 1e-2, rtol=1e-3)
    assert max_change_per_subtree(params, single)["Dense_1"] < 1e-4


def test_without_critic_lr_the_optimizer_is_the_single_clip_adam_chain():
    trainer = small_ppo(lr=1e-2)
    params = agent_zero_params()
    reference = optax.chain(
        optax.clip_by_global_norm(trainer.config.max_grad_norm),
        optax.adam(trainer._learning_rate, eps=1e-5),
    )
    state = trainer.optimizer.init(params)
    assert jax.tree.structure(state) == jax.tree.structure(reference.init(params))
    assert [int(c) for c in adam_counts(state)] == [0]
    got, _ = jitted_update(trainer.optimizer)(loss_gradients(), state, params)
    want, _ = jax.jit(reference.update)(loss_gradients(), reference.init(params), params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("target_kl", "steps"), [(1e-5, 1), (1e6, 4)])
def test_target_kl_skips_the_rest_of_an_update_once_exceeded(target_kl, steps):
    # The first minibatch has ratio 1 (approx-KL 0 up to float rounding, hence 1e-5 and not
    # 1e-12), so its step is always taken; at lr=1 that step moves the policy far enough that
    # the next minibatch's approx-KL exceeds 1e-5, and it and the two after it are skipped.
    params, opt_state, metrics = learned_once(lr=1.0, target_kl=target_kl)
    assert [int(c) for c in adam_counts(opt_state)] == [steps]
    change = max_change_per_subtree(agent_zero_params(), params)
    assert min(change.values()) > 0.1  # the first step was applied
    # the mean over the 4 minibatch steps of "this step was skipped"
    np.testing.assert_allclose(metrics["kl_stopped"], (4 - steps) / 4)


def test_without_target_kl_every_step_is_taken_and_kl_stopped_is_not_logged():
    state, metrics = one_update(small_ppo())
    np.testing.assert_array_equal(adam_counts(state.opt_state), [[4, 4]])  # both agents
    assert "kl_stopped" not in metrics and "approx_kl" in metrics


SHORT_IPD = build_env({"name": "matrix_game", "game": "ipd", "max_steps": 3})


def test_bootstrap_time_limits_stores_the_value_of_the_pre_reset_observation():
    trainer = small_ppo(SHORT_IPD, bootstrap_time_limits=True, num_steps=6, total_timesteps=24)
    # A fresh IPD state from the already compiled trainer fits: same network and optimiser, the
    # same env state (the episode length is not part of it) and the same info totals.
    state = small_ppo().jit_init(jax.random.PRNGKey(11))
    assert jax.tree.structure(state) == jax.tree.structure(
        jax.eval_shape(trainer.init, jax.random.PRNGKey(11))
    )
    # env 0 one step ahead of the others, so that the envs finish their episodes on different steps
    inner = state.env_state.env_state
    inner = inner.replace(t=inner.t.at[0].set(1))
    state = state.replace(env_state=state.env_state.replace(env_state=inner))
    (_, last_obs), trajectory = trainer.jit_rollout(state, jax.random.PRNGKey(12))
    done = np.asarray(trajectory["done"])  # [T, E]
    np.testing.assert_array_equal(done[:, 0], [0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(done[:, 1:], np.array([[0, 0, 1, 0, 0, 1]] * 3).T)
    final_value = np.asarray(trajectory["final_value"])
    assert final_value.shape == (6, 4, 2)
    np.testing.assert_array_equal(final_value[~done], 0.0)
    # the observation the episode ended on: the last joint action, before the reset to START
    final_obs = jnp.asarray(SHORT_IPD.observation_table)[trajectory["info"]["joint_action"]]
    policy = jax.jit(trainer.policy)
    _, expected = policy(state.params, final_obs.reshape(24, 2, 5))
    expected = np.asarray(expected).reshape(6, 4, 2)
    np.testing.assert_allclose(final_value[done], expected[done], atol=1e-6)
    start_value = np.asarray(trajectory["value"])[1:][done[:-1]]  # value of the reset observation
    assert not np.allclose(final_value[:-1][done[:-1]], start_value)
    assert "final_obs" not in trajectory["info"]
    assert "final_obs" not in trajectory["info"]["episode_totals"]
    # GAE bootstraps the cut episodes from final_value and still stops at the done
    _, last_values = policy(state.params, last_obs)
    advantages, _ = jax.jit(trainer._gae)(
        trajectory["reward"],
        trajectory["value"],
        trajectory["done"],
        last_values,
        trajectory["final_value"],
    )
    one_step = trajectory["reward"] + trainer.config.gamma * final_value - trajectory["value"]
    np.testing.assert_allclose(np.asarray(advantages)[done], np.asarray(one_step)[done], atol=1e-5)


def test_without_bootstrap_time_limits_the_trajectory_has_no_final_value():
    trainer = small_ppo(reward_mode="collective", num_steps=10, total_timesteps=40)
    state = trainer.jit_init(jax.random.PRNGKey(4))
    _, trajectory = trainer.jit_rollout(state, jax.random.PRNGKey(5))
    assert "final_value" not in trajectory and "final_obs" not in trajectory["info"]


class ThreeValuePPO(PPO):
    num_values = 3


def test_value_head_with_several_outputs():
    network = ActorCritic(num_actions=2, hidden_sizes=(8,), num_values=3)
    obs = jnp.eye(5)[:4]
    params = random_params(jax.eval_shape(network.init, jax.random.PRNGKey(0), obs))
    assert params["params"]["Dense_1"]["kernel"].shape == (8, 3)
    logits, values = jax.jit(network.apply)(params, obs)
    assert logits.shape == (4, 2) and values.shape == (4, 3)
    assert not np.allclose(values[:, 0], values[:, 1])
    # one output keeps the value `[B]`: the same network with only the first value unit
    single = ActorCritic(num_actions=2, hidden_sizes=(8,))
    first = dict(params["params"])
    first["Dense_1"] = {
        "kernel": first["Dense_1"]["kernel"][:, :1],
        "bias": first["Dense_1"]["bias"][:1],
    }
    single_logits, single_values = jax.jit(single.apply)({"params": first}, obs)
    assert single_values.shape == (4,)
    np.testing.assert_allclose(single_values, values[:, 0], atol=1e-6)
    np.testing.assert_allclose(single_logits, logits, atol=1e-6)


@pytest.mark.parametrize("share_params", [False, True])
def test_policy_gives_every_agent_its_values(share_params):
    trainer = ThreeValuePPO(IPD, PPOConfig(**SMALL, share_params=share_params))
    params = random_params(jax.eval_shape(trainer.init, jax.random.PRNGKey(0)).params)
    obs = jnp.eye(5)[jnp.array([[0, 1], [2, 3], [4, 0]])]  # [B=3, N=2, 5]
    logits, values = jax.jit(trainer.policy)(params, obs)
    assert logits.shape == (3, 2, 2) and values.shape == (3, 2, 3)
    for n in range(2):
        if share_params:
            agent_params, agent_id = params, jnp.broadcast_to(jnp.eye(2)[n], (3, 2))
        else:
            agent_params, agent_id = jax.tree.map(lambda x, n=n: x[n], params), None
        want_logits, want_values = jax.jit(trainer.network.apply)(agent_params, obs[:, n], agent_id)
        np.testing.assert_allclose(values[:, n], want_values, atol=1e-6)
        np.testing.assert_allclose(logits[:, n], want_logits, atol=1e-6)
    assert not np.allclose(values[:, 0], values[:, 1])
