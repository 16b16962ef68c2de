"""Gathering under scarcity: how often independent learners use the beam as apples get scarcer.

`python benchmarks/gathering_scarcity.py [--n-apple 2,10,50,200] [--algo ppo|dqn]
[algo.total_timesteps=...] [device=gpu] [overrides]` trains independent learners (PPO, or DQN as
in Leibo et al.; see configs/tuning/<algo>_gathering.yaml) on Gathering once per apple respawn
time `n_apple`, all for the same budget, and prints per episode (mean over the last 10 % of
updates and over seeds): the beam-use rate (beam actions per agent-step on the map), apples
eaten, tag-outs and the peace metric. Leibo et al. (2017) report that beam use rises as apples get
scarcer (larger n_apple). Writes the table as JSON and a plot of beam-use rate and apples against
n_apple (`gathering_scarcity.png`) next to the run directories, under `--out` (default
`benchmarks/results/gathering_scarcity/<time>/`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common import (
    RESULTS_DIR,
    Column,
    OneLineArgumentParser,
    TrainingRun,
    learning_benchmark,
    parse_command_line,
    positive_int_list,
)

DEFAULT_N_APPLE = "2,10,50,200"
COLUMNS = (
    Column("n_apple", "n_apple", "d"),
    Column("beam_use_rate", "beam-use rate", ".4f"),
    Column("apples", "apples eaten", ",.1f"),
    Column("tag_outs", "tag-outs", ",.2f"),
    Column("peace", "peace", ".3f"),
    Column("env_steps", "env steps", ",d"),
    Column("wall_s", "wall s", ".0f"),
)
PLOT_FILE = "gathering_scarcity.png"


ALGOS = ("ppo", "dqn")


def plot(results: list[dict], path: Path, algo: str) -> Path:
    """PNG of beam-use rate (left axis) and apples per episode (right axis) against n_apple."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_apple = [row["n_apple"] for row in results]
    figure, beam_axis = plt.subplots(figsize=(6, 4))
    beam_axis.plot(n_apple, [row["beam_use_rate"] for row in results], "o-", color="tab:red")
    beam_axis.set_xscale("log")
    beam_axis.set_xlabel("n_apple (apple respawn steps; larger = scarcer)")
    beam_axis.set_ylabel("beam-use rate", color="tab:red")
    apple_axis = beam_axis.twinx()
    apple_axis.plot(n_apple, [row["apples"] for row in results], "s--", color="tab:green")
    apple_axis.set_ylabel("apples eaten per episode", color="tab:green")
    beam_axis.set_title(f"Gathering: beam use against scarcity (independent {algo.upper()})")
    beam_axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def main(argv: Sequence[str]) -> None:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n-apple",
        type=positive_int_list,
        default=positive_int_list(DEFAULT_N_APPLE),
        help=f"comma-separated apple respawn times (default {DEFAULT_N_APPLE})",
    )
    parser.add_argument("--algo", choices=ALGOS, default="ppo", help="the learners (default ppo)")
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for the runs, the JSON and the plot (default "
        "benchmarks/results/gathering_scarcity/<time>)",
    )
    args, overrides = parse_command_line(parser, argv)
    base = args.out or RESULTS_DIR / "gathering_scarcity" / time.strftime("%Y-%m-%d_%H-%M-%S")
    runs = [
        TrainingRun(
            f"n_apple_{n_apple}",
            {"n_apple": n_apple},
            [f"algo={args.algo}", "env=gathering", *overrides, f"env.n_apple={n_apple}"],
        )
        for n_apple in args.n_apple
    ]
    late_columns = {
        "beam_use_rate": "social/beam_use_rate",
        "apples": "episode/apples_eaten",
        "tag_outs": "episode/tagged_out",
        "peace": "social/peace",
    }
    results = learning_benchmark("gathering_scarcity", runs, late_columns, COLUMNS, base)
    print(f"plot written to {plot(results, base / PLOT_FILE, args.algo)}")


if __name__ == "__main__":
    main(sys.argv[1:])
