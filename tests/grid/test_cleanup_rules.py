"""Cleanup rules (cleanup.md §2-§7, §11): reset, spawning, eating, rewards, horizon, tag-out,
config validation, registry and rendering."""

from __future__ import annotations

import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from grid_helpers import (
    LONG_ROLLOUT_STEPS,
    cleanup,
    compiled,
    hand_state,
    joint_action,
    long_rollouts,
    mask,
    monte_carlo,
    resets,
    rollout,
)

import marl.envs
from marl.envs.grid import maps
from marl.envs.grid.cleanup import Cleanup
from marl.envs.grid.movement import FIRE, FORWARD, STAY
from marl.envs.grid.render import write_gif

CLEAN = 8
CHARS = maps.load_map("cleanup").chars
CAPABLE_CELLS = np.argwhere(np.isin(CHARS, ["H", "R"]))
ORCHARD = CHARS == "B"
SPAWN = {tuple(cell) for cell in np.argwhere(CHARS == "P")}
NOBODY = []  # hand_state with every agent absent
# One non-default configuration for the reward, delay and horizon tests (one compile for all).
CUSTOM = {"fire_cost": 0.25, "hit_penalty": 3.5, "waste_spawn_delay": 5, "max_steps": 5}
TAG_OUT = {"num_agents": 10, "tag_out_steps": 3}


def waste_count_grid(count: int) -> np.ndarray:
    """Waste on the first `count` waste-capable cells in row-major order."""
    return mask(CAPABLE_CELLS[:count])


def stay_actions(env, steps: int) -> jax.Array:
    return jnp.full((steps, env.num_agents), STAY, jnp.int32)


def new_cells(next_state, state) -> np.ndarray:
    """bool `[K, H, W]`: waste cells of each sampled next state that were clean before."""
    return np.asarray(next_state.waste) & ~np.asarray(state.waste)


# ------------------------------------------------------------------------------------- reset


def test_reset_invariants_over_many_seeds():
    env = cleanup()
    obs, state = resets(env)
    position = np.asarray(state.position)
    for cells in position:
        assert len({tuple(cell) for cell in cells}) == 5
        assert {tuple(cell) for cell in cells} <= SPAWN
    assert {tuple(cell) for cell in position.reshape(-1, 2)} == SPAWN
    assert set(np.unique(np.asarray(state.orientation))) == {0, 1, 2, 3}
    assert np.all(np.asarray(state.waste).sum(axis=(1, 2)) == 56)
    np.testing.assert_array_equal(np.asarray(state.waste)[0], CHARS == "H")
    assert not np.asarray(state.apple).any()
    assert np.all(np.asarray(state.time) == 0) and np.asarray(state.present).all()
    assert obs.shape == (1024, 5, 15, 15, 12)


def test_reset_spawn_points_are_uniform():
    env = cleanup()
    _, state = resets(env, batches=2, seed=1)
    cells = [tuple(cell) for cell in np.asarray(state.position)[:, 0]]
    counts = np.array([cells.count(cell) for cell in sorted(SPAWN)])
    expected = len(cells) / 10
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected * 0.9))


# ----------------------------------------------------------------------------- waste, apples


def test_all_agents_staying_forever_keeps_56_waste_and_no_apples():
    env = cleanup()
    _, (next_states, _, _, _, info) = long_rollouts(env, stay_actions(env, LONG_ROLLOUT_STEPS))
    assert np.all(np.asarray(info["waste_count"]) == 56)
    assert np.all(np.asarray(info["apple_count"]) == 0)
    assert not np.asarray(next_states.apple).any()


def test_apple_probability_table():
    env = cleanup()
    table = {
        48: 0.0,
        56: 0.0,
        47: 0.000630,
        45: 0.002731,
        40: 0.007983,
        30: 0.018487,
        20: 0.028992,
        10: 0.039496,
        0: 0.05,
    }
    for waste, probability in table.items():
        assert float(env.apple_probability(jnp.int32(waste))) == pytest.approx(
            probability, abs=1e-6
        )


def test_apples_grow_at_the_table_rate_on_free_orchard_cells():
    env = cleanup()
    state = hand_state(env, NOBODY, waste=waste_count_grid(20))
    _, next_state, *_ = monte_carlo(env, state, joint_action(env))
    grown = np.asarray(next_state.apple)
    assert not (grown & ~ORCHARD).any()
    expected = len(grown) * 103 * 0.028992
    assert abs(grown.sum() - expected) < 5 * np.sqrt(expected)
    per_cell = grown.sum(axis=0)[ORCHARD]
    assert per_cell.min() > 0  # every orchard cell can grow


