"""`scripts/evaluate.py` and `scripts/render.py` on checkpoints of tiny training runs."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import imageio.v2 as imageio
import jax
import numpy as np
import pytest
from conftest import TINY_PPO, compose_config, run_script
from PIL import Image, ImageSequence

from marl.envs.grid.render import upscale
from marl.run.cli import train_job
from marl.run.experiment import build_env

TINY_CLEANUP = [
    "algo=ppo",
    "env=cleanup",
    "env.max_steps=16",
    "algo.total_timesteps=64",
    "algo.num_envs=2",
    "algo.num_steps=16",
    "algo.num_minibatches=2",
    "algo.update_epochs=1",
    "algo.cnn_channels=[4]",
    "algo.cnn_kernel_sizes=[3]",
    "algo.cnn_dense_size=8",
    "run.updates_per_chunk=2",
    "run.progress=false",
]

TINY_GATHERING = [*TINY_CLEANUP, "env=gathering"]

TINY_COIN_GAME = [
    "algo=ppo",
    "env=coin_game",
    "env.variant=one_coin",
    "algo.share_params=true",
    "algo.total_timesteps=320",
    "algo.num_envs=4",
    "algo.num_steps=20",
    "algo.num_minibatches=2",
    "algo.update_epochs=1",
    "run.updates_per_chunk=2",
    "run.progress=false",
]


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory) -> dict[str, Path]:
    """A finished tiny run of PPO on the IPD, on Cleanup, on Gathering and (with shared
    parameters) on the one-coin Coin Game."""
    runs = {}
    tiny_runs = (
        ("ipd", ["algo=ppo", "env=ipd", *TINY_PPO]),
        ("cleanup", TINY_CLEANUP),
        ("gathering", TINY_GATHERING),
        ("coin_game", TINY_COIN_GAME),
    )
    for name, overrides in tiny_runs:
        run_dir = tmp_path_factory.mktemp(name) / "run"
        assert train_job(compose_config(overrides), run_dir) == 0
        runs[name] = run_dir
    return runs


def evaluation(run_dir: Path, out_dir: Path, *args: str) -> dict:
    """Run evaluate.py on `run_dir`, writing into `out_dir`; its evaluation.json."""
    args = [f"run_dir={run_dir}", "episodes=4", f"hydra.run.dir={out_dir}", *args]
    result = run_script("evaluate.py", args, cwd=out_dir.parent)
    assert result.returncode == 0, result.stderr
    return json.loads((out_dir / "evaluation.json").read_text())


def test_evaluate_matrix_game_reports_cooperation_and_its_conditional_table(trained_runs, tmp_path):
    self_play = evaluation(trained_runs["ipd"], tmp_path / "self_play")
    rate, _ = self_play["metrics"]["cooperation_rate"]
    assert len(rate) == 2 and all(0.0 <= r <= 1.0 for r in rate)
    table = self_play["conditional_cooperation"]
    assert set(table) == {"START", "CC", "CD", "DC", "DD"}
    assert all(len(row) == 2 for row in table.values())
    against_tft = evaluation(trained_runs["ipd"], tmp_path / "tft", "opponent=tft")
    assert len(against_tft["metrics"]["cooperation_rate"][0]) == 1  # the learner's seat only
    assert against_tft["opponent"] == "tft"
    again = run_script(
        "evaluate.py",
        [f"run_dir={trained_runs['ipd']}", f"hydra.run.dir={tmp_path / 'tft'}"],
        cwd=tmp_path,
    )
    assert again.returncode == 2 and "evaluation.json already exists" in again.stderr


def test_evaluate_cleanup_reports_social_metrics_and_counters_per_episode(trained_runs, tmp_path):
    metrics = evaluation(trained_runs["cleanup"], tmp_path / "eval")["metrics"]
    for name in ("efficiency", "equality", "sustainability", "peace", "collective_return"):
        assert np.isfinite(metrics[name][0]), name
    for counter in ("apples_eaten", "cleans", "fires", "hits_taken", "waste_cleaned"):
        assert len(metrics[f"total/{counter}"][0]) == 5, counter
    assert metrics["total/present"][0] == [16.0] * 5  # every agent on the map all 16 steps
    fires = sum(metrics["total/fires"][0])
    assert metrics["beam_use_rate"][0] == pytest.approx(fires / (16 * 5))
    assert "cooperation_rate" not in metrics  # Cleanup has no cooperative action


def test_evaluate_gathering_reports_beam_use_and_tag_outs(trained_runs, tmp_path):
    metrics = evaluation(trained_runs["gathering"], tmp_path / "eval")["metrics"]
    for counter in ("apples_eaten", "beam_uses", "hits_taken", "tagged_out", "present"):
        assert len(metrics[f"total/{counter}"][0]) == 2, counter
    present = sum(metrics["total/present"][0])
    beams = sum(metrics["total/beam_uses"][0])
    assert 0 < present <= 2 * 16
    assert 0 <= metrics["beam_use_rate"][0] <= 1
    assert 0 <= metrics["peace"][0] <= 2
    if metrics["peace"][1] == 0:  # the same number of agent-steps on the map in every episode
        assert metrics["beam_use_rate"][0] == pytest.approx(beams / present)


def co_play_table(
    run_dir: Path, out_dir: Path, opponents: str, *extra: str
) -> tuple[str, dict, dict]:
    """evaluate.py with `opponents=...` (and `extra` arguments) on 16 episodes: the printed
    header and column titles, the printed rows (co-player -> the numbers of its row) and
    evaluation.json."""
    args = [f"run_dir={run_dir}", "episodes=16", f"opponents={opponents}", *extra]
    result = run_script("evaluate.py", [*args, f"hydra.run.dir={out_dir}"], cwd=out_dir.parent)
    assert result.returncode == 0, result.stderr
    header, titles, *lines = result.stdout.splitlines()
    titles = f"{header}\n{titles}"
    number = r"-?\d+\.\d+|nan"
    rows = {line.split()[0]: [float(x) for x in re.findall(number, line)] for line in lines}
    return titles, rows, json.loads((out_dir / "evaluation.json").read_text())


def test_evaluate_plays_the_shared_coin_game_agent_against_every_co_player(trained_runs, tmp_path):
    titles, rows, saved = co_play_table(
        trained_runs["coin_game"], tmp_path / "eval", "all", "max_steps=5"
    )
    assert "16 episodes x 5 steps" in titles  # trained on 16-step episodes, evaluated on 5
    assert "own-coin fraction seat 0" in titles and "pickups/step seat 0" in titles
    assert list(rows) == ["self", "greedy", "cooperative", "random"]
    for name, numbers in rows.items():  # 4 columns, each mean ± standard error
        assert len(numbers) == 8 and all(map(math.isfinite, numbers)), name
    assert list(saved["co_play"]) == list(rows) and saved["opponents"] == "all"
    greedy = saved["co_play"]["greedy"]
    assert greedy["reward_per_step"][0][0] == pytest.approx(rows["greedy"][0], abs=5e-4)
    assert saved["co_play"]["cooperative"]["own_coin_fraction"][0][1] == 1.0  # its own coins only


def test_evaluate_plays_the_ipd_agent_against_fixed_strategies(trained_runs, tmp_path):
    titles, rows, saved = co_play_table(
        trained_runs["ipd"], tmp_path / "eval", "[self,allc,alld,tft]"
    )
    assert "cooperation seat 0" in titles and "cooperation co-player" in titles
    assert list(rows) == ["self", "allc", "alld", "tft"]
    assert all(len(numbers) == 8 and all(map(math.isfinite, numbers)) for numbers in rows.values())
    cooperation = {name: row["cooperation_rate"][0][1] for name, row in saved["co_play"].items()}
    assert cooperation["allc"] == 1.0 and cooperation["alld"] == 0.0


def test_a_co_player_that_does_not_fit_the_game_is_one_line_naming_the_allowed(
    trained_runs, tmp_path
):
    args = [f"run_dir={trained_runs['coin_game']}", "opponents=[self,tft]"]
    result = run_script("evaluate.py", [*args, f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 2
    expected = (
        "error: opponents: tft does not fit coin_game; allowed for coin_game: self, greedy, "
        "cooperative, random or all"
    )
    assert [line for line in result.stderr.splitlines() if line.strip()] == [expected]
    assert not (tmp_path / "eval" / "evaluation.json").exists()


@pytest.mark.parametrize(
    ("name", "overrides"), [("cleanup", TINY_CLEANUP), ("gathering", TINY_GATHERING)]
)
def test_render_writes_a_gif_of_the_checkpoint_playing(trained_runs, tmp_path, name, overrides):
    run_dir = trained_runs[name]
    out = tmp_path / "episode.gif"
    args = [f"run_dir={run_dir}", "steps=6", "scale=2", "seed=3", f"out={out}"]
    result = run_script("render.py", args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(7 frames)" in result.stdout
    frames = imageio.mimread(out)
    # the GIF writer merges identical consecutive frames into one longer frame: the 7 frames of
    # 1/8 s (fps 8, stored in whole centiseconds) may be fewer, but the episode plays for ~7/8 s
    with Image.open(out) as gif:
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
    assert 1 <= len(frames) == len(durations) <= 7
    assert sum(durations) == pytest.approx(7 * 1000 / 8, abs=7 * 10)
    env = build_env(compose_config(overrides).env)
    reset_key, _ = jax.random.split(jax.random.PRNGKey(3))
    expected_first = upscale(np.asarray(env.render(env.reset(reset_key)[1])), 2)
    np.testing.assert_array_equal(np.asarray(frames[0])[..., :3], expected_first)
    again = run_script("render.py", args, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
