"""FIRE and CLEAN beams (cleanup.md §6.2, §7): footprint, blocking, hits, cleaning, order."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from grid_helpers import cleanup, compiled, hand_state, joint_action, mask, monte_carlo

from marl.envs.grid import maps
from marl.envs.grid.beams import footprint_offsets, ray_lengths
from marl.envs.grid.movement import FIRE, FORWARD, STAY, STEP_RIGHT

CLEAN = 8
UNIT = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}
NO_WASTE = np.zeros((25, 18), bool)
# Waste on every waste-capable cell of rows 12-23 keeps the density at or above the depletion
# threshold (no waste or apple spawns), far from the beams of these tests (rows <= 10).
CAPABLE = maps.load_map("cleanup").mask("HR")
BACKGROUND = CAPABLE & (np.arange(25)[:, None] >= 12)
assert BACKGROUND.sum() >= 48


def waste_at(*cells) -> np.ndarray:
    """Waste on `cells` plus the background that stops spawning."""
    return mask(cells) | BACKGROUND


def upper_waste(state) -> set[tuple[int, int]]:
    """Waste cells above the background rows."""
    return cells_of(np.asarray(state.waste)[:12])


def spec_footprint(row: int, col: int, orientation: int) -> set[tuple[int, int]]:
    """Cells of the spec's footprint: centre p + kF (k = 1..5), sides p +- Rt + kF (k = 0..4)."""
    forward, right = UNIT[orientation], UNIT[(orientation + 1) % 4]
    cells = {(row + k * forward[0], col + k * forward[1]) for k in range(1, 6)}
    for side in (1, -1):
        cells |= {
            (row + side * right[0] + k * forward[0], col + side * right[1] + k * forward[1])
            for k in range(5)
        }
    return cells


def run(env, agents, actions, key=0, **state_kwargs):
    state = hand_state(env, agents, **state_kwargs)
    return compiled(env).step(jax.random.key(key), state, joint_action(env, *actions))


def cells_of(grid) -> set[tuple[int, int]]:
    return {tuple(int(x) for x in cell) for cell in np.argwhere(np.asarray(grid))}


@pytest.mark.parametrize("orientation", range(4))
def test_fire_footprint_in_open_floor_has_fifteen_cells(orientation):
    env = cleanup()
    _, state, reward, _, info = run(env, [(12, 9, orientation)], [FIRE], waste=NO_WASTE)
    fire_mask, clean_mask = env.beam_masks(state)
    assert cells_of(fire_mask) == spec_footprint(12, 9, orientation)
    assert len(cells_of(fire_mask)) == 15 and not np.asarray(clean_mask).any()
    assert float(reward[0]) == -env.fire_cost and int(info["hits_dealt"][0]) == 0


def test_footprint_offsets_follow_the_spec_for_every_orientation():
    offsets = footprint_offsets(5, 3)
    for orientation in range(4):
        cells = {tuple(int(x) for x in cell) for cell in offsets[orientation].reshape(-1, 2)}
        assert cells == spec_footprint(0, 0, orientation)


def test_rays_stop_before_walls_and_side_rays_starting_in_a_wall_do_nothing():
    env = cleanup()
    _, state, *_ = run(env, [(1, 9, 0)], [FIRE])
    assert cells_of(env.beam_masks(state)[0]) == {(1, 8), (1, 10)}
    _, state, *_ = run(env, [(1, 16, 1)], [FIRE])  # right side is (2, 16), left side (0, 16)
    assert cells_of(env.beam_masks(state)[0]) == {(2, 16)}
    _, state, *_ = run(env, [(3, 13, 1)], [FIRE])  # centre ray: (3, 14) .. (3, 16), then wall
    assert cells_of(env.beam_masks(state)[0]) == {
        (3, 14),
        (3, 15),
        (3, 16),
        (2, 13),
        (2, 14),
        (2, 15),
        (2, 16),
        (4, 13),
        (4, 14),
        (4, 15),
        (4, 16),
    }


