"""`scripts/train.py` end to end: outputs, bad input, determinism, interrupt and resume, sweeps."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, TINY_PPO, compose_config, read_metrics, run_script

from marl.run.cli import train_job


def train_in_process(run_dir: Path, overrides: list[str]) -> int:
    return train_job(compose_config(overrides), run_dir)


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["algo=nope"],
            "Could not find 'algo/nope'; Available options in 'algo': aa, bnac, dqn, mappo, momix, ppo, qmix_outer",
        ),
        (["env=public_goods", "env.num_agents=-1"], "num_agents"),
        (["algo.lr=abc"], "algo.lr must be float; got 'abc'"),
        (["learning_rate=0.1"], "unknown key learning_rate; allowed keys:"),
        (["+algo.learning_rate=0.1"], "unknown key algo.learning_rate; allowed keys:"),
        (["device=gpu"], "device=gpu but JAX finds no GPU"),
        (["algo.num_minibatches=7"], "algo.num_minibatches (7) must divide the rows per update"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, expected):
    if args == ["device=gpu"]:
        import jax

        if jax.default_backend() == "gpu":
            pytest.skip("this machine has a GPU, so device=gpu is valid here")
    result = run_script("train.py", [*args, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_default_command_leaves_config_metrics_checkpoint_and_curve(tmp_path):
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py",
        ["algo=ppo", "env=ipd", *TINY_PPO, "run.progress=true", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "env steps" in result.stderr  # the progress bar
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "learning_curve.png"):
        assert (run_dir / name).is_file(), name
    rows = read_metrics(run_dir)
    assert [row["update"] for row in rows] == list(range(1, 11))
    assert (run_dir / "checkpoints" / "10").is_dir()
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"update", "seed", "env_steps", "episode/return/0", "loss/total"} <= set(header)


def test_same_seed_gives_identical_metrics_and_seeds_differ(tmp_path):
    overrides = [*TINY_PPO, "num_seeds=2"]
    assert train_in_process(tmp_path / "a", overrides) == 0
    assert train_in_process(tmp_path / "b", overrides) == 0
    first, second = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert first == second
    seed0 = [row["loss/total"] for row in first if row["seed"] == 0]
    seed1 = [row["loss/total"] for row in first if row["seed"] == 1]
    assert seed0 != seed1


def test_refuses_to_overwrite_a_run_and_to_resume_a_changed_one(tmp_path):
    run_dir = tmp_path / "run"
    assert train_in_process(run_dir, TINY_PPO) == 0
    again = run_script("train.py", [*TINY_PPO, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert again.returncode == 2 and "already holds a run's checkpoints" in again.stderr
    changed = run_script(
        "train.py",
        [*TINY_PPO, "algo.lr=0.5", "resume=true", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
    )
    assert changed.returncode == 2 and "differs from the saved run at algo.lr" in changed.stderr
    missing = run_script(
        "train.py", [*TINY_PPO, "resume=true", f"hydra.run.dir={tmp_path / 'x'}"], cwd=tmp_path
    )
    assert missing.returncode == 2 and "has no checkpoint" in missing.stderr


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path):
    overrides = [
        *[
            o
            for o in TINY_PPO
            if not o.startswith(("algo.total_timesteps", "run.updates_per_chunk"))
        ],
        "algo.total_timesteps=4000",
        "run.updates_per_chunk=1",
    ]
    assert train_in_process(tmp_path / "reference", overrides) == 0
    reference = read_metrics(tmp_path / "reference")
    assert len(reference) == 50

    run_dir = tmp_path / "interrupted"
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "scripts" / "train.py"),
            *overrides,
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics_file = run_dir / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics_file.exists() and metrics_file.read_text()):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "resume=true" in stderr
    partial = read_metrics(run_dir)
    assert 0 < len(partial) < len(reference)
    assert partial == reference[: len(partial)]

    resumed = run_script(
        "train.py", [*overrides, "resume=true", f"hydra.run.dir={run_dir}"], cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert read_metrics(run_dir) == reference


def test_multirun_sweep_runs_every_job(tmp_path):
    result = run_script(
        "train.py",
        ["-m", "seed=0,1", "env=ipd,stag_hunt", *TINY_PPO, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    job_dirs = sorted(p.parent for p in (tmp_path / "sweep").glob("*/metrics.jsonl"))
    assert len(job_dirs) == 4
    suffixes = {p.name.split("_", 1)[1] for p in job_dirs}
    assert suffixes == {
        "ppo_ipd_seed0",
        "ppo_ipd_seed1",
        "ppo_stag_hunt_seed0",
        "ppo_stag_hunt_seed1",
    }
