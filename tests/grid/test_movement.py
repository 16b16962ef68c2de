"""Egocentric moves, turns and the movement-conflict rules (cleanup.md §4, §6.1)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from grid_helpers import cleanup, compiled, hand_state, joint_action, monte_carlo

from marl.envs.grid import maps
from marl.envs.grid.movement import (
    BACKWARD,
    FIRE,
    FORWARD,
    STAY,
    STEP_LEFT,
    STEP_RIGHT,
    TURN_CCW,
    TURN_CW,
    resolve_movement,
    turn,
)

# Unit vectors of the spec: F(0) up, F(1) right, F(2) down, F(3) left.
UNIT = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}
WALL = jnp.asarray(maps.load_map("cleanup").mask("@"))
resolve = jax.jit(resolve_movement)


def expected_displacement(orientation: int, action: int) -> tuple[int, int]:
    forward = UNIT[orientation]
    if action == FORWARD:
        return forward
    if action == BACKWARD:
        return (-forward[0], -forward[1])
    if action == STEP_RIGHT:
        return UNIT[(orientation + 1) % 4]
    if action == STEP_LEFT:
        return UNIT[(orientation + 3) % 4]
    return (0, 0)


def move(positions, orientations, actions, priority=None, present=None):
    """New positions of agents at `positions` with `actions` (priority: higher wins)."""
    count = len(positions)
    priority = np.arange(count) if priority is None else np.asarray(priority)
    present = np.ones(count, bool) if present is None else np.asarray(present)
    new = resolve(
        jnp.asarray(priority, jnp.int32),
        jnp.asarray(positions, jnp.int32),
        jnp.asarray(orientations, jnp.int32),
        jnp.asarray(present),
        jnp.asarray(actions, jnp.int32),
        WALL,
    )
    return [tuple(int(x) for x in cell) for cell in np.asarray(new)]


@pytest.mark.parametrize(
    ("orientation", "action"),
    list(itertools.product(range(4), (STEP_LEFT, STEP_RIGHT, FORWARD, BACKWARD, STAY))),
)
def test_egocentric_moves_in_every_orientation(orientation, action):
    start = (12, 9)
    d_row, d_col = expected_displacement(orientation, action)
    assert move([start], [orientation], [action]) == [(start[0] + d_row, start[1] + d_col)]


def test_facing_right_forward_goes_east_and_step_left_goes_north():
    assert move([(12, 9)], [1], [FORWARD]) == [(12, 10)]
    assert move([(12, 9)], [1], [STEP_LEFT]) == [(11, 9)]


def test_turns_are_clockwise_and_counter_clockwise():
    orientation = jnp.arange(4)
    np.testing.assert_array_equal(turn(orientation, jnp.full(4, TURN_CW)), [1, 2, 3, 0])
    np.testing.assert_array_equal(turn(orientation, jnp.full(4, TURN_CCW)), [3, 0, 1, 2])
    np.testing.assert_array_equal(turn(orientation, jnp.full(4, FORWARD)), [0, 1, 2, 3])


def test_walls_block_and_nothing_leaves_the_map():
    assert move([(1, 8)], [0], [FORWARD]) == [(1, 8)]
    assert move([(1, 1)], [0], [STEP_LEFT]) == [(1, 1)]
    assert move([(23, 16)], [2], [FORWARD]) == [(23, 16)]


def test_every_non_wall_cell_is_walkable():
    # into waste (2,1), clean river (1,1), stream (8,7), orchard (1,12)
    assert move([(2, 2)], [3], [FORWARD]) == [(2, 1)]
    assert move([(2, 1)], [0], [FORWARD]) == [(1, 1)]
    assert move([(7, 7)], [2], [FORWARD]) == [(8, 7)]
    assert move([(1, 11)], [1], [FORWARD]) == [(1, 12)]


def test_contested_cell_goes_to_the_higher_priority_and_the_loser_stays():
    positions, orientations = [(12, 8), (12, 10)], [1, 3]  # both step into (12, 9)
    assert move(positions, orientations, [FORWARD, FORWARD], priority=[1, 0]) == [(12, 9), (12, 10)]
    assert move(positions, orientations, [FORWARD, FORWARD], priority=[0, 1]) == [(12, 8), (12, 9)]


def test_contested_cell_is_won_about_half_the_time_over_seeds():
    env = cleanup()
    state = hand_state(env, [(12, 8, 1), (12, 10, 3)], waste=np.zeros((25, 18), bool))
    _, next_state, *_ = monte_carlo(env, state, joint_action(env, FORWARD, FORWARD))
    position = np.asarray(next_state.position)
    first_won = np.all(position[:, 0] == (12, 9), axis=-1)
    second_won = np.all(position[:, 1] == (12, 9), axis=-1)
    assert np.all(first_won ^ second_won)
    assert 0.42 < first_won.mean() < 0.58  # 1024 draws: 5 standard deviations


def test_swap_is_blocked():
    assert move([(12, 8), (12, 9)], [1, 3], [FORWARD, FORWARD]) == [(12, 8), (12, 9)]


def test_train_of_three_moves_when_its_head_moves():
    positions = [(12, 8), (12, 9), (12, 10)]
    assert move(positions, [1, 1, 1], [FORWARD] * 3) == [(12, 9), (12, 10), (12, 11)]


def test_train_stops_when_its_head_is_blocked():
    positions = [(12, 14), (12, 15), (12, 16)]  # head walks into the wall at (12, 17)
    assert move(positions, [1, 1, 1], [FORWARD] * 3) == positions
    positions = [(12, 7), (12, 8), (12, 9), (12, 10)]  # head walks into a stayer
    actions = [FORWARD, FORWARD, FORWARD, STAY]
    assert move(positions, [1, 1, 1, 1], actions) == positions


def test_train_whose_head_loses_a_contest_stays():
    # 0 -> (12,9) contested with 2 coming from (12,10); 1 follows 0 from (12,7).
    positions = [(12, 8), (12, 7), (12, 10)]
    actions = [FORWARD, FORWARD, FORWARD]
    assert move(positions, [1, 1, 3], actions, priority=[0, 1, 2]) == [(12, 8), (12, 7), (12, 9)]
    assert move(positions, [1, 1, 3], actions, priority=[2, 1, 0]) == [(12, 9), (12, 8), (12, 10)]


def test_two_by_two_rotation_of_four_moves():
    positions = [(12, 8), (12, 9), (13, 9), (13, 8)]
    orientations = [1, 2, 3, 0]  # each faces the next cell of the cycle
    assert move(positions, orientations, [FORWARD] * 4) == positions[1:] + positions[:1]


@pytest.mark.parametrize("blocker_action", [TURN_CW, TURN_CCW, FIRE, 8, STAY])
def test_moving_into_an_agent_that_turns_fires_or_cleans_fails(blocker_action):
    assert move([(12, 8), (12, 9)], [1, 0], [FORWARD, blocker_action]) == [(12, 8), (12, 9)]


def test_moving_into_a_vacated_cell_succeeds():
    assert move([(12, 8), (12, 9)], [1, 0], [FORWARD, FORWARD]) == [(12, 9), (11, 9)]


def test_absent_agents_neither_move_nor_block():
    positions = [(12, 8), (12, 9)]
    assert move(positions, [1, 3], [FORWARD, STAY], present=[True, False]) == [(12, 9), (12, 9)]
    assert move(positions, [1, 3], [STAY, FORWARD], present=[True, False]) == positions


def test_env_ignores_the_actions_of_absent_agents():
    env = cleanup()
    state = hand_state(env, [(12, 8, 1), (12, 10, 1)], present=[True, False, False, False, False])
    _, next_state, reward, _, info = compiled(env).step(
        jax.random.key(0), state, joint_action(env, STAY, FIRE)
    )
    np.testing.assert_array_equal(next_state.position[1], (12, 10))
    assert int(info["fires"][1]) == 0 and float(reward[1]) == 0.0
