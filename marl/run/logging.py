"""Metric logging: JSONL and CSV in the run directory always; TensorBoard and wandb on request.

A row is one (update, seed): `{"update", "seed", "env_steps", <metric>: value, ...}` where a
per-agent metric `name` of shape `[N]` becomes the columns `name/0 .. name/N-1`. NaN (no episode
ended in that update) is written as null in JSONL and as an empty cell in CSV.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

METRICS_FILE = "metrics.jsonl"
CSV_FILE = "metrics.csv"


def flatten_metrics(metrics: dict[str, np.ndarray]) -> dict[str, float]:
    """Scalar columns from metric arrays of any shape (`name/i/j` for element [i, j])."""
    columns = {}
    for name, value in metrics.items():
        value = np.asarray(value, dtype=np.float64)
        if value.ndim == 0:
            columns[name] = float(value)
        else:
            for index in np.ndindex(value.shape):
                columns[f"{name}/{'/'.join(map(str, index))}"] = float(value[index])
    return columns


def chunk_rows(
    metrics: dict[str, np.ndarray], first_update: int, env_steps_per_update: int, base_seed: int
) -> list[dict[str, Any]]:
    """Rows for a chunk of metrics shaped `[updates, seeds, ...]` (host numpy arrays)."""
    num_updates, num_seeds = next(iter(metrics.values())).shape[:2]
    rows = []
    for u in range(num_updates):
        update = first_update + u + 1
        for s in range(num_seeds):
            row = {
                "update": update,
                "seed": base_seed + s,
                "env_steps": update * env_steps_per_update,
            }
            row.update(flatten_metrics({k: v[u, s] for k, v in metrics.items()}))
            rows.append(row)
    return rows


def _json_value(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    """All rows of `metrics.jsonl` in `run_dir` (empty if there is none)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class MetricsLog:
    """Appends rows to JSONL and CSV; forwards seed-mean scalars to the optional backends."""

    def __init__(self, run_dir: Path, logger_cfg: Any, run_name: str, config: dict[str, Any]):
        self.run_dir = Path(run_dir)
        self.jsonl_path = self.run_dir / METRICS_FILE
        self.csv_path = self.run_dir / CSV_FILE
        self.columns: list[str] | None = None
        self.tensorboard = None
        self.wandb_run = None
        if logger_cfg.tensorboard:
            from tensorboardX import SummaryWriter

            self.tensorboard = SummaryWriter(str(self.run_dir / "tensorboard"))
        if logger_cfg.wandb:
            import wandb

            self.wandb_run = wandb.init(
                project=logger_cfg.wandb_project,
                entity=logger_cfg.wandb_entity,
                mode=logger_cfg.wandb_mode,
                name=run_name,
                dir=str(self.run_dir),
                config=config,
                resume="allow",
                id=run_name.replace("/", "_"),
            )

    def truncate(self, updates_done: int) -> None:
        """Drop rows past `updates_done` (logged after the checkpoint a run resumes from)."""
        kept = [row for row in read_rows(self.run_dir) if row["update"] <= updates_done]
        _write_atomically(self.jsonl_path, "".join(json.dumps(row) + "\n" for row in kept))
        self.columns = None
        if self.csv_path.exists():
            self.csv_path.unlink()
        self._append_csv(kept)

    def _append_csv(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.columns is None:
            self.columns = list(rows[0])
            new_file = not self.csv_path.exists()
        else:
            new_file = False
        with self.csv_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if _json_value(v) is None else v) for k, v in row.items()})

    def write(self, rows: list[dict[str, Any]], extra_scalars: dict[str, float]) -> None:
        """Append `rows`; send seed means (and `extra_scalars` such as charts/sps) to backends."""
        with self.jsonl_path.open("a") as handle:
            for row in rows:
                handle.write(json.dumps({k: _json_value(v) for k, v in row.items()}) + "\n")
        self._append_csv(rows)
        if self.tensorboard is None and self.wandb_run is None:
            return
        for update, means in seed_means(rows).items():
            scalars = {**means, **extra_scalars}
            step = int(scalars.pop("env_steps"))
            if self.tensorboard is not None:
                for name, value in scalars.items():
                    if math.isfinite(value):
                        self.tensorboard.add_scalar(name, value, step)
            if self.wandb_run is not None:
                self.wandb_run.log({**scalars, "env_steps": step, "update": update}, step=step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


def seed_means(rows: Iterable[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """update -> {column: NaN-aware mean over seeds} (excluding the update and seed columns)."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["update"], []).append(row)
    means = {}
    for update, group in grouped.items():
        columns = [c for c in group[0] if c not in ("update", "seed")]
        means[update] = {c: _nanmean([row[c] for row in group]) for c in columns}
    return means


def _nanmean(values: list[Any]) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(finite) / len(finite) if finite else math.nan
