"""Environment throughput: env steps/s and agent steps/s of the auto-resetting step under `vmap`.

    python benchmarks/env_throughput.py [--num-envs 1,64,1024,16384] [--steps 200] [--repeats 3]
        [--call-repeats 20] [--out PATH] [env=cleanup env.num_agents=7 device=gpu ...]

For each number of parallel envs, one jitted `lax.scan` runs `--steps` steps of
`jax.vmap(AutoReset(env).step)`, drawing every step's actions inside the scan (one
`jax.random.randint` for all envs and agents, per-env step keys from one split). The scan carries
the observations and sums rewards and finished episodes, so XLA cannot drop any of the work a
trainer needs. Reported per row: env steps/s and agent steps/s (best of `--repeats` runs after a
warm-up), the scan's compile time, the cost of one batched `reset` and one batched `step` call
(best of `--call-repeats`, dispatch included) and the peak memory so far. The table is printed and
the results written as JSON (default `benchmarks/results/env_throughput_<env>_<platform>.json`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
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
    positive_int_list,
    run_metadata,
    select_device_or_fail,
    write_json,
)

from marl.envs.base import Env, PyTree
from marl.envs.wrappers import AutoReset

DEFAULT_NUM_ENVS = "1,64,1024,16384"
MICROSECONDS_PER_SECOND = 1e6
COLUMNS = (
    Column("num_envs", "num_envs", "d"),
    Column("env_steps_per_s", "env steps/s", ",.0f"),
    Column("agent_steps_per_s", "agent steps/s", ",.0f"),
    Column("compile_s", "compile s", ".2f"),
    Column("step_us", "step µs", ",.1f"),
    Column("reset_us", "reset µs", ",.1f"),
    Column("reset_to_step", "reset/step", ".2f"),
    Column("peak_memory_mb", "peak MB", ",.1f"),
)

RolloutCarry = tuple[jax.Array, PyTree, jax.Array, jax.Array, jax.Array]


def build_parser() -> OneLineArgumentParser:
    """The plain flags; Hydra overrides of the main config follow them."""
    parser = OneLineArgumentParser(
        description="Env steps/s of vmapped AutoReset(env).step for several numbers of envs."
    )
    parser.add_argument(
        "--num-envs",
        type=positive_int_list,
        default=positive_int_list(DEFAULT_NUM_ENVS),
        help=f"comma-separated numbers of parallel envs (default {DEFAULT_NUM_ENVS})",
    )
    parser.add_argument(
        "--steps", type=positive_int, default=200, help="steps per timed scan (default 200)"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=3, help="timed scans per row, best kept (3)"
    )
    parser.add_argument(
        "--call-repeats",
        type=positive_int,
        default=20,
        help="timed single reset/step calls per row, best kept (default 20)",
    )
    parser.add_argument("--out", type=Path, help="JSON results path")
    return parser


def rollout_function(
    env: Env, num_envs: int, num_steps: int
) -> Callable[[RolloutCarry], RolloutCarry]:
    """`num_steps` random-action steps of `num_envs` auto-resetting copies of `env`.

    The carry is (key, state, obs `[E, N, *obs_shape]`, reward sum `[E, N]`, finished episodes
    `[E]` int32); the function returns the carry after the last step.
    """
    batched_step = jax.vmap(AutoReset(env).step)

    def one_step(carry: RolloutCarry, _: None) -> tuple[RolloutCarry, None]:
        key, state, _, reward_sum, episodes = carry
        key, action_key, step_key = jax.random.split(key, 3)
        actions = jax.random.randint(
            action_key, (num_envs, env.num_agents), 0, env.num_actions, dtype=jnp.int32
        )
        obs, state, reward, done, _ = batched_step(
            jax.random.split(step_key, num_envs), state, actions
        )
        return (key, state, obs, reward_sum + reward, episodes + done), None

    def rollout(carry: RolloutCarry) -> RolloutCarry:
        return jax.lax.scan(one_step, carry, None, num_steps)[0]

    return rollout


def measure(env: Env, num_envs: int, args: Any, key: jax.Array) -> dict[str, float]:
    """One table row: throughput, compile time and call costs with `num_envs` parallel envs."""
    reset_key, step_key, actions_key, rollout_key = jax.random.split(key, 4)
    batched_reset = jax.jit(jax.vmap(env.reset))
    batched_step = jax.jit(jax.vmap(env.step))
    reset_keys = jax.random.split(reset_key, num_envs)
    obs, state = batched_reset(reset_keys)
    actions = jax.random.randint(
        actions_key, (num_envs, env.num_agents), 0, env.num_actions, dtype=jnp.int32
    )
    step_keys = jax.random.split(step_key, num_envs)
    reset_seconds = best_time(lambda: batched_reset(reset_keys), args.call_repeats)
    step_seconds = best_time(lambda: batched_step(step_keys, state, actions), args.call_repeats)

    carry = (
        rollout_key,
        state,
        obs,
        jnp.zeros((num_envs, env.num_agents), jnp.float32),
        jnp.zeros(num_envs, jnp.int32),
    )
    started = time.perf_counter()
    rollout = jax.jit(rollout_function(env, num_envs, args.steps)).lower(carry).compile()
    compile_seconds = time.perf_counter() - started
    rollout_seconds = best_time(lambda: rollout(carry), args.repeats)

    env_steps_per_s = num_envs * args.steps / rollout_seconds
    return {
        "num_envs": num_envs,
        "num_agents": env.num_agents,
        "steps": args.steps,
        "env_steps_per_s": env_steps_per_s,
        "agent_steps_per_s": env_steps_per_s * env.num_agents,
        "compile_s": compile_seconds,
        "rollout_s": rollout_seconds,
        "step_us": step_seconds * MICROSECONDS_PER_SECOND,
        "reset_us": reset_seconds * MICROSECONDS_PER_SECOND,
        "reset_to_step": reset_seconds / step_seconds,
        "peak_memory_mb": peak_memory_mb(),
    }


def main(argv: Sequence[str]) -> None:
    """Measure every requested number of envs, print the table and write the JSON results."""
    args, overrides = parse_command_line(build_parser(), argv)
    cfg, choices = compose_config(overrides)
    select_device_or_fail(cfg.device.platform)
    from marl.run.experiment import build_env  # imported once the device is chosen

    env = call_or_fail(lambda: build_env(cfg.env))
    env_id = choices.get("env", cfg.env.name)
    out = args.out or RESULTS_DIR / f"env_throughput_{env_id}_{cfg.device.platform}.json"
    results = run_metadata(cfg, "env_throughput")
    print(
        f"env={env_id} ({env.num_agents} agents), {args.steps} steps per scan, "
        f"device {results['device']['device_kind']}",
        flush=True,
    )
    keys = jax.random.split(jax.random.PRNGKey(cfg.seed), len(args.num_envs))
    rows = [measure(env, num_envs, args, key) for num_envs, key in zip(args.num_envs, keys)]
    print(format_table(rows, COLUMNS))
    write_json(out, {**results, "env_id": env_id, "env": env_parameters(env), "rows": rows})
    print(f"results written to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
