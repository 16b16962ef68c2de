"""Invariants over random action sequences (hypothesis) and long random vmapped rollouts."""

from __future__ import annotations

import jax
import numpy as np
from grid_helpers import (
    LONG_ROLLOUT_ENVS,
    LONG_ROLLOUT_STEPS,
    ROLLOUT_STEPS,
    cleanup,
    compiled,
    harvest,
    long_rollouts,
    rollout,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marl.envs.grid import maps

CHARS = maps.load_map("cleanup").chars
WALL = CHARS == "@"
HARVEST_CHARS = maps.load_map("harvest").chars
CAPABLE = np.isin(CHARS, ["H", "R"])
ORCHARD = CHARS == "B"
STEPS = ROLLOUT_STEPS
MELTING_POT_PRESET = {
    "tag_out_steps": 5,
    "fire_cost": 0.0,
    "hit_penalty": 0.0,
    "waste_spawn_mode": "per_step",
    "pollution_stops_at_depletion": False,
    "waste_spawn_delay": 10,
}


def check_common_invariants(env, start, states, obs, reward, info, apple_cells, wall) -> None:
    """Assert the invariants every SSD game keeps at every step of a rollout (arrays stacked over
    time first): agents apart and off `wall`, apples only on `apple_cells` and never under an
    agent, counters consistent, reward = the paid components, observations 0/1 and blank for
    absent agents."""
    position = np.asarray(states.position)
    present = np.asarray(states.present)
    apple = np.asarray(states.apple)
    for t in range(position.shape[0]):
        cells = [tuple(cell) for cell in position[t][present[t]]]
        assert len(cells) == len(set(cells)), "two present agents share a cell"
        assert not any(wall[cell] for cell in cells), "an agent stands in a wall"
        assert not any(apple[t][cell] for cell in cells), "an apple under an agent"
    assert not (apple & ~apple_cells).any()
    np.testing.assert_array_equal(info["apple_count"], apple.sum(axis=(1, 2)))
    for name in ("apples_eaten", "fires", "hits_taken", "hits_dealt"):
        assert (np.asarray(info[name]) >= 0).all(), name
    np.testing.assert_array_equal(
        np.asarray(info["hits_taken"]).sum(axis=1), np.asarray(info["hits_dealt"]).sum(axis=1)
    )
    vector = np.asarray(info["reward_vector"])
    np.testing.assert_array_equal(reward, vector[..., :3].sum(axis=-1))
    np.testing.assert_array_equal(vector[..., 0], info["apples_eaten"])
    # apples leave only by eating
    previous_apple = np.concatenate([np.asarray(start.apple)[None], apple[:-1]])
    eaten = np.asarray(info["apples_eaten"]).sum(axis=1)
    assert ((previous_apple & ~apple).sum(axis=(1, 2)) <= eaten).all()
    assert (apple.sum(axis=(1, 2)) >= previous_apple.sum(axis=(1, 2)) - eaten).all()
    obs = np.asarray(obs)
    assert obs.max() <= 1
    centre = obs.shape[2] // 2
    self_plane = env.channel_names.index("self")
    np.testing.assert_array_equal(obs[:, :, centre, centre, self_plane], present)
    assert not obs[~present].any()
    assert obs[..., self_plane].sum() == present.sum()


def check_invariants(start, states, obs, reward, info) -> None:
    """Cleanup: the common invariants plus the waste rules."""
    check_common_invariants(cleanup(), start, states, obs, reward, info, ORCHARD, WALL)
    waste = np.asarray(states.waste)
    assert not (waste & ~CAPABLE).any()
    np.testing.assert_array_equal(info["waste_count"], waste.sum(axis=(1, 2)))
    for name in ("cleans", "waste_cleaned"):
        assert (np.asarray(info[name]) >= 0).all(), name
    np.testing.assert_array_equal(info["reward_vector"][..., 3], info["waste_cleaned"])
    # waste leaves by cleaning and at most one cell spawns per step (possibly on a cell cleaned
    # in the same step)
    previous_waste = np.concatenate([np.asarray(start.waste)[None], waste[:-1]])
    cleaned = np.asarray(info["waste_cleaned"]).sum(axis=1)
    spawned = waste.sum(axis=(1, 2)) - (previous_waste.sum(axis=(1, 2)) - cleaned)
    assert ((spawned == 0) | (spawned == 1)).all()
    assert ((previous_waste & ~waste).sum(axis=(1, 2)) <= cleaned).all()
    assert ((waste & ~previous_waste).sum(axis=(1, 2)) <= 1).all()


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=hnp.arrays(np.int32, (STEPS, 5), elements=st.integers(0, 8)),
)
def test_invariants_hold_for_random_action_sequences(seed, actions):
    env = cleanup()
    _, start = compiled(env).reset(jax.random.key(seed))
    states, obs, reward, _, info = rollout(env, start, actions, key=seed + 1)
    check_invariants(start, states, obs, reward, info)
    assert (np.asarray(info["waste_count"]) <= 56).all()
    np.testing.assert_array_equal(states.time, np.arange(1, STEPS + 1))


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=hnp.arrays(np.int32, (STEPS, 5), elements=st.sampled_from([2, 5, 7, 7, 7, 8])),
)
def test_invariants_hold_with_tag_out_and_many_beams(seed, actions):
    env = cleanup(**MELTING_POT_PRESET)
    _, start = compiled(env).reset(jax.random.key(seed))
    states, obs, reward, _, info = rollout(env, start, actions, key=seed + 1)
    check_invariants(start, states, obs, reward, info)


def test_long_random_rollouts_never_share_cells_and_respect_the_waste_bounds():
    env = cleanup()
    actions = jax.random.randint(jax.random.key(7), (LONG_ROLLOUT_STEPS, 5), 0, 9)
    start, (states, obs, reward, _, info) = long_rollouts(env, actions, seed=7)
    for index in range(LONG_ROLLOUT_ENVS):
        one = jax.tree.map(lambda x, i=index: x[i], (start, states, obs, reward, info))
        check_invariants(*one)
    waste = np.asarray(info["waste_count"])
    assert (waste <= 56).all()
    after_48 = np.maximum.accumulate(waste <= 48, axis=1)
    assert (waste[after_48] <= 48).all()  # once at or below 48, never above again


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=hnp.arrays(np.int32, (STEPS, 5), elements=st.integers(0, 7)),
    tag_out=st.booleans(),
)
def test_harvest_invariants_hold_for_random_action_sequences(seed, actions, tag_out):
    env = harvest(tag_out_steps=5 if tag_out else 0)
    _, start = compiled(env).reset(jax.random.key(seed))
    states, obs, reward, _, info = rollout(env, start, actions, key=seed + 1)
    apple_cells, wall = HARVEST_CHARS == "A", HARVEST_CHARS == "@"
    check_common_invariants(env, start, states, obs, reward, info, apple_cells, wall)