def test_fire_stops_at_the_first_agent_and_hits_only_it():
    env = cleanup()
    _, state, reward, _, info = run(env, [(12, 9, 0), (10, 9, 0), (8, 9, 0)], [FIRE])
    np.testing.assert_array_equal(info["hits_taken"][:3], [0, 1, 0])
    np.testing.assert_array_equal(info["hits_dealt"][:3], [1, 0, 0])
    np.testing.assert_array_equal(reward[:3], [-env.fire_cost, -env.hit_penalty, 0.0])
    fire_cells = cells_of(env.beam_masks(state)[0])
    assert (10, 9) in fire_cells and (9, 9) not in fire_cells and (8, 9) not in fire_cells


def test_an_agent_beside_the_shooter_blocks_that_side_ray():
    env = cleanup()
    _, state, _, _, info = run(env, [(12, 9, 0), (12, 10, 0), (10, 10, 0)], [FIRE])
    np.testing.assert_array_equal(info["hits_taken"][:3], [0, 1, 0])
    assert cells_of(env.beam_masks(state)[0]) & {(11, 10), (10, 10)} == set()


def test_one_beam_can_hit_several_agents_one_per_ray():
    env = cleanup()
    _, _, reward, _, info = run(env, [(12, 9, 0), (10, 8, 0), (9, 9, 0), (12, 10, 0)], [FIRE])
    np.testing.assert_array_equal(info["hits_taken"][:4], [0, 1, 1, 1])
    assert int(info["hits_dealt"][0]) == 3
    assert float(reward[0]) == -env.fire_cost


def test_hits_from_several_beams_stack():
    env = cleanup()
    agents = [(12, 10, 0), (12, 8, 1), (14, 10, 0)]  # victim, shooter from the left, from below
    _, _, reward, _, info = run(env, agents, [STAY, FIRE, FIRE])
    assert int(info["hits_taken"][0]) == 2
    np.testing.assert_array_equal(info["hits_dealt"][:3], [0, 1, 1])
    np.testing.assert_array_equal(
        reward[:3], [-2 * env.hit_penalty, -env.fire_cost, -env.fire_cost]
    )
    np.testing.assert_array_equal(info["reward_vector"][0], [0, 0, -2 * env.hit_penalty, 0])


def test_fire_costs_fire_cost_even_on_a_miss_and_changes_no_map_cell():
    env = cleanup()
    state = hand_state(env, [(5, 6, 3)])
    _, next_state, reward, _, info = compiled(env).step(
        jax.random.key(0), state, joint_action(env, FIRE)
    )
    assert float(reward[0]) == -env.fire_cost and int(info["fires"][0]) == 1
    np.testing.assert_array_equal(next_state.waste, state.waste)  # the ray passes waste cells
    assert len(cells_of(env.beam_masks(next_state)[0])) == 15


def test_beams_come_from_post_move_positions():
    env = cleanup()
    # agent 1 steps right from (10, 8) into (10, 9), on agent 0's centre ray
    _, _, _, _, info = run(env, [(12, 9, 0), (10, 8, 0)], [FIRE, STEP_RIGHT])
    assert int(info["hits_taken"][1]) == 1


def test_clean_is_free_and_harmless_to_agents():
    env = cleanup()
    _, state, reward, _, info = run(env, [(12, 9, 0), (10, 9, 0)], [CLEAN], waste=NO_WASTE)
    np.testing.assert_array_equal(reward[:2], [0.0, 0.0])
    np.testing.assert_array_equal(info["hits_taken"][:2], [0, 0])
    assert int(info["cleans"][0]) == 1 and int(info["fires"][0]) == 0
    clean_cells = cells_of(env.beam_masks(state)[1])
    assert (10, 9) in clean_cells and (9, 9) not in clean_cells  # stops at the agent