@pytest.mark.parametrize("waste", [48, 56])
def test_at_or_above_the_threshold_nothing_grows_and_no_waste_spawns(waste):
    env = cleanup()
    state = hand_state(env, NOBODY, waste=waste_count_grid(waste))
    _, next_state, _, _, info = monte_carlo(env, state, joint_action(env))
    assert not np.asarray(next_state.apple).any()
    assert np.all(np.asarray(info["waste_count"]) == waste)


def test_below_the_threshold_waste_rises_by_one_per_step_up_to_48():
    env = cleanup()
    state = hand_state(env, NOBODY, waste=waste_count_grid(40))
    _, _, _, _, info = rollout(env, state, stay_actions(env, 15), key=3)
    np.testing.assert_array_equal(info["waste_count"], [41, 42, 43, 44, 45, 46, 47, 48] + [48] * 7)


def test_new_waste_lands_only_on_clean_waste_capable_cells_even_under_agents():
    env = cleanup()
    capable = np.isin(CHARS, ["H", "R"])
    state = hand_state(env, [(1, 1, 0)], waste=waste_count_grid(47) & ~mask([(1, 1)]))
    _, next_state, *_ = monte_carlo(env, state, joint_action(env), batches=3)
    new = new_cells(next_state, state)
    assert np.all(new.sum(axis=(1, 2)) == 1) and not (new & ~capable).any()
    assert new[:, 1, 1].any()  # may spawn under the agent standing at (1, 1)


def test_per_step_mode_spawns_with_probability_p_on_a_uniform_candidate():
    env = cleanup(
        waste_spawn_mode="per_step", waste_spawn_prob=0.3, pollution_stops_at_depletion=False
    )
    state = hand_state(env, NOBODY)  # 63 clean candidates
    _, next_state, *_ = monte_carlo(env, state, joint_action(env), batches=4)
    new = new_cells(next_state, state)
    spawned = new.sum(axis=(1, 2))
    assert set(np.unique(spawned)) <= {0, 1}
    assert abs(spawned.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / len(spawned))
    counts = new.sum(axis=0)[np.isin(CHARS, ["R"])]
    expected = spawned.sum() / 63
    assert ((counts - expected) ** 2 / expected).sum() < 62 + 5 * np.sqrt(2 * 62)


def test_per_cell_mode_succeeds_with_one_minus_q_to_the_k_on_a_uniform_candidate():
    env = cleanup(pollution_stops_at_depletion=False)
    free = [tuple(cell) for cell in CAPABLE_CELLS[[0, 50, 100]]]
    waste = np.isin(CHARS, ["H", "R"]) & ~mask(free)
    state = hand_state(env, NOBODY, waste=waste)
    _, next_state, *_ = monte_carlo(env, state, joint_action(env), batches=4)
    new = new_cells(next_state, state)
    success = 1 - 0.5**3
    bound = 5 * np.sqrt(success * (1 - success) / len(new))
    assert abs(new.sum(axis=(1, 2)).mean() - success) < bound
    per_cell = np.array([new[:, r, c].sum() for r, c in free])
    assert np.all(np.abs(per_cell - per_cell.mean()) < 5 * np.sqrt(per_cell.mean()))


def test_pollution_stops_at_depletion_only_when_asked():
    env = cleanup(pollution_stops_at_depletion=False)
    state = hand_state(env, NOBODY)  # W = 56 >= 0.4 * 119
    _, _, _, _, info = compiled(env).step(jax.random.key(0), state, joint_action(env))
    assert int(info["waste_count"]) == 57


def test_waste_spawn_delay():
    env = cleanup(**CUSTOM)
    state = hand_state(env, NOBODY, waste=waste_count_grid(40))
    _, _, _, _, info = rollout(env, state, stay_actions(env, 7))
    np.testing.assert_array_equal(info["waste_count"], [40, 40, 40, 40, 40, 41, 42])


# --------------------------------------------------------------------------- eating, rewards


def test_eating_an_apple_gives_one_and_removes_it():
    env = cleanup()
    state = hand_state(env, [(3, 11, 1)], apple=mask([(3, 12), (3, 14)]))
    _, next_state, reward, _, info = compiled(env).step(
        jax.random.key(0), state, joint_action(env, FORWARD)
    )
    assert float(reward[0]) == 1.0 and int(info["apples_eaten"][0]) == 1
    assert np.asarray(next_state.apple)[3, 12] == 0 and np.asarray(next_state.apple)[3, 14] == 1
    assert int(info["apple_count"]) == 1
    np.testing.assert_array_equal(info["reward_vector"][0], [1, 0, 0, 0])


