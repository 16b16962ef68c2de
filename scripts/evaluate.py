"""Evaluate a trained run: `python scripts/evaluate.py run_dir=<run> [episodes=100] [opponent=tft]`.

Loads the run's latest checkpoint, plays whole episodes and prints returns per agent, cooperation
rates, social metrics and, for two-player matrix games, P(cooperate | previous joint outcome).
The summary is also written as JSON to `<run>/evaluations/<timestamp>/evaluation.json`.
"""

import json
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from marl.config import ConfigError
from marl.run.cli import CONFIG_DIR, fail, full_errors


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
        from marl.eval.rollout import load_policy, play_episodes, policy_against, summarise

        run = load_policy(Path(cfg.run_dir), cfg.seed_index)
        env, trainer, params = policy_against(run, cfg.opponent)
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
    trajectory = play_episodes(
        env, trainer, params, jax.random.PRNGKey(cfg.seed), cfg.episodes, cfg.greedy
    )
    two_player_matrix = isinstance(env.unwrapped, MatrixGame) and env.unwrapped.num_actions == 2
    summary = summarise(trajectory, two_player_matrix and env.num_agents == 2)
    opponent = cfg.opponent or run.cfg.env.get("opponent") or "self-play as trained"
    print_summary(
        summary,
        f"{cfg.run_dir} (after {run.updates_done} updates, seed index {cfg.seed_index}); "
        f"opponent: {opponent}; {cfg.episodes} episodes x {env.max_steps} steps",
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(to_json({**dict(cfg), **summary}), indent=1))


if __name__ == "__main__":
    sys.exit(main())
