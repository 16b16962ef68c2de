import jax.numpy as jnp
import numpy as np

from marl.algos.gae import gae


def test_gae_hand_computed_with_done_in_the_middle():
    rewards = jnp.array([1.0, 2.0, 3.0])
    values = jnp.array([0.5, 1.0, 1.5])
    dones = jnp.array([False, True, False])
    last_value = jnp.array(2.0)
    gamma, lam = 0.9, 0.8
    advantages, returns = gae(rewards, values, dones, last_value, gamma, lam)
    # step 2 bootstraps from last_value; step 1 ends an episode; step 0 bootstraps from v_1.
    delta2 = 3.0 + gamma * 2.0 - 1.5
    delta1 = 2.0 - 1.0
    delta0 = 1.0 + gamma * 1.0 - 0.5
    expected = np.array([delta0 + gamma * lam * delta1, delta1, delta2])
    np.testing.assert_allclose(advantages, expected, atol=1e-6)
    np.testing.assert_allclose(returns, expected + np.array(values), atol=1e-6)


def test_gae_with_unit_gamma_lambda_is_return_to_go_minus_value():
    rewards = jnp.array([[1.0, -1.0], [2.0, 0.5], [0.5, 4.0], [3.0, 1.0]])
    values = jnp.array([[0.3, 0.1], [0.2, -0.4], [1.0, 2.0], [0.0, 0.7]])
    dones = jnp.zeros(4, bool)[:, None].repeat(2, axis=1)
    advantages, _ = gae(rewards, values, dones, jnp.zeros(2), 1.0, 1.0)
    return_to_go = np.cumsum(np.array(rewards)[::-1], axis=0)[::-1]
    np.testing.assert_allclose(advantages, return_to_go - np.array(values), atol=1e-6)
