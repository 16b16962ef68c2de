"""Record one episode's states and write it as a GIF (grid envs; rendering runs on the host)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from marl.envs.base import Env

ActionFn = Callable[[jax.Array, jax.Array], jax.Array]  # (obs [1, N, ...], key) -> actions [1, N]


def random_actions(env: Env) -> ActionFn:
    """Uniformly random actions for every agent."""

    def act(obs: jax.Array, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (1, env.num_agents), 0, env.num_actions, dtype=jnp.int32)

    return act


def record_episode(env: Env, act: ActionFn, key: jax.Array, steps: int | None = None) -> list:
    """States from reset through `steps` steps (default `max_steps`), as a list of host pytrees."""
    steps = env.max_steps if steps is None else steps

    @jax.jit
    def run(key):
        reset_key, play_key = jax.random.split(key)
        obs, state = env.reset(reset_key)

        def one_step(carry, key):
            obs, state = carry
            action_key, env_key = jax.random.split(key)
            actions = act(obs[None], action_key)[0]
            obs, state, _, _, _ = env.step(env_key, state, actions)
            return (obs, state), state

        _, states = jax.lax.scan(one_step, (obs, state), jax.random.split(play_key, steps))
        return state, states

    first, rest = jax.device_get(run(key))
    return [first] + [jax.tree.map(lambda leaf, t=t: leaf[t], rest) for t in range(steps)]


def write_episode_gif(env: Env, states: list, path: Path, scale: int = 8, fps: float = 8.0) -> Path:
    """Render every state (`env.render`), upscale each cell to `scale` pixels and write a GIF."""
    from marl.envs.grid.render import upscale, write_gif

    frames = [upscale(np.asarray(env.render(state)), scale) for state in states]
    return write_gif(frames, path, fps)
