"""Train an algorithm on an environment: `python scripts/train.py algo=ppo env=ipd [key=value ...]`.

Sweeps: `python scripts/train.py -m seed=0,1 env=ipd,stag_hunt` (add hydra/launcher=slurm for a
cluster). Resume an interrupted run: add `resume=true hydra.run.dir=<its run directory>`.
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from marl.run.cli import CONFIG_DIR, check_command_line, check_keys, train_job


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    exit_code = train_job(cfg, Path(HydraConfig.get().runtime.output_dir))
    if exit_code:
        sys.exit(exit_code)


if __name__ == "__main__":
    check_command_line(sys.argv[1:], check_keys)
    main()
