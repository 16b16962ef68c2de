"""Orbax checkpoints of the whole train state (parameters, optimiser, env states, RNG, counter)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

# Orbax reports every save step at INFO through absl; keep the run log for our own messages.
logging.getLogger("absl").setLevel(logging.WARNING)


class Checkpoints:
    """Checkpoints in `<run_dir>/checkpoints`, indexed by the number of updates done."""

    def __init__(self, run_dir: Path, keep: int = 2):
        self.directory = (Path(run_dir) / "checkpoints").absolute()
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )

    def latest_step(self) -> int | None:
        """Updates done at the newest complete checkpoint, or None if there is none."""
        return self.manager.latest_step()

    def save(self, updates_done: int, state: Any) -> None:
        """Save `state` and wait until it is on disk (a half-written checkpoint is never latest)."""
        self.manager.save(updates_done, args=ocp.args.StandardSave(state))
        self.manager.wait_until_finished()

    def restore(self, updates_done: int, template: Any) -> Any:
        """Restore the checkpoint `updates_done` into the structure and shardings of `template`."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        return self.manager.restore(updates_done, args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        self.manager.close()


def has_checkpoint(run_dir: Path) -> bool:
    """Whether `run_dir` holds at least one complete checkpoint (without creating anything)."""
    directory = Path(run_dir) / "checkpoints"
    return directory.is_dir() and any(
        child.is_dir() and child.name.isdigit() for child in directory.iterdir()
    )
