"""The shared runner on a stand-in trainer: NaN guard, checkpoints, interrupts, metric rows."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np

from marl.run.checkpoint import Checkpoints
from marl.run.experiment import RunSettings
from marl.run.logging import MetricsLog, read_rows
from marl.run.runner import Outcome, Runner

NO_BACKENDS = SimpleNamespace(tensorboard=False, wandb=False)


class CountingTrainer:
    """Adds 1 to a counter per update; its loss turns NaN at update `nan_at` (1-based)."""

    num_updates = 12
    env_steps_per_update = 5

    def __init__(self, nan_at: int | None = None):
        self.nan_at = nan_at

    def init(self, key):
        return {"count": jnp.zeros((), jnp.int32), "key": key}

    def update(self, state):
        count = state["count"] + 1
        loss = jnp.where(count == (self.nan_at or -1), jnp.nan, count.astype(jnp.float32))
        metrics = {
            "loss/total": loss,
            "episode/collective_return": count.astype(jnp.float32),
            "episode/return": jnp.stack([count, 2 * count]).astype(jnp.float32),
        }
        return {"count": count, "key": state["key"]}, metrics


def run(tmp_path, trainer, **settings):
    settings = RunSettings(**{"updates_per_chunk": 3, "progress": False, **settings})
    log = MetricsLog(tmp_path, NO_BACKENDS, "test", {})
    try:
        return Runner(trainer, settings, tmp_path, log).run()
    finally:
        log.close()


def test_rows_per_update_and_seed_with_per_agent_columns(tmp_path):
    assert run(tmp_path, CountingTrainer(), num_seeds=2, seed=5) is Outcome.FINISHED
    rows = read_rows(tmp_path)
    assert [(r["update"], r["seed"]) for r in rows][:4] == [(1, 5), (1, 6), (2, 5), (2, 6)]
    assert len(rows) == 24
    assert rows[-1]["episode/return/1"] == 24.0 and rows[-1]["env_steps"] == 60
    assert Checkpoints(tmp_path).latest_step() == 12


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    outcome = run(tmp_path, CountingTrainer(nan_at=8))
    assert outcome is Outcome.NON_FINITE
    assert "non-finite loss at update 8" in capsys.readouterr().err
    checkpoints = Checkpoints(tmp_path)
    assert checkpoints.latest_step() == 6
    template = jax.vmap(CountingTrainer().init)(jnp.zeros((1, 2), jnp.uint32))
    restored = checkpoints.restore(6, template)
    np.testing.assert_array_equal(restored["count"], [6])
    assert max(row["update"] for row in read_rows(tmp_path)) == 6


class InterruptingLog(MetricsLog):
    """Sends this process SIGINT right after the first chunk is logged."""

    def write(self, rows, extra_scalars):
        super().write(rows, extra_scalars)
        if rows[0]["update"] == 1:
            os.kill(os.getpid(), signal.SIGINT)


def test_sigint_saves_after_the_chunk_and_resume_completes_identically(tmp_path):
    settings = RunSettings(updates_per_chunk=3, progress=False, checkpoint_every=100)
    log = InterruptingLog(tmp_path / "a", NO_BACKENDS, "a", {})
    assert Runner(CountingTrainer(), settings, tmp_path / "a", log).run() is Outcome.INTERRUPTED
    assert Checkpoints(tmp_path / "a").latest_step() == 3
    resumed = RunSettings(updates_per_chunk=3, progress=False, resume=True)
    log = MetricsLog(tmp_path / "a", NO_BACKENDS, "a", {})
    assert Runner(CountingTrainer(), resumed, tmp_path / "a", log).run() is Outcome.FINISHED
    assert run(tmp_path / "b", CountingTrainer()) is Outcome.FINISHED
    assert read_rows(tmp_path / "a") == read_rows(tmp_path / "b")
