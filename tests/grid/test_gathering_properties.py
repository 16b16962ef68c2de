"""Gathering invariants over random action sequences and random hand-made starts (hypothesis):
no shared cells, no walls, apples only where the rules allow, counters consistent, absent players
invisible, observations equal to a direct transcription of the window formula (gathering.md §5,
cleanup.md §8)."""

from __future__ import annotations

import functools

import jax
import numpy as np
from grid_helpers import ROLLOUT_STEPS, compiled, rollout
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marl.envs.grid import maps
from marl.envs.grid.gathering import Gathering

CHARS = maps.load_map("gathering").chars
WALL = CHARS == "@"
APPLE_CELL = CHARS == "A"
APPLE_CELLS = np.argwhere(APPLE_CELL)
FLOOR_CELLS = np.argwhere(~WALL)
# Floor cells in and around the apple diamond, where eating and blocked respawns happen.
NEAR_APPLES = np.flatnonzero(np.abs(FLOOR_CELLS - [6, 16]).sum(axis=1) <= 4).tolist()
UNIT = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}
SELF, OTHER, FACING_UP = 3, 4, 5
STEPS = ROLLOUT_STEPS
# The configurations of test_gathering_rules.py (same objects, so the compiled rollouts are shared).
SMALL = {"n_apple": 3, "n_tagged": 5, "max_steps": 30}
NO_REMOVAL = {"n_tagged": 0, "hits_to_tag": 3}
BEAM_HEAVY = st.sampled_from([0, 2, 2, 5, 7, 7, 7])


@functools.cache
def gathering(**params) -> Gathering:
    return Gathering(**params)


def spec_observation(position, orientation, present, apple, radius=7) -> np.ndarray:
    """uint8 `[2, 2R+1, 2R+1, 9]`: the observation of one state by the window formula."""
    size = 2 * radius + 1
    planes = np.stack([WALL, apple, APPLE_CELL], axis=-1).astype(np.uint8)
    obs = np.zeros((2, size, size, 9), np.uint8)
    u, v = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    for viewer in np.flatnonzero(present):
        forward, right = UNIT[orientation[viewer]], UNIT[(orientation[viewer] + 1) % 4]
        rows = position[viewer, 0] + (radius - u) * forward[0] + (v - radius) * right[0]
        cols = position[viewer, 1] + (radius - u) * forward[1] + (v - radius) * right[1]
        inside = (rows >= 0) & (rows < WALL.shape[0]) & (cols >= 0) & (cols < WALL.shape[1])
        seen = planes[np.clip(rows, 0, WALL.shape[0] - 1), np.clip(cols, 0, WALL.shape[1] - 1)]
        obs[viewer, ..., :3] = np.where(inside[..., None], seen, [1, 0, 0])
        for other in np.flatnonzero(present):
            here = (rows == position[other, 0]) & (cols == position[other, 1])
            if other == viewer:
                obs[viewer, here, SELF] = 1
            else:
                obs[viewer, here, OTHER] = 1
                facing = (orientation[other] - orientation[viewer]) % 4
                obs[viewer, here, FACING_UP + facing] = 1
    return obs


