"""Shared test helpers: composing the real Hydra config and running tiny trainings in-process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from marl.run.cli import CONFIG_DIR, train_job
from marl.run.devices import enable_compilation_cache

REPO = Path(__file__).resolve().parents[1]
TINY_PPO = [
    "algo.total_timesteps=800",
    "algo.num_envs=4",
    "algo.num_steps=20",
    "algo.num_minibatches=2",
    "algo.update_epochs=1",
    "run.updates_per_chunk=2",
    "run.progress=false",
]


def compose_config(overrides: list[str]):
    """The config `scripts/train.py` would see for these command-line overrides."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def read_metrics(run_dir: Path) -> list[dict]:
    with (Path(run_dir) / "metrics.jsonl").open() as handle:
        return [json.loads(line) for line in handle]


def assert_resume_reproduces(run_dir: Path, overrides: list[str], lost_steps=(3, 4)) -> None:
    """Delete the checkpoints of `lost_steps` (as if the run had stopped before them), resume the
    run in `run_dir` with `overrides`, and check that its metrics equal the uninterrupted run's."""
    reference = read_metrics(run_dir)
    for step in lost_steps:
        shutil.rmtree(Path(run_dir) / "checkpoints" / str(step))
    assert train_job(compose_config([*overrides, "resume=true"]), run_dir) == 0
    assert read_metrics(run_dir) == reference


def run_script(script: str, args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    """Run `scripts/<script>` with `args` in a subprocess, capturing text output."""
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


@pytest.fixture(scope="session", autouse=True)
def session_compilation_cache(tmp_path_factory):
    """One JAX compilation cache for the session, in-process and in subprocesses alike, so the
    same tiny programs compile once; it starts empty, so the tests stay hermetic."""
    directory = tmp_path_factory.mktemp("jax-compilation-cache")
    os.environ["MARL_COMPILATION_CACHE"] = str(directory)
    enable_compilation_cache(str(directory))
    return directory
