"""Harvest rules (harvest.md §1-§7): map and reset, regrowth by neighbourhood and radius, eating,
FIRE rewards, observations, config validation. Movement, beams and observation geometry are the
shared engine's, tested on Cleanup."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from grid_helpers import (
    compiled,
    hand_state,
    harvest,
    joint_action,
    mask,
    monte_carlo,
    resets,
    rollout,
)

import marl.envs
from marl.envs.grid import maps
from marl.envs.grid.harvest import neighbour_table
from marl.envs.grid.movement import FIRE, FORWARD, STAY

CHARS = maps.load_map("harvest").chars
SHAPE = CHARS.shape
APPLE_CELLS = CHARS == "A"
SPAWN = {tuple(cell) for cell in np.argwhere(CHARS == "P")}
# Distinct growth probabilities per neighbour count, so Monte Carlo tells the entries apart.
DISTINCT = (0.05, 0.2, 0.45, 0.8)
CERTAIN_WITH_NEIGHBOURS = (0.0, 1.0, 1.0, 1.0)
FAR_CORNER = (14, 36, 0)  # a floor cell (not an apple cell, not next to one)


def square_neighbours(cell) -> list[tuple[int, int]]:
    row, col = cell
    return [
        (row + dr, col + dc)
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
        if (dr, dc) != (0, 0) and APPLE_CELLS[row + dr, col + dc]
    ]


def busiest_apple_cell() -> tuple[int, int]:
    """The apple cell with the most apple cells in its 3 x 3 square (first in row-major order)."""
    cells = [tuple(cell) for cell in np.argwhere(APPLE_CELLS)]
    return max(cells, key=lambda cell: len(square_neighbours(cell)))


# --------------------------------------------------------------------------------- map, reset


def test_reset_has_every_apple_and_agents_on_distinct_spawn_points():
    env = harvest()
    obs, state = resets(env)
    apple = np.asarray(state.apple)
    assert (apple.sum(axis=(1, 2)) == 155).all()
    np.testing.assert_array_equal(apple[0], APPLE_CELLS)
    position = np.asarray(state.position)
    for cells in position:
        cells = {tuple(cell) for cell in cells}
        assert len(cells) == 5 and cells <= SPAWN
        assert not any(APPLE_CELLS[cell] for cell in cells)
    assert {tuple(cell) for cell in position.reshape(-1, 2)} == SPAWN
    assert obs.shape == (1024, 5, 15, 15, 9)
    assert env.num_actions == 8
    assert env.global_state_shape == (16, 38, 12)


# ----------------------------------------------------------------------------------- regrowth


def test_neighbourhoods_are_the_square_or_the_radius_two_disc():
    grid = np.argwhere(np.ones((5, 5), bool)).astype(np.int32)
    centre = 12  # (2, 2)
    square = neighbour_table(grid, 1.5)[centre]
    disc = neighbour_table(grid, 2.0)[centre]
    as_cells = lambda row: {tuple(grid[i]) for i in row if i < len(grid)}
    assert as_cells(square) == {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)} - {(2, 2)}
    assert as_cells(disc) == as_cells(square) | {(0, 2), (4, 2), (2, 0), (2, 4)}


@pytest.mark.parametrize(
    ("radius", "isolated"),
    [(1.5, {(10, 1), (10, 9), (13, 2)}), (2.0, {(10, 1), (13, 2)})],
)
def test_isolated_apple_cells_are_the_ones_the_spec_lists(radius, isolated):
    env = harvest(regrowth_radius=radius)
    has_neighbour = (env.neighbours < len(env.apple_cells)).any(axis=1)
    assert {tuple(cell) for cell in env.apple_cells[~has_neighbour]} == isolated


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4])
def test_an_empty_apple_cell_grows_at_the_rate_of_its_neighbour_count(count):
    env = harvest(num_agents=1, regrowth_probs=DISTINCT)
    target = busiest_apple_cell()
    neighbours = square_neighbours(target)
    assert len(neighbours) >= 4
    state = hand_state(env, [FAR_CORNER], apple=mask(neighbours[:count], SHAPE))
    _, next_state, *_ = monte_carlo(env, state, joint_action(env, STAY), batches=4)
    grown = np.asarray(next_state.apple)[:, target[0], target[1]]
    expected = DISTINCT[min(count, 3)]
    samples = grown.shape[0]
    assert abs(grown.mean() - expected) < 5 * np.sqrt(expected * (1 - expected) / samples)


def test_an_apple_two_cells_away_on_an_axis_counts_only_with_radius_two():
    cells = [tuple(cell) for cell in np.argwhere(APPLE_CELLS)]
    target, far = next(
        (cell, (cell[0] + 2, cell[1])) for cell in cells if APPLE_CELLS[cell[0] + 2, cell[1]]
    )
    apples = mask([far], SHAPE)
    for radius, grows in ((1.5, False), (2.0, True)):
        env = harvest(num_agents=1, regrowth_probs=CERTAIN_WITH_NEIGHBOURS, regrowth_radius=radius)
        state = hand_state(env, [FAR_CORNER], apple=apples)
        _, next_state, *_ = compiled(env).step(jax.random.key(0), state, joint_action(env, STAY))
        assert bool(next_state.apple[target]) is grows, radius


def test_growth_is_synchronous_and_never_under_an_agent():
    env = harvest(num_agents=1, regrowth_probs=CERTAIN_WITH_NEIGHBOURS)
    target = busiest_apple_cell()
    seed_apple = square_neighbours(target)[0]
    state = hand_state(env, [FAR_CORNER], apple=mask([seed_apple], SHAPE))
    _, next_state, *_ = compiled(env).step(jax.random.key(0), state, joint_action(env, STAY))
    grown = np.asarray(next_state.apple) & ~mask([seed_apple], SHAPE)
    # exactly the apple cells next to the seed apple grow; their own neighbours wait a step
    np.testing.assert_array_equal(grown, mask(square_neighbours(seed_apple), SHAPE))

    agent_cell = square_neighbours(seed_apple)[0]
    state = hand_state(env, [(*agent_cell, 0)], apple=mask([seed_apple], SHAPE))
    _, next_state, *_ = compiled(env).step(jax.random.key(0), state, joint_action(env, STAY))
    assert not next_state.apple[agent_cell]
    assert next_state.apple.sum() == len(square_neighbours(seed_apple))  # seed + others


def test_an_emptied_orchard_never_regrows():
    env = harvest()
    state = hand_state(env, [FAR_CORNER], apple=np.zeros(SHAPE, bool))
    actions = jax.random.randint(jax.random.key(3), (32, env.num_agents), 0, 8)
    _, _, _, _, info = rollout(env, state, actions)
    assert (np.asarray(info["apple_count"]) == 0).all()


def test_default_regrowth_is_the_reference_rule():
    env = harvest()
    assert env.regrowth_probs == (0.0, 0.005, 0.02, 0.05) and env.regrowth_radius == 1.5
    np.testing.assert_allclose(
        env.regrowth_probability(jnp.arange(6)), [0.0, 0.005, 0.02, 0.05, 0.05, 0.05]
    )


# ------------------------------------------------------------------------ eating and rewards


def test_eating_fire_cost_and_hit_penalty_are_the_reward_components():
    env = harvest(num_agents=2)
    # agent 0 steps onto an apple; agent 1 fires at agent 0 two cells ahead of it
    apple_cell = (1, 13)
    assert APPLE_CELLS[apple_cell] and not APPLE_CELLS[1, 12]
    state = hand_state(env, [(1, 12, 1), (1, 15, 3)], apple=mask([apple_cell], SHAPE))
    _, next_state, reward, _, info = compiled(env).step(
        jax.random.key(0), state, joint_action(env, FORWARD, FIRE)
    )
    assert tuple(np.asarray(next_state.position[0])) == apple_cell
    assert env.reward_components == ("apples", "fire_cost", "hit_penalty")
    np.testing.assert_array_equal(info["reward_vector"], [[1.0, 0.0, -50.0], [0.0, -1.0, 0.0]])
    np.testing.assert_array_equal(reward, [-49.0, -1.0])
    np.testing.assert_array_equal(info["apples_eaten"], [1, 0])
    np.testing.assert_array_equal(info["hits_taken"], [1, 0])
    np.testing.assert_array_equal(info["hits_dealt"], [0, 1])
    assert not next_state.apple[apple_cell]


def test_observation_planes_show_apples_and_the_orchard():
    env = harvest(num_agents=1)
    row, col = 1, 13  # an apple cell; the agent stands left of it, facing right
    state = hand_state(env, [(row, col - 1, 1)], apple=mask([(row, col)], SHAPE))
    obs = np.asarray(compiled(env).observation(state))[0]
    names = env.channel_names
    assert names[:3] == ("wall", "apple", "orchard") and obs.shape == (15, 15, 9)
    ahead = (6, 7)  # one cell forward of the centre (7, 7) in the window
    assert obs[ahead][names.index("apple")] == 1 and obs[ahead][names.index("orchard")] == 1
    assert obs[..., names.index("apple")].sum() == 1
    assert obs[..., names.index("orchard")].sum() > 1


# --------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"regrowth_probs": [0.1, 0.2]}, "regrowth_probs must be a list of 4 probabilities"),
        ({"regrowth_probs": [0, 0, 0, 1.5]}, "regrowth_probs must be a list of 4"),
        ({"regrowth_radius": 0.5}, "regrowth_radius must be a number in [1, 10]"),
        ({"num_agents": 21}, "num_agents must be in 1..20"),
        ({"hit_penalty": -1}, "hit_penalty must be a finite number >= 0"),
    ],
)
def test_bad_parameters_are_rejected_with_one_clear_message(params, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        marl.envs.make("harvest", **params)


def test_a_list_of_probabilities_from_a_config_is_accepted_as_a_tuple():
    env = marl.envs.make("harvest", regrowth_probs=[0.0, 0.0025, 0.005, 0.025])
    assert env.regrowth_probs == (0.0, 0.0025, 0.005, 0.025)
    hash(env)
