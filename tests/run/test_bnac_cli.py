"""`scripts/train.py algo=bnac` / `algo=mappo` on the coordination game and on Cleanup (tiny CNN):
progress, checkpoints, a resumed run that equals an uninterrupted one, and `scripts/evaluate.py`
reporting the graph policy next to the graph-free one."""

from __future__ import annotations

import json

import pytest
from conftest import assert_resume_reproduces, read_metrics, run_script

TINY = [
    "algo.num_envs=2",
    "algo.num_steps=8",
    "algo.total_timesteps=64",  # 4 updates
    "algo.num_minibatches=2",
    "algo.update_epochs=1",
    "algo.hidden_sizes=[8]",
    "algo.dag_hidden=8",
    "run.updates_per_chunk=1",
    "run.keep_checkpoints=4",
    "run.progress=false",
]
TINY_CLEANUP = [
    "env=cleanup",
    "env.num_agents=3",
    "env.max_steps=8",
    "algo.reward_mode=collective",
    "algo.cnn_channels=[4]",
    "algo.cnn_kernel_sizes=[3]",
    "algo.cnn_dense_size=8",
]
RUNS = {
    "bnac_bn_coordination": ["algo=bnac", "env=bn_coordination", "algo.sparsity_anneal=true"],
    "mappo_cleanup": ["algo=mappo", *TINY_CLEANUP],
    "bnac_cleanup": ["algo=bnac", *TINY_CLEANUP],
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_bnac_trains_with_progress_checkpoints_and_exact_resume(tmp_path, run):
    overrides = [*RUNS[run][:1], *TINY, *RUNS[run][1:]]
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py", [*overrides, "run.progress=true", f"hydra.run.dir={run_dir}"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "env steps" in result.stderr  # the progress bar
    reference = read_metrics(run_dir)
    assert [row["update"] for row in reference] == [1, 2, 3, 4]
    graph_columns = [name for name in reference[-1] if name.startswith("dag/")]
    if run.startswith("mappo"):
        assert graph_columns == []
    else:
        assert 0 <= reference[-1]["dag/open_ratio"] <= 1 and "dag/top_graphs/0/0/1" in graph_columns
    assert_resume_reproduces(run_dir, overrides)
    if run == "bnac_bn_coordination":
        evaluation_dir = tmp_path / "evaluation"
        result = run_script(
            "evaluate.py",
            [f"run_dir={run_dir}", "episodes=4", f"hydra.run.dir={evaluation_dir}"],
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert "graph policy (dag=learned" in result.stdout
        assert "graph-free policy" in result.stdout
        summary = json.loads((evaluation_dir / "evaluation.json").read_text())
        assert len(summary["graphs"]) == 2
