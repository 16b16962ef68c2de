"""The training loop every algorithm shares: seeds, jitted chunks, checkpoints, logs, interrupts.

`init` and `update` are vmapped over `num_seeds` keys inside one compiled program; `update_chunk`
scans `update` for `updates_per_chunk` iterations. Between chunks the host advances the progress
bar, writes metrics, saves a checkpoint and reacts to NaN or Ctrl-C (SIGINT/SIGTERM) with the last
good checkpoint kept. A trainer with a `host_metrics(metrics)` method adds host-side metrics
(numpy, `[updates, seeds, ...]`) to every chunk's before they are logged.
"""

from __future__ import annotations

import contextlib
import enum
import math
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import tqdm

from marl.run.checkpoint import Checkpoints
from marl.run.experiment import RunSettings
from marl.run.logging import MetricsLog, chunk_rows

LOSS_METRIC = "loss/total"
# What the progress bar shows: the collective episode return, or for continuing tasks (no
# episodes) the mean reward per agent step, under these labels.
RETURN_METRIC, CONTINUING_METRIC = "episode/collective_return", "rollout/reward"


class Outcome(enum.Enum):
    """How a training run ended; `exit_code` is what `scripts/train.py` returns."""

    FINISHED = 0
    INTERRUPTED = 130
    NON_FINITE = 3

    @property
    def exit_code(self) -> int:
        return self.value


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """PRNG keys `[num_seeds, 2]`; run i uses seed + i, so vmapped seeds equal separate runs."""
    return jnp.stack([jax.random.PRNGKey(seed + i) for i in range(num_seeds)])


def shard_over_seeds(tree: Any, num_seeds: int) -> Any:
    """Spread the leading seed axis over all devices when it divides evenly (else leave as is)."""
    devices = jax.devices()
    if len(devices) == 1 or num_seeds % len(devices):
        return tree
    sharding = NamedSharding(Mesh(np.array(devices), ("seeds",)), PartitionSpec("seeds"))
    return jax.device_put(tree, sharding)


