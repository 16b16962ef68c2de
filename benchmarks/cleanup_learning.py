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
    TrainingRun,
    learning_benchmark,
    parse_command_line,
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
    runs = [
        TrainingRun(
            mode,
            {"reward_mode": mode},
            ["algo=ppo", "env=cleanup", *overrides, f"algo.reward_mode={mode}"],
        )
        for mode in REWARD_MODES
    ]
    late_columns = {
        "collective_return": "episode/collective_return",
        "apples": "episode/apples",
        "cleans": "episode/cleans",
        "waste_cleaned": "episode/waste_cleaned",
    }
    base = RESULTS_DIR / "cleanup_learning" / time.strftime("%Y-%m-%d_%H-%M-%S")
    learning_benchmark("cleanup_learning", runs, late_columns, COLUMNS, base)


if __name__ == "__main__":
    main(sys.argv[1:])