def test_apples_never_grow_under_agents():
    env = cleanup()
    agents = [(1, 12, 0), (2, 13, 0), (3, 14, 0), (4, 15, 0), (5, 16, 0)]
    state = hand_state(env, agents, waste=np.zeros((25, 18), bool))
    states, *_ = rollout(env, state, stay_actions(env, 32), key=4)
    apples = np.asarray(states.apple)
    for row, col, _ in agents:
        assert not apples[:, row, col].any()
    assert apples[-1].sum() > 40  # the rest of the orchard does grow (p = 0.05 per step)


def test_reward_is_the_first_three_components_of_the_reward_vector():
    env = cleanup(**CUSTOM)
    agents = [(12, 10, 0), (12, 8, 1), (14, 10, 0), (3, 11, 1)]
    state = hand_state(env, agents, apple=mask([(3, 12)]))
    _, _, reward, _, info = compiled(env).step(
        jax.random.key(0), state, joint_action(env, STAY, FIRE, FIRE, FORWARD)
    )
    vector = np.asarray(info["reward_vector"])
    np.testing.assert_array_equal(
        vector[:4], [[0, 0, -7.0, 0], [0, -0.25, 0, 0], [0, -0.25, 0, 0], [1, 0, 0, 0]]
    )
    np.testing.assert_array_equal(reward, vector @ np.array([1, 1, 1, 0], np.float32))
    assert env.reward_components == ("apples", "fire_cost", "hit_penalty", "waste_cleaned")


