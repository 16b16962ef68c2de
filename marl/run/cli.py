"""What `scripts/train.py` does: check the command line, pick the device, train, report.

Bad input ends with one line on stderr (`error: ...`) and exit code 2; set HYDRA_FULL_ERROR=1
for the full stack trace instead.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from marl.config import ConfigError, from_mapping
from marl.run.checkpoint import has_checkpoint

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
EXIT_BAD_INPUT = 2
MAX_CHECKED_JOBS = 256
RESOLVED_CONFIG_FILE = "config.yaml"
KEYS_FREE_TO_CHANGE_ON_RESUME = ("resume", "run.progress", "run.compilation_cache", "logger")


def full_errors() -> bool:
    return bool(os.environ.get("HYDRA_FULL_ERROR"))


def fail(message: str) -> None:
    """Print `error: message` as one line and exit with the bad-input code."""
    print("error: " + " ".join(message.split()), file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def _one_line(error: Exception) -> str:
    """Hydra's multi-line composition errors folded into one line."""
    skipped = ("full_key:", "object_type=", "Config search path", "provider=")
    lines = [line.strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line and not line.startswith(skipped)]
    parts: list[str] = []
    for line in lines:
        if parts and parts[-1].endswith(":"):
            parts[-1] += " " + line
        elif parts and ":" in parts[-1] and parts[-1].startswith("Available options"):
            parts[-1] += ", " + line
        else:
            parts.append(line)
    return "; ".join(part.rstrip(".") for part in parts)


def job_overrides(argv: list[str]) -> list[list[str]] | None:
    """The override list of every job the command line asks for (sweeps expanded).

    Returns None when the command line holds flags other than -m/--multirun (e.g. --help, --cfg),
    which Hydra handles itself.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [a for a in argv if a not in ("-m", "--multirun")]
    if any(a.startswith("-") for a in arguments):
        return None
    parsed = OverridesParser.create().parse_overrides(arguments)
    choices = []
    for override in parsed:
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
            choices.append([f"{override.get_key_element()}={v}" for v in values])
        else:
            choices.append([override.input_line])
    return [list(job) for job in itertools.islice(itertools.product(*choices), MAX_CHECKED_JOBS)]


def check_command_line(argv: list[str], check_config: Callable[[DictConfig], None]) -> None:
    """Compose the config of every job on the command line and run `check_config` on each,
    so that a typo fails at once with one line instead of inside Hydra or after compiling."""
    if full_errors():
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        jobs = job_overrides(argv)
        if jobs is None:
            return
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            for overrides in jobs:
                overrides = [o for o in overrides if not o.startswith("hydra")]
                try:
                    cfg = compose("config", overrides=overrides)
                except HydraException as error:
                    fail(_unknown_key_message(error, overrides, compose) or _one_line(error))
                check_config(cfg)
    except ConfigError as error:
        fail(str(error))
    except (HydraException, OmegaConfBaseException) as error:
        fail(_one_line(error))


def _unknown_key_message(error: Exception, overrides: list[str], compose: Callable) -> str | None:
    """'unknown key a.b; allowed keys in a: ...' for an override of a key that does not exist."""
    match = re.match(r"Could not override '([^']+)'", str(error))
    if match is None:
        return None
    key = match.group(1)
    others = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
    try:
        base = compose("config", overrides=others)
    except Exception:  # noqa: BLE001 (any failure: fall back to Hydra's own message)
        return None
    parent, _, _ = key.rpartition(".")
    node = OmegaConf.select(base, parent) if parent else base
    if not isinstance(node, DictConfig):
        return None
    where = f" in {parent}" if parent else ""
    return f"unknown key {key}; allowed keys{where}: {', '.join(sorted(map(str, node.keys())))}"


def check_keys(cfg: DictConfig) -> None:
    """Key names and types of the run settings and the algorithm (no JAX involved)."""
    from marl import algos
    from marl.run.experiment import plain_container, run_settings

    run_settings(cfg)
    try:
        _, schema = algos.trainer_classes(cfg.algo.get("name"))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    from_mapping(schema, plain_container(dict(cfg.algo)), "algo")
    if "platform" not in cfg.get("device", {}):
        raise ConfigError("device.platform is missing; choose device=cpu, gpu or tpu")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping):
        flat = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: tree}


def check_run_directory(cfg: DictConfig, run_dir: Path) -> None:
    """Never overwrite a run; resume only a run that exists and had the same configuration."""
    if not cfg.resume:
        if has_checkpoint(run_dir):
            raise ConfigError(
                f"{run_dir} already holds a run's checkpoints; pass resume=true to continue it "
                "or choose another hydra.run.dir"
            )
        return
    if not has_checkpoint(run_dir):
        raise ConfigError(
            f"resume=true but {run_dir} has no checkpoint; point hydra.run.dir at the directory "
            "of the run to continue"
        )
    saved_path = run_dir / RESOLVED_CONFIG_FILE
    if saved_path.exists():
        saved = _flatten(OmegaConf.to_container(OmegaConf.load(saved_path)))
        current = _flatten(OmegaConf.to_container(cfg, resolve=True))
        changed = sorted(
            key
            for key in set(saved) | set(current)
            if saved.get(key) != current.get(key)
            and not key.startswith(KEYS_FREE_TO_CHANGE_ON_RESUME)
        )
        if changed:
            raise ConfigError(
                f"resume=true but the configuration differs from the saved run at "
                f"{', '.join(changed)}; resume with the original settings"
            )


def train_job(cfg: DictConfig, run_dir: Path) -> int:
    """Check everything, select the device, then train in `run_dir`; returns the exit code."""
    from marl.run.devices import enable_compilation_cache, select_device

    try:
        check_keys(cfg)
        check_run_directory(cfg, run_dir)
        select_device(cfg.device.platform)
        from marl.run.experiment import build_env, build_trainer, run_settings

        settings = run_settings(cfg)
        enable_compilation_cache(settings.compilation_cache)
        env = build_env(cfg.env)
        trainer = build_trainer(cfg.algo, env)
    except ConfigError as error:
        if full_errors():
            raise
        fail(str(error))

    from marl.run.logging import MetricsLog
    from marl.run.plots import plot_learning_curve, plot_pareto_front
    from marl.run.runner import Outcome, Runner

    run_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.resume:
        (run_dir / RESOLVED_CONFIG_FILE).write_text(OmegaConf.to_yaml(cfg, resolve=True))
    log = MetricsLog(
        run_dir, cfg.logger, run_name=str(run_dir), config=OmegaConf.to_container(cfg, resolve=True)
    )
    try:
        outcome = Runner(trainer, settings, run_dir, log).run()
    finally:
        log.close()
        plot_learning_curve(run_dir)
        if env.objectives is not None:
            plot_pareto_front(run_dir, env.objectives)
    if outcome is Outcome.FINISHED:
        print(f"finished {trainer.num_updates} updates; run directory: {run_dir}", file=sys.stderr)
    return outcome.exit_code
