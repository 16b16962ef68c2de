"""Write a GIF of one episode: `python scripts/render.py run_dir=<run>` plays a trained policy,
`python scripts/render.py env=cleanup` plays uniformly random actions."""

import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from marl.config import ConfigError
from marl.run.cli import CONFIG_DIR, fail, full_errors


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="render")
def main(cfg: DictConfig) -> None:
    from marl.run.devices import select_device

    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    try:
        select_device(cfg.platform)
        import jax

        from marl.eval.episode_gif import random_actions, record_episode, write_episode_gif
        from marl.eval.rollout import load_policy
        from marl.run.experiment import build_env

        if cfg.run_dir is not None:
            run = load_policy(Path(cfg.run_dir), cfg.seed_index)
            env = run.env

            def act(obs, key):
                return run.trainer.act(run.params, obs, key)

            default_out = Path(cfg.run_dir) / "renders" / f"{stamp}.gif"
        else:
            env = build_env(cfg.env)
            act = random_actions(env)
            default_out = Path("renders") / f"{cfg.env.name}_random_{stamp}.gif"
        out = Path(cfg.out) if cfg.out is not None else default_out
        if out.exists():
            raise ConfigError(f"{out} already exists; choose another out=")
        if cfg.scale < 1 or cfg.fps <= 0:
            raise ConfigError(f"scale must be >= 1 and fps > 0; got {cfg.scale}, {cfg.fps}")
        if cfg.steps is None and env.max_steps is None:
            raise ConfigError(
                "this env is a continuing task (env.max_steps=null), so there is no whole "
                "episode to record; choose a number of steps with steps=<n>"
            )
        states = record_episode(env, act, jax.random.PRNGKey(cfg.seed), cfg.steps)
        out.parent.mkdir(parents=True, exist_ok=True)
        path = write_episode_gif(env, states, out, cfg.scale, cfg.fps)
    except (ConfigError, NotImplementedError) as error:
        if full_errors():
            raise
        fail(str(error))
    print(f"wrote {path} ({len(states)} frames)")


if __name__ == "__main__":
    sys.exit(main())
