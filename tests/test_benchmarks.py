"""The benchmark scripts end to end, tiny settings.

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
TINY_DQN = [
    "algo=dqn",
    "algo.num_envs=4",
    "algo.num_steps=8",
    "algo.batch_size=8",
    "algo.buffer_steps=16",
    "algo.learning_starts=4",
    "algo.target_update_every=8",
    "algo.hidden_sizes=[8]",
]
TINY_DQN_SCARCITY_RUN = [
    "--n-apple",
    "2,50",
    "--algo",
    "dqn",
    *TINY_DQN,
    "algo.total_timesteps=160",
    *TINY_SCARCITY_RUN[2 + len(TINY_PPO) :],
]
TINY_SPD_RUN = [
    *("--size", "4", "--train-steps", "16", "--eval-steps", "4", "--tau-start", "0.6"),
    *("--dilemma", "0.1,0.3", "--seeds", "2", "--groups", "2"),
    *(
        "algo.num_steps=8",
        "algo.batch_size=8",
        "algo.buffer_steps=10",
        "algo.target_update_every=8",
    ),
]
BAD_INPUT = {
    "env_unknown_key": ("env_throughput.py", ["env.no_such_key=1"], "unknown key env.no_such_key"),
    "env_bad_num_envs": ("env_throughput.py", ["--num-envs", "1,0"], "--num-envs"),
    "train_too_many_updates": (
        "train_throughput.py",
        ["--updates", "11", *TINY_PPO],
        "--updates 11 is more than the 10 updates",
    ),
    "cleanup_unknown_run": ("cleanup_learning.py", ["--runs", "ppo,aa"], "--runs"),
    "bnac_unknown_game": ("bnac_coordination.py", ["--games", "bn3,bn4"], "--games"),
    "momix_unknown_task": ("momix_pareto.py", ["--tasks", "mo_matrix,harvest"], "--tasks"),
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
        "scarcity_dqn": ("gathering_scarcity.py", TINY_DQN_SCARCITY_RUN),
        "spd": ("spd_exploration.py", TINY_SPD_RUN),
        "train_dqn": (
            "train_throughput.py",
            ["--updates", "2", "--repeats", "1", *TINY_DQN, "algo.total_timesteps=96", "env=ipd"],
        ),
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
    if out.is_dir():
        (out,) = out.glob("*.json")
    results = json.loads(out.read_text())
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


def test_dqn_train_throughput(runs):
    results, (row,) = read_rows(runs["train_dqn"])
    assert results["algo_id"] == "dqn"
    assert (row["updates"], row["env_steps_per_update"]) == (2, 32)
    assert_positive_finite(row, ("env_steps_per_s", "compile_s"))


@pytest.mark.parametrize(
    ("name", "algo", "env_steps"), [("scarcity", "ppo", 800), ("scarcity_dqn", "dqn", 160)]
)
def test_gathering_scarcity_prints_and_plots_one_row_per_n_apple(runs, name, algo, env_steps):
    results, rows = read_rows(runs[name])
    assert results["config"]["env"]["name"] == "gathering"
    assert results["config"]["algo"]["name"] == algo
    assert [row["n_apple"] for row in rows] == [2, 50]
    for row in rows:
        assert 0 <= row["beam_use_rate"] <= 1
        assert row["apples"] >= 0 and row["tag_outs"] >= 0
        assert 0 <= row["peace"] <= 2
        assert row["env_steps"] == env_steps
        assert (Path(row["run_dir"]) / "metrics.jsonl").exists()
    out = runs[name][1]
    assert (out / "gathering_scarcity.png").stat().st_size > 0
    assert "beam-use rate" in runs[name][0].stdout


def test_spd_exploration_tabulates_every_layout_temperature_and_dilemma(runs):
    results, rows = read_rows(runs["spd"])
    keys = [(row["variant"], row["tau_start"], row["dilemma"]) for row in rows]
    assert keys == [
        (variant, tau, dilemma)
        for variant in ("shared", "grouped", "independent")
        for tau in (0.6,)
        for dilemma in (0.1, 0.3)
    ]
    for row in rows:
        assert 0 <= row["coop_rate"] <= 1 and len(row["coop_per_seed"]) == 2
        # B is the mean temperature over the first half of a linear anneal to 0.1 over 16 steps.
        expected = sum(row["tau_start"] + (0.1 - row["tau_start"]) * t / 16 for t in range(8)) / 8
        assert row["intensity"] == pytest.approx(expected)
    assert (runs["spd"][1] / "spd_exploration.png").stat().st_size > 0
    assert "Spearman" in runs["spd"][0].stdout and results["size"] == 4


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_input_is_one_error_line(runs, name):
    result, out = runs[name]
    expected = BAD_INPUT[name][2]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert not out.exists()
