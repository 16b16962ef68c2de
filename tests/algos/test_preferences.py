import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.algos.preferences import (
    PREFERENCE_DISTRIBUTIONS,
    front_gaps,
    guide_probabilities,
    preference_grid,
    sample_preferences,
    uniform_preferences,
)

NUM_DRAWS = 20_000
# two objectives, grid w_1 in {0, 0.5, 1}; after dividing by SCALE the front is
# (0, 0), (0, 3), (1, 3): gaps (3, 1)
GRID_3 = preference_grid(2, 3)
SCALE_2 = jnp.array([2.0, 4.0])
POINTS_3 = jnp.array([[0.0, 0.0], [0.0, 12.0], [2.0, 12.0]])


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _sample(key, num, num_objectives, dist, grid, points, scale, guide_mix, front_ready):
    return sample_preferences(
        key, num, num_objectives, dist, grid, points, scale, guide_mix, front_ready
    )


@functools.partial(jax.jit, static_argnums=0)
def _batched_sample(num_objectives, keys, grid, points, scale, front_ready):
    def one(key, ready):
        return tuple(
            sample_preferences(key, 64, num_objectives, dist, grid, points, scale, 0.5, ready)
            for dist in PREFERENCE_DISTRIBUTIONS
        )

    return jax.vmap(one)(keys, front_ready)


_uniform = jax.jit(uniform_preferences, static_argnums=(1, 2))


def _assert_on_simplex(w):
    w = np.asarray(w)
    assert w.dtype == np.float32
    assert np.all(w >= 0.0)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=0, atol=1e-6)


def test_preference_grid_two_objectives_matches_formula():
    grid = preference_grid(2, 11)
    expected = np.array([[g / 10, 1 - g / 10] for g in range(11)])
    assert grid.dtype == np.float32 and grid.shape == (11, 2)
    np.testing.assert_allclose(grid, expected, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(preference_grid(1, 11), [[1.0]])


def test_preference_grid_three_objectives_is_the_simplex_lattice_in_lexicographic_order():
    grid = preference_grid(3, 5)
    assert grid.dtype == np.float32 and grid.shape == (math.comb(6, 2), 3) == (15, 3)
    _assert_on_simplex(grid)
    assert len(np.unique(grid, axis=0)) == 15
    lattice = [(i, j, 4 - i - j) for i in range(5) for j in range(5 - i)]
    np.testing.assert_allclose(grid, np.array(lattice) / 4, rtol=0, atol=1e-7)
    assert preference_grid(4, 3).shape == (math.comb(5, 3), 4)


@pytest.mark.parametrize("num_objectives, grid_size", [(2, 1), (2, 0), (3, 1)])
def test_preference_grid_rejects_grids_without_two_points_per_edge(num_objectives, grid_size):
    with pytest.raises(ValueError):
        preference_grid(num_objectives, grid_size)


@pytest.mark.parametrize("num_objectives", [2, 3])
def test_every_sampled_preference_is_on_the_simplex_under_jit_and_vmap(num_objectives):
    grid = jnp.asarray(preference_grid(num_objectives, 4))
    points = jax.random.normal(jax.random.key(0), grid.shape) * 5.0
    scale = jnp.full(num_objectives, 2.0)
    keys = jax.random.split(jax.random.key(1), 8)
    front_ready = jnp.arange(8) % 2 == 0
    for w in _batched_sample(num_objectives, keys, grid, points, scale, front_ready):
        assert w.shape == (8, 64, num_objectives)
        _assert_on_simplex(w)


def test_one_objective_preference_is_one():
    front = (preference_grid(1, 11), jnp.ones((1, 1)), jnp.ones(1), 0.5, jnp.array(True))
    for dist in PREFERENCE_DISTRIBUTIONS:
        w = _sample(jax.random.key(0), 5, 1, dist, *front)
        np.testing.assert_array_equal(w, np.ones((5, 1)))


def test_guide_cell_probabilities_follow_the_gaps_on_a_hand_made_front():
    gaps = front_gaps(POINTS_3, SCALE_2)
    np.testing.assert_allclose(gaps, [3.0, 1.0], rtol=1e-6)
    # p_g = (1 - eta)/(G - 1) + eta gap_g / sum(gap), eta = 0.5
    np.testing.assert_array_equal(guide_probabilities(jnp.array([3.0, 1.0]), 0.5), [0.625, 0.375])

    w = _sample(
        jax.random.key(2), NUM_DRAWS, 2, "guide", GRID_3, POINTS_3, SCALE_2, 0.5, jnp.array(True)
    )
    _assert_on_simplex(w)
    first = np.asarray(w[:, 0])
    in_first_cell = first < 0.5
    standard_error = math.sqrt(0.625 * 0.375 / NUM_DRAWS)
    assert abs(in_first_cell.mean() - 0.625) < 4 * standard_error
    # within a cell w_1 is uniform: mean of U(0, 0.5) is 0.25, sd 0.5 / sqrt(12)
    inside = first[in_first_cell]
    assert abs(inside.mean() - 0.25) < 4 * 0.5 / math.sqrt(12 * len(inside))


def _kolmogorov_distance_to_uniform(samples):
    x = np.sort(np.asarray(samples, np.float64))
    n = len(x)
    above = np.arange(1, n + 1) / n - x
    below = x - np.arange(n) / n
    return max(above.max(), below.max())


def test_zero_guide_mix_gives_uniform_cells_and_uniform_first_weight():
    np.testing.assert_allclose(guide_probabilities(jnp.array([3.0, 1.0, 0.0, 5.0]), 0.0), 0.25)

    # Dvoretzky-Kiefer-Wolfowitz: P(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2)
    eps = math.sqrt(math.log(2 / 1e-6) / (2 * NUM_DRAWS))
    draws = functools.partial(
        _sample, jax.random.key(3), NUM_DRAWS, 2, "guide", GRID_3, POINTS_3, SCALE_2
    )
    uniform = draws(0.0, jnp.array(True))
    assert _kolmogorov_distance_to_uniform(uniform[:, 0]) < eps
    # the front is informative: with eta = 1 the cells get (0.75, 0.25), a distance of 0.25
    assert _kolmogorov_distance_to_uniform(draws(1.0, jnp.array(True))[:, 0]) > 0.2


def test_zero_total_gap_gives_uniform():
    np.testing.assert_allclose(guide_probabilities(jnp.zeros(4), 0.5), 0.25)
    key = jax.random.key(4)
    flat = jnp.full((6, 3), 2.0)
    ready = jnp.array(True)
    w = _sample(key, NUM_DRAWS, 3, "guide", preference_grid(3, 3), flat, jnp.ones(3), 0.5, ready)
    np.testing.assert_array_equal(w, _uniform(key, NUM_DRAWS, 3))


@pytest.mark.parametrize("num_objectives", [2, 3])
def test_guide_before_the_first_evaluation_draws_uniform_preferences(num_objectives):
    grid = jnp.asarray(preference_grid(num_objectives, 3))
    points = jax.random.normal(jax.random.key(5), grid.shape)
    scale = jnp.ones(num_objectives)
    key = jax.random.key(6)
    draws = functools.partial(_sample, key, NUM_DRAWS, num_objectives, "guide", grid, points, scale)
    not_ready = draws(0.5, jnp.array(False))
    np.testing.assert_array_equal(not_ready, _uniform(key, NUM_DRAWS, num_objectives))
    assert not np.array_equal(draws(0.5, jnp.array(True)), not_ready)


def test_front_gaps_three_objectives_are_nearest_other_point_distances():
    points = jnp.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [3.0, 4.0, 1.0], [0.0, 0.0, 2.0]])
    # pairwise: 0-1 5, 0-2 sqrt(26), 0-3 2, 1-2 1, 1-3 sqrt(29), 2-3 sqrt(26)
    np.testing.assert_allclose(front_gaps(points, jnp.ones(3)), [2.0, 1.0, 1.0, 2.0], rtol=1e-6)
    # scaled to (0,0,0), (1,1,0), (1,1,1), (0,0,2): 0-1 sqrt(2), 0-2 sqrt(3), 0-3 2, 1-2 1,
    # 1-3 sqrt(6), 2-3 sqrt(3): the nearest neighbours of points 0 and 3 change
    scaled = front_gaps(points, jnp.array([3.0, 4.0, 1.0]))
    np.testing.assert_allclose(scaled, [math.sqrt(2), 1.0, 1.0, math.sqrt(3)], rtol=1e-6)


