"""Gathering rules (gathering.md §1-§7) on hand-made states: map and reset, movement, eating and
apple respawn, beams, hits and tag-out, player respawn, observations, info, horizon, config
validation, registry and rendering."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from grid_helpers import compiled, hand_state, joint_action, mask, rollout

import marl.envs
from marl.envs.grid import maps
from marl.envs.grid.game import GridGame
from marl.envs.grid.gathering import Gathering
from marl.envs.grid.movement import BACKWARD, FORWARD, STAY, STEP_RIGHT

BEAM = 7
SHAPE = (13, 33)
CHARS = maps.load_map("gathering").chars
DIAMOND = [(r, c) for r in range(13) for c in range(33) if abs(r - 6) + abs(c - 16) <= 2]
START = [(6, 1), (6, 31)]
UNIT = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}
WALL, APPLE, ORCHARD, SELF, OTHER, FACING_UP = range(6)
BEAM_PLANE = 9
# Short timers so that whole absences fit in one rollout; one compile per configuration.
SMALL = {"n_apple": 3, "n_tagged": 5, "max_steps": 30}
NO_REMOVAL = {"n_tagged": 0, "hits_to_tag": 3}
EXTRA_PLANES = {"show_beams": True, "agent_id_planes": True}


@functools.cache
def gathering(**params) -> Gathering:
    """A `Gathering` with `params`, shared by every test that asks for the same configuration."""
    return Gathering(**params)


def step(env, state, *actions, key=0):
    return compiled(env).step(jax.random.key(key), state, joint_action(env, *actions))


def repeat(env, steps, *actions):
    """int32 `[steps, 2]`: the same joint action `steps` times."""
    return jnp.tile(joint_action(env, *actions), (steps, 1))


def sequence(env, *joint_actions):
    """int32 `[T, 2]` from joint actions given as (action of player 0, action of player 1)."""
    return jnp.stack([joint_action(env, *pair) for pair in joint_actions])


def window_cell(viewer, orientation, cell, radius=7):
    """(u, v): where map `cell` appears in the window of a player at `viewer` facing
    `orientation` (the spec's window formula, inverted)."""
    forward, right = UNIT[orientation], UNIT[(orientation + 1) % 4]
    offset = np.subtract(cell, viewer)
    return radius - int(offset @ forward), radius + int(offset @ right)


# ------------------------------------------------------------------------------ map, reset


def test_map_counts_and_start_cells():
    env = gathering()
    assert CHARS.shape == SHAPE and env.grid_map.chars.shape == SHAPE
    assert (CHARS == "@").sum() == 88 and (CHARS == " ").sum() == 326
    assert sorted(map(tuple, np.argwhere(CHARS == "A"))) == DIAMOND and len(DIAMOND) == 13
    assert [tuple(np.argwhere(CHARS == char)[0]) for char in "12"] == START
    wall = CHARS == "@"
    assert wall[[0, -1]].all() and wall[:, [0, -1]].all() and not wall[1:-1, 1:-1].any()


def test_reset_is_deterministic_and_as_specified():
    env = gathering()
    first_obs, state = compiled(env).reset(jax.random.key(0))
    other_obs, other_state = compiled(env).reset(jax.random.key(123))
    np.testing.assert_array_equal(first_obs, other_obs)
    jax.tree.map(np.testing.assert_array_equal, state, other_state)
    np.testing.assert_array_equal(state.position, START)
    np.testing.assert_array_equal(state.orientation, [1, 3])
    np.testing.assert_array_equal(state.apple, mask(DIAMOND, shape=SHAPE))
    np.testing.assert_array_equal(state.hit_marks, [0, 0])
    assert int(state.time) == 0 and np.asarray(state.present).all()
    assert first_obs.shape == (2, 15, 15, 9) and first_obs.dtype == np.uint8
    np.testing.assert_array_equal(first_obs, compiled(env).observation(state))


def test_reset_observation_rotation_sanity():
    # With R = 15 both players see the nearer half of the diamond straight ahead, mirrored.
    env = gathering(view_radius=15)
    obs, _ = env.reset(jax.random.key(0))
    obs = np.asarray(obs)
    for player, (start, facing) in enumerate(zip(START, (1, 3), strict=True)):
        expected = {
            window_cell(start, facing, cell, radius=15)
            for cell in DIAMOND
            if abs(cell[1] - start[1]) <= 15
        }
        assert len(expected) == 9
        assert set(map(tuple, np.argwhere(obs[player, :, :, APPLE]))) == expected
        np.testing.assert_array_equal(obs[player, :, :, ORCHARD], obs[player, :, :, APPLE])
        assert obs[player, 15, 15, SELF] == 1 and obs[player, ..., SELF].sum() == 1
        assert not obs[player, ..., OTHER].any()  # 30 cells apart
    # The apex (4, 16) is on player 0's left and on player 1's right.
    assert obs[0, 0, 13, APPLE] == 1 and obs[1, 0, 17, APPLE] == 1
    # Default radius: player 0 faces right from (6, 1); behind it and two columns on each side
    # (rows -1, 0 and 12, 13) read as wall, the rest of the window is floor.
    reset_obs = np.asarray(gathering().reset(jax.random.key(0))[0])
    expected_wall = np.zeros((15, 15), bool)
    expected_wall[8:] = True
    expected_wall[:, [0, 1, 13, 14]] = True
    np.testing.assert_array_equal(reset_obs[0, :, :, WALL], expected_wall)
    assert not reset_obs[0, ..., APPLE].any()


@pytest.mark.parametrize("facing", [0, 1, 2, 3])
def test_observation_is_egocentric_for_every_orientation(facing):
    env = gathering(**SMALL)
    forward, right = np.array(UNIT[facing]), np.array(UNIT[(facing + 1) % 4])
    viewer = np.array([6, 16]) - 3 * forward  # the diamond's centre 3 cells ahead
    other = viewer - 2 * right  # 2 cells to the viewer's left, facing the viewer's right
    state = hand_state(env, [(*viewer, facing), (*other, (facing + 1) % 4)])
    obs = np.asarray(compiled(env).observation(state))
    expected = {window_cell(viewer, facing, cell) for cell in DIAMOND}
    assert set(map(tuple, np.argwhere(obs[0, ..., APPLE]))) == expected
    assert obs[0, 4, 7, APPLE] == 1 and (4, 7) == window_cell(viewer, facing, (6, 16))
    assert obs[0, 7, 5, OTHER] == 1 and obs[0, ..., OTHER].sum() == 1
    assert obs[0, 7, 5, FACING_UP + 1] == 1  # the other faces the viewer's right
    # the other faces the viewer's right, so the viewer is 2 cells ahead of it, facing its left
    assert obs[1, 5, 7, OTHER] == 1 and obs[1, 5, 7, FACING_UP + 3] == 1


def test_identity_planes_without_beam_planes():
    env = gathering(**SMALL, agent_id_planes=True)
    assert env.obs_shape == (15, 15, 11)
    state = hand_state(env, [(6, 12, 1), (4, 15, 2)], apple=mask(DIAMOND[1:], shape=SHAPE))
    obs = np.asarray(jax.jit(env.observation)(state))
    np.testing.assert_array_equal(obs, jax.jit(functools.partial(GridGame.observation, env))(state))
    np.testing.assert_array_equal(obs[0, 7, 7, 9:], [1, 0])
    np.testing.assert_array_equal(obs[0, 4, 5, 9:], [0, 1])  # 3 ahead, 2 to the left
    assert obs[0, 4, 5, OTHER] == 1 and obs[0, 4, 5, FACING_UP + 1] == 1


# --------------------------------------------------------------------------------- movement


def test_contested_cell_goes_to_a_random_player_and_swaps_are_blocked():
    env = gathering(**SMALL)
    contest = hand_state(env, [(3, 10, 1), (3, 12, 3)])
    winners = []
    for key in range(60):
        _, next_state, *_ = step(env, contest, FORWARD, FORWARD, key=key)
        position = np.asarray(next_state.position).tolist()
        assert sorted(position) in ([[3, 10], [3, 11]], [[3, 11], [3, 12]])
        winners.append(position[0] == [3, 11])
    assert 10 <= sum(winners) <= 50
    swap = hand_state(env, [(3, 10, 1), (3, 11, 3)])
    _, next_state, *_ = step(env, swap, FORWARD, FORWARD)
    np.testing.assert_array_equal(next_state.position, [[3, 10], [3, 11]])
    walled = hand_state(env, [(1, 1, 0), (11, 31, 2)])
    _, next_state, *_ = step(env, walled, FORWARD, FORWARD)
    np.testing.assert_array_equal(next_state.position, [[1, 1], [11, 31]])


# ------------------------------------------------------------------------- eating, apples


def test_eating_gives_one_point_and_removes_the_apple():
    env = gathering(**SMALL)
    state = hand_state(env, [(6, 13, 1), (1, 1, 0)])
    _, next_state, reward, _, info = step(env, state, FORWARD, BEAM)
    np.testing.assert_array_equal(reward, [1.0, 0.0])
    np.testing.assert_array_equal(info["apples_eaten"], [1, 0])
    np.testing.assert_array_equal(info["reward_vector"], [[1.0], [0.0]])
    assert not np.asarray(next_state.apple)[6, 14] and int(info["apple_count"]) == 12
    np.testing.assert_array_equal(next_state.apple_respawn_step[DIAMOND.index((6, 14))], 1 + 3)


def test_reward_is_one_per_apple_only():
    env = gathering(**SMALL)
    assert env.reward_components == ("apples",) and env.num_actions == 8
    # player 1 is hit twice and tagged out, player 0 beams: nobody earns or pays anything
    state = hand_state(env, [(3, 5, 1), (3, 9, 3)])
    _, _, reward, _, info = rollout(env, state, repeat(env, 3, BEAM, STAY))
    assert not np.asarray(reward).any() and not np.asarray(info["reward_vector"]).any()
    np.testing.assert_array_equal(info["tagged_out"][:, 1], [0, 1, 0])


def test_eaten_apple_returns_after_exactly_n_apple_steps():
    env = gathering(**SMALL)  # n_apple = 3
    state = hand_state(env, [(6, 13, 1), (1, 1, 0)])
    actions = sequence(env, (FORWARD, STAY), (BACKWARD, STAY), *[(STAY, STAY)] * 4)
    states, obs, _, _, info = rollout(env, state, actions)
    # eaten at step 1: absent at steps 1, 2, 3, back at step 4 = 1 + n_apple
    np.testing.assert_array_equal(states.apple[:, 6, 14], [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(info["apple_count"], [12, 12, 12, 13, 13, 13])
    # player 0 stands at (6, 13) facing right from step 2: the cell is one ahead of it
    np.testing.assert_array_equal(obs[1:, 0, 6, 7, APPLE], [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(obs[1:, 0, 6, 7, ORCHARD], [1, 1, 1, 1, 1])


def test_apple_waits_while_a_player_stands_on_its_cell():
    env = gathering(**SMALL)  # n_apple = 3
    # player 0 eats (6, 14) at step 1 and stands on it until it leaves at step 6
    state = hand_state(env, [(6, 13, 1), (1, 1, 0)])
    actions = sequence(env, (FORWARD, STAY), *[(STAY, STAY)] * 4, (BACKWARD, STAY))
    states, _, reward, _, _ = rollout(env, state, actions)
    np.testing.assert_array_equal(reward[:, 0], [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(states.apple[:, 6, 14], [0, 0, 0, 0, 0, 1])


def test_apple_under_the_other_player_waits_too():
    env = gathering(**SMALL)
    # player 1 stands on the empty apple cell (6, 14) whose respawn step has passed
    apple = mask([cell for cell in DIAMOND if cell != (6, 14)], shape=SHAPE)
    state = hand_state(env, [(1, 1, 0), (6, 14, 0)], apple=apple, time=10)
    actions = sequence(env, *[(STAY, STAY)] * 3, (STAY, FORWARD))
    states, _, reward, _, _ = rollout(env, state, actions)
    np.testing.assert_array_equal(states.apple[:, 6, 14], [0, 0, 0, 1])
    assert not np.asarray(reward).any()


# ------------------------------------------------------------------------------------ beams


def test_beam_passes_apples_and_stops_at_the_wall():
    env = gathering(**SMALL)
    state = hand_state(env, [(6, 10, 1), (1, 1, 1)])
    _, next_state, _, _, info = step(env, state, BEAM, STAY)
    (beam,) = env.beam_masks(next_state)
    np.testing.assert_array_equal(beam, mask([(6, col) for col in range(11, 32)], shape=SHAPE))
    np.testing.assert_array_equal(info["beam_uses"], [1, 0])
    np.testing.assert_array_equal(info["hits_dealt"], [0, 0])
    assert int(info["apple_count"]) == 13  # beams never change the map


def test_beams_stop_at_the_first_player_and_are_simultaneous():
    env = gathering(**SMALL)
    # player 0 fires right along row 6 at player 1; player 1 fires up to the wall
    state = hand_state(env, [(6, 2, 1), (6, 20, 0)])
    _, next_state, _, _, info = step(env, state, BEAM, BEAM)
    expected = [(6, col) for col in range(3, 21)] + [(row, 20) for row in range(1, 6)]
    np.testing.assert_array_equal(env.beam_masks(next_state)[0], mask(expected, shape=SHAPE))
    np.testing.assert_array_equal(info["hits_taken"], [0, 1])
    np.testing.assert_array_equal(info["hits_dealt"], [1, 0])
    np.testing.assert_array_equal(next_state.hit_marks, [0, 1])
    np.testing.assert_array_equal(next_state.beam_ray_length, [[18], [5]])


def test_beams_are_traced_from_post_move_positions():
    env = gathering(**SMALL)
    # player 1 steps out of the line of fire in the same step: a miss, the beam reaches the wall
    state = hand_state(env, [(6, 2, 1), (6, 20, 0)])
    _, next_state, _, _, info = step(env, state, BEAM, FORWARD)
    np.testing.assert_array_equal(info["hits_taken"], [0, 0])
    np.testing.assert_array_equal(next_state.beam_ray_length, [[29], [0]])
    # player 1 steps into the line of fire in the same step: hit
    state = hand_state(env, [(6, 2, 1), (5, 20, 2)])
    _, next_state, _, _, info = step(env, state, BEAM, FORWARD)
    np.testing.assert_array_equal(info["hits_taken"], [0, 1])
    # the shooter moves first (STEP_RIGHT facing right goes down onto row 6), then fires
    state = hand_state(env, [(5, 2, 1), (6, 20, 0)])
    _, next_state, _, _, info = step(env, state, STEP_RIGHT, STAY)
    np.testing.assert_array_equal(next_state.position[0], [6, 2])


def test_show_beams_and_agent_id_planes():
    env = gathering(**SMALL, **EXTRA_PLANES)
    assert env.obs_shape == (15, 15, 12)
    state = hand_state(env, [(6, 10, 1), (6, 13, 3)])
    obs, *_ = step(env, state, BEAM, STAY)
    obs = np.asarray(obs)
    # the beam covers (6, 11) .. (6, 13): 1, 2, 3 cells ahead of player 0
    np.testing.assert_array_equal(np.argwhere(obs[0, ..., BEAM_PLANE]), [[4, 7], [5, 7], [6, 7]])
    np.testing.assert_array_equal(obs[0, 7, 7, 10:], [1, 0])
    np.testing.assert_array_equal(obs[0, 4, 7, 10:], [0, 1])
    assert obs[1, 7, 7, BEAM_PLANE] == 1 and obs[1, 7, 7, 11] == 1


# ------------------------------------------------------------------------ hits and tag-out


def test_one_hit_does_not_tag_out_two_hits_do_and_reset_the_marks():
    env = gathering(**SMALL)
    state = hand_state(env, [(3, 5, 1), (3, 9, 3)])
    states, _, _, _, info = rollout(env, state, repeat(env, 2, BEAM, STAY))
    np.testing.assert_array_equal(info["hits_taken"][:, 1], [1, 1])
    np.testing.assert_array_equal(states.hit_marks, [[0, 1], [0, 0]])
    np.testing.assert_array_equal(info["tagged_out"], [[0, 0], [0, 1]])
    np.testing.assert_array_equal(info["present"], [[True, True], [True, False]])
    # marks never decay: one hit, a long pause, one more hit tags out
    state = hand_state(env, [(3, 5, 1), (3, 9, 3)], hit_marks=[0, 1], time=3)
    states, _, _, _, info = rollout(env, state, sequence(env, (STAY, STAY), (BEAM, STAY)))
    np.testing.assert_array_equal(info["tagged_out"][:, 1], [0, 1])


def test_tagged_player_is_inert_and_invisible_until_it_returns():
    env = gathering(**SMALL)  # n_tagged = 5
    state = hand_state(env, [(3, 5, 1), (3, 9, 3)], hit_marks=[0, 1])
    # step 1: player 1 is tagged out (its own beam still fires and hits player 0); steps 2-6:
    # player 1 tries to move and beam, player 0 fires along row 3 and walks into its old cell
    actions = sequence(
        env,
        (BEAM, BEAM),
        (BEAM, BEAM),
        (FORWARD, FORWARD),
        (FORWARD, BEAM),
        (FORWARD, FORWARD),
        (FORWARD, BEAM),
        (STAY, STAY),
    )
    states, obs, reward, _, info = rollout(env, state, actions)
    np.testing.assert_array_equal(info["hits_taken"][:, 0], [1, 0, 0, 0, 0, 0, 0])
    present = np.asarray(info["present"])[:, 1]
    np.testing.assert_array_equal(present, [False] * 5 + [True, True])
    absent = slice(0, 5)
    np.testing.assert_array_equal(states.position[absent, 1], np.tile([3, 9], (5, 1)))
    assert not np.asarray(info["beam_uses"])[1:6, 1].any()
    assert not np.asarray(info["hits_taken"])[:, 1][1:].any()  # the beam of step 2 passed
    assert not np.asarray(reward)[absent, 1].any()
    assert not np.asarray(obs)[absent, 1].any()  # its own observation is all zeros
    assert not np.asarray(obs)[absent, 0, ..., OTHER:].any()  # the other player cannot see it
    np.testing.assert_array_equal(states.position[5, 0], [3, 9])  # walked into its cell
    global_state = np.asarray(compiled(env).global_state(jax.tree.map(lambda x: x[2], states)))
    assert global_state.shape == (13, 33, 9) and not global_state[..., 4].any()
    # back at step 1 + 5 on its start cell, facing left, marks reset
    np.testing.assert_array_equal(states.position[5, 1], START[1])
    assert int(states.orientation[5, 1]) == 3 and int(states.hit_marks[5, 1]) == 0


@pytest.mark.parametrize("player", [0, 1])
def test_returning_player_takes_the_nearest_free_cell_if_its_start_is_occupied(player):
    env = gathering(**SMALL)
    other = 1 - player
    agents = [(0, 0, 0), (0, 0, 0)]
    agents[player] = (9, 9, 2)  # where it was tagged out
    agents[other] = (*START[player], 0)  # the other player stands on its start cell
    state = hand_state(
        env, agents, present=[player == 1, player == 0], removed_until=[3, 3], time=1
    )
    states, *_ = rollout(env, state, repeat(env, 3, STAY, STAY))
    np.testing.assert_array_equal(states.present[:, player], [False, True, True])
    # distance-1 cells of the start: (5, c), (6, c +- 1), (7, c); the smaller row wins
    np.testing.assert_array_equal(states.position[1, player], [5, START[player][1]])
    assert int(states.orientation[1, player]) == (1, 3)[player]


def test_both_players_beaming_every_step_from_reset():
    # gathering.md §7: they face each other on row 6 with the apples in between
    env = gathering(**SMALL)  # n_tagged = 5
    _, start = compiled(env).reset(jax.random.key(0))
    states, obs, reward, _, info = rollout(env, start, repeat(env, 12, BEAM, BEAM))
    both = np.ones(2, int)
    hits = np.array([1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(info["hits_taken"], np.outer(hits, both))
    np.testing.assert_array_equal(info["hits_dealt"], np.outer(hits, both))
    np.testing.assert_array_equal(info["beam_uses"], np.outer(hits, both))
    tagged = np.array([0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(info["tagged_out"], np.outer(tagged, both))
    # tagged out at step 2, absent during steps 3 .. 2 + n_tagged, back at step 2 + n_tagged
    present = np.array([1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0], bool)
    np.testing.assert_array_equal(info["present"], np.outer(present, both).astype(bool))
    np.testing.assert_array_equal(states.position[6], START)
    np.testing.assert_array_equal(states.orientation[6], [1, 3])
    np.testing.assert_array_equal(states.hit_marks[:, 0], [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    assert not np.asarray(reward).any()
    assert (np.asarray(info["apple_count"]) == 13).all()
    assert not np.asarray(obs)[~present].any() and np.asarray(obs)[present].any()


def test_without_removal_hits_are_counted_and_marks_reset_but_nobody_leaves():
    env = gathering(**NO_REMOVAL)  # n_tagged = 0, hits_to_tag = 3
    _, start = compiled(env).reset(jax.random.key(0))
    states, _, _, _, info = rollout(env, start, repeat(env, 7, BEAM, BEAM))
    np.testing.assert_array_equal(info["hits_taken"][:, 0], [1] * 7)
    np.testing.assert_array_equal(info["tagged_out"][:, 1], [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(states.hit_marks[:, 1], [1, 2, 0, 1, 2, 0, 1])
    assert np.asarray(info["present"]).all()
    np.testing.assert_array_equal(states.position[-1], START)


# ------------------------------------------------------------------------- info, horizon


def test_info_counters_have_fixed_shapes_and_dtypes():
    env = gathering(**SMALL)
    _, start = compiled(env).reset(jax.random.key(0))
    _, _, reward, done, info = step(env, start, BEAM, FORWARD)
    assert reward.shape == (2,) and reward.dtype == jnp.float32 and done.shape == ()
    for name in ("apples_eaten", "beam_uses", "hits_dealt", "hits_taken", "tagged_out"):
        assert info[name].shape == (2,) and info[name].dtype == jnp.int32, name
    assert info["present"].shape == (2,) and info["present"].dtype == jnp.bool_
    assert info["apple_count"].shape == () and info["apple_count"].dtype == jnp.int32
    assert info["reward_vector"].shape == (2, 1) and info["reward_vector"].dtype == jnp.float32
    np.testing.assert_array_equal(info["beam_uses"], [1, 0])
    np.testing.assert_array_equal(info["hits_dealt"], [1, 0])
    np.testing.assert_array_equal(info["hits_taken"], [0, 1])


def test_done_exactly_at_max_steps():
    env = gathering(**SMALL)  # max_steps = 30
    _, start = compiled(env).reset(jax.random.key(0))
    states, _, _, done, _ = rollout(env, start, repeat(env, 30, STAY, STAY))
    np.testing.assert_array_equal(done, [False] * 29 + [True])
    np.testing.assert_array_equal(states.time, np.arange(1, 31))


# -------------------------------------------------------------------- config, registry


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"num_agents": 3}, "num_agents"),
        ({"num_agents": 1}, "num_agents"),
        ({"num_agents": 2.0}, "num_agents"),
        ({"max_steps": 0}, "max_steps"),
        ({"view_radius": 0}, "view_radius"),
        ({"n_apple": 0}, "n_apple"),
        ({"n_apple": 2.5}, "n_apple"),
        ({"n_tagged": -1}, "n_tagged"),
        ({"hits_to_tag": 0}, "hits_to_tag"),
        ({"hits_to_tag": True}, "hits_to_tag"),
        ({"show_beams": "yes"}, "show_beams"),
        ({"agent_id_planes": 1}, "agent_id_planes"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_the_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        Gathering(**params)


def test_make_state_refuses_apples_off_the_apple_cells():
    env = gathering(**SMALL)
    with pytest.raises(ValueError, match="apple"):
        env.make_state(START, [1, 3], apple=mask([(1, 1)], shape=SHAPE))


def test_env_is_hashable_static_config_and_registered():
    env = marl.envs.make("gathering", n_apple=4, n_tagged=5)
    assert isinstance(env, Gathering) and env == Gathering(n_apple=4, n_tagged=5)
    assert hash(env) == hash(Gathering(n_apple=4, n_tagged=5))
    assert env.num_agents == 2 and env.obs_shape == (15, 15, 9)
    assert env.global_state_shape == (13, 33, 9)
    with pytest.raises(ValueError, match="nope"):
        marl.envs.make("gathering", nope=1)


# ------------------------------------------------------------------------------- render


def test_render_colours():
    env = gathering(**SMALL)
    apple = mask([cell for cell in DIAMOND if cell != (4, 16)], shape=SHAPE)
    state = hand_state(env, [(6, 10, 1), (2, 3, 0)], apple=apple, apple_respawn_step=[9] * 13)
    _, state, *_ = step(env, state, BEAM, STAY)
    image = env.render(state)
    assert image.shape == (13, 33, 3) and image.dtype == np.uint8
    colour = {cell: tuple(int(x) for x in image[cell]) for cell in DIAMOND + [(0, 0), (1, 1)]}
    assert colour[(0, 0)] == (180, 180, 180)
    assert colour[(1, 1)] == (0, 0, 0)  # floor
    assert colour[(4, 16)] == (0, 0, 0)  # empty apple cell
    assert colour[(5, 16)] == (0, 255, 0)  # apple
    assert colour[(6, 16)] == (255, 255, 0)  # the beam is drawn over the apples
    assert tuple(image[6, 10]) == (0, 0, 255) and tuple(image[2, 3]) == (255, 0, 0)
    assert env.render(state, scale=2).shape == (26, 66, 3)
