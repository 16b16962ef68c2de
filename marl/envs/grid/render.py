"""RGB rendering of grid states (reference colours) and GIF writing. Not on the jitted hot path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

FLOOR_COLOUR = (0, 0, 0)
WALL_COLOUR = (180, 180, 180)
APPLE_COLOUR = (0, 255, 0)
WASTE_COLOUR = (99, 156, 194)
RIVER_COLOUR = (113, 75, 24)
FIRE_BEAM_COLOUR = (255, 255, 0)
CLEAN_BEAM_COLOUR = (100, 255, 255)
AGENT_COLOURS = (
    (0, 0, 255),
    (2, 81, 154),
    (204, 0, 204),
    (216, 30, 54),
    (254, 151, 0),
    (100, 255, 255),
    (99, 99, 255),
    (250, 204, 255),
    (238, 223, 16),
)


def agent_colour(index: int) -> tuple[int, int, int]:
    """Colour of agent `index`; indices from 9 on reuse index mod 9."""
    return AGENT_COLOURS[index % len(AGENT_COLOURS)]


def paint(
    shape: tuple[int, int], layers: Sequence[tuple[np.ndarray, tuple[int, int, int]]]
) -> np.ndarray:
    """uint8 `[H, W, 3]` image: floor colour, then each (mask bool `[H, W]`, colour) layer painted
    over the previous ones in order."""
    image = np.zeros((*shape, 3), dtype=np.uint8)
    image[:] = FLOOR_COLOUR
    for mask, colour in layers:
        image[np.asarray(mask, dtype=bool)] = colour
    return image


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 `[H * scale, W * scale, 3]`: every cell drawn as a `scale` x `scale` block."""
    if scale < 1:
        raise ValueError(f"scale must be a positive integer; got {scale}")
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def write_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 8.0) -> Path:
    """Write uint8 RGB frames `[H, W, 3]` (all the same shape) as a looping GIF at `fps`."""
    if not frames:
        raise ValueError("write_gif: no frames")
    if fps <= 0:
        raise ValueError(f"write_gif: fps must be positive; got {fps}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(
        path, [np.asarray(frame, dtype=np.uint8) for frame in frames], duration=1000.0 / fps, loop=0
    )
    return path