def test_info_counters_are_per_step_and_have_fixed_shapes():
    env = cleanup()
    state = hand_state(env, [(12, 9, 0), (5, 6, 3)])
    _, _, _, _, info = compiled(env).step(jax.random.key(0), state, joint_action(env, FIRE, CLEAN))
    for name in (
        "apples_eaten",
        "fires",
        "hits_taken",
        "hits_dealt",
        "cleans",
        "waste_cleaned",
        "present",
    ):
        assert info[name].shape == (5,)
    assert info["waste_count"].shape == () and info["apple_count"].shape == ()
    assert info["reward_vector"].shape == (5, 4)
    np.testing.assert_array_equal(info["fires"], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(info["cleans"], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(info["present"], [True, True, False, False, False])


# ------------------------------------------------------------------------------------ horizon


def test_fixed_horizon_done_exactly_at_max_steps():
    env = cleanup(**CUSTOM)
    _, state = compiled(env).reset(jax.random.key(0))
    states, _, _, done, _ = rollout(env, state, stay_actions(env, 5), key=1)
    np.testing.assert_array_equal(done, [False, False, False, False, True])
    np.testing.assert_array_equal(states.time, [1, 2, 3, 4, 5])
    assert env.max_steps == 5


# ------------------------------------------------------------------------------------ tag-out


def test_tag_out_removes_a_victim_for_k_steps_and_respawns_it_on_a_free_spawn_point():
    env = cleanup(**TAG_OUT)
    # 0 shoots 1; 1 shoots 2 in the same step (its beam still fires); 3 stands on a spawn point.
    # Then 0 keeps shooting at the removed agents' last cells; from step 4 on everyone stays.
    agents = [(12, 9, 0), (10, 9, 0), (8, 9, 2), (10, 11, 0)]
    state = hand_state(env, agents)
    actions = jnp.asarray(
        [joint_action(env, FIRE, FIRE)]
        + [joint_action(env, FIRE, FIRE, FIRE)] * 2
        + [joint_action(env)] * 3
    )
    states, obs, reward, _, info = rollout(env, state, actions)
    present = np.asarray(info["present"])
    np.testing.assert_array_equal(present[:, 1], [False, False, False, True, True, True])
    np.testing.assert_array_equal(info["hits_taken"][0, :3], [0, 1, 1])
    np.testing.assert_array_equal(reward[0, :3], [-1.0, -51.0, -50.0])
    # while removed: no action, no reward, nobody can hit it, zero observation
    np.testing.assert_array_equal(reward[1:3, 1], [0.0, 0.0])
    np.testing.assert_array_equal(info["fires"][1:3, 1], [0, 0])
    np.testing.assert_array_equal(info["hits_taken"][1:3, 1], [0, 0])
    assert not np.asarray(obs)[1:3, 1].any() and np.asarray(obs)[3, 1].any()
    # back at step 1 + 3 on distinct free spawn points
    position = np.asarray(states.position)
    back = {tuple(position[3, 1]), tuple(position[3, 2])}
    assert len(back) == 2 and back <= SPAWN - {(10, 11)}
    others = {tuple(position[3, a]) for a in (0, 3)}
    assert not back & others


def test_removed_agents_do_not_block_moves():
    env = cleanup(**TAG_OUT)
    state = hand_state(
        env,
        [(12, 9, 1), (12, 10, 0)],
        present=[True] + [False] * 9,
        removed_until=[0, 9] + [0] * 8,
        time=1,
    )
    _, next_state, *_ = compiled(env).step(jax.random.key(0), state, joint_action(env, FORWARD))
    np.testing.assert_array_equal(next_state.position[0], (12, 10))


def test_respawn_never_lands_on_a_present_agent():
    env = cleanup(**TAG_OUT)
    spawn = sorted(SPAWN)
    # agents 1..9 stand on 9 spawn points; agent 0 (absent) must come back on the tenth
    agents = [(0, 0, 0)] + [(row, col, 0) for row, col in spawn[1:]]
    state = hand_state(env, agents, present=[False] + [True] * 9, removed_until=[1] + [0] * 9)
    _, next_state, *_ = monte_carlo(env, state, joint_action(env))
    assert np.all(np.asarray(next_state.present)[:, 0])
    np.testing.assert_array_equal(
        np.asarray(next_state.position)[:, 0], np.tile(spawn[0], (1024, 1))
    )


# ------------------------------------------------------------------------- config, registry


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"num_agents": 0}, "num_agents"),
        ({"num_agents": 11}, "num_agents"),
        ({"num_agents": 2.0}, "num_agents"),
        ({"max_steps": 0}, "max_steps"),
        ({"view_radius": 0}, "view_radius"),
        ({"fire_cost": -1.0}, "fire_cost"),
        ({"hit_penalty": float("nan")}, "hit_penalty"),
        ({"tag_out_steps": -1}, "tag_out_steps"),
        ({"waste_spawn_mode": "sometimes"}, "waste_spawn_mode"),
        ({"waste_spawn_prob": 1.5}, "waste_spawn_prob"),
        ({"apple_respawn_prob": -0.1}, "apple_respawn_prob"),
        ({"waste_spawn_delay": -2}, "waste_spawn_delay"),
        ({"threshold_depletion": 0.2, "threshold_restoration": 0.3}, "threshold_restoration"),
        ({"threshold_depletion": 1.2}, "threshold_depletion"),
        ({"show_beams": "yes"}, "show_beams"),
        ({"pollution_stops_at_depletion": 1}, "pollution_stops_at_depletion"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_the_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        Cleanup(**params)


def test_env_is_hashable_static_config_and_registered():
    env = marl.envs.make("cleanup", num_agents=3, view_radius=4)
    assert isinstance(env, Cleanup) and env == Cleanup(num_agents=3, view_radius=4)
    assert hash(env) == hash(Cleanup(num_agents=3, view_radius=4))
    assert env.num_actions == 9 and env.obs_shape == (9, 9, 12)
    obs, _ = jax.jit(env.reset)(jax.random.key(0))
    assert obs.shape == (3, 9, 9, 12)
    with pytest.raises(ValueError, match="nope"):
        marl.envs.make("cleanup", nope=1)


# ------------------------------------------------------------------------------------ render


def test_render_uses_the_reference_colours():
    env = cleanup()
    agents = [(12, 9, 0), (10, 9, 0), (5, 6, 3)]
    state = hand_state(env, agents, apple=mask([(1, 13)]))
    _, state, *_ = compiled(env).step(jax.random.key(0), state, joint_action(env, FIRE))
    image = env.render(state)
    assert image.shape == (25, 18, 3) and image.dtype == np.uint8
    colour = {
        tuple(cell): tuple(int(x) for x in image[cell])
        for cell in [
            (0, 0),
            (2, 1),
            (1, 1),
            (8, 7),
            (1, 7),
            (1, 12),
            (1, 13),
            (5, 6),
            (10, 9),
            (11, 9),
        ]
    }
    assert colour[(0, 0)] == (180, 180, 180)
    assert colour[(2, 1)] == (99, 156, 194)  # waste
    assert colour[(1, 1)] == colour[(8, 7)] == (113, 75, 24)  # clean river, stream
    assert colour[(1, 7)] == colour[(1, 12)] == (0, 0, 0)  # floor, empty orchard
    assert colour[(1, 13)] == (0, 255, 0)  # apple
    assert colour[(5, 6)] == (204, 0, 204)  # agent 2
    assert colour[(10, 9)] == colour[(11, 9)] == (255, 255, 0)  # FIRE beam over everything
    assert env.render(state, scale=3).shape == (75, 54, 3)


def test_write_gif_round_trip(tmp_path):
    env = cleanup()
    frames = [
        env.render(compiled(env).reset(jax.random.key(seed))[1], scale=2) for seed in range(3)
    ]
    path = write_gif(frames, tmp_path / "episode.gif", fps=5)
    read = imageio.mimread(path)
    assert len(read) == 3 and read[0].shape[:2] == (50, 36)
    np.testing.assert_array_equal(read[1][..., :3], frames[1])
    with pytest.raises(ValueError, match="fps"):
        write_gif(frames, tmp_path / "bad.gif", fps=0)
