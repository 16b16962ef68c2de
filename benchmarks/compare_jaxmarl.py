"""Our Coin Game against JaxMARL's `coin_game`: random-action env steps/s, one process, one machine.

    python benchmarks/compare_jaxmarl.py [--num-envs 1,64,1024] [--steps 200] [--repeats 3]
        [--out PATH] [device=gpu seed=3 ...]

Needs the optional package `jaxmarl` (not a dependency of `marl`); without it the script prints
one line saying how to install it and exits with status 0, writing nothing. `pip install jaxmarl`
(0.2.0) asks only for `jax>=0.4.25` (plus gymnax, jaxtyping, safetensors and what they pull in:
gymnasium, pandas, seaborn), so it leaves the project's jax alone. To keep the project's
environment untouched as well, install it into a separate venv pinned to the project's versions
(from the repository root):

    python -m venv /tmp/jmvenv
    .venv/bin/pip freeze --exclude-editable > /tmp/constraints.txt
    /tmp/jmvenv/bin/pip install -c /tmp/constraints.txt -e ".[dev]"
    /tmp/jmvenv/bin/pip install -c /tmp/constraints.txt jaxmarl
    /tmp/jmvenv/bin/python benchmarks/compare_jaxmarl.py

The game. JaxMARL's default `coin_game` is the `two_coins` game on a 3 x 3 torus with payoff
[[1, 1, -2], [1, 1, -2]], played as a meta-episode of `num_outer_steps` = 10 inner episodes of
`num_inner_steps` = 10 steps. At the end of each inner episode its step puts a fresh i.i.d. uniform
reset state in place of the stepped one and pays 0 that step; `done` is only raised at the end of
the meta-episode (every 100 steps), where its `step` resets again. The outer level adds no game
dynamics, only per-inner-episode cooperation counters kept in the state. The fairest match is
therefore our `two_coins` with `jaxmarl_compat: true` (JaxMARL's placement and zero-reward last
step) and `max_steps` = `num_inner_steps` = 10, with the payoff, grid size and observation options
taken from the JaxMARL env: both games then produce the same distribution of trajectories and
rewards (under random play the frequencies of each reward value agree to three decimals over
8 x 10^5 agent-steps), ours with `done` every 10 steps instead of every 100. The env is therefore
fixed; overrides may set `device` and `seed`, not `env`.

The measurement, as in `env_throughput.py`: for each number of parallel envs, one jitted
`lax.scan` runs `--steps` steps of the vmapped auto-resetting step, drawing every step's actions
inside the scan (one `jax.random.randint` for all envs and agents, per-env keys from one split);
the scan carries the observations and sums rewards and `done`s, so XLA cannot drop any work.
JaxMARL side: `jax.vmap(env.step)`, its own auto-resetting step (`step_env`, a reset computed and
selected at every step, dict observations and actions keyed by agent). Our side:
`jax.vmap(AutoReset(env).step)` (the compat mode's inner restart inside `step`, and `AutoReset`'s
reset only on steps where some env is done). Observations differ in dtype: int8 for JaxMARL,
float32 for ours (what our trainers consume). Compile time (lower + compile of the scan) is
reported apart from the timed runs (best of `--repeats` after a warm-up). Both sides run
alternately at each size. The table is printed and the results written as JSON (default
`benchmarks/results/compare_jaxmarl_<platform>.json`), with jaxmarl's version.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
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
    positive_int,
    positive_int_list,
    run_metadata,
    select_device_or_fail,
    write_json,
)
from env_throughput import rollout_function
from omegaconf import DictConfig, open_dict

from marl.envs.base import Env, PyTree
from marl.run.cli import fail

DEFAULT_NUM_ENVS = "1,64,1024"
INSTALL_HINT = (
    "jaxmarl is not installed, so there is nothing to compare against; install it with "
    "`pip install jaxmarl` (see this script's docstring for an install that keeps the "
    "project's jax) and rerun"
)
# JaxMARL's coin game hard-codes a 3 x 3 grid and has no jaxmarl_compat-free placement.
JAXMARL_GRID_SIZE = 3
COLUMNS = (
    Column("num_envs", "num_envs", "d"),
    Column("ours_env_steps_per_s", "ours steps/s", ",.0f"),
    Column("jaxmarl_env_steps_per_s", "jaxmarl steps/s", ",.0f"),
    Column("ratio", "ratio ours/jaxmarl", ".2f"),
    Column("ours_compile_s", "ours compile s", ".2f"),
    Column("jaxmarl_compile_s", "jaxmarl compile s", ".2f"),
)

Rollout = Callable[[Any], Any]


def build_parser() -> OneLineArgumentParser:
    """The plain flags; Hydra overrides (device, seed) follow them."""
    parser = OneLineArgumentParser(
        description="Env steps/s of our Coin Game against JaxMARL's coin_game, random actions."
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
        "--repeats", type=positive_int, default=3, help="timed scans per side and row, best kept"
    )
    parser.add_argument("--out", type=Path, help="JSON results path")
    return parser


def jaxmarl_rollout_function(env: Any, num_envs: int, num_steps: int) -> Rollout:
    """`num_steps` random-action steps of `num_envs` copies of a JaxMARL env (`env.step`).

    The carry is (key, state, obs dict of `[E, *obs_shape]`, reward sum `[E, N]`, finished
    meta-episodes `[E]` int32); the function returns the carry after the last step.
    """
    batched_step = jax.vmap(env.step)

    def one_step(carry, _: None):
        key, state, _, reward_sum, episodes = carry
        key, action_key, step_key = jax.random.split(key, 3)
        actions = jax.random.randint(
            action_key, (num_envs, env.num_agents), 0, env.num_actions, dtype=jnp.int32
        )
        actions = {agent: actions[:, i] for i, agent in enumerate(env.agents)}
        obs, state, reward, done, _ = batched_step(
            jax.random.split(step_key, num_envs), state, actions
        )
        reward = jnp.stack([reward[agent] for agent in env.agents], axis=-1)
        return (key, state, obs, reward_sum + reward, episodes + done["__all__"]), None

    def rollout(carry):
        return jax.lax.scan(one_step, carry, None, num_steps)[0]

    return rollout


def initial_carry(
    reset: Callable[[jax.Array], tuple[PyTree, PyTree]],
    num_agents: int,
    num_envs: int,
    key: jax.Array,
) -> tuple:
    """(key, states, obs, zero reward sums `[E, N]`, zero episode counts `[E]`) for a rollout."""
    reset_key, rollout_key = jax.random.split(key)
    obs, state = jax.jit(jax.vmap(reset))(jax.random.split(reset_key, num_envs))
    return (
        rollout_key,
        state,
        obs,
        jnp.zeros((num_envs, num_agents), jnp.float32),
        jnp.zeros(num_envs, jnp.int32),
    )


def time_rollout(
    rollout: Rollout, carry: tuple, num_envs: int, num_steps: int, repeats: int
) -> dict[str, float]:
    """Compile `rollout` (timed apart), then the best of `repeats` runs from `carry` after a
    warm-up; returns env steps/s, compile seconds and rollout seconds."""
    started = time.perf_counter()
    compiled = jax.jit(rollout).lower(carry).compile()
    compile_seconds = time.perf_counter() - started
    rollout_seconds = best_time(lambda: compiled(carry), repeats)
    return {
        "env_steps_per_s": num_envs * num_steps / rollout_seconds,
        "compile_s": compile_seconds,
        "rollout_s": rollout_seconds,
    }


def measure_ours(
    env: Env, num_envs: int, num_steps: int, repeats: int, key: jax.Array
) -> dict[str, float]:
    """Our side of one row: `AutoReset(env)` vmapped over `num_envs` (see `time_rollout`)."""
    carry = initial_carry(env.reset, env.num_agents, num_envs, key)
    rollout = rollout_function(env, num_envs, num_steps)
    return time_rollout(rollout, carry, num_envs, num_steps, repeats)


def measure_jaxmarl(
    env: Any, num_envs: int, num_steps: int, repeats: int, key: jax.Array
) -> dict[str, float]:
    """JaxMARL's side of one row: its auto-resetting `env.step` vmapped over `num_envs`."""
    carry = initial_carry(env.reset, env.num_agents, num_envs, key)
    rollout = jaxmarl_rollout_function(env, num_envs, num_steps)
    return time_rollout(rollout, carry, num_envs, num_steps, repeats)


