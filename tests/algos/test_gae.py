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


def test_gae_bootstraps_time_limit_cuts_from_final_values():
    # two columns: a cut in the middle (t=1) and a cut on the last step (t=2)
    rewards = jnp.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    values = jnp.array([[0.5, 0.5], [1.0, 1.0], [1.5, 1.5]])
    dones = jnp.array([[False, False], [True, False], [False, True]])
    last_value = jnp.array([2.0, 2.0])
    # entries where not done must be ignored: fill them with values that would show
    final_values = jnp.array([[9.0, -9.0], [4.0, 8.0], [-7.0, 5.0]])
    gamma, lam = 0.9, 0.8
    advantages, returns = gae(rewards, values, dones, last_value, gamma, lam, final_values)
    # column 0: step 1 ends its episode and bootstraps from final value 4.0; steps 0 and 2
    # bootstrap as usual (v_1 and last_value); the chain A_0 <- A_1 is kept, A_1 <- A_2 is cut.
    delta2 = 3.0 + gamma * 2.0 - 1.5
    delta1 = 2.0 + gamma * 4.0 - 1.0
    delta0 = 1.0 + gamma * 1.0 - 0.5
    column0 = np.array([delta0 + gamma * lam * delta1, delta1, delta2])
    # column 1: the last step ends its episode: final value 5.0 instead of last_value 2.0
    delta2 = 3.0 + gamma * 5.0 - 1.5
    delta1 = 2.0 + gamma * 1.5 - 1.0
    delta0 = 1.0 + gamma * 1.0 - 0.5
    a1 = delta1 + gamma * lam * delta2
    column1 = np.array([delta0 + gamma * lam * a1, a1, delta2])
    expected = np.stack([column0, column1], axis=1)
    np.testing.assert_allclose(advantages, expected, atol=1e-5)
    np.testing.assert_allclose(returns, expected + np.array(values), atol=1e-5)


def test_gae_final_values_matter_only_at_dones():
    rewards = jnp.array([1.0, -2.0, 0.5, 3.0])
    values = jnp.array([0.3, 0.1, -0.4, 2.0])
    dones = jnp.array([False, True, False, False])
    final_values = jnp.array([5.0, 0.0, 6.0, 7.0])  # zero at the done: the terminal case
    plain = gae(rewards, values, dones, jnp.array(1.5), 0.95, 0.9)
    with_final = gae(rewards, values, dones, jnp.array(1.5), 0.95, 0.9, final_values)
    for a, b in zip(plain, with_final, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # no dones at all: final_values are ignored entirely
    no_dones = jnp.zeros(4, bool)
    for a, b in zip(
        gae(rewards, values, no_dones, jnp.array(1.5), 0.95, 0.9),
        gae(rewards, values, no_dones, jnp.array(1.5), 0.95, 0.9, final_values),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
