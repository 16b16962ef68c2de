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
    long_rollouts,
    rollout,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marl.envs.grid import maps

CHARS = maps.load_map("cleanup").chars
WALL = CHARS == "@"
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


def check_invariants(start, states, obs, reward, info) -> None:
    """Assert the invariants of every step of a rollout (arrays stacked over time first)."""
    position = np.asarray(states.position)
    present = np.asarray(states.present)
    waste, apple = np.asarray(states.waste), np.asarray(states.apple)
    for t in range(position.shape[0]):
        cells = [tuple(cell) for cell in position[t][present[t]]]
        assert len(cells) == len(set(cells)), "two present agents share a cell"
        assert not any(WALL[cell] for cell in cells), "an agent stands in a wall"
        assert not any(apple[t][cell] for cell in cells), "an apple under an agent"
    assert not (waste & ~CAPABLE).any() and not (apple & ~ORCHARD).any()
    np.testing.assert_array_equal(info["waste_count"], waste.sum(axis=(1, 2)))
    np.testing.assert_array_equal(info["apple_count"], apple.sum(axis=(1, 2)))
    for name in ("apples_eaten", "fires", "hits_taken", "hits_dealt", "cleans", "waste_cleaned"):
        assert (np.asarray(info[name]) >= 0).all(), name
    np.testing.assert_array_equal(
        np.asarray(info["hits_taken"]).sum(axis=1), np.asarray(info["hits_dealt"]).sum(axis=1)
    )
    vector = np.asarray(info["reward_vector"])
    np.testing.assert_array_equal(reward, vector @ np.array([1, 1, 1, 0], np.float32))
    # map cells change only as the rules allow: waste leaves by cleaning and at most one cell
    # spawns per step (possibly on a cell cleaned in the same step); apples leave by eating
    previous_waste = np.concatenate([np.asarray(start.waste)[None], waste[:-1]])
    previous_apple = np.concatenate([np.asarray(start.apple)[None], apple[:-1]])
    cleaned = np.asarray(info["waste_cleaned"]).sum(axis=1)
    spawned = waste.sum(axis=(1, 2)) - (previous_waste.sum(axis=(1, 2)) - cleaned)
    assert ((spawned == 0) | (spawned == 1)).all()
    assert ((previous_waste & ~waste).sum(axis=(1, 2)) <= cleaned).all()
    assert ((waste & ~previous_waste).sum(axis=(1, 2)) <= 1).all()
    eaten = np.asarray(info["apples_eaten"]).sum(axis=1)
    assert ((previous_apple & ~apple).sum(axis=(1, 2)) <= eaten).all()
    assert (apple.sum(axis=(1, 2)) >= previous_apple.sum(axis=(1, 2)) - eaten).all()
    obs = np.asarray(obs)
    assert obs.max() <= 1
    centre = obs.shape[2] // 2
    np.testing.assert_array_equal(obs[:, :, centre, centre, 6], present)
    assert not obs[~present].any()
    assert obs[..., 6].sum() == present.sum()


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
