"""Text maps of the grid games, parsed into static numpy arrays.

A map is plain text, one map row per line (row 0 first), characters as in the legend of
`shared/maps/README.md`. The packaged copies live in `marl/envs/grid/maps/<name>.txt`.
"""

from __future__ import annotations

import dataclasses
import importlib.resources

import numpy as np

MAP_NAMES = ("cleanup", "harvest", "gathering")

WALL = "@"
FLOOR = " "
SPAWN = "P"
RIVER_WASTE = "H"
RIVER_CLEAN = "R"
STREAM = "S"
ORCHARD = "B"
APPLE = "A"
START_0 = "1"
START_1 = "2"
LEGEND = (
    WALL + FLOOR + SPAWN + RIVER_WASTE + RIVER_CLEAN + STREAM + ORCHARD + APPLE + START_0 + START_1
)


@dataclasses.dataclass(frozen=True)
class GridMap:
    """A parsed map: `chars` is a numpy array `[H, W]` of one-character strings."""

    chars: np.ndarray

    @property
    def height(self) -> int:
        return self.chars.shape[0]

    @property
    def width(self) -> int:
        return self.chars.shape[1]

    def mask(self, symbols: str) -> np.ndarray:
        """bool `[H, W]`: cells whose character is one of `symbols`."""
        return np.isin(self.chars, list(symbols))

    def cells(self, symbols: str) -> np.ndarray:
        """int32 `[K, 2]`: (row, col) of the cells whose character is one of `symbols`,
        in row-major order."""
        return np.argwhere(self.mask(symbols)).astype(np.int32)


def parse_map(text: str, allowed: str = LEGEND) -> GridMap:
    """Parse map `text` (one row per line, every row the same length, characters in `allowed`).

    Raises `ValueError` naming the offending row or character.
    """
    rows = text.splitlines()
    if not rows or not rows[0]:
        raise ValueError("map: empty text; expected one map row per line")
    width = len(rows[0])
    for index, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(
                f"map: row {index} has {len(row)} characters; every row must have {width}"
            )
        unknown = sorted(set(row) - set(allowed))
        if unknown:
            raise ValueError(
                f"map: row {index} holds {''.join(unknown)!r}; allowed characters: {allowed!r}"
            )
    return GridMap(chars=np.array([list(row) for row in rows], dtype="<U1"))


def map_text(name: str) -> str:
    """The packaged text of map `name` (one of `MAP_NAMES`)."""
    if name not in MAP_NAMES:
        raise ValueError(f"map: unknown map {name!r}; available: {', '.join(MAP_NAMES)}")
    resource = importlib.resources.files("marl.envs.grid").joinpath("maps", f"{name}.txt")
    return resource.read_text(encoding="ascii")


def load_map(name: str) -> GridMap:
    """Parse the packaged map `name` (one of `MAP_NAMES`)."""
    return parse_map(map_text(name))
