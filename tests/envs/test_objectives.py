"""Team objectives and `reward_mode=vector` (specs/algos/momix.md §1): which components, their
signs, the mean over agents, and one clear error for every bad objectives config."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.config import ConfigError
from marl.envs import make
from marl.envs.objectives import VectorReward, objective_spec, with_objectives
from marl.envs.wrappers import training_env
from marl.run.experiment import build_env

CLEANUP_COMPONENTS = ("apples", "fire_cost", "hit_penalty", "waste_cleaned")


def test_team_vector_is_the_signed_mean_over_agents_of_the_chosen_columns():
    spec = objective_spec(
        CLEANUP_COMPONENTS, ["waste_cleaned", "fire_cost"], ref_point=[0, 0], signs=[1, -1]
    )
    reward_vector = jnp.array(
        [
            [1.0, -1.0, 0.0, 3.0],  # agent 0: ate an apple, fired, cleaned 3 cells
            [0.0, 0.0, -50.0, 0.0],  # agent 1: was hit
            [2.0, -1.0, 0.0, 1.0],  # agent 2
        ]
    )
    # waste_cleaned: (3 + 0 + 1) / 3; fire_cost with sign -1: -(-1 + 0 - 1) / 3.
    np.testing.assert_allclose(spec.team_vector(reward_vector), [4 / 3, 2 / 3], rtol=1e-6)
    assert spec.columns == (3, 1) and spec.scale == (1.0, 1.0)


def test_vector_reward_on_mo_matrix_is_the_payoff_vector_and_keeps_individual_rewards():
    env = with_objectives(
        make("mo_matrix"), {"components": ["objective_1", "objective_2"], "ref_point": [0, 0]}
    )
    learner_env = training_env(env, "vector")
    _, state = learner_env.reset(jax.random.PRNGKey(0))
    step = jax.jit(learner_env.step)
    expected = {0: (1.0, 0.0), 1: (0.0, 1.0), 2: (0.6, 0.6), 3: (0.8, 0.2)}
    for action, payoff in expected.items():
        actions = jnp.array([action, action], jnp.int32)
        _, _, reward, done, info = step(jax.random.PRNGKey(1), state, actions)
        np.testing.assert_allclose(reward, payoff, rtol=1e-6)
        np.testing.assert_allclose(info["individual_reward"], [sum(payoff)] * 2, rtol=1e-6)
        assert bool(done)
    _, _, reward, _, _ = step(jax.random.PRNGKey(1), state, jnp.array([0, 1], jnp.int32))
    np.testing.assert_array_equal(reward, [0.0, 0.0])


def test_vector_reward_on_cleanup_reads_the_game_reward_vector():
    env = build_env(
        {
            "name": "cleanup",
            "num_agents": 2,
            "max_steps": 5,
            "objectives": {"components": ["apples", "waste_cleaned"], "ref_point": [-1, -1]},
        }
    )
    learner_env = training_env(env, "vector")
    _, state = jax.jit(learner_env.reset)(jax.random.PRNGKey(0))
    clean = jnp.full((2,), 8, jnp.int32)  # both agents fire the cleaning beam
    _, _, reward, _, info = jax.jit(learner_env.step)(jax.random.PRNGKey(1), state, clean)
    columns = np.asarray(info["reward_vector"])[:, [0, 3]]
    np.testing.assert_allclose(reward, columns.mean(axis=0), rtol=1e-6)
    assert reward.shape == (2,) and info["individual_reward"].shape == (2,)


def test_vector_reward_needs_declared_objectives():
    with pytest.raises(ValueError, match="reward_mode=vector needs the env's objectives"):
        VectorReward(make("mo_matrix"))


@pytest.mark.parametrize(
    ("objectives", "message"),
    [
        ({"components": ["apples", "smiles"], "ref_point": [0, 0]}, "unknown component 'smiles'"),
        ({"components": [], "ref_point": []}, "at least one"),
        ({"components": ["apples", "apples"], "ref_point": [0, 0]}, "distinct"),
        ({"components": ["apples"], "ref_point": [0, 0]}, "ref_point needs one value"),
        ({"components": ["apples"], "ref_point": [0], "signs": [0]}, "signs must be non-zero"),
        ({"components": ["apples"], "ref_point": [0], "scale": [-1]}, "scale must be > 0"),
        ({"components": ["apples"]}, "needs components and ref_point"),
        ({"components": ["apples"], "ref_point": [0], "weights": [1]}, "no key 'weights'"),
    ],
)
def test_bad_objectives_config_is_one_clear_error(objectives, message):
    with pytest.raises(ConfigError, match=f"env.objectives.*{message}"):
        build_env({"name": "cleanup", "objectives": objectives})
