"""BN-AC on coordination games: how often each graph reaches the optimal joint action.

`python benchmarks/bnac_coordination.py [--games bn3,bn5,climbing] [--dags empty,full,learned]
[num_seeds=10] [algo.total_timesteps=...] [device=gpu] [overrides]` trains `algo=bnac` with each
graph on each game, `num_seeds` vmapped seeds per run (the runner's seed axis), and prints per
(game, graph): the fraction of seeds that reach the optimal joint action and the mean return per
step (per agent; the team reward is shared), both over the last 10 % of updates. A seed "reaches
the optimum" when its late reward per step is at least 90 % of the optimal joint policy's
expected reward per step (all agents play 0: 2.216 for n = 3, 2.76464 for n = 5 with flip 0.1;
11 in the climbing game); the next-best joint policies give 1.704, 1.91136 and 7, all below that
line. Spec: specs/algos/bnac.md and acceptance.md section 5 (c) (expected order full >= learned >=
empty). Run directories stay under `benchmarks/results/bnac_coordination/<time>/<game>_<dag>`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence

from common import (
    RESULTS_DIR,
    Column,
    OneLineArgumentParser,
    format_table,
    names_from,
    parse_command_line,
    run_metadata,
    train_rows,
    write_json,
)

# game -> (env overrides, optimal expected reward per step per agent)
GAMES = {
    "bn3": (["env=bn_coordination", "env.num_agents=3"], 2.216),
    "bn5": (["env=bn_coordination", "env.num_agents=5"], 2.76464),
    "climbing": (["env=climbing"], 11.0),
}
DAGS = ("empty", "full", "learned")
REACHED_FRACTION = 0.9
COLUMNS = (
    Column("game", "game", ""),
    Column("dag", "dag", ""),
    Column("seeds", "seeds", "d"),
    Column("optimal_share", "seeds at optimum", ".2f"),
    Column("return_per_step", "return/step", ".3f"),
    Column("optimum", "optimum/step", ".3f"),
    Column("env_steps", "env steps/seed", ",d"),
    Column("wall_s", "wall s", ".0f"),
)


def late_reward_per_step(rows: list[dict], seed: int) -> float:
    """One seed's mean over agents of episode return / episode length, last 10 % of updates."""
    last = max(row["update"] for row in rows)
    values = []
    for row in rows:
        if row["seed"] != seed or row["update"] <= 0.9 * last:
            continue
        returns = [v for k, v in row.items() if k.startswith("episode/return/")]
        if row.get("episode/length") and all(v is not None for v in returns):
            values.append(statistics.fmean(returns) / row["episode/length"])
    return statistics.fmean(values)


def main(argv: Sequence[str]) -> None:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=names_from(tuple(GAMES)), default=list(GAMES))
    parser.add_argument("--dags", type=names_from(DAGS), default=list(DAGS))
    args, overrides = parse_command_line(parser, argv)
    base = RESULTS_DIR / "bnac_coordination" / time.strftime("%Y-%m-%d_%H-%M-%S")
    results = []
    for game in args.games:
        env_overrides, optimum = GAMES[game]
        for dag in args.dags:
            started = time.perf_counter()
            cfg, rows = train_rows(
                ["algo=bnac", *env_overrides, "num_seeds=10", *overrides, f"algo.dag={dag}"],
                base / f"{game}_{dag}",
            )
            seeds = sorted({row["seed"] for row in rows})
            per_seed = [late_reward_per_step(rows, seed) for seed in seeds]
            results.append(
                {
                    "game": game,
                    "dag": dag,
                    "seeds": len(seeds),
                    "optimal_share": statistics.fmean(
                        value >= REACHED_FRACTION * optimum for value in per_seed
                    ),
                    "return_per_step": statistics.fmean(per_seed),
                    "optimum": optimum,
                    "per_seed_return_per_step": per_seed,
                    "env_steps": max(row["env_steps"] for row in rows),
                    "wall_s": time.perf_counter() - started,
                    "run_dir": str(base / f"{game}_{dag}"),
                }
            )
            print(format_table(results[-1:], COLUMNS), flush=True)
    print(format_table(results, COLUMNS))
    out = base / "bnac_coordination.json"
    write_json(out, {**run_metadata(cfg, "bnac_coordination"), "rows": results})
    print(f"results written to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
