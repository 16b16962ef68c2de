"""`noisy_coordination`: reward tables by number of zeros, noise, expected rewards (spec §4)."""

import functools
import itertools
import math

import jax
import numpy as np
import pytest
from conftest import compose_config

from marl.envs import make
from marl.envs.noisy_coordination import NoisyCoordination, NoisyCoordinationState
from marl.run.experiment import build_env

# Spec §4: R by number of zeros z = 0..n.
SPEC_REWARD_BY_ZEROS = {
    2: [2, 0, 3],
    3: [2, 1, 0, 3],
    5: [2, 2, 1, 0, 3, 3],
    10: [2, 2, 2, 2, 1, 0, 0, 3, 3, 3, 3],
}
# Spec §4: expected reward per step when everybody plays 0 / everybody plays 1 (ε = 0.1).
SPEC_EXPECTED_REWARD = {
    2: (2.45, 1.65),
    3: (2.216, 1.704),
    5: (2.76464, 1.91136),
    10: (2.961770, 1.985597),
}
SAMPLES = 20_000  # per action pattern: all 0, all 1, uniform random
# acceptance.md §5 (a) 7: the one-shot rewards of `bn_coordination` with ε = 0, by joint action.
ACCEPTANCE_REWARDS = {
    2: {(0, 0): 3, (1, 1): 2, (0, 1): 0, (1, 0): 0},
    3: {
        (0, 0, 0): 3,
        **dict.fromkeys([(0, 0, 1), (0, 1, 0), (1, 0, 0)], 0),  # two zeros
        **dict.fromkeys([(0, 1, 1), (1, 0, 1), (1, 1, 0)], 1),  # one zero
        (1, 1, 1): 2,
    },
}


def spec_rule(num_zeros: int, num_agents: int, margin: int) -> int:
    """Spec §4's reward rule, written out independently of the env."""
    num_ones = num_agents - num_zeros
    if abs(num_zeros - num_ones) <= margin:
        return 1 if num_zeros < num_ones else 0
    return 3 if num_zeros > num_ones else 2


@functools.cache
def step_fn(env):
    """Jitted, vmapped `env.step` from hand-made states (bits `[B, n]`, step counter t `[B]`)."""

    def step(key, bits, t, actions):
        obs, next_state, reward, done, info = env.step(
            key, NoisyCoordinationState(bits=bits, t=t), actions
        )
        return {
            "obs": obs,
            "bits": next_state.bits,
            "t": next_state.t,
            "global_state": env.global_state(next_state),
            "reward": reward,
            "done": done,
            "info": info,
        }

    return jax.jit(jax.vmap(step))


