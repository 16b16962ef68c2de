"""`scripts/train.py algo=momix` on `mo_matrix` and on Cleanup with two objectives (tiny CNN):
progress, Pareto metrics in the logs, the front PNG, checkpoints, a resumed run equal to an
uninterrupted one, and `scripts/evaluate.py` on the preference grid. (The outer-loop baseline is
the same trainer and runner path; `test_momix.py` runs its updates.)"""

from __future__ import annotations

import json

import pytest
from conftest import assert_resume_reproduces, read_metrics, run_script

TINY = [
    "algo.num_envs=2",
    "algo.buffer_episodes=8",
    "algo.batch_episodes=2",
    "algo.rnn_hidden=8",
    "algo.hidden_sizes=[8]",
    "algo.mixer_embed_dim=4",
    "algo.hypernet_hidden=8",
    "algo.eval_pref_grid=3",
    "algo.eval_every=2",
    "algo.eval_episodes=2",
    "run.updates_per_chunk=1",
    "run.keep_checkpoints=4",
    "run.progress=false",
]
RUNS = {
    "momix_mo_matrix": [
        "algo=momix",
        "env=mo_matrix",
        "env.max_steps=2",
        "algo.total_timesteps=16",
    ],
    "momix_cleanup_mo": [
        "algo=momix",
        "env=cleanup_mo",
        "env.num_agents=2",
        "env.max_steps=4",
        "algo.total_timesteps=32",
        "algo.cnn_channels=[4]",
        "algo.cnn_kernel_sizes=[3]",
        "algo.cnn_dense_size=8",
    ],
}


@pytest.mark.parametrize("run", sorted(RUNS))
def test_momix_trains_with_pareto_logs_checkpoints_and_exact_resume(tmp_path, run):
    overrides = [*RUNS[run][:1], *TINY, *RUNS[run][1:]]
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py", [*overrides, "run.progress=true", f"hydra.run.dir={run_dir}"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "env steps" in result.stderr  # the progress bar
    reference = read_metrics(run_dir)
    assert [row["update"] for row in reference] == [1, 2, 3, 4]
    evaluated = [row["pareto/hypervolume"] is not None for row in reference]
    assert evaluated == [False, True, False, True]
    assert reference[-1]["pareto/num_nondominated"] >= 1
    assert (run_dir / "pareto_front.png").stat().st_size > 0
    assert_resume_reproduces(run_dir, overrides)
    if run == "momix_mo_matrix":
        evaluation_dir = tmp_path / "evaluation"
        result = run_script(
            "evaluate.py",
            [f"run_dir={run_dir}", "episodes=2", f"hydra.run.dir={evaluation_dir}"],
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert "non-dominated points" in result.stdout and "hypervolume" in result.stdout
        summary = json.loads((evaluation_dir / "evaluation.json").read_text())
        assert len(summary["pareto"]["points"]) == 3
        assert (evaluation_dir / "pareto_front.png").stat().st_size > 0


def test_momix_on_an_env_without_objectives_is_one_clear_error(tmp_path):
    result = run_script(
        "train.py", ["algo=momix", "env=ipd", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: algo=momix trains on a team")
