"""The shared grid-world engine and the grid games built on it.

Engine modules (one job each): `maps` (text maps -> static arrays), `movement` (egocentric moves,
turns, movement conflicts), `beams` (beam footprints, FIRE and CLEAN resolution), `observation`
(egocentric windows and global state), `spawn` (spawn points), `tag_out` (temporary removal of hit
agents), `randomness` (cheap draws derived from the step's key), `render` (RGB frames, GIFs).
Frames: `game` (what every grid game shares: parameters, observation layout, rendering) and
`ssd_game` (the step of the SSD reference games). Games: `cleanup`, `harvest`, `gathering`.
"""
