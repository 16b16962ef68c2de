"""Evaluate a trained run: `python scripts/evaluate.py run_dir=<run> [episodes=100] [opponent=tft]`.

Loads the run's latest checkpoint, plays whole episodes and prints returns per agent, cooperation
rates, social metrics and, for two-player matrix games, P(cooperate | previous joint outcome).
With `opponents=all` (or a list such as `opponents=[self,allc,alld,tft]`) it instead plays the
trained agent in seat 0 of the two-player game against each co-player in seat 1 and prints one
table, a row per co-player (`marl/eval/co_play.py`). Runs of BN-AC with a graph are evaluated
twice, with the graph (learned graphs without sampling noise) and graph-free (every agent acting
on its own observation: the decentralised policy), each summary under `graphs` in the JSON.
Multi-objective runs (MO-MIX, outer-loop QMIX) are instead evaluated on their preference grid:
greedy episodes at every w_g, a table of the points, the non-dominated set with its hypervolume,
sparsity and spacing, and `pareto_front.png` next to the JSON (under `pareto`).
The summary is also written as JSON to `<run>/evaluations/<timestamp>/evaluation.json` (the table
under `co_play`: co-player -> metric -> [mean per seat, standard error per seat]).
"""

import json
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from marl.config import ConfigError
from marl.run.cli import CONFIG_DIR, fail, full_errors

# Columns of the co-play table: (metric, seat, header); a column is shown when its metric exists.
CO_PLAY_COLUMNS = (
    ("reward_per_step", 0, "reward/step seat 0"),
    ("reward_per_step", 1, "reward/step co-player"),
    ("cooperation_rate", 0, "cooperation seat 0"),
    ("cooperation_rate", 1, "cooperation co-player"),
    ("own_coin_fraction", 0, "own-coin fraction seat 0"),
    ("pickups_per_step", 0, "pickups/step seat 0"),
)


def format_value(mean, stderr) -> str:
    return f"{float(mean):9.3f} ± {float(stderr):.3f}"


def print_summary(summary: dict, header: str) -> None:
    print(header)
    for name, (mean, stderr) in summary["metrics"].items():
        if mean.ndim == 0:
            print(f"  {name:32s} {format_value(mean, stderr)}")
        else:
            cells = "  ".join(
                f"agent {i}: {format_value(m, s)}" for i, (m, s) in enumerate(zip(mean, stderr))
            )
            print(f"  {name:32s} {cells}")
    table = summary.get("conditional_cooperation")
    if table:
        print("  P(cooperate | previous joint outcome, written a0 a1):")
        print("    outcome   agent 0   agent 1")
        for outcome, probabilities in table.items():
            print(f"    {outcome:7s} {probabilities[0]:9.3f} {probabilities[1]:9.3f}")


def print_co_play_table(table: dict[str, dict], header: str) -> None:
    """One row per co-player; each cell is the mean over episodes ± its standard error."""
    first_row = next(iter(table.values()))
    columns = [column for column in CO_PLAY_COLUMNS if column[0] in first_row]
    widths = [max(len(title), 15) for _, _, title in columns]
    print(header)
    print(
        f"  {'co-player':12s}"
        + "".join(f"  {title:>{width}s}" for (_, _, title), width in zip(columns, widths))
    )
    for name, metrics in table.items():
        cells = []
        for (metric, seat, _), width in zip(columns, widths):
            mean, stderr = metrics[metric]
            cells.append(f"  {f'{float(mean[seat]):.3f} ± {float(stderr[seat]):.3f}':>{width}s}")
        print(f"  {name:12s}" + "".join(cells))


def to_json(value):
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    return value.tolist() if hasattr(value, "tolist") else value


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from marl.run.devices import select_device

    try:
        select_device(cfg.platform)
        import jax

        from marl.envs.matrix_game import MatrixGame
        from marl.eval.co_play import (
            co_play_metrics,
            co_player_names,
            play_matches,
            two_player_game,
        )
        from marl.eval.rollout import (
            load_policy,
            play_episodes,
            policy_actions,
            policy_against,
            summarise,
            with_episode_length,
        )

        run = with_episode_length(load_policy(Path(cfg.run_dir), cfg.seed_index), cfg.max_steps)
        pareto = hasattr(run.trainer, "evaluate_front")
        if pareto and (cfg.opponent is not None or cfg.opponents is not None):
            raise ConfigError(
                f"{cfg.run_dir} is a multi-objective run ({run.cfg.algo.name}), evaluated on its "
                "preference grid; opponent and opponents do not apply"
            )
        if pareto:
            env = run.env
        elif cfg.opponents is None:
            env, trainer, params = policy_against(run, cfg.opponent)
        else:
            if cfg.opponent is not None:
                raise ConfigError(
                    "set opponent (one match, full summary) or opponents (a table of matches), "
                    f"not both; got opponent={cfg.opponent}"
                )
            env = two_player_game(run)
            game = run.cfg.env.get("game") or run.cfg.env.name
            co_players = co_player_names(cfg.opponents, env, game)
        if env.max_steps is None:
            raise ConfigError(
                f"{cfg.run_dir} trained on a continuing task (env.max_steps=null) that has no "
                "episodes to evaluate; benchmarks/spd_exploration.py evaluates spatial_pd "
                "policies, or train with env.max_steps=<n>"
            )
        if cfg.episodes < 1:
            raise ConfigError(f"episodes must be >= 1; got {cfg.episodes}")
        out_path = Path(HydraConfig.get().runtime.output_dir) / "evaluation.json"
        if out_path.exists():
            raise ConfigError(f"{out_path} already exists; choose another hydra.run.dir=")
    except ConfigError as error:
        if full_errors():
            raise
        fail(str(error))
    key = jax.random.PRNGKey(cfg.seed)
    where = f"{cfg.run_dir} (after {run.updates_done} updates, seed index {cfg.seed_index})"
    length = f"{cfg.episodes} episodes x {env.max_steps} steps"
    if pareto:
        from marl.eval.front import evaluate_front, plot_evaluated_front, print_front

        summary = {"pareto": evaluate_front(run, key, cfg.episodes)}
        print_front(
            summary["pareto"],
            f"{where}; greedy policies on the preference grid; {length} per preference",
        )
        out_path.parent.mkdir(parents=True, exist_ok=True)
        plot_evaluated_front(summary["pareto"], out_path.parent / "pareto_front.png", where)
    elif cfg.opponents is None:
        two_player_matrix = isinstance(env.unwrapped, MatrixGame) and env.unwrapped.num_actions == 2
        opponent = cfg.opponent or run.cfg.env.get("opponent") or "self-play as trained"
        graphs = getattr(trainer, "evaluation_graphs", dict)()
        summaries = {}
        for label, dag in (graphs or {"": None}).items():
            act = policy_actions(trainer, params, cfg.greedy, dag)
            trajectory = play_episodes(env, act, key, cfg.episodes)
            summaries[label] = summarise(trajectory, two_player_matrix and env.num_agents == 2)
            policy = f"; {label}" if label else ""
            print_summary(summaries[label], f"{where}{policy}; opponent: {opponent}; {length}")
        summary = summaries.get("", {"graphs": summaries})
    else:
        matches = play_matches(run, env, co_players, key, cfg.episodes, cfg.greedy)
        table = {name: co_play_metrics(trajectory) for name, trajectory in matches.items()}
        print_co_play_table(table, f"{where}; trained agent in seat 0; {length}")
        summary = {"co_play": table}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    out_path.write_text(json.dumps(to_json({**config, **summary}), indent=1))


if __name__ == "__main__":
    sys.exit(main())