def test_clean_ray_removes_the_first_waste_cell_and_stops():
    env = cleanup()
    _, state, reward, _, info = run(env, [(5, 6, 3)], [CLEAN], waste=waste_at((5, 4), (5, 2)))
    assert upper_waste(state) == {(5, 2)}
    assert int(info["waste_cleaned"][0]) == 1 and float(reward[0]) == 0.0
    np.testing.assert_array_equal(info["reward_vector"][0], [0, 0, 0, 1])
    assert cells_of(env.beam_masks(state)[1]) & {(5, 3), (5, 2)} == set()


def test_each_ray_cleans_at_most_one_cell_so_three_per_agent():
    env = cleanup()
    waste = waste_at((4, 5), (4, 4), (5, 4), (5, 3), (6, 5), (6, 2))
    _, state, _, _, info = run(env, [(5, 6, 3)], [CLEAN], waste=waste)
    assert int(info["waste_cleaned"][0]) == 3
    assert upper_waste(state) == {(4, 4), (5, 3), (6, 2)}


def test_waste_under_an_agent_is_cleaned_and_the_ray_stops_there():
    env = cleanup()
    waste = waste_at((5, 4), (5, 2))
    _, state, _, _, info = run(env, [(5, 6, 3), (5, 4, 0)], [CLEAN], waste=waste)
    assert upper_waste(state) == {(5, 2)}
    assert int(info["waste_cleaned"][0]) == 1


def test_clean_ray_stops_at_an_agent_on_a_clean_cell():
    env = cleanup()
    _, state, _, _, info = run(env, [(5, 6, 3), (5, 4, 0)], [CLEAN], waste=waste_at((5, 2)))
    assert upper_waste(state) == {(5, 2)} and int(info["waste_cleaned"][0]) == 0


@pytest.mark.parametrize("seed", range(4))
def test_cumulative_clean_two_agents_sweep_the_same_row(seed):
    env = cleanup()
    waste = waste_at((5, 5), (5, 3))  # row 5 is swept by the left ray of (4, 6) and the right
    agents = [(4, 6, 3), (6, 6, 3)]  # ray of (6, 6), both facing left
    _, state, _, _, info = run(env, agents, [CLEAN, CLEAN], key=seed, waste=waste)
    assert upper_waste(state) == set()
    np.testing.assert_array_equal(info["waste_cleaned"][:2], [1, 1])
    _, state, _, _, info = run(env, agents, [CLEAN, STAY], key=seed, waste=waste)
    assert upper_waste(state) == {(5, 3)}


def test_clean_beams_are_resolved_in_a_fresh_random_order():
    env = cleanup()
    state = hand_state(env, [(4, 6, 3), (6, 6, 3)], waste=waste_at((5, 4)))
    _, next_state, _, _, info = monte_carlo(env, state, joint_action(env, CLEAN, CLEAN))
    cleaned = np.asarray(info["waste_cleaned"])[:, :2]
    assert np.all(cleaned.sum(axis=1) == 1)
    assert not np.asarray(next_state.waste)[:, 5, 4].any()
    assert 0.42 < cleaned[:, 0].mean() < 0.58  # 1024 draws: 5 standard deviations


def test_ray_lengths_cover_up_to_the_first_stopper_and_before_the_first_block():
    blocked = np.array([[0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], bool)
    stops = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(ray_lengths(blocked, stops), [5, 2, 2, 0])


def test_forward_then_fire_in_later_step_uses_new_cell():
    env = cleanup()
    state = hand_state(env, [(12, 9, 0), (9, 9, 0)])
    step = compiled(env).step
    _, state, *_ = step(jax.random.key(0), state, joint_action(env, FORWARD))
    _, state, _, _, info = step(jax.random.key(1), state, joint_action(env, FIRE))
    assert int(info["hits_taken"][1]) == 1
    assert cells_of(env.beam_masks(state)[0]) >= {(10, 9), (9, 9)}
