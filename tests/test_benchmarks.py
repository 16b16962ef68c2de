"""`benchmarks/env_throughput.py` and `benchmarks/train_throughput.py` end to end, tiny settings.

Throughput is never asserted as a time (see DESIGN.md): only that every requested row is there
with positive, finite, consistent numbers, and that bad input is one `error:` line with exit
code 2. All runs start at once in one fixture, so that their compiles overlap.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

BENCHMARKS = REPO / "benchmarks"
TIMEOUT_S = 300
TINY_ENV_RUN = ["--num-envs", "1,4", "--steps", "5", "--repeats", "1", "--call-repeats", "2"]
TINY_PPO = [
    "algo=ppo",
    "algo.total_timesteps=800",
    "algo.num_envs=4",
    "algo.num_steps=20",
    "algo.num_minibatches=2",
    "algo.update_epochs=1",
]
TINY_TRAIN_RUN = ["--updates", "2", "--repeats", "1", *TINY_PPO, "num_seeds=2"]
# Two respawn times, 20-step episodes that end inside every rollout, a tiny CNN.
TINY_SCARCITY_RUN = [
    "--n-apple",
    "2,50",
    *TINY_PPO,
    "env.max_steps=20",
    "algo.cnn_channels=[4]",
    "algo.cnn_kernel_sizes=[3]",
    "algo.cnn_dense_size=8",
    "run.updates_per_chunk=5",
    "run.progress=false",
]
BAD_INPUT = {
    "env_unknown_key": ("env_throughput.py", ["env.no_such_key=1"], "unknown key env.no_such_key"),
    "env_bad_num_envs": ("env_throughput.py", ["--num-envs", "1,0"], "--num-envs"),
    "train_too_many_updates": (
        "train_throughput.py",
        ["--updates", "11", *TINY_PPO],
        "--updates 11 is more than the 10 updates",
    ),
}


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every benchmark command of this module, run concurrently: name -> (result, JSON path)."""
    out_dir = tmp_path_factory.mktemp("benchmarks")
    commands = {
        "env": ("env_throughput.py", [*TINY_ENV_RUN, "env=ipd"]),
        "train": ("train_throughput.py", [*TINY_TRAIN_RUN, "env=ipd"]),
        "scarcity": ("gathering_scarcity.py", TINY_SCARCITY_RUN),
        **{name: (script, args) for name, (script, args, _) in BAD_INPUT.items()},
    }
    processes = {
        name: subprocess.Popen(
            [sys.executable, str(BENCHMARKS / script), *args, "--out", str(out_dir / name)],
            cwd=out_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (script, args) in commands.items()
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
        results[name] = (
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr),
            out_dir / name,
        )
    return results


def read_rows(run: tuple[subprocess.CompletedProcess, Path]) -> tuple[dict, list[dict]]:
    """The results file of a successful run and its rows."""
    result, out = run
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "gathering_scarcity.json" if out.is_dir() else out).read_text())
    return results, results["rows"]


def assert_positive_finite(row: dict, keys: tuple[str, ...]) -> None:
    """Every value of `row` named in `keys` is a positive, finite number."""
    for key in keys:
        assert math.isfinite(row[key]) and row[key] > 0, (key, row[key])


def test_env_throughput_writes_one_row_per_num_envs(runs):
    results, rows = read_rows(runs["env"])
    assert [row["num_envs"] for row in rows] == [1, 4]
    assert results["env_id"] == "ipd"
    assert results["env"]["num_agents"] == 2
    assert results["device"]["platform"] == "cpu"
    assert results["config"]["env"]["game"] == "ipd"
    for row in rows:
        assert_positive_finite(
            row, ("env_steps_per_s", "agent_steps_per_s", "compile_s", "step_us", "reset_us")
        )
        assert row["agent_steps_per_s"] == pytest.approx(row["env_steps_per_s"] * 2)
        assert row["env_steps_per_s"] == pytest.approx(
            row["num_envs"] * row["steps"] / row["rollout_s"]
        )
    assert "env steps/s" in runs["env"][0].stdout


def test_train_throughput_counts_steps_of_every_seed(runs):
    results, rows = read_rows(runs["train"])
    assert results["algo_id"] == "ppo" and results["env_id"] == "ipd"
    (row,) = rows
    assert (row["num_seeds"], row["updates"], row["env_steps_per_update"]) == (2, 2, 80)
    assert_positive_finite(
        row, ("env_steps_per_s", "agent_steps_per_s", "updates_per_s", "compile_s")
    )
    assert row["env_steps_per_s"] == pytest.approx(80 * 2 * 2 / row["chunk_s"])
    assert row["agent_steps_per_s"] == pytest.approx(row["env_steps_per_s"] * 2)
    assert "env steps/s" in runs["train"][0].stdout


def test_gathering_scarcity_prints_and_plots_one_row_per_n_apple(runs):
    results, rows = read_rows(runs["scarcity"])
    assert results["config"]["env"]["name"] == "gathering"
    assert [row["n_apple"] for row in rows] == [2, 50]
    for row in rows:
        assert 0 <= row["beam_use_rate"] <= 1
        assert row["apples"] >= 0 and row["tag_outs"] >= 0
        assert 0 <= row["peace"] <= 2
        assert row["env_steps"] == 800
        assert (Path(row["run_dir"]) / "metrics.jsonl").exists()
    out = runs["scarcity"][1]
    assert (out / "gathering_scarcity.png").stat().st_size > 0
    assert "beam-use rate" in runs["scarcity"][0].stdout


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_input_is_one_error_line(runs, name):
    result, out = runs[name]
    expected = BAD_INPUT[name][2]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert not out.exists()