def check_invariants(env, start, states, obs, reward, info) -> None:
    """Assert the invariants of every step of a rollout (arrays stacked over time first)."""
    position, present = np.asarray(states.position), np.asarray(states.present)
    apple = np.asarray(states.apple)
    previous_apple = np.concatenate([np.asarray(start.apple)[None], apple[:-1]])
    previous_present = np.concatenate([np.asarray(start.present)[None], present[:-1]])
    time = np.asarray(states.time)
    np.testing.assert_array_equal(time, np.asarray(start.time) + np.arange(1, len(time) + 1))
    for t in range(len(time)):
        cells = [tuple(cell) for cell in position[t][present[t]]]
        assert len(cells) == len(set(cells)), "two present players share a cell"
        assert not any(WALL[cell] for cell in cells), "a player stands in a wall"
        assert not any(apple[t][cell] for cell in cells), "an apple under a present player"
        np.testing.assert_array_equal(
            obs[t], spec_observation(position[t], states.orientation[t], present[t], apple[t])
        )
    assert not (apple & ~APPLE_CELL).any(), "an apple off the apple cells"
    np.testing.assert_array_equal(info["apple_count"], apple.sum(axis=(1, 2)))
    for name in ("apples_eaten", "beam_uses", "hits_dealt", "hits_taken", "tagged_out"):
        assert (np.asarray(info[name]) >= 0).all(), name
    assert (np.asarray(info["hits_taken"]) <= 1).all()
    np.testing.assert_array_equal(
        np.asarray(info["hits_taken"]).sum(axis=1), np.asarray(info["hits_dealt"]).sum(axis=1)
    )
    assert not (np.asarray(info["beam_uses"]) & ~previous_present).any()
    marks = np.asarray(states.hit_marks)
    assert ((marks >= 0) & (marks < env.hits_to_tag)).all()
    np.testing.assert_array_equal(info["present"], present)
    # rewards: +1 per apple, nothing else; reward == the sum of the reward vector
    vector = np.asarray(info["reward_vector"])
    np.testing.assert_array_equal(reward, vector.sum(axis=-1))
    np.testing.assert_array_equal(reward, info["apples_eaten"])
    # apples leave only by eating and return only where their respawn step has come
    eaten = np.asarray(info["apples_eaten"]).sum(axis=1)
    np.testing.assert_array_equal((previous_apple & ~apple).sum(axis=(1, 2)), eaten)
    respawn_step = np.asarray(states.apple_respawn_step)
    due = np.zeros_like(apple)
    due[:, APPLE_CELLS[:, 0], APPLE_CELLS[:, 1]] = respawn_step <= time[:, None]
    assert not (apple & ~previous_apple & ~due).any()
    # players leave only when tagged out and come back only when their absence ends
    tagged = np.asarray(info["tagged_out"]).astype(bool)
    if env.n_tagged == 0:
        np.testing.assert_array_equal(present, previous_present)
    else:
        np.testing.assert_array_equal(previous_present & ~present, tagged)
        back = ~previous_present & present
        step_of = np.broadcast_to(time[:, None], back.shape)
        np.testing.assert_array_equal(np.asarray(states.removed_until)[back], step_of[back])
    assert not (tagged & (np.asarray(info["hits_taken"]) == 0)).any()
    # absent players are invisible: all-zero observation, nobody else sees them
    obs = np.asarray(obs)
    assert not obs[~present].any()
    for t, player in zip(*np.nonzero(~present), strict=True):
        assert not obs[t, 1 - player, ..., OTHER:].any()


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=hnp.arrays(np.int32, (STEPS, 2), elements=st.integers(0, 7)),
)
def test_invariants_hold_for_random_action_sequences_from_reset(seed, actions):
    env = gathering(**SMALL)
    _, start = compiled(env).reset(jax.random.key(seed))
    states, obs, reward, _, info = rollout(env, start, actions, key=seed)
    check_invariants(env, start, states, obs, reward, info)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    cells=st.lists(
        st.one_of(st.sampled_from(NEAR_APPLES), st.integers(0, len(FLOOR_CELLS) - 1)),
        min_size=2,
        max_size=2,
        unique=True,
    ),
    orientation=st.lists(st.integers(0, 3), min_size=2, max_size=2),
    present=st.lists(st.booleans(), min_size=2, max_size=2),
    removed_until=st.lists(st.integers(1, 6), min_size=2, max_size=2),
    hit_marks=st.lists(st.integers(0, 1), min_size=2, max_size=2),
    apple=hnp.arrays(bool, (len(APPLE_CELLS),)),
    apple_respawn_step=hnp.arrays(np.int32, (len(APPLE_CELLS),), elements=st.integers(0, 6)),
    actions=hnp.arrays(np.int32, (STEPS, 2), elements=BEAM_HEAVY),
)
def test_invariants_hold_from_random_hand_made_states(
    seed, cells, orientation, present, removed_until, hit_marks, apple, apple_respawn_step, actions
):
    env = gathering(**SMALL)
    apple_grid = np.zeros(WALL.shape, bool)
    apple_grid[APPLE_CELLS[:, 0], APPLE_CELLS[:, 1]] = apple
    start = env.make_state(
        FLOOR_CELLS[cells],
        orientation,
        present=present,
        removed_until=removed_until,
        hit_marks=hit_marks,
        apple=apple_grid,
        apple_respawn_step=apple_respawn_step,
    )
    states, obs, reward, _, info = rollout(env, start, actions, key=seed)
    check_invariants(env, start, states, obs, reward, info)


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=hnp.arrays(np.int32, (STEPS, 2), elements=BEAM_HEAVY),
)
def test_without_removal_nobody_ever_leaves(seed, actions):
    env = gathering(**NO_REMOVAL)
    _, start = compiled(env).reset(jax.random.key(seed))
    states, obs, reward, _, info = rollout(env, start, actions, key=seed)
    check_invariants(env, start, states, obs, reward, info)
    assert np.asarray(states.present).all()
