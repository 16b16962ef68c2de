"""`scripts/train.py algo=aa` on the Coin Game preset (AA with a td1 critic and the agent replay
buffer) and on the IPD against a fixed co-player: progress, checkpoints, and a resumed run that
equals an uninterrupted one. (Proximal AA on Cleanup compiles two CNNs, too slow for this suite;
its pieces are unit-tested in tests/algos/test_aa.py.)"""

from __future__ import annotations

import pytest
from conftest import assert_resume_reproduces, read_metrics, run_script

TINY_AA = [
    "algo=aa",
    "algo.num_envs=2",
    "algo.num_steps=8",
    "algo.total_timesteps=64",  # 4 updates
    "algo.hidden_sizes=[8]",
    "run.updates_per_chunk=1",
    "run.keep_checkpoints=4",
    "run.progress=false",
]
ENVS = {
    "ipd_vs_alld": ["env=ipd", "env.opponent=alld", "env.max_steps=6"],
    "coin_game": [
        "env=coin_game",
        "env.max_steps=6",
        "algo.agent_buffer_size=2",
        "algo.agent_buffer_push_every=1",
    ],
}


@pytest.mark.parametrize("env", sorted(ENVS))
def test_aa_trains_with_progress_checkpoints_and_exact_resume(tmp_path, env):
    overrides = [*TINY_AA, *ENVS[env]]
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py", [*overrides, "run.progress=true", f"hydra.run.dir={run_dir}"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "env steps" in result.stderr  # the progress bar
    reference = read_metrics(run_dir)
    assert [row["update"] for row in reference] == [1, 2, 3, 4]
    assert reference[-1]["aa/alignment_term"] > 0
    if env == "coin_game":
        assert [row["aa/buffer_size"] for row in reference] == [1, 2, 2, 2]
    else:
        assert 0 <= reference[-1]["coop_given/START"] <= 1
    # Resume after losing the last two checkpoints: networks, critic target, alignment
    # histories, snapshot buffer and RNG come back, so the rest matches the uninterrupted run.
    assert_resume_reproduces(run_dir, overrides)