def measure(ours: Env, theirs: Any, num_envs: int, args: Any, key: jax.Array) -> dict[str, float]:
    """One table row: both sides at `num_envs`, ours first, then the ratio of their rates."""
    ours_key, theirs_key = jax.random.split(key)
    ours_row = measure_ours(ours, num_envs, args.steps, args.repeats, ours_key)
    theirs_row = measure_jaxmarl(theirs, num_envs, args.steps, args.repeats, theirs_key)
    return {
        "num_envs": num_envs,
        "steps": args.steps,
        **{f"ours_{name}": value for name, value in ours_row.items()},
        **{f"jaxmarl_{name}": value for name, value in theirs_row.items()},
        "ratio": ours_row["env_steps_per_s"] / theirs_row["env_steps_per_s"],
    }


def jaxmarl_installed() -> bool:
    """Whether `import jaxmarl` can be attempted (found on the path, not blocked)."""
    try:
        return importlib.util.find_spec("jaxmarl") is not None
    except ValueError:  # in sys.modules without a spec
        return False


def import_jaxmarl() -> Any:
    """The `jaxmarl` module; a broken install is one error line.

    Its import creates JAX arrays, so it must come after the device is chosen.
    """
    try:
        import jaxmarl
    except ImportError as error:
        fail(f"jaxmarl is installed but cannot be imported: {error}")
    return jaxmarl


