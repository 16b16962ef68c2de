"""The Cleanup social dilemma, measured: PPO with collective and with individual rewards.

`python benchmarks/cleanup_learning.py [algo.total_timesteps=...] [device=gpu] [overrides]`
trains PPO on Cleanup twice for the same budget, once per reward mode, and prints per episode
(mean over the last 10 % of updates and over seeds): the collective return, apples eaten and
cleaning actions. Expected shape: collective reward -> agents clean and harvest; individual
reward -> nobody cleans and the orchard stays empty. Each run keeps its run directory under
`benchmarks/results/cleanup_learning/<time>/<mode>` (config, metrics, checkpoint, curve).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from common import (
    RESULTS_DIR,
    Column,
    OneLineArgumentParser,
    format_table,
    late_mean,
    parse_command_line,
    run_metadata,
    summed_over_agents,
    train_rows,
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


def main(argv: Sequence[str]) -> None:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    _, overrides = parse_command_line(parser, argv)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    base = RESULTS_DIR / "cleanup_learning" / stamp
    results = []
    for mode in REWARD_MODES:
        run_dir = base / mode
        started = time.perf_counter()
        cfg, rows = train_rows(
            ["algo=ppo", "env=cleanup", *overrides, f"algo.reward_mode={mode}"], run_dir
        )
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