def step_from(env, actions, seed=0):
    """One step of `env` for each row of `actions` `[B, n]` from random states and counters."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, actions.shape).astype(bool)
    t = rng.integers(0, env.max_steps, len(actions)).astype(np.int32)
    keys = jax.random.split(jax.random.key(seed), len(actions))
    return t, jax.device_get(step_fn(env)(keys, bits, t, actions))


@pytest.fixture(scope="module", params=sorted(SPEC_REWARD_BY_ZEROS))
def sampled(request):
    """One step of `noisy_coordination` (ε = 0.1) for SAMPLES all-0, all-1 and random actions."""
    num_agents = request.param
    env = NoisyCoordination(num_agents=num_agents)
    actions = np.concatenate(
        [
            np.zeros((SAMPLES, num_agents), np.int32),
            np.ones((SAMPLES, num_agents), np.int32),
            np.random.default_rng(num_agents).integers(0, 2, (SAMPLES, num_agents), dtype=np.int32),
        ]
    )
    t, out = step_from(env, actions, seed=num_agents)
    return env, actions, t, out


def test_reward_is_the_spec_table_of_the_number_of_zeros(sampled):
    env, _, _, out = sampled
    num_zeros = env.num_agents - out["bits"].sum(-1)
    assert set(num_zeros) == set(range(env.num_agents + 1))
    expected = np.array(SPEC_REWARD_BY_ZEROS[env.num_agents], np.float32)[num_zeros]
    assert out["reward"].dtype == np.float32
    np.testing.assert_array_equal(out["reward"], np.repeat(expected[:, None], env.num_agents, 1))


def test_spec_rule_with_the_default_margins_gives_the_spec_tables():
    spec_default_margins = {2: 1, 3: 1, 5: 2, 10: 3}
    for num_agents, table in SPEC_REWARD_BY_ZEROS.items():
        margin = spec_default_margins[num_agents]
        assert [spec_rule(z, num_agents, margin) for z in range(num_agents + 1)] == table


def test_exact_expected_rewards_from_the_table_match_the_spec():
    flip = 0.1
    for num_agents, (all_zero, all_one) in SPEC_EXPECTED_REWARD.items():
        table = np.array(SPEC_REWARD_BY_ZEROS[num_agents], float)
        zeros = np.arange(num_agents + 1)
        # all play 0: each bit stays 0 with probability 1 - ε
        kept = np.array(
            [math.comb(num_agents, z) * (1 - flip) ** z * flip ** (num_agents - z) for z in zeros]
        )
        np.testing.assert_allclose(kept @ table, all_zero, atol=1e-6)
        np.testing.assert_allclose(kept[::-1] @ table, all_one, atol=1e-6)


def test_monte_carlo_rewards_match_the_spec_expectations(sampled):
    env, _, _, out = sampled
    for pattern, expected in enumerate(SPEC_EXPECTED_REWARD[env.num_agents]):
        rewards = out["reward"][pattern * SAMPLES : (pattern + 1) * SAMPLES, 0].astype(np.float64)
        standard_error = rewards.std(ddof=1) / np.sqrt(SAMPLES)
        assert abs(rewards.mean() - expected) < 3 * standard_error


def test_each_bit_flips_with_probability_flip_prob(sampled):
    env, actions, _, out = sampled
    flipped = (out["bits"] != actions.astype(bool)).mean()
    assert abs(flipped - env.flip_prob) < 3 * np.sqrt(0.1 * 0.9 / actions.size)


def test_everybody_observes_the_state(sampled):
    env, actions, _, out = sampled
    num_agents = env.num_agents
    assert env.obs_shape == (num_agents,) and env.num_actions == 2
    assert out["obs"].shape == (len(actions), num_agents, num_agents)
    assert out["obs"].dtype == np.float32
    np.testing.assert_array_equal(out["obs"], np.repeat(out["bits"][:, None], num_agents, 1))
    np.testing.assert_array_equal(out["global_state"], out["bits"].astype(np.float32))


def test_reset_draws_the_state_uniformly_and_starts_the_counter():
    env = NoisyCoordination(num_agents=3)
    keys = jax.random.split(jax.random.key(7), SAMPLES)
    obs, state = jax.device_get(jax.jit(jax.vmap(env.reset))(keys))
    codes = state.bits @ (2 ** np.arange(3))
    counts = np.bincount(codes, minlength=8)
    assert np.all(np.abs(counts / SAMPLES - 1 / 8) < 3 * np.sqrt(1 / 8 * 7 / 8 / SAMPLES))
    np.testing.assert_array_equal(obs, np.repeat(state.bits[:, None], 3, 1))
    assert not state.t.any()


@pytest.mark.parametrize("init_p0, zero_bit", [(1, True), (1.0, True), (0, False), (0.0, False)])
def test_init_p0_one_starts_all_zeros_and_zero_starts_all_ones(init_p0, zero_bit):
    env = NoisyCoordination(num_agents=5, init_p0=init_p0)
    keys = jax.random.split(jax.random.key(3), 1_000)
    obs, state = jax.device_get(jax.jit(jax.vmap(env.reset))(keys))
    np.testing.assert_array_equal(state.bits, np.full((1_000, 5), not zero_bit))
    np.testing.assert_array_equal(obs, np.full((1_000, 5, 5), float(not zero_bit), np.float32))


def test_init_p0_is_the_frequency_of_zero_bits_at_reset():
    init_p0 = 0.25
    env = NoisyCoordination(num_agents=3, init_p0=init_p0)
    keys = jax.random.split(jax.random.key(11), SAMPLES)
    _, state = jax.device_get(jax.jit(jax.vmap(env.reset))(keys))
    zero_frequency = (~state.bits).mean()
    standard_error = np.sqrt(init_p0 * (1 - init_p0) / state.bits.size)
    assert abs(zero_frequency - init_p0) < 3 * standard_error, zero_frequency


@pytest.mark.parametrize("num_agents", sorted(ACCEPTANCE_REWARDS))
def test_noiseless_step_copies_the_action_and_pays_the_acceptance_rewards(num_agents):
    env = make("noisy_coordination", num_agents=num_agents, flip_prob=0.0, init_p0=1.0)
    actions = np.array(list(itertools.product([0, 1], repeat=num_agents)), np.int32)
    _, out = step_from(env, actions)
    np.testing.assert_array_equal(out["bits"], actions.astype(bool))
    expected = [ACCEPTANCE_REWARDS[num_agents][tuple(a)] for a in actions]
    np.testing.assert_array_equal(
        out["reward"], np.repeat(np.array(expected)[:, None], num_agents, 1)
    )


def test_integer_flip_prob_one_flips_every_bit():
    env = NoisyCoordination(num_agents=3, flip_prob=1)
    actions = np.array(list(itertools.product([0, 1], repeat=3)), np.int32)
    _, out = step_from(env, actions)
    np.testing.assert_array_equal(out["bits"], actions == 0)


def test_done_exactly_at_max_steps_and_optimal_action_flag(sampled):
    env, actions, t, out = sampled
    np.testing.assert_array_equal(out["t"], t + 1)
    np.testing.assert_array_equal(out["done"], t + 1 == env.max_steps)
    np.testing.assert_array_equal(out["info"]["optimal_joint_action"], (actions == 0).all(-1))


def test_noiseless_explicit_margin_for_other_numbers_of_agents():
    env = make("noisy_coordination", num_agents=4, margin=0, flip_prob=0.0, max_steps=3)
    actions = np.array(list(itertools.product([0, 1], repeat=4)), np.int32)
    _, out = step_from(env, actions)
    np.testing.assert_array_equal(out["bits"], actions.astype(bool))
    expected = [spec_rule(4 - a.sum(), 4, 0) for a in actions]
    np.testing.assert_array_equal(out["reward"][:, 0], expected)


def test_defaults():
    env = make("noisy_coordination")
    assert (env.num_agents, env.flip_prob, env.init_p0, env.max_steps) == (3, 0.1, 0.5, 25)


@pytest.mark.parametrize("config", ["noisy_coordination", "bn_coordination"])
def test_env_configs_build_the_default_game(config):
    env = build_env(compose_config([f"env={config}"]).env)
    assert env == NoisyCoordination()


@pytest.mark.parametrize(
    "params, named",
    [
        ({"num_agents": 4}, "margin"),
        ({"num_agents": 1, "margin": 0}, "num_agents"),
        ({"num_agents": 2.0}, "num_agents"),
        ({"margin": -1}, "margin"),
        ({"flip_prob": 1.5}, "flip_prob"),
        ({"flip_prob": -0.1}, "flip_prob"),
        ({"init_p0": 1.5}, "init_p0"),
        ({"init_p0": -0.1}, "init_p0"),
        ({"init_p0": True}, "init_p0"),
        ({"max_steps": 0}, "max_steps"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_them(params, named):
    with pytest.raises(ValueError, match=named):
        NoisyCoordination(**params)
