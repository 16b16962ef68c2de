"""Tabular exact policy gradient with Bayesian-network policies (acceptance.md section 5 (b) 1).

One state, 2 agents, 2 actions, R(0,0) = 3, R(1,1) = 2, else 0. The empty DAG is the product of
two independent softmax policies; the full DAG (agent 1 is agent 2's parent) lets agent 2 condition
on a1. From 1,000 initialisations with logits N(0, 2²), plain gradient ascent (lr 1.0, 5,000 exact
steps) on J = Σ_a π(a) R(a) reaches the optimum (J > 2.9) more often with the full DAG, which can
represent "agent 2 copies agent 1" (bnac.md section 1). This is test-only maths: the policies
below are tabular and use no package code. Run with
`pytest -m slow tests/algos/test_bnac_tabular.py`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# float32 [a1, a2]: the one-shot coordination game (bnac.md section 7, n = 2 with ε = 0).
REWARD = jnp.array([[3.0, 0.0], [0.0, 2.0]])
NUM_INITS = 1_000
LOGIT_STD = 2.0
LEARNING_RATE = 1.0
NUM_STEPS = 5_000
SUCCESS_RETURN = 2.9
# acceptance.md section 5 (b) 1: success rates after 5,000 steps and the gate on their gap.
REFERENCE_SUCCESS = {"empty": 0.564, "full": 0.847}
REFERENCE_TOLERANCE = 0.04
MIN_GAP = 0.2


def empty_dag_policy(params: dict[str, jax.Array]) -> jax.Array:
    """π(a1, a2) `[2, 2]` = softmax(θ1)[a1]·softmax(θ2)[a2]; θ1, θ2 `[2]`."""
    return jax.nn.softmax(params["theta1"])[:, None] * jax.nn.softmax(params["theta2"])[None, :]


def full_dag_policy(params: dict[str, jax.Array]) -> jax.Array:
    """π(a1, a2) `[2, 2]` = softmax(θ1)[a1]·softmax(θ2[a1])[a2]; θ1 `[2]`, θ2 `[2, 2]` (row a1)."""
    return jax.nn.softmax(params["theta1"])[:, None] * jax.nn.softmax(params["theta2"], axis=-1)


def expected_reward(policy, params: dict[str, jax.Array]) -> jax.Array:
    """J = Σ_a π(a) R(a), exact, as a scalar."""
    return jnp.sum(policy(params) * REWARD)


def initial_params(key: jax.Array, theta2_shape: tuple[int, ...]) -> dict[str, jax.Array]:
    """NUM_INITS initialisations: θ1 `[NUM_INITS, 2]`, θ2 `[NUM_INITS, *theta2_shape]`, all N(0, 2²)."""
    key1, key2 = jax.random.split(key)
    return {
        "theta1": LOGIT_STD * jax.random.normal(key1, (NUM_INITS, 2)),
        "theta2": LOGIT_STD * jax.random.normal(key2, (NUM_INITS, *theta2_shape)),
    }


def final_expected_reward(policy, params: dict[str, jax.Array]) -> jax.Array:
    """J `[]` after NUM_STEPS exact gradient-ascent steps with LEARNING_RATE from `params`."""
    gradient = jax.grad(lambda p: expected_reward(policy, p))

    def ascend(p, _):
        return jax.tree.map(lambda x, g: x + LEARNING_RATE * g, p, gradient(p)), None

    final, _ = jax.lax.scan(ascend, params, None, length=NUM_STEPS)
    return expected_reward(policy, final)


def success_rate(policy, params: dict[str, jax.Array]) -> float:
    """Fraction of the initialisations `params` (leading axis) that end with J > SUCCESS_RETURN."""
    final = jax.jit(jax.vmap(lambda p: final_expected_reward(policy, p)))(params)
    return float(np.mean(np.asarray(final) > SUCCESS_RETURN))


def test_policies_are_distributions_and_full_dag_with_equal_rows_is_the_empty_dag():
    params = initial_params(jax.random.key(1), (2,))
    theta1, theta2 = params["theta1"][0], params["theta2"][0]
    empty = {"theta1": theta1, "theta2": theta2}
    full = {"theta1": theta1, "theta2": jnp.stack([theta2, theta2 + 5.0])}
    np.testing.assert_allclose(empty_dag_policy(empty).sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(full_dag_policy(full), empty_dag_policy(empty), rtol=1e-6)
    uniform = {"theta1": jnp.zeros(2), "theta2": jnp.zeros((2, 2))}
    np.testing.assert_allclose(expected_reward(full_dag_policy, uniform), 5 / 4, rtol=1e-6)
    copier = {"theta1": jnp.array([0.0, 0.0]), "theta2": jnp.array([[30.0, 0.0], [0.0, 30.0]])}
    np.testing.assert_allclose(expected_reward(full_dag_policy, copier), 2.5, rtol=1e-6)


@pytest.mark.slow
def test_full_dag_reaches_the_optimum_more_often_than_the_empty_dag():
    key_empty, key_full = jax.random.split(jax.random.key(0))
    empty = success_rate(empty_dag_policy, initial_params(key_empty, (2,)))
    full = success_rate(full_dag_policy, initial_params(key_full, (2, 2)))
    rates = f"success rates: empty {empty:.3f}, full {full:.3f}; reference {REFERENCE_SUCCESS}"
    assert full - empty >= MIN_GAP, f"full - empty = {full - empty:.3f} < {MIN_GAP}; {rates}"
    for name, rate in (("empty", empty), ("full", full)):
        assert abs(rate - REFERENCE_SUCCESS[name]) <= REFERENCE_TOLERANCE, f"{name} off; {rates}"
