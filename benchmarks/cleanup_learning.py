"""The Cleanup social dilemma, measured: PPO with collective and with individual rewards, and AA.

`python benchmarks/cleanup_learning.py [--runs collective,individual,aa] [algo.total_timesteps=...]
[device=gpu] [overrides]` trains on Cleanup for the same budget: PPO once per reward mode and
Proximal Advantage Alignment (`algo=aa`, individual rewards, `tuning/aa_cleanup.yaml`), and prints
per episode (mean over the last 10 % of updates and over seeds): the collective return, apples
eaten and cleaning actions. Expected shape: collective reward -> agents clean and harvest;
individual reward -> nobody cleans and the orchard stays empty; AA is the opponent-shaping answer
to the dilemma with individual rewards. The overrides apply to every run. Each run keeps its run
directory under `benchmarks/results/cleanup_learning/<time>/<run>` (config, metrics, checkpoint,
curve).
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
    names_from,
    parse_command_line,
)

# run name -> (algo, reward mode)
RUNS = {
    "collective": ("ppo", "collective"),
    "individual": ("ppo", "individual"),
    "aa": ("aa", "individual"),
}
COLUMNS = (
    Column("algo", "algo", ""),
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
    parser.add_argument(
        "--runs",
        type=names_from(tuple(RUNS)),
        default=list(RUNS),
        help=f"comma-separated runs among {','.join(RUNS)} (default: all)",
    )
    args, overrides = parse_command_line(parser, argv)
    runs = [
        TrainingRun(
            name,
            {"algo": RUNS[name][0], "reward_mode": RUNS[name][1]},
            [
                f"algo={RUNS[name][0]}",
                "env=cleanup",
                *overrides,
                f"algo.reward_mode={RUNS[name][1]}",
            ],
        )
        for name in args.runs
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
