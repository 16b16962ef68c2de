"""How exploration breaks cooperation under parameter sharing (Weng & Lee 2026), reproduced small.

    python benchmarks/spd_exploration.py [--size 10] [--train-steps 30000] [--eval-steps 2000]
        [--tau-start 0.127,0.26,0.393,0.527,0.66,0.793] [--dilemma 0.1,0.25,0.4] [--seeds 8]
        [--variants shared,grouped,independent] [--groups 10] [--out DIR] [device=gpu] [overrides]

DQN on the lattice Prisoner's Dilemma with the protocol of `configs/tuning/dqn_spatial_pd.yaml`
(specs/algos/dqn.md §5) on a smaller lattice and budget: for each parameter layout (one network
shared by all agents; `--groups` networks each shared by a random group; one network per agent) and
each initial Boltzmann temperature tau_start, one compiled program trains every (dilemma strength
Dr, seed) pair at once (vmapped), the temperature annealing linearly to 0.1 over the training
steps, then plays `--eval-steps` more steps without learning or storing, sampling at tau = 0.1.
Reported per (layout, Dr, tau_start): the exploration intensity B (mean temperature over the first
half of the anneal, the paper's x-axis) and the mean cooperation rate over the evaluation steps
(mean and standard error over seeds). Also printed: the Spearman correlation of cooperation with B
at each Dr, and the cooperation gap of grouped and independent networks over shared ones at the
largest B. The table and a plot (cooperation against B, one panel per layout) are written under
`--out` (default `benchmarks/results/spd_exploration/<time>/`); the JSON is rewritten after every
compiled program, so an interrupted sweep keeps the rows it finished (`"complete": false`).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import (
    RESULTS_DIR,
    Column,
    OneLineArgumentParser,
    call_or_fail,
    compose_config,
    format_table,
    parse_command_line,
    positive_int,
    run_metadata,
    select_device_or_fail,
    write_json,
)

DEFAULT_TAU_START = "0.127,0.26,0.393,0.527,0.66,0.793"
DEFAULT_DILEMMA = "0.1,0.25,0.4"
VARIANTS = ("shared", "grouped", "independent")
COLUMNS = (
    Column("variant", "layout", "s"),
    Column("dilemma", "Dr", ".2f"),
    Column("tau_start", "tau_start", ".3f"),
    Column("intensity", "B", ".3f"),
    Column("coop_rate", "coop rate", ".3f"),
    Column("coop_stderr", "± se", ".3f"),
    Column("wall_s", "wall s", ".0f"),
)
PLOT_FILE = "spd_exploration.png"


def float_list(text: str) -> list[float]:
    """argparse type: comma-separated numbers, e.g. `0.1,0.25`."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"expected comma-separated numbers; got {text!r}") from None


def variant_overrides(variant: str, groups: int) -> list[str]:
    return {
        "shared": [],
        "grouped": [f"algo.num_param_groups={groups}"],
        "independent": ["algo.share_params=false"],
    }[variant]


def cooperation_after_training(trainer: Any, dilemmas: Sequence[float], seeds: int, eval_steps):
    """Mean evaluation cooperation rate `[D, seeds]`: one jitted program trains every (Dr, seed)."""
    import jax
    import jax.numpy as jnp

    step_env = jax.vmap(trainer.train_env.step)

    def with_dilemma(state, dilemma):
        # training_env = EpisodeStatistics(AutoReset(spatial_pd)): the game state sits one level in.
        game = state.env_state.env_state
        game = game.replace(dilemma_strength=jnp.full_like(game.dilemma_strength, dilemma))
        return state.replace(env_state=state.env_state.replace(env_state=game))

    def one_run(dilemma, key):
        init_key, eval_key = jax.random.split(key)
        state = with_dilemma(trainer.init(init_key), dilemma)
        state, _ = jax.lax.scan(
            lambda s, _: (trainer.update(s)[0], None), state, None, trainer.num_updates
        )

        def evaluation_step(carry, step_key):
            env_state, obs = carry
            action_key, env_key = jax.random.split(step_key)
            action = trainer.act(state.params, obs, action_key)
            obs, env_state, _, _, info = step_env(
                jax.random.split(env_key, trainer.num_envs), env_state, action
            )
            return (env_state, obs), info["coop_rate"].mean()

        _, coop = jax.lax.scan(
            evaluation_step,
            (state.env_state, state.last_obs),
            jax.random.split(eval_key, eval_steps),
        )
        return coop.mean()

    keys = jnp.stack([jax.random.PRNGKey(seed) for seed in range(seeds)])
    runs = jax.jit(jax.vmap(jax.vmap(one_run, in_axes=(None, 0)), in_axes=(0, None)))
    return jax.device_get(runs(jnp.asarray(dilemmas, jnp.float32), keys))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation: the Pearson correlation of the ranks (ties broken by order)."""
    import numpy as np

    ranks = [np.argsort(np.argsort(values)).astype(float) for values in (x, y)]
    if min(r.std() for r in ranks) == 0:
        return float("nan")
    return float(np.corrcoef(*ranks)[0, 1])


def plot(results: list[dict], path: Path) -> Path:
    """PNG: cooperation rate against B, one line per Dr, one panel per parameter layout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(row["variant"] for row in results))
    figure, axes = plt.subplots(1, len(variants), figsize=(4.5 * len(variants), 3.8), sharey=True)
    axes = [axes] if len(variants) == 1 else axes
    for axis, variant in zip(axes, variants, strict=True):
        rows = [row for row in results if row["variant"] == variant]
        for dilemma in sorted({row["dilemma"] for row in rows}):
            line = [row for row in rows if row["dilemma"] == dilemma]
            axis.errorbar(
                [row["intensity"] for row in line],
                [row["coop_rate"] for row in line],
                yerr=[row["coop_stderr"] for row in line],
                marker="o",
                capsize=2,
                label=f"Dr = {dilemma:.2f}",
            )
        axis.set_title(variant)
        axis.set_xlabel("exploration intensity B")
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("cooperation rate (evaluation)")
    axes[-1].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def summary_lines(results: list[dict]) -> list[str]:
    """Spearman rho of cooperation with B per (layout, Dr), and the gaps over shared at max B."""
    lines = []
    by_key: dict[tuple[str, float], list[dict]] = {}
    for row in results:
        by_key.setdefault((row["variant"], row["dilemma"]), []).append(row)
    for (variant, dilemma), rows in by_key.items():
        rho = spearman([r["intensity"] for r in rows], [r["coop_rate"] for r in rows])
        below = [r["intensity"] for r in rows if r["coop_rate"] < 0.5]
        first_below = f"{min(below):.3f}" if below else "never"
        lines.append(
            f"{variant:11s} Dr={dilemma:.2f}: Spearman rho(coop, B) = {rho:+.2f}; "
            f"first B with coop < 0.5: {first_below}"
        )
    largest = max(row["intensity"] for row in results)
    at_largest = {
        (row["variant"], row["dilemma"]): row["coop_rate"]
        for row in results
        if row["intensity"] == largest
    }
    for (variant, dilemma), coop in sorted(at_largest.items()):
        shared = at_largest.get(("shared", dilemma))
        if variant != "shared" and shared is not None:
            lines.append(
                f"at B = {largest:.3f}, Dr={dilemma:.2f}: {variant} - shared = {coop - shared:+.3f}"
            )
    return lines


