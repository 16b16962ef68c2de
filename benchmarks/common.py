"""Helpers shared by the benchmarks: command line, device, timing, training runs, tables, JSON.

A benchmark's command line is a few plain flags followed by Hydra overrides of the main config
(`configs/config.yaml`), e.g. `--num-envs 1,64 env=ipd device=gpu`. Bad input of any kind ends
with one `error: ...` line on stderr and exit code 2, as for `scripts/train.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from omegaconf import DictConfig, OmegaConf, open_dict

from marl.config import ConfigError
from marl.run.cli import CONFIG_DIR, check_command_line, check_keys, fail

REPO_DIR = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_DIR / "benchmarks" / "results"
BYTES_PER_MB = 2**20
KB_PER_MB = 2**10


class OneLineArgumentParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one `error: ...` line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        fail(message)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {value}")
    return value


def names_from(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """argparse type: a comma-separated, non-empty subset of `allowed`, e.g. `a,c`."""

    def parse(text: str) -> list[str]:
        chosen = [name for name in text.split(",") if name]
        unknown = [name for name in chosen if name not in allowed]
        if not chosen or unknown:
            raise argparse.ArgumentTypeError(
                f"must be a comma-separated list of {', '.join(allowed)}; got {text!r}"
            )
        return chosen

    return parse


def positive_int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers >= 1, e.g. `1,64,1024`."""
    return [positive_int(part) for part in text.split(",")]


def parse_command_line(
    parser: argparse.ArgumentParser, argv: Sequence[str]
) -> tuple[argparse.Namespace, list[str]]:
    """The flags of `parser` and the Hydra overrides that follow them on the command line."""
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides of configs/config.yaml, e.g. env=ipd"
    )
    args = parser.parse_intermixed_args(argv)
    return args, list(args.overrides)


def compose_config(overrides: list[str]) -> tuple[DictConfig, dict[str, str]]:
    """The config `scripts/train.py` would see for `overrides`, and the chosen config groups.

    Checks every key first (one line and exit 2 on a typo, a bad value or a missing group). The
    returned config has no `hydra` node; the choices map group names to options, e.g.
    `{"env": "ipd", "algo": "ppo", ...}`.
    """
    check_command_line(overrides, check_keys)
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("config", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as error:
        fail(str(error))
    choices = {
        group: str(option)
        for group, option in cfg.hydra.runtime.choices.items()
        if option is not None
    }
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def select_device_or_fail(platform: str) -> None:
    """`marl.run.devices.select_device`, with a missing device reported as one error line.

    Must run before JAX creates any array.
    """
    from marl.run.devices import select_device

    try:
        select_device(platform)
    except ConfigError as error:
        fail(str(error))


def call_or_fail(build: Callable[[], Any]) -> Any:
    """Run `build` (e.g. constructing the env); `ConfigError`/`ValueError` end in one line."""
    try:
        return build()
    except ValueError as error:  # ConfigError is a ValueError
        fail(str(error))


def wall_time(function: Callable[[], Any]) -> float:
    """Seconds that `function()` takes, waiting for every array it returns."""
    import jax

    started = time.perf_counter()
    jax.block_until_ready(function())
    return time.perf_counter() - started


def best_time(function: Callable[[], Any], repeats: int) -> float:
    """The fastest of `repeats` timed calls of `function`, after one untimed warm-up call."""
    wall_time(function)
    return min(wall_time(function) for _ in range(repeats))


def peak_memory_source() -> str:
    """What `peak_memory_mb` measures on the current device."""
    return "device peak_bytes_in_use" if _device_peak_bytes() is not None else "process max RSS"


def peak_memory_mb() -> float:
    """Peak memory so far in MB: the accelerator's peak bytes in use when JAX reports them
    (GPU), otherwise the process's maximum resident set size (CPU). Both only ever grow."""
    device_peak = _device_peak_bytes()
    if device_peak is not None:
        return device_peak / BYTES_PER_MB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KB_PER_MB


def _device_peak_bytes() -> int | None:
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    stats = device.memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def env_parameters(env: Any) -> dict[str, Any]:
    """The class, spaces and constructor fields of `env` (wrapped envs nested under `env`)."""
    description: dict[str, Any] = {
        "class": type(env).__name__,
        "num_agents": env.num_agents,
        "num_actions": env.num_actions,
        "obs_shape": list(env.obs_shape),
    }
    for field in dataclasses.fields(env):
        if not field.init:
            continue
        value = getattr(env, field.name)
        description[field.name] = (
            env_parameters(value) if dataclasses.is_dataclass(value) else value
        )
    return description


def device_description() -> dict[str, Any]:
    """The device JAX runs on: kind (e.g. `NVIDIA H100 80GB HBM3`), platform and count."""
    import jax

    devices = jax.devices()
    return {
        "device_kind": devices[0].device_kind,
        "platform": devices[0].platform,
        "device_count": len(devices),
    }


def git_commit() -> str | None:
    """`git rev-parse HEAD` of this repository, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_DIR, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def run_metadata(cfg: DictConfig, benchmark: str) -> dict[str, Any]:
    """What every results file records next to its rows: config, device, versions, time."""
    import jax

    return {
        "benchmark": benchmark,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "config": OmegaConf.to_container(cfg, resolve=True),
        "device": device_description(),
        "jax_version": jax.__version__,
        "git_commit": git_commit(),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "peak_memory_source": peak_memory_source(),
    }


def write_json(path: Path, results: dict[str, Any]) -> None:
    """Write `results` to `path` (creating its folder); non-JSON values become strings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_ready(results), indent=2, default=str) + "\n")


def _json_ready(value: Any) -> Any:
    """Tuples as lists and non-finite floats as null, so the file is strict JSON."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclasses.dataclass(frozen=True)
class Column:
    """One table column: the row key it shows, its header and a format spec for the value."""

    key: str
    header: str
    spec: str


def format_table(rows: list[dict[str, Any]], columns: Sequence[Column]) -> str:
    """Rows as a right-aligned text table, one line per row under a header line."""
    cells = [[format(row[column.key], column.spec) for column in columns] for row in rows]
    widths = [
        max(len(column.header), *(len(line[i]) for line in cells))
        for i, column in enumerate(columns)
    ]
    lines = [[column.header for column in columns], *cells]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in lines
    )


def late_mean(rows: list[dict], column: str) -> float:
    """Mean of `column` over seeds and the last 10 % of updates (episodes that ended there)."""
    last = max(row["update"] for row in rows)
    values = [
        row[column] for row in rows if row["update"] > 0.9 * last and row.get(column) is not None
    ]
    return statistics.fmean(values) if values else math.nan


def summed_over_agents(rows: list[dict], prefix: str) -> list[dict]:
    """Rows with `prefix` = the sum of its per-agent columns `prefix/i` (None if one is None);
    rows without such columns are returned as they are."""
    out = []
    for row in rows:
        parts = [v for k, v in row.items() if k.startswith(prefix + "/")]
        if parts:
            row = {**row, prefix: None if any(v is None for v in parts) else sum(parts)}
        out.append(row)
    return out


def train_rows(overrides: list[str], run_dir: Path) -> tuple[DictConfig, list[dict]]:
    """Train with the main config and `overrides` into `run_dir`; returns the config and the
    run's metric rows (one per update and seed). Exits with the trainer's code if it fails."""
    from marl.run.cli import train_job
    from marl.run.logging import read_rows

    cfg, _ = compose_config(overrides)
    exit_code = train_job(cfg, Path(run_dir))
    if exit_code:
        sys.exit(exit_code)
    return cfg, read_rows(run_dir)


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """One run of a learning benchmark: its directory `name`, the `labels` that start its table
    row, and the Hydra `overrides` it trains with."""

    name: str
    labels: dict[str, Any]
    overrides: list[str]


def learning_benchmark(
    benchmark: str,
    runs: Sequence[TrainingRun],
    late_columns: dict[str, str],
    columns: Sequence[Column],
    base: Path,
) -> list[dict[str, Any]]:
    """Train every run into `base/<name>` and tabulate it: per row the labels, then for each
    `late_columns` entry (row key -> metrics column) the `late_mean` of that column (per-agent
    columns `column/i` summed first), the env steps, the wall time and the run directory. Prints
    each row as it finishes and the whole table at the end; writes `base/<benchmark>.json`."""
    results = []
    for run in runs:
        run_dir = base / run.name
        started = time.perf_counter()
        cfg, rows = train_rows(run.overrides, run_dir)
        for column in late_columns.values():
            rows = summed_over_agents(rows, column)
        results.append(
            {
                **run.labels,
                **{key: late_mean(rows, column) for key, column in late_columns.items()},
                "env_steps": max(row["env_steps"] for row in rows),
                "wall_s": time.perf_counter() - started,
                "run_dir": str(run_dir),
            }
        )
        print(format_table(results[-1:], columns), flush=True)
    print(format_table(results, columns))
    out = base / f"{benchmark}.json"
    write_json(out, {**run_metadata(cfg, benchmark), "rows": results})
    print(f"results written to {out}")
    return results
