"""`spatial_pd`: lattice PD rewards, wrapped observations, reset, Dr in the state (dqn.md §5, §7)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs import make
from marl.envs.spatial_pd import SpatialPD, SpatialPDState

DR = 0.25


@functools.cache
def step_fn(env):
    """Jitted `env.step` from a state whose previous actions are all C."""

    def play(actions, dilemma_strength):
        state = SpatialPDState(
            last_actions=jnp.zeros((env.size, env.size), jnp.int32),
            dilemma_strength=dilemma_strength,
            t=jnp.zeros((), jnp.int32),
        )
        return env.step(jax.random.key(0), state, actions)

    return jax.jit(play)


def play(env, grid, dilemma_strength=None):
    """Plays the action grid `[L, L]`; returns host obs `[N, 5]`, state, reward `[L, L]`, done, info."""
    dr = env.dilemma_strength if dilemma_strength is None else dilemma_strength
    actions = jnp.asarray(np.asarray(grid, np.int32).reshape(-1))
    obs, state, reward, done, info = jax.device_get(
        step_fn(env)(actions, jnp.asarray(dr, jnp.float32))
    )
    return obs, state, reward.reshape(env.size, env.size), done, info


def lone_defector(size, row, col):
    grid = np.zeros((size, size), np.int32)
    grid[row, col] = 1
    return grid


def test_all_cooperators_earn_one_and_all_defectors_zero():
    env = SpatialPD(size=4, dilemma_strength=DR)
    _, _, reward, _, info = play(env, np.zeros((4, 4)))
    assert reward.dtype == np.float32
    np.testing.assert_array_equal(reward, 1.0)
    assert info["coop_rate"] == 1.0
    _, _, reward, _, info = play(env, np.ones((4, 4)))
    np.testing.assert_array_equal(reward, 0.0)
    assert info["coop_rate"] == 0.0


@pytest.mark.parametrize("row, col", [(2, 2), (0, 4), (4, 0), (0, 0)])
def test_lone_defector_gets_temptation_and_its_neighbours_lose(row, col):
    size = 5
    env = SpatialPD(size=size, dilemma_strength=DR)
    _, _, reward, _, _ = play(env, lone_defector(size, row, col))
    expected = np.ones((size, size), np.float32)
    expected[row, col] = 1 + DR
    for dr, dc in [(-1, 0), (0, 1), (1, 0), (0, -1)]:
        expected[(row + dr) % size, (col + dc) % size] = (3 - DR) / 4
    np.testing.assert_allclose(reward, expected, rtol=1e-6)
    # the wrapped cells by name for the corner case
    if (row, col) == (0, 0):
        for cell in [(4, 0), (0, 1), (1, 0), (0, 4)]:
            assert reward[cell] == pytest.approx((3 - DR) / 4)
        assert reward[4, 4] == 1.0


def test_observations_are_the_wrapped_neighbours_actions_of_the_step_own_last():
    size = 4
    env = SpatialPD(size=size, dilemma_strength=DR)
    grid = np.zeros((size, size), np.int32)
    grid[3, 0] = 1  # up of (0, 0), wrapped
    grid[0, 3] = 1  # left of (0, 0), wrapped
    grid[1, 1] = 1  # diagonal: nobody's von Neumann neighbour of (0, 0)
    obs, state, _, _, _ = play(env, grid)
    assert obs.dtype == np.float32 and obs.shape == (size * size, 5)
    # agent 0 = cell (0, 0): up (3, 0) = D, right (0, 1) = C, down (1, 0) = C, left (0, 3) = D, own C
    np.testing.assert_array_equal(obs[0], [1, 0, 0, 1, 0])
    # agent 15 = cell (3, 3): up (2, 3), right (3, 0), down (0, 3), left (3, 2), own (3, 3)
    np.testing.assert_array_equal(obs[15], [0, 1, 1, 0, 0])
    # agent 5 = cell (1, 1), the defector surrounded by cooperators
    np.testing.assert_array_equal(obs[5], [0, 0, 0, 0, 1])
    # every agent against the row-major grid
    for i in range(size):
        for j in range(size):
            neighbours = [
                grid[(i - 1) % size, j],
                grid[i, (j + 1) % size],
                grid[(i + 1) % size, j],
                grid[i, (j - 1) % size],
                grid[i, j],
            ]
            np.testing.assert_array_equal(obs[i * size + j], neighbours)
    np.testing.assert_array_equal(state.last_actions, grid)
    np.testing.assert_array_equal(env.global_state(state)[..., 0], grid)
    assert env.global_state(state).shape == (size, size, 1)


def test_reset_draws_half_defectors_that_differ_between_keys():
    env = SpatialPD()
    reset = jax.jit(env.reset)
    obs_a, state_a = jax.device_get(reset(jax.random.key(0)))
    _, state_b = jax.device_get(reset(jax.random.key(1)))
    actions = state_a.last_actions
    assert actions.shape == (30, 30) and actions.dtype == np.int32
    assert set(np.unique(actions)) <= {0, 1}
    assert 0.4 < actions.mean() < 0.6
    assert not np.array_equal(actions, state_b.last_actions)
    assert obs_a.shape == (900, 5) and obs_a.dtype == np.float32
    np.testing.assert_array_equal(obs_a[:, 4], actions.reshape(-1))
    np.testing.assert_array_equal(obs_a[0, 0], actions[29, 0])
    assert state_a.dilemma_strength == np.float32(env.dilemma_strength)
    assert state_a.t == 0


def test_payoffs_use_the_dilemma_strength_of_the_state():
    size = 3
    env = SpatialPD(size=size, dilemma_strength=0.1)
    _, _, reward, _, _ = play(env, lone_defector(size, 1, 1), dilemma_strength=0.4)
    assert reward[1, 1] == pytest.approx(1.4)
    assert reward[0, 1] == pytest.approx((3 - 0.4) / 4)

    _, state = env.reset(jax.random.key(0))
    actions = jnp.asarray(lone_defector(size, 1, 1).reshape(-1))
    dilemma_strengths = jnp.asarray([0.0, 0.1, 0.25, 0.4], jnp.float32)

    def step_with(dr):
        return env.step(jax.random.key(1), state.replace(dilemma_strength=dr), actions)

    _, next_state, reward, _, _ = jax.jit(jax.vmap(step_with))(dilemma_strengths)
    assert reward.shape == (4, size * size)
    np.testing.assert_allclose(reward[:, 4], 1 + dilemma_strengths, rtol=1e-6)
    np.testing.assert_allclose(reward[:, 1], (3 - dilemma_strengths) / 4, rtol=1e-6)
    np.testing.assert_allclose(next_state.dilemma_strength, dilemma_strengths)


@functools.cache
def rollout_fn(env, num_steps):
    """Jitted: `num_steps` steps of random actions from reset; returns done and coop_rate `[T]`."""

    def run(key):
        _, state = env.reset(key)

        def body(state, key):
            actions = jax.random.randint(key, (env.num_agents,), 0, 2)
            _, state, _, done, info = env.step(key, state, actions)
            return state, (done, info["coop_rate"], jnp.mean(actions == 0))

        return jax.lax.scan(body, state, jax.random.split(key, num_steps))[1]

    return jax.jit(run)


def test_continuing_task_is_never_done():
    done, coop_rate, expected_rate = rollout_fn(SpatialPD(size=4), 50)(jax.random.key(0))
    assert done.shape == (50,) and done.dtype == jnp.bool_
    assert not np.asarray(done).any()
    assert coop_rate.dtype == jnp.float32
    np.testing.assert_allclose(coop_rate, expected_rate, rtol=1e-6)


def test_max_steps_truncates_exactly_there():
    env = make("spatial_pd", size=4, max_steps=7)
    assert env.max_steps == 7
    done, _, _ = rollout_fn(env, 15)(jax.random.key(0))
    assert np.flatnonzero(done).tolist() == list(range(6, 15))


def test_render_colours_cooperators_and_defectors():
    env = SpatialPD(size=3)
    grid = lone_defector(3, 0, 2)
    _, state, _, _, _ = play(env, grid)
    image = env.render(state)
    assert image.shape == (24, 24, 3) and image.dtype == np.uint8
    defector, cooperator = image[0, 16], image[0, 0]
    assert not np.array_equal(defector, cooperator)
    np.testing.assert_array_equal(image[:8, 16:24], np.broadcast_to(defector, (8, 8, 3)))
    np.testing.assert_array_equal(image[8:, :], np.broadcast_to(cooperator, (16, 24, 3)))


def test_defaults_and_sizes():
    env = make("spatial_pd")
    assert (env.size, env.dilemma_strength, env.max_steps) == (30, 0.25, None)
    assert (env.num_agents, env.num_actions, env.obs_shape) == (900, 2, (5,))


@pytest.mark.parametrize(
    "params, name",
    [
        ({"size": 2}, "size"),
        ({"size": 4.0}, "size"),
        ({"size": True}, "size"),
        ({"dilemma_strength": -0.1}, "dilemma_strength"),
        ({"dilemma_strength": 1.5}, "dilemma_strength"),
        ({"dilemma_strength": float("nan")}, "dilemma_strength"),
        ({"dilemma_strength": "0.2"}, "dilemma_strength"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 2.5}, "max_steps"),
    ],
)
def test_invalid_parameters_raise_naming_them(params, name):
    with pytest.raises(ValueError, match=name):
        SpatialPD(**params)