def main(argv: Sequence[str]) -> None:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=positive_int, default=10, help="lattice side (default 10)")
    parser.add_argument("--train-steps", type=positive_int, default=30_000)
    parser.add_argument("--eval-steps", type=positive_int, default=2_000)
    parser.add_argument("--tau-start", type=float_list, default=float_list(DEFAULT_TAU_START))
    parser.add_argument("--dilemma", type=float_list, default=float_list(DEFAULT_DILEMMA))
    parser.add_argument("--seeds", type=positive_int, default=8)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--groups", type=positive_int, default=10, help="groups of 'grouped'")
    parser.add_argument("--out", type=Path, help="results directory")
    args, overrides = parse_command_line(parser, argv)
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; allowed: {', '.join(VARIANTS)}")
    base_overrides = [
        "algo=dqn",
        "env=spatial_pd",
        f"env.size={args.size}",
        f"algo.total_timesteps={args.train_steps}",
        f"algo.tau_anneal_steps={args.train_steps}",
        *overrides,
    ]
    cfg, _ = compose_config(base_overrides)
    select_device_or_fail(cfg.device.platform)
    from marl.run.experiment import build_env, build_trainer

    env = call_or_fail(lambda: build_env(cfg.env))
    base = args.out or RESULTS_DIR / "spd_exploration" / time.strftime("%Y-%m-%d_%H-%M-%S")
    meta = {**run_metadata(cfg, "spd_exploration"), **dataclasses.asdict(Settings.from_args(args))}
    out = base / "spd_exploration.json"
    results = []
    for variant in variants:
        for tau_start in args.tau_start:
            run_cfg, _ = compose_config(
                [
                    *base_overrides,
                    *variant_overrides(variant, args.groups),
                    f"algo.tau_start={tau_start}",
                ]
            )
            trainer = call_or_fail(lambda run_cfg=run_cfg: build_trainer(run_cfg.algo, env))
            started = time.perf_counter()
            coop = cooperation_after_training(trainer, args.dilemma, args.seeds, args.eval_steps)
            wall = time.perf_counter() - started
            for dilemma, per_seed in zip(args.dilemma, coop, strict=True):
                values = [float(v) for v in per_seed]
                stderr = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
                results.append(
                    {
                        "variant": variant,
                        "dilemma": dilemma,
                        "tau_start": tau_start,
                        "intensity": trainer.exploration_intensity,
                        "coop_rate": statistics.fmean(values),
                        "coop_stderr": stderr,
                        "coop_per_seed": values,
                        "wall_s": wall,
                    }
                )
                print(format_table(results[-1:], COLUMNS), flush=True)
            write_json(out, {**meta, "complete": False, "rows": results})  # kept if interrupted
    print(format_table(results, COLUMNS))
    lines = summary_lines(results)
    print("\n".join(lines))
    write_json(out, {**meta, "complete": True, "summary": lines, "rows": results})
    print(f"results written to {out}; plot {plot(results, base / PLOT_FILE)}")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The benchmark's own flags, recorded in the results file."""

    size: int
    train_steps: int
    eval_steps: int
    seeds: int
    groups: int

    @classmethod
    def from_args(cls, args) -> Settings:
        return cls(args.size, args.train_steps, args.eval_steps, args.seeds, args.groups)


if __name__ == "__main__":
    main(sys.argv[1:])
