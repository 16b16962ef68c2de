"""Egocentric observations and global state (cleanup.md §8, §9), checked against a direct
transcription of the spec's window formula."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from grid_helpers import cleanup, compiled, hand_state, joint_action, mask

from marl.envs.grid import maps
from marl.envs.grid.movement import FIRE

CLEAN = 8
R = 7
UNIT = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}
CHARS = maps.load_map("cleanup").chars
WALL, APPLE, WASTE, RIVER_CLEAN, STREAM, ORCHARD = range(6)
SELF, OTHER, FACING_UP = 6, 7, 8


def spec_map_planes(waste, apple) -> np.ndarray:
    """`[H, W, 6]` map channels of §8 from the map characters and the dynamic grids."""
    waste, apple = np.asarray(waste), np.asarray(apple)
    capable = np.isin(CHARS, ["H", "R"])
    return np.stack(
        [CHARS == "@", apple, waste, capable & ~waste, CHARS == "S", CHARS == "B"], axis=-1
    ).astype(np.uint8)


def spec_observation(state, radius=R, id_planes=False) -> np.ndarray:
    """Observation of §8 by the window formula, cell by cell."""
    position, orientation = np.asarray(state.position), np.asarray(state.orientation)
    present = np.asarray(state.present)
    num_agents = len(present)
    planes = spec_map_planes(state.waste, state.apple)
    size = 2 * radius + 1
    channels = 12 + (num_agents if id_planes else 0)
    obs = np.zeros((num_agents, size, size, channels), np.uint8)
    for viewer in np.flatnonzero(present):
        forward, right = UNIT[orientation[viewer]], UNIT[(orientation[viewer] + 1) % 4]
        for u in range(size):
            for v in range(size):
                row = position[viewer][0] + (radius - u) * forward[0] + (v - radius) * right[0]
                col = position[viewer][1] + (radius - u) * forward[1] + (v - radius) * right[1]
                if not (0 <= row < 25 and 0 <= col < 18):
                    obs[viewer, u, v, WALL] = 1
                    continue
                obs[viewer, u, v, :6] = planes[row, col]
                for other in np.flatnonzero(present):
                    if tuple(position[other]) != (row, col):
                        continue
                    if other == viewer:
                        obs[viewer, u, v, SELF] = 1
                    else:
                        obs[viewer, u, v, OTHER] = 1
                        facing = (orientation[other] - orientation[viewer]) % 4
                        obs[viewer, u, v, FACING_UP + facing] = 1
                    if id_planes:
                        obs[viewer, u, v, 12 + other] = 1
    return obs


def random_state(env, seed: int):
    rng = np.random.default_rng(seed)
    walkable = np.argwhere(CHARS != "@")
    cells = walkable[rng.choice(len(walkable), env.num_agents, replace=False)]
    capable = np.isin(CHARS, ["H", "R"])
    orchard = CHARS == "B"
    return env.make_state(
        cells,
        rng.integers(0, 4, env.num_agents),
        waste=capable & (rng.random((25, 18)) < 0.5),
        apple=orchard & (rng.random((25, 18)) < 0.3),
        present=rng.random(env.num_agents) < 0.8,
    )


@pytest.mark.parametrize("orientation", range(4))
def test_agent_three_ahead_and_two_left_appear_at_4_7_and_7_5(orientation):
    env = cleanup()
    row, col = 12, 9
    forward, right = UNIT[orientation], UNIT[(orientation + 1) % 4]
    ahead = (row + 3 * forward[0], col + 3 * forward[1])
    left = (row - 2 * right[0], col - 2 * right[1])
    agents = [(row, col, orientation), (*ahead, orientation), (*left, (orientation + 1) % 4)]
    obs = np.asarray(compiled(env).observation(hand_state(env, agents)))[0]
    np.testing.assert_array_equal(np.argwhere(obs[..., OTHER]), [[4, 7], [7, 5]])
    assert obs[4, 7, FACING_UP] == 1  # same orientation as the viewer: facing up in the window
    assert obs[7, 5, FACING_UP + 1] == 1  # turned clockwise relative to the viewer: right
    np.testing.assert_array_equal(np.argwhere(obs[..., SELF]), [[7, 7]])


@pytest.mark.parametrize("seed", range(6))
def test_observation_matches_the_spec_formula_on_random_states(seed):
    env = cleanup()
    state = random_state(env, seed)
    np.testing.assert_array_equal(compiled(env).observation(state), spec_observation(state))


def test_identity_planes_match_the_spec_formula():
    env = cleanup(agent_id_planes=True)
    assert env.obs_shape == (15, 15, 17)
    state = random_state(env, 11)
    expected = spec_observation(state, id_planes=True)
    np.testing.assert_array_equal(compiled(env).observation(state), expected)


def test_facing_up_window_is_the_plain_map_crop():
    env = cleanup()
    state = hand_state(env, [(12, 9, 0)])
    obs = np.asarray(compiled(env).observation(state))[0]
    crop = spec_map_planes(state.waste, state.apple)[5:20, 2:17]
    np.testing.assert_array_equal(obs[..., :6], crop)


def test_cells_outside_the_map_read_as_wall_and_nothing_else():
    env = cleanup()
    for orientation in range(4):
        obs = np.asarray(compiled(env).observation(hand_state(env, [(1, 1, orientation)])))[0]
        forward, right = UNIT[orientation], UNIT[(orientation + 1) % 4]
        outside = 0
        for u in range(15):
            for v in range(15):
                row = 1 + (R - u) * forward[0] + (v - R) * right[0]
                col = 1 + (R - u) * forward[1] + (v - R) * right[1]
                if row < 0 or col < 0:
                    outside += 1
                    np.testing.assert_array_equal(obs[u, v], np.eye(12, dtype=np.uint8)[WALL])
        assert outside == 15 * 15 - 9 * 9


def test_reset_observation_equals_the_observation_of_the_reset_state():
    for params in ({}, {"agent_id_planes": True, "show_beams": True}):
        env = cleanup(**params)
        for seed in range(4):
            obs, state = compiled(env).reset(jax.random.key(seed))
            np.testing.assert_array_equal(obs, compiled(env).observation(state))


def test_absent_viewer_sees_zeros_and_absent_agents_are_invisible():
    env = cleanup()
    state = hand_state(env, [(12, 9, 0), (10, 9, 0)], present=[True, False, False, False, False])
    obs = np.asarray(compiled(env).observation(state))
    assert not obs[1:].any()
    assert not obs[0, ..., OTHER:].any() and obs[0, R, R, SELF] == 1


def test_observations_are_uint8_zero_one_planes():
    env = cleanup()
    obs, _ = compiled(env).reset(jax.random.key(3))
    assert obs.dtype == np.uint8 and obs.shape == (5, 15, 15, 12)
    assert set(np.unique(np.asarray(obs))) <= {0, 1}
    assert env.channel_names[:6] == ("wall", "apple", "waste", "river_clean", "stream", "orchard")
    assert len(env.channel_names) == 12


def test_show_beams_planes_show_last_steps_fire_and_clean_cells():
    env = cleanup(show_beams=True)
    assert env.obs_shape == (15, 15, 14)
    agents = [(12, 9, 0), (10, 9, 0), (5, 6, 3)]  # shooter, its victim, a cleaner
    state = hand_state(env, agents)
    obs, next_state, *_ = compiled(env).step(
        jax.random.key(0), state, joint_action(env, FIRE, 4, CLEAN)
    )
    fire_mask, clean_mask = (np.asarray(m) for m in env.beam_masks(next_state))
    assert fire_mask[10, 9] and fire_mask[11, 9] and not fire_mask[9, 9]  # hit cell included
    assert clean_mask[5, 5]
    viewer = np.asarray(obs)[0]
    np.testing.assert_array_equal(viewer[..., 12], fire_mask[5:20, 2:17])
    np.testing.assert_array_equal(viewer[..., 13], clean_mask[5:20, 2:17])
    without = cleanup()
    obs_plain, *_ = compiled(without).step(
        jax.random.key(0), hand_state(without, agents), joint_action(without, FIRE, 4, CLEAN)
    )
    np.testing.assert_array_equal(np.asarray(obs)[..., :12], obs_plain)


def test_global_state_layout():
    env = cleanup()
    state = random_state(env, 5)
    global_state = np.asarray(compiled(env).global_state(state))
    assert global_state.shape == (25, 18, 15) and global_state.dtype == np.uint8
    np.testing.assert_array_equal(global_state[..., :6], spec_map_planes(state.waste, state.apple))
    position, orientation = np.asarray(state.position), np.asarray(state.orientation)
    present = np.asarray(state.present)
    for agent in range(5):
        expected = mask([position[agent]]) if present[agent] else np.zeros((25, 18), bool)
        np.testing.assert_array_equal(global_state[..., 6 + agent], expected)
    for facing in range(4):
        cells = [position[a] for a in range(5) if present[a] and orientation[a] == facing]
        np.testing.assert_array_equal(global_state[..., 11 + facing], mask(cells))
    assert env.global_state_shape == global_state.shape