def test_guide_three_objectives_picks_points_by_gap_and_jitters_half_a_step():
    grid = preference_grid(3, 3)  # H = 2: six points, w_3 = (0.5, 0, 0.5)
    # five coincident points (gap 0) and one isolated point at grid index 3 (gap 3)
    points = jnp.zeros((6, 3)).at[3].set(jnp.array([3.0, 0.0, 0.0]))
    scale = jnp.ones(3)
    np.testing.assert_allclose(front_gaps(points, scale), [0, 0, 0, 3, 0, 0])
    expected = np.full(6, 0.5 / 6)
    expected[3] += 0.5
    np.testing.assert_allclose(guide_probabilities(front_gaps(points, scale), 0.5), expected)

    ready = jnp.array(True)
    # eta = 1: always grid point 3, w = 0.75 w_3 + 0.25 d with d ~ Dirichlet(1, 1, 1)
    w = np.asarray(
        _sample(jax.random.key(7), NUM_DRAWS, 3, "guide", grid, points, scale, 1.0, ready)
    )
    _assert_on_simplex(w)
    assert np.all(w >= 0.75 * grid[3] - 1e-6) and np.all(w <= 0.75 * grid[3] + 0.25 + 1e-6)
    # each Dirichlet(1, 1, 1) coordinate has mean 1/3 and variance (1/3)(2/3)/4
    standard_error = 0.25 * math.sqrt(2 / 36 / NUM_DRAWS)
    np.testing.assert_array_less(
        np.abs(w.mean(axis=0) - (0.75 * grid[3] + 0.25 / 3)), 4 * standard_error
    )

    # eta = 0.5: a jittered draw stays within half a step (L-inf) of the point it came from
    w = np.asarray(
        _sample(jax.random.key(8), NUM_DRAWS, 3, "guide", grid, points, scale, 0.5, ready)
    )
    _assert_on_simplex(w)
    nearest = np.abs(w[:, None, :] - grid[None, :, :]).max(axis=-1).argmin(axis=-1)
    frequency = np.bincount(nearest, minlength=6) / NUM_DRAWS
    standard_errors = np.sqrt(expected * (1 - expected) / NUM_DRAWS)
    np.testing.assert_array_less(np.abs(frequency - expected), 4 * standard_errors)
