"""Device selection, done before JAX initialises its backend."""

from __future__ import annotations

import os
from pathlib import Path

from marl.config import ConfigError

PLATFORMS = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}
INSTALL_HINT = {
    "gpu": 'install GPU support with: pip install -e ".[cuda12]" (or ".[cuda13]")',
    "tpu": 'install TPU support with: pip install -e ".[tpu]"',
}


def select_device(platform: str) -> None:
    """Make JAX use `platform` (cpu | gpu | tpu); `ConfigError` if it has no such device.

    Sets JAX's platform before the backend starts; if it has already started in this process
    (a multirun job after the first), the platform must be the one in use.
    """
    if platform not in PLATFORMS:
        raise ConfigError(
            f"device.platform must be one of {', '.join(PLATFORMS)}; got {platform!r}"
        )
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax

    try:
        jax.config.update("jax_platforms", PLATFORMS[platform])
        devices = jax.devices()
    except Exception:  # noqa: BLE001 (JAX raises RuntimeError or AssertionError here)
        raise ConfigError(
            f"device={platform} but JAX finds no {platform.upper()} on this machine; "
            f"{INSTALL_HINT.get(platform, '')}, or run with device=cpu"
        ) from None
    if devices[0].platform != PLATFORMS[platform].replace("cuda", "gpu"):
        raise ConfigError(
            f"device={platform} but this process already runs JAX on {devices[0].platform}; "
            "start a new process to change devices"
        )


def enable_compilation_cache(directory: str | None) -> None:
    """Keep compiled programs in `directory` (None: off), so repeated runs and sweep jobs with the
    same shapes skip XLA compilation. Entries are keyed by program, JAX version and device."""
    if directory is None:
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str(Path(directory).expanduser()))
