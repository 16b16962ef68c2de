"""Map parsing, counts of `shared/maps/README.md` and byte-identical packaged copies."""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path

import numpy as np
import pytest

from marl.envs.grid import maps

# sha256 of the files of shared/maps (the spec's data, not an output of this package).
SHARED_SHA256 = {
    "cleanup": "6f85dc4d1b8a98271d017dff8f22e7898c0bf87f1c7435b6c010ca90f4d01327",
    "harvest": "35c571edd838a1067b8d646052791fd703d281cd88aeeb38bd3d52451c3a130c",
    "gathering": "81cccf899ab34c47c4fcf63d8deea3313ac0825e0388b60f5f84f00957fed20e",
}
SHARED_CANDIDATES = [
    Path(__file__).resolve().parents[2] / "shared" / "maps",
    Path(__file__).resolve().parents[3] / "shared" / "maps",
]


def packaged_bytes(name: str) -> bytes:
    return importlib.resources.files("marl.envs.grid").joinpath("maps", f"{name}.txt").read_bytes()


@pytest.mark.parametrize("name", maps.MAP_NAMES)
def test_packaged_maps_are_byte_identical_to_the_shared_maps(name):
    assert hashlib.sha256(packaged_bytes(name)).hexdigest() == SHARED_SHA256[name]
    shared = [path / f"{name}.txt" for path in SHARED_CANDIDATES if (path / f"{name}.txt").exists()]
    for path in shared:
        assert path.read_bytes() == packaged_bytes(name)


@pytest.mark.parametrize("name", maps.MAP_NAMES)
def test_every_row_ends_with_a_newline_and_the_ring_is_walls(name):
    text = maps.map_text(name)
    assert text.endswith("\n") and "\n\n" not in text
    grid = maps.load_map(name)
    ring = np.concatenate([grid.chars[0], grid.chars[-1], grid.chars[:, 0], grid.chars[:, -1]])
    assert set(ring) == {"@"}


def test_cleanup_counts():
    grid = maps.load_map("cleanup")
    assert (grid.height, grid.width) == (25, 18)
    counts = {char: int(grid.mask(char).sum()) for char in "@HRSBP "}
    assert counts == {"@": 82, "H": 56, "R": 63, "S": 12, "B": 103, "P": 10, " ": 124}
    assert int(grid.mask("HR").sum()) == 119
    assert int((~grid.mask("@")).sum()) == 368
    interior_walls = grid.mask("@")[1:-1, 1:-1]
    assert not interior_walls.any()
    spawn = {tuple(cell) for cell in grid.cells("P")}
    assert spawn == {
        (4, 8),
        (5, 10),
        (10, 9),
        (10, 11),
        (11, 9),
        (12, 11),
        (13, 8),
        (15, 9),
        (17, 8),
        (17, 10),
    }
    rows, cols = np.nonzero(grid.mask("H"))
    assert rows.min() >= 2 and rows.max() <= 23 and cols.min() >= 1 and cols.max() <= 6
    rows, cols = np.nonzero(grid.mask("S"))
    assert set(rows) == {8, 9} and set(cols) == set(range(7, 13))
    rows, cols = np.nonzero(grid.mask("B"))
    assert rows.min() == 1 and rows.max() == 23 and cols.min() == 12 and cols.max() == 16


def test_harvest_counts():
    grid = maps.load_map("harvest")
    assert (grid.height, grid.width) == (16, 38)
    counts = {char: int(grid.mask(char).sum()) for char in "@AP "}
    assert counts == {"@": 104, "A": 155, "P": 20, " ": 329}
    assert int((~grid.mask("@")).sum()) == 504


def test_gathering_counts():
    grid = maps.load_map("gathering")
    assert (grid.height, grid.width) == (13, 33)
    counts = {char: int(grid.mask(char).sum()) for char in "@A12 "}
    assert counts == {"@": 88, "A": 13, "1": 1, "2": 1, " ": 326}
    apples = {tuple(cell) for cell in grid.cells("A")}
    assert apples == {(r, c) for r in range(13) for c in range(33) if abs(r - 6) + abs(c - 16) <= 2}
    assert [tuple(cell) for cell in grid.cells("1")] == [(6, 1)]
    assert [tuple(cell) for cell in grid.cells("2")] == [(6, 31)]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("@@@\n@ @@\n", "row 1"), ("@@@\n@x@\n@@@\n", "'x'")],
)
def test_bad_map_text_raises_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        maps.parse_map(text)


def test_unknown_map_name_raises_value_error():
    with pytest.raises(ValueError, match="unknown map 'nowhere'"):
        maps.load_map("nowhere")


def test_cells_are_row_major_and_match_the_mask():
    grid = maps.parse_map("@@@@\n@P @\n@ P@\n@@@@\n")
    np.testing.assert_array_equal(grid.cells("P"), [[1, 1], [2, 2]])
    assert grid.cells("P").dtype == np.int32
    np.testing.assert_array_equal(grid.mask("P"), grid.chars == "P")