class StopRequest:
    """Set by SIGINT/SIGTERM while a chunk runs; a second signal aborts at once."""

    def __init__(self) -> None:
        self.requested = False

    def handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\n{signal.Signals(signum).name}: saving a checkpoint after the current chunk "
            "(send it again to abort without saving)",
            file=sys.stderr,
        )


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Route SIGINT and SIGTERM to a `StopRequest` for the duration of the block."""
    request = StopRequest()
    previous = {sig: signal.signal(sig, request.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Runner:
    """Runs `trainer` for its `num_updates` in `run_dir` according to `settings`."""

    def __init__(self, trainer: Any, settings: RunSettings, run_dir: Path, log: MetricsLog):
        self.trainer = trainer
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.log = log
        self.num_updates = trainer.num_updates
        self.env_steps_per_update = trainer.env_steps_per_update
        self._init_one = jax.jit(trainer.init)
        self._chunk = jax.jit(self._update_chunk, static_argnums=1, donate_argnums=0)

    def _update_chunk(self, state: Any, length: int) -> tuple[Any, dict[str, jax.Array]]:
        """`length` updates of every seed: metrics come back `[length, num_seeds, ...]`."""
        return jax.lax.scan(lambda s, _: jax.vmap(self.trainer.update)(s), state, None, length)

    def _init(self, keys: jax.Array) -> Any:
        """Initial states of every seed, stacked `[num_seeds, ...]`.

        Seeds are initialised one by one (one compiled program, called per key) rather than
        vmapped: batched QR decompositions in orthogonal initialisers are very slow on CPU.
        """
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *[self._init_one(k) for k in keys])

    def initial_state(self, checkpoints: Checkpoints) -> tuple[Any, int]:
        """A fresh state, or the latest checkpoint's when resuming; with the updates done."""
        keys = seed_keys(self.settings.seed, self.settings.num_seeds)
        if not self.settings.resume:
            return shard_over_seeds(self._init(keys), self.settings.num_seeds), 0
        updates_done = checkpoints.latest_step()
        template = jax.eval_shape(jax.vmap(self.trainer.init), keys)
        state = checkpoints.restore(updates_done, template)
        self.log.truncate(updates_done)
        return shard_over_seeds(state, self.settings.num_seeds), updates_done

    def run(self) -> Outcome:
        """Train to the end, or until a NaN or a stop signal; always leaves a good checkpoint."""
        settings = self.settings
        checkpoints = Checkpoints(self.run_dir, settings.keep_checkpoints)
        total_steps = self.num_updates * self.env_steps_per_update
        try:
            state, updates_done = self.initial_state(checkpoints)
            progress = tqdm(
                total=total_steps,
                initial=updates_done * self.env_steps_per_update,
                unit="step",
                unit_scale=True,
                dynamic_ncols=True,
                disable=not settings.progress,
                desc="env steps",
            )
            with progress, stop_on_signals() as stop:
                chunks_done = 0
                last_return = math.nan  # the bar keeps it through chunks where no episode ended
                while updates_done < self.num_updates:
                    length = min(settings.updates_per_chunk, self.num_updates - updates_done)
                    started = time.perf_counter()
                    state, metrics = self._chunk(state, length)
                    metrics = jax.device_get(metrics)
                    if hasattr(self.trainer, "host_metrics"):
                        metrics.update(self.trainer.host_metrics(metrics))
                    elapsed = time.perf_counter() - started
                    if not np.all(np.isfinite(metrics[LOSS_METRIC])):
                        return self._report_non_finite(metrics, updates_done, checkpoints)
                    steps = length * self.env_steps_per_update * settings.num_seeds
                    rows = chunk_rows(
                        metrics, updates_done, self.env_steps_per_update, settings.seed
                    )
                    self.log.write(rows, {"charts/sps": steps / elapsed})
                    updates_done += length
                    chunks_done += 1
                    last = updates_done == self.num_updates
                    if last or stop.requested or chunks_done % settings.checkpoint_every == 0:
                        checkpoints.save(updates_done, state)
                    progress.update(length * self.env_steps_per_update)
                    shown = RETURN_METRIC if RETURN_METRIC in metrics else CONTINUING_METRIC
                    chunk_return = _nanmean(metrics[shown])
                    if math.isfinite(chunk_return):
                        last_return = chunk_return
                    label = "ret" if shown == RETURN_METRIC else "reward"
                    progress.set_postfix(
                        {"sps": f"{steps / elapsed:,.0f}", label: f"{last_return:.3g}"}
                    )
                    if stop.requested and not last:
                        print(
                            f"stopped after {updates_done} of {self.num_updates} updates; "
                            f"checkpoint saved in {checkpoints.directory}; continue with "
                            f"resume=true hydra.run.dir={self.run_dir}",
                            file=sys.stderr,
                        )
                        return Outcome.INTERRUPTED
            return Outcome.FINISHED
        finally:
            checkpoints.close()

    def _report_non_finite(
        self, metrics: dict[str, np.ndarray], updates_done: int, checkpoints: Checkpoints
    ) -> Outcome:
        losses = metrics[LOSS_METRIC].reshape(len(metrics[LOSS_METRIC]), -1)  # [updates, seeds...]
        first_bad = int(np.argmax(~np.all(np.isfinite(losses), axis=1)))
        bad_update = updates_done + 1 + first_bad
        kept = checkpoints.latest_step()
        where = (
            f"the checkpoint at update {kept} is kept" if kept else "no checkpoint was saved yet"
        )
        print(
            f"error: non-finite loss at update {bad_update}; stopped, {where} in "
            f"{checkpoints.directory} (lower algo.lr or check the rewards)",
            file=sys.stderr,
        )
        return Outcome.NON_FINITE


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan
