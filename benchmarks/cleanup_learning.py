"""The Cleanup social dilemma, measured: PPO with collective and with individual rewards.

`python benchmarks/cleanup_learning.py [algo.total_timesteps=...] [device=gpu] [overrides]`
trains PPO on Cleanup twice for the same budget, once per reward mode, and prints per episode
(mean over the last 10 % of updates and over seeds): the collective return, apples eaten and
cleaning actions. Expected shape: collective reward -> agents clean and harvest; individual
reward -> nobody cleans and the orchard stays empty. Each run keeps its run directory under
`benchmarks/results/cleanup_learning/<time>/<mode>` (config, metrics, checkpoint, curve).
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common import (
    RESULTS_DIR,
    Column,
    OneLineArgumentParser,
    compose_config,
    format_table,
    parse_command_line,
    run_metadata,
    write_json,
)

REWARD_MODES = ("collective", "individual")
COLUMNS = (
    Column("reward_mode", "reward mode", ""),
    Column("collective_return", "collective return", ",.1f"),
    Column("apples", "apples eaten", ",.1f"),
    Column("cleans", "cleaning actions", ",.1f"),
    Column("waste_cleaned", "waste cleaned", ",.1f"),
    Column("env_steps", "env steps", ",d"),
    Column("wall_s", "wall s", ".0f"),
)


def late_mean(rows: list[dict], column: str) -> float:
    """Mean of `column` over seeds and the last 10 % of updates (episodes that ended there)."""
    last = max(row["update"] for row in rows)
    values = [
        row[column] for row in rows if row["update"] > 0.9 * last and row.get(column) is not None
    ]
    return statistics.fmean(values) if values else math.nan


def summed_over_agents(rows: list[dict], prefix: str) -> list[dict]:
    """Rows with `prefix` = the sum of its per-agent columns `prefix/i`."""
    out = []
    for row in rows:
        parts = [v for k, v in row.items() if k.startswith(prefix + "/")]
        total = None if any(v is None for v in parts) or not parts else sum(parts)
        out.append({**row, prefix: total})
    return out


def main(argv: Sequence[str]) -> None:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    _, overrides = parse_command_line(parser, argv)
    from marl.run.cli import train_job
    from marl.run.logging import read_rows

    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    base = RESULTS_DIR / "cleanup_learning" / stamp
    results = []
    for mode in REWARD_MODES:
        cfg, _ = compose_config(["algo=ppo", "env=cleanup", *overrides, f"algo.reward_mode={mode}"])
        run_dir = base / mode
        started = time.perf_counter()
        exit_code = train_job(cfg, Path(run_dir))
        if exit_code:
            sys.exit(exit_code)
        rows = read_rows(run_dir)
        for prefix in ("episode/apples", "episode/cleans", "episode/waste_cleaned"):
            rows = summed_over_agents(rows, prefix)
        results.append(
            {
                "reward_mode": mode,
                "collective_return": late_mean(rows, "episode/collective_return"),
                "apples": late_mean(rows, "episode/apples"),
                "cleans": late_mean(rows, "episode/cleans"),
                "waste_cleaned": late_mean(rows, "episode/waste_cleaned"),
                "env_steps": max(row["env_steps"] for row in rows),
                "wall_s": time.perf_counter() - started,
                "run_dir": str(run_dir),
            }
        )
        print(format_table(results[-1:], COLUMNS), flush=True)
    print(format_table(results, COLUMNS))
    out = base / "cleanup_learning.json"
    write_json(out, {**run_metadata(cfg, "cleanup_learning"), "rows": results})
    print(f"results written to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