def jaxmarl_version(jaxmarl: Any) -> str:
    """The installed jaxmarl's version string."""
    version = getattr(jaxmarl, "__version__", None)
    return version or importlib.metadata.version("jaxmarl")


def match_jaxmarl(cfg: DictConfig, theirs: Any) -> None:
    """Set `cfg.env` (our coin_game) to the game JaxMARL's `theirs` plays (module docstring)."""
    with open_dict(cfg):
        cfg.env.variant = "two_coins"
        cfg.env.jaxmarl_compat = True
        cfg.env.grid_size = JAXMARL_GRID_SIZE
        cfg.env.max_steps = int(theirs.num_inner_steps)
        cfg.env.payoff_matrix = [[float(x) for x in row] for row in theirs.payoff_matrix]
        cfg.env.cnn = bool(theirs.cnn)
        cfg.env.egocentric = False


def main(argv: Sequence[str]) -> None:
    """Measure both games at every requested size, print the table and write the JSON."""
    args, overrides = parse_command_line(build_parser(), argv)
    for override in overrides:
        if override.lstrip("+~").split("=")[0].split(".")[0] == "env":
            fail(
                f"{override}: the env is fixed to JaxMARL's default coin game; overrides may set "
                "device and seed"
            )
    if not jaxmarl_installed():
        print(INSTALL_HINT)
        return
    cfg, _ = compose_config(["env=coin_game", *overrides])
    select_device_or_fail(cfg.device.platform)
    from marl.run.experiment import build_env  # imported once the device is chosen

    jaxmarl = import_jaxmarl()
    theirs = jaxmarl.make("coin_game")
    match_jaxmarl(cfg, theirs)
    ours = call_or_fail(lambda: build_env(cfg.env))
    out = args.out or RESULTS_DIR / f"compare_jaxmarl_{cfg.device.platform}.json"
    results = run_metadata(cfg, "compare_jaxmarl")
    version = jaxmarl_version(jaxmarl)
    print(
        f"coin_game two_coins, {ours.max_steps}-step episodes (JaxMARL: {theirs.num_outer_steps} "
        f"x {theirs.num_inner_steps}), {args.steps} steps per scan, jaxmarl {version}, "
        f"jax {jax.__version__}, device {results['device']['device_kind']}",
        flush=True,
    )
    keys = jax.random.split(jax.random.PRNGKey(cfg.seed), len(args.num_envs))
    rows = [
        measure(ours, theirs, num_envs, args, key) for num_envs, key in zip(args.num_envs, keys)
    ]
    print(format_table(rows, COLUMNS))
    jaxmarl_env = {
        "env_id": "coin_game",
        "class": type(theirs).__name__,
        "num_inner_steps": theirs.num_inner_steps,
        "num_outer_steps": theirs.num_outer_steps,
        "payoff_matrix": theirs.payoff_matrix,
        "cnn": theirs.cnn,
    }
    write_json(
        out,
        {
            **results,
            "jaxmarl_version": version,
            "env": env_parameters(ours),
            "jaxmarl_env": jaxmarl_env,
            "rows": rows,
        },
    )
    print(f"results written to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
