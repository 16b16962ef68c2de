"""Linear preferences w on the simplex: the evaluation grid and the training distributions.

Spec: `specs/algos/momix.md` §5 (uniform and exploration-guide sampling) and §6 (the grid W_eval).
m = `num_objectives`; every w has w >= 0 and sum(w) = 1. Everything except `preference_grid`
(numpy, built once) is jittable.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

PREFERENCE_DISTRIBUTIONS = ("uniform", "guide")
# m > 2: a picked grid point w_g is jittered to (1 - beta) w_g + beta d, d ~ Dirichlet(1, ..., 1),
# beta = GUIDE_JITTER / H with H the lattice resolution (half a lattice step).
GUIDE_JITTER = 0.5


def preference_grid(num_objectives: int, grid_size: int) -> np.ndarray:
    """float32 `[G, m]`: W_eval, the simplex lattice with resolution H = grid_size - 1.

    Rows are all w with entries in {0, 1/H, ..., 1} summing to 1, in lexicographic order,
    G = C(H + m - 1, m - 1). m = 2 gives w_g = (g/H, 1 - g/H), g = 0..H (w_1 ascending,
    G = grid_size); m = 1 gives [[1]] whatever grid_size. grid_size < 2 with m >= 2: ValueError.
    """
    if num_objectives < 1:
        raise ValueError(f"num_objectives must be >= 1, got {num_objectives}")
    if num_objectives == 1:
        return np.ones((1, 1), np.float32)
    if grid_size < 2:
        raise ValueError(f"grid_size must be >= 2 for num_objectives >= 2, got {grid_size}")
    resolution = grid_size - 1
    # stars and bars: m - 1 bars among H + m - 1 slots; lexicographic bars give lexicographic counts
    slots = resolution + num_objectives - 1
    bars = np.array(list(itertools.combinations(range(slots), num_objectives - 1)), np.int64)
    first = np.full((len(bars), 1), -1, np.int64)
    last = np.full((len(bars), 1), slots, np.int64)
    counts = np.diff(np.concatenate([first, bars, last], axis=1), axis=1) - 1
    return (counts / resolution).astype(np.float32)


def uniform_preferences(key: jax.Array, num: int, num_objectives: int) -> jax.Array:
    """float32 `[num, m]`: w ~ Dirichlet(1, ..., 1), uniform on the simplex.

    Drawn as normalised Exp(1) = Gamma(1) variables: the same law as `jax.random.dirichlet`
    with unit concentrations, without its rejection sampler (much faster to compile).
    """
    gammas = jax.random.exponential(key, (num, num_objectives), jnp.float32)
    return gammas / jnp.sum(gammas, axis=-1, keepdims=True)


def front_gaps(points: jax.Array, scale: jax.Array) -> jax.Array:
    """Gaps of the evaluated front F(w_g) `[G, m]` after dividing by `scale` `[m]` (m >= 2).

    m = 2 (grid ordered by w_1): `[G - 1]`, gap_g = ||F^(w_g) - F^(w_{g+1})||_2.
    m > 2: `[G]`, gap_g = Euclidean distance of F^(w_g) to its nearest other point.
    """
    if points.shape[-1] < 2:
        raise ValueError("front gaps need num_objectives >= 2")
    scaled = points / scale
    if points.shape[-1] == 2:
        return jnp.linalg.norm(scaled[1:] - scaled[:-1], axis=-1)
    distances = jnp.linalg.norm(scaled[:, None, :] - scaled[None, :, :], axis=-1)
    return jnp.min(jnp.where(jnp.eye(len(scaled), dtype=bool), jnp.inf, distances), axis=-1)


def guide_probabilities(gaps: jax.Array, guide_mix: float | jax.Array) -> jax.Array:
    """float32 `[C]`: p_g = (1 - eta)/C + eta gap_g / sum(gap) over the C = len(gaps) cells.

    eta = `guide_mix`; when sum(gap) = 0 every cell gets 1/C.
    """
    num_cells = gaps.shape[0]
    total = jnp.sum(gaps)
    has_gaps = total > 0
    share = jnp.where(has_gaps, gaps / jnp.where(has_gaps, total, 1.0), 1.0 / num_cells)
    return ((1.0 - guide_mix) / num_cells + guide_mix * share).astype(jnp.float32)


def _lattice_step(grid: jax.Array) -> jax.Array:
    """1/H for a simplex lattice `[G, m]` of resolution H: its smallest positive entry."""
    return jnp.min(jnp.where(grid > 0, grid, jnp.inf))


def guide_preferences(
    key: jax.Array,
    num: int,
    grid: jax.Array,
    points: jax.Array,
    scale: jax.Array,
    guide_mix: float | jax.Array,
) -> jax.Array:
    """float32 `[num, m]`: the exploration guide (§5) on W_eval `grid` `[G, m]` (m >= 2).

    points `[G, m]` = F(w_g) from the last evaluation, scale `[m]` = objective_scale.
    m = 2: pick cell g (between w_g and w_{g+1}) with `guide_probabilities`, then
    w = w_g + u (w_{g+1} - w_g), u ~ U(0, 1). m > 2: pick grid point g the same way, then
    w = (1 - beta) w_g + beta d, d ~ Dirichlet(1, ..., 1), beta = GUIDE_JITTER / H with 1/H the
    grid's smallest positive entry. Both are convex combinations of simplex points.
    """
    grid = jnp.asarray(grid, jnp.float32)
    probabilities = guide_probabilities(front_gaps(points, scale), guide_mix)
    pick_key, spread_key = jax.random.split(key)
    picks = jax.random.choice(pick_key, len(probabilities), (num,), p=probabilities)
    if grid.shape[-1] == 2:
        offsets = jax.random.uniform(spread_key, (num, 1), jnp.float32)
        return grid[picks] + offsets * (grid[picks + 1] - grid[picks])
    jitter = GUIDE_JITTER * _lattice_step(grid)
    directions = uniform_preferences(spread_key, num, grid.shape[-1])
    return (1.0 - jitter) * grid[picks] + jitter * directions


def sample_preferences(
    key: jax.Array,
    num: int,
    num_objectives: int,
    dist: str,
    grid: jax.Array,
    points: jax.Array,
    scale: jax.Array,
    guide_mix: float | jax.Array,
    front_ready: jax.Array,
) -> jax.Array:
    """float32 `[num, m]`: training preferences from `dist` ("uniform" or "guide"; static).

    "guide" draws `guide_preferences` once an evaluation has happened (`front_ready`, bool `[]`)
    and the front has some gap; otherwise exactly `uniform_preferences(key, num, m)` (§5 step 5).
    m = 1 gives ones `[num, 1]`.
    """
    if dist not in PREFERENCE_DISTRIBUTIONS:
        raise ValueError(f"dist must be one of {PREFERENCE_DISTRIBUTIONS}, got {dist!r}")
    if num_objectives == 1:
        return jnp.ones((num, 1), jnp.float32)
    uniform = uniform_preferences(key, num, num_objectives)
    if dist == "uniform":
        return uniform
    guided = guide_preferences(jax.random.fold_in(key, 1), num, grid, points, scale, guide_mix)
    has_gaps = jnp.sum(front_gaps(points, scale)) > 0
    return jnp.where(front_ready & has_gaps, guided, uniform)
