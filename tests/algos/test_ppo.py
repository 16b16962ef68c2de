"""Unit checks of independent PPO (specs/algos/acceptance.md section 1a)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.algos.ppo import PPO, PPOConfig
from marl.config import ConfigError
from marl.envs import make
from marl.envs.wrappers import Wrapper
from marl.networks import ActorCritic

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
