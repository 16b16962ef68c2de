"""Slow check of BN-AC's sparsity annealing (specs/algos/bnac.md section 6): the learned graph is
dense while the target density is 1 and empty by the end of training, so that execution ends
decentralised. (The policy-class gate of acceptance.md 5 (b) 1 is `test_bnac_tabular.py`.)"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from marl.algos.bnac import BNAC, BNACConfig
from marl.envs import make

pytestmark = pytest.mark.slow

NUM_UPDATES = 60
NUM_SEEDS = 4


def test_sparsity_annealing_takes_the_learned_graph_from_dense_to_empty():
    env = make("noisy_coordination", num_agents=3)
    config = BNACConfig(
        dag="learned",
        sparsity_anneal=True,
        num_decay=10,
        num_envs=8,
        num_steps=25,
        total_timesteps=8 * 25 * NUM_UPDATES,
        lr=1e-3,
        gamma=0.95,
        hidden_sizes=(32,),
        dag_hidden=32,
    )
    trainer = BNAC(env, config)

    def train(key):
        state = trainer.init(key)
        _, metrics = jax.lax.scan(lambda s, _: trainer.update(s), state, None, length=NUM_UPDATES)
        return metrics["dag/open_ratio"]

    keys = jax.random.split(jax.random.PRNGKey(0), NUM_SEEDS)
    density = jax.device_get(jax.jit(jax.vmap(train))(keys))  # [seeds, updates]
    dense = density[:, int(0.4 * NUM_UPDATES) - 1]
    final = density[:, -1]
    assert np.all(dense >= 0.9), f"open ratio at 40 % of updates per seed: {dense}"
    assert np.all(final <= 0.05), f"final open ratio per seed: {final}"
