"""Training throughput: env steps/s of a trainer's jitted update chunk, as the runner runs it.

    python benchmarks/train_throughput.py [--updates 10] [--repeats 3] [--out PATH]
        algo=ppo env=ipd [num_seeds=4] [algo.num_envs=64 ...] [device=gpu]

Builds the env and trainer from the config like `scripts/train.py`, then jits the runner's chunk:
a `lax.scan` over `--updates` updates of `jax.vmap(trainer.update)` over `num_seeds` seeds (the
seed axis sharded over devices as the runner does). Reported: the chunk's compile time, then the
best of `--repeats` runs after a warm-up, each starting from the same initial state (so every run
does the same updates, within the trainer's schedule): training env steps/s (env steps per update
x updates x seeds / wall time), agent steps/s and updates/s. The table is printed and the results
written as JSON (default `benchmarks/results/train_throughput_<algo>_<env>_<platform>.json`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
from common import (
    RESULTS_DIR,
    Column,
    OneLineArgumentParser,
    best_time,
    call_or_fail,
    compose_config,
    env_parameters,
    format_table,
    parse_command_line,
    peak_memory_mb,
    positive_int,
    run_metadata,
    select_device_or_fail,
    write_json,
)

from marl.run.cli import fail

if TYPE_CHECKING:
    from marl.run.experiment import RunSettings

COLUMNS = (
    Column("num_seeds", "seeds", "d"),
    Column("env_steps_per_update", "env steps/update", ",d"),
    Column("updates", "updates", "d"),
    Column("env_steps_per_s", "env steps/s", ",.0f"),
    Column("agent_steps_per_s", "agent steps/s", ",.0f"),
    Column("updates_per_s", "updates/s", ",.2f"),
    Column("compile_s", "compile s", ".2f"),
    Column("chunk_s", "chunk s", ".3f"),
    Column("peak_memory_mb", "peak MB", ",.1f"),
)


def build_parser() -> OneLineArgumentParser:
    """The plain flags; Hydra overrides of the main config follow them."""
    parser = OneLineArgumentParser(
        description="Training env steps/s of an algorithm's jitted, seed-vmapped update chunk."
    )
    parser.add_argument(
        "--updates", type=positive_int, default=10, help="updates per timed chunk (default 10)"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=3, help="timed chunks, best kept (default 3)"
    )
    parser.add_argument("--out", type=Path, help="JSON results path")
    return parser


def measure(
    trainer: Any, num_agents: int, settings: RunSettings, num_updates: int, repeats: int
) -> dict[str, float]:
    """The table row: compile time and throughput of `num_updates` updates of every seed."""
    from marl.run.runner import seed_keys, shard_over_seeds

    def update_chunk(state: Any) -> tuple[Any, dict[str, jax.Array]]:
        return jax.lax.scan(lambda s, _: jax.vmap(trainer.update)(s), state, None, num_updates)

    keys = seed_keys(settings.seed, settings.num_seeds)
    initial_state = shard_over_seeds(jax.jit(jax.vmap(trainer.init))(keys), settings.num_seeds)
    started = time.perf_counter()
    chunk = jax.jit(update_chunk).lower(initial_state).compile()
    compile_seconds = time.perf_counter() - started
    chunk_seconds = best_time(lambda: chunk(initial_state), repeats)

    env_steps = trainer.env_steps_per_update * num_updates * settings.num_seeds
    return {
        "num_seeds": settings.num_seeds,
        "num_agents": num_agents,
        "env_steps_per_update": trainer.env_steps_per_update,
        "updates": num_updates,
        "env_steps_per_s": env_steps / chunk_seconds,
        "agent_steps_per_s": env_steps * num_agents / chunk_seconds,
        "updates_per_s": num_updates / chunk_seconds,
        "compile_s": compile_seconds,
        "chunk_s": chunk_seconds,
        "peak_memory_mb": peak_memory_mb(),
    }


def main(argv: Sequence[str]) -> None:
    """Measure the configured trainer, print the table and write the JSON results."""
    args, overrides = parse_command_line(build_parser(), argv)
    cfg, choices = compose_config(overrides)
    select_device_or_fail(cfg.device.platform)
    from marl.run.experiment import build_env, build_trainer, run_settings  # device chosen

    settings = call_or_fail(lambda: run_settings(cfg))
    env = call_or_fail(lambda: build_env(cfg.env))
    trainer = call_or_fail(lambda: build_trainer(cfg.algo, env))
    if args.updates > trainer.num_updates:
        fail(
            f"--updates {args.updates} is more than the {trainer.num_updates} updates of the "
            f"training budget (algo.total_timesteps / {trainer.env_steps_per_update} env steps "
            "per update); lower --updates or raise algo.total_timesteps"
        )
    algo_id = choices.get("algo", cfg.algo.name)
    env_id = choices.get("env", cfg.env.name)
    out = args.out or (
        RESULTS_DIR / f"train_throughput_{algo_id}_{env_id}_{cfg.device.platform}.json"
    )
    results = run_metadata(cfg, "train_throughput")
    print(
        f"algo={algo_id} env={env_id} ({env.num_agents} agents), device "
        f"{results['device']['device_kind']}",
        flush=True,
    )
    rows = [measure(trainer, env.num_agents, settings, args.updates, args.repeats)]
    print(format_table(rows, COLUMNS))
    write_json(
        out,
        {**results, "algo_id": algo_id, "env_id": env_id, "env": env_parameters(env), "rows": rows},
    )
    print(f"results written to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
