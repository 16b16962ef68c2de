"""The value-learning pieces on hand-computed inputs: n-step double-DQN targets, the replay ring,
exploration schedules and policies (specs/algos/dqn.md §2-4, §7)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.algos.exploration import (
    boltzmann,
    boltzmann_logits,
    epsilon_greedy,
    linear_schedule,
    mean_of_linear_schedule,
)
from marl.algos.q_learning import double_q_value, n_step_targets
from marl.algos.replay import add_step, init_buffer, sample_windows

GAMMA = 0.9


def test_n_step_target_without_done_bootstraps_after_n_steps():
    rewards = jnp.array([[1.0, 2.0, 3.0]])
    dones = jnp.zeros((1, 3), bool)
    target = n_step_targets(rewards, dones, jnp.array([10.0]), GAMMA)
    expected = 1 + GAMMA * 2 + GAMMA**2 * 3 + GAMMA**3 * 10
    np.testing.assert_allclose(target, [expected], rtol=1e-6)


@pytest.mark.parametrize(
    ("dones", "expected"),
    [
        ([True, False, False], 1.0),  # episode ends on the first step: r_t only
        ([False, True, False], 1 + GAMMA * 2),
        ([False, False, True], 1 + GAMMA * 2 + GAMMA**2 * 3),
        ([False, True, True], 1 + GAMMA * 2),  # rewards after the first done are ignored
    ],
)
def test_n_step_target_is_truncated_at_the_first_done(dones, expected):
    target = n_step_targets(
        jnp.array([[1.0, 2.0, 3.0]]), jnp.array([dones]), jnp.array([100.0]), GAMMA
    )
    np.testing.assert_allclose(target, [expected], rtol=1e-6)


def test_double_q_takes_the_target_value_of_the_online_argmax():
    online = jnp.array([[1.0, 5.0, 2.0], [0.0, -1.0, 3.0]])
    target = jnp.array([[7.0, -4.0, 9.0], [1.0, 2.0, 6.0]])
    value = double_q_value(jax.random.PRNGKey(0), online, target)
    np.testing.assert_array_equal(value, [-4.0, 6.0])  # not max(target) = 9, 6


def test_double_q_breaks_online_ties_uniformly():
    online = jnp.zeros((4000, 2))
    target = jnp.broadcast_to(jnp.array([0.0, 1.0]), (4000, 2))
    picks = double_q_value(jax.random.PRNGKey(1), online, target)
    assert set(np.unique(picks)) == {0.0, 1.0}
    assert abs(float(picks.mean()) - 0.5) < 0.05


def _filled_buffer(capacity: int, steps: int, num_envs: int = 2, num_agents: int = 3):
    """A buffer after `steps` writes where every entry encodes its time: obs = reward = t."""
    shape = (num_envs, num_agents)
    buffer = init_buffer(capacity, jnp.zeros((*shape, 1), jnp.float32))
    for t in range(steps):
        buffer = add_step(
            buffer,
            jnp.full((*shape, 1), t, jnp.float32),
            jnp.full(shape, t % 5, jnp.int32),
            jnp.full(shape, float(t)),
            jnp.full((num_envs,), t % 4 == 3),
            jnp.full((*shape, 1), t + 1, jnp.float32),
        )
    return buffer


def test_buffer_wraps_around_and_keeps_the_newest_steps():
    buffer = _filled_buffer(capacity=5, steps=7)
    assert int(buffer.count) == 5 and int(buffer.pointer) == 2
    # Slots 0, 1 were overwritten by steps 5, 6; slots 2..4 still hold steps 2..4.
    np.testing.assert_array_equal(buffer.reward[:, 0, 0], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.newest_obs[..., 0], 7)


@pytest.mark.parametrize(("capacity", "steps"), [(5, 3), (5, 5), (5, 12), (8, 21)])
def test_sampled_windows_are_consecutive_and_never_cross_the_write_pointer(capacity, steps):
    n = 3
    buffer = _filled_buffer(capacity, steps)
    windows = sample_windows(buffer, jax.random.PRNGKey(steps), 512, jnp.array([0, 2]), n)
    start = np.asarray(windows.obs[:, 0])
    oldest = max(steps - capacity, 0)
    assert start.min() >= oldest and start.max() <= steps - n
    # Every window holds n consecutive steps of the newest `capacity` steps.
    np.testing.assert_array_equal(windows.rewards, start[:, None] + np.arange(n))
    np.testing.assert_array_equal(windows.dones, (start[:, None] + np.arange(n)) % 4 == 3)
    np.testing.assert_array_equal(windows.action, start.astype(int) % 5)
    # The observation n steps later, from the ring or (for the newest window) the newest obs.
    np.testing.assert_array_equal(windows.bootstrap_obs[:, 0], start + n)
    assert set(np.unique(windows.agent)) <= {0, 2}
    # All complete windows are drawn.
    assert len(np.unique(start)) == steps - n + 1 - oldest


def test_linear_schedules_at_chosen_steps():
    values = [float(linear_schedule(1.0, 0.05, 100, jnp.array(t))) for t in (0, 50, 100, 1000)]
    np.testing.assert_allclose(values, [1.0, 0.525, 0.05, 0.05], rtol=1e-6)


def test_mean_of_linear_schedule_is_the_mean_temperature_over_the_first_half():
    tau = [float(linear_schedule(0.46, 0.1, 1000, jnp.array(t))) for t in range(500)]
    np.testing.assert_allclose(mean_of_linear_schedule(0.46, 0.1, 1000, 500), np.mean(tau), 1e-6)


def test_boltzmann_probabilities():
    q = jnp.array([[1.0, 2.0, 4.0]])
    probabilities = jax.nn.softmax(boltzmann_logits(q, 0.5))
    expected = np.exp(np.array([1.0, 2.0, 4.0]) / 0.5)
    np.testing.assert_allclose(probabilities[0], expected / expected.sum(), rtol=1e-5)
    # A zero temperature is greedy, not NaN.
    greedy = jax.nn.softmax(boltzmann_logits(q, 0.0))
    np.testing.assert_allclose(greedy[0], [0.0, 0.0, 1.0], atol=1e-6)
    counts = np.bincount(
        np.asarray(boltzmann(jax.random.PRNGKey(0), jnp.tile(q, (20000, 1)), 0.5)), minlength=3
    )
    np.testing.assert_allclose(counts / counts.sum(), probabilities[0], atol=0.02)


def test_epsilon_greedy_explores_at_rate_epsilon():
    q = jnp.tile(jnp.array([[0.0, 1.0, 0.0, 0.0]]), (20000, 1))
    for epsilon in (0.0, 0.2, 1.0):
        actions = np.asarray(epsilon_greedy(jax.random.PRNGKey(3), q, epsilon))
        # Random actions land on the greedy one a quarter of the time.
        np.testing.assert_allclose((actions != 1).mean(), epsilon * 0.75, atol=0.015)
