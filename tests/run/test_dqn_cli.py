"""`scripts/train.py algo=dqn` on a grid game and on the lattice Prisoner's Dilemma: progress,
checkpoints with the replay buffer, and a resumed run that equals an uninterrupted one."""

from __future__ import annotations

import json
import math

import pytest
from conftest import assert_resume_reproduces, read_metrics, run_script

TINY_DQN = [
    "algo=dqn",
    "algo.num_envs=2",
    "algo.num_steps=8",
    "algo.total_timesteps=64",  # 4 updates
    "algo.buffer_steps=16",
    "algo.batch_size=8",
    "algo.learning_starts=4",
    "algo.train_every=4",
    "algo.target_update_every=8",
    "algo.hidden_sizes=[8]",
    "run.updates_per_chunk=1",
    "run.keep_checkpoints=4",
    "run.progress=false",
]
ENVS = {
    "cleanup": [
        "env=cleanup",
        "env.num_agents=2",
        "env.max_steps=16",
        "algo.cnn_channels=[4]",
        "algo.cnn_kernel_sizes=[3]",
        "algo.cnn_dense_size=8",
    ],
    "spatial_pd": ["env=spatial_pd", "env.size=4", "algo.n_step=3", "algo.tau_anneal_steps=32"],
}


@pytest.mark.parametrize("env", sorted(ENVS))
def test_dqn_trains_with_progress_checkpoints_and_exact_resume(tmp_path, env):
    overrides = [*TINY_DQN, *ENVS[env]]
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py", [*overrides, "run.progress=true", f"hydra.run.dir={run_dir}"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "env steps" in result.stderr  # the progress bar
    reference = read_metrics(run_dir)
    assert [row["update"] for row in reference] == [1, 2, 3, 4]
    assert reference[-1]["learning/gradient_steps"] == 2 and reference[-1]["loss/total"] > 0
    if env == "spatial_pd":
        assert 0 <= reference[-1]["rollout/coop_rate"] <= 1
    # Resume after losing the last two checkpoints: the replay buffer, networks and RNG come
    # back, so the rest matches the uninterrupted run.
    assert_resume_reproduces(run_dir, overrides)

    evaluated = run_script(
        "evaluate.py",
        [f"run_dir={run_dir}", "episodes=2", "greedy=true", f"hydra.run.dir={tmp_path / 'eval'}"],
        cwd=tmp_path,
    )
    if env == "spatial_pd":  # no episodes: one clear line
        assert evaluated.returncode == 2 and "continuing task" in evaluated.stderr
    else:
        assert evaluated.returncode == 0, evaluated.stderr
        metrics = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["metrics"]
        assert math.isfinite(metrics["collective_return"][0])
