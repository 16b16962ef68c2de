"""Pareto-front metrics: the `mo_matrix` numbers of `specs/algos/momix.md` §8 and the checks of
`specs/algos/acceptance.md` §4 (a) 3."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from marl.eval import pareto

SUPPORTED_FRONT = np.array([(1.0, 0.0), (0.6, 0.6), (0.0, 1.0)])
FULL_FRONT = np.array([(1.0, 0.0), (0.0, 1.0), (0.6, 0.6), (0.8, 0.2)])
MO_MATRIX_REF = np.array([-0.1, -0.1])
HYPERVOLUME_FUNCTIONS = [pareto.hypervolume_2d, pareto.hypervolume]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def brute_force_non_dominated(points: np.ndarray) -> set[tuple[float, ...]]:
    """The rows no other distinct row weakly dominates, by plain loops (no duplicates in input)."""
    return {tuple(p) for p in points if not any(np.all(q >= p) and np.any(q != p) for q in points)}


def random_2d_set(rng: np.random.Generator) -> np.ndarray:
    """Points `[P, 2]` around r = (0, 0): some below or on r, some dominated, some duplicated."""
    points = rng.uniform(-0.3, 1.0, size=(rng.integers(1, 25), 2))
    dominated = points[rng.integers(len(points), size=3)] - rng.uniform(0, 0.2, size=(3, 2))
    on_ref = np.array([[0.0, rng.uniform(0, 1)], [rng.uniform(0, 1), 0.0]])
    duplicates = points[rng.integers(len(points), size=2)]
    return rng.permutation(np.concatenate([points, dominated, on_ref, duplicates]))


# ---- mo_matrix (momix.md §8) ----


@pytest.mark.parametrize("hypervolume", HYPERVOLUME_FUNCTIONS)
@pytest.mark.parametrize(
    ("points", "expected"),
    [
        # Staircase by f1 descending, r = (−0.1, −0.1):
        # (1, 0): 1.1·0.1 = 0.11; (0.6, 0.6): 0.7·0.6 = 0.42; (0, 1): 0.1·0.4 = 0.04 -> 0.57.
        (SUPPORTED_FRONT, 0.57),
        # (1, 0): 0.11; (0.8, 0.2): 0.9·0.2 = 0.18; (0.6, 0.6): 0.7·0.4 = 0.28; (0, 1): 0.04 -> 0.61.
        (FULL_FRONT, 0.61),
    ],
)
def test_mo_matrix_hypervolume(hypervolume, points, expected):
    assert hypervolume(points, MO_MATRIX_REF) == pytest.approx(expected, abs=1e-12)


def test_mo_matrix_supported_front_sparsity_and_spacing():
    # Sorted objective values 0, 0.6, 1 in both objectives: 2·(0.6² + 0.4²) / (3 − 1) = 0.52.
    assert pareto.sparsity(SUPPORTED_FRONT) == pytest.approx(0.52, abs=1e-12)
    # Nearest L1 neighbours: (1, 0)–(0.6, 0.6) = 1, (0.6, 0.6)–(0, 1) = 1, so all d_i = 1.
    assert pareto.spacing(SUPPORTED_FRONT) == pytest.approx(0.0, abs=1e-12)


def test_sparsity_and_spacing_of_uneven_front():
    points = np.array([(0.0, 3.0), (1.0, 1.0), (3.0, 0.0)])
    # Objective 1 gaps 1, 2; objective 2 gaps 1, 2: (1 + 4 + 1 + 4) / 2.
    assert pareto.sparsity(points) == pytest.approx(5.0)
    # L1 nearest distances 3, 3, 3 (d̄ = 3): even spacing although the gaps differ.
    assert pareto.spacing(points) == pytest.approx(0.0)
    uneven = np.array([(0.0, 4.0), (1.0, 3.0), (4.0, 0.0)])
    # Nearest distances 2, 2, 6 (d̄ = 10/3): sqrt(((4/3)² + (4/3)² + (8/3)²) / 2).
    assert pareto.spacing(uneven) == pytest.approx(np.sqrt(96 / 9 / 2))


@pytest.mark.parametrize("metric", [pareto.sparsity, pareto.spacing])
def test_sparsity_and_spacing_are_zero_below_two_points(metric):
    assert metric(np.empty((0, 2))) == 0.0
    assert metric(np.array([[1.0, 2.0]])) == 0.0


# ---- hypervolume ----


def test_slicing_hypervolume_matches_sweep_on_random_2d_sets():
    rng = np.random.default_rng(0)
    sweeps, slicings = [], []
    for _ in range(200):
        points = random_2d_set(rng)
        ref_point = np.zeros(2)
        sweeps.append(pareto.hypervolume_2d(points, ref_point))
        slicings.append(pareto.hypervolume(points, ref_point))
    np.testing.assert_allclose(slicings, sweeps, rtol=0, atol=1e-12)
    assert np.count_nonzero(sweeps) > 150


@pytest.mark.parametrize("hypervolume", HYPERVOLUME_FUNCTIONS)
def test_hypervolume_2d_single_point_and_empty(hypervolume):
    assert hypervolume(np.array([[3.0, 2.0]]), np.array([1.0, -1.0])) == pytest.approx(6.0)
    assert hypervolume(np.empty((0, 2)), np.zeros(2)) == 0.0
    assert hypervolume(np.array([[-1.0, 5.0]]), np.zeros(2)) == 0.0


def test_hypervolume_single_point_is_box_volume():
    assert pareto.hypervolume(np.array([[2.0, 3.0, 4.0]]), np.array([1.0, 1.0, 1.0])) == 6.0
    assert pareto.hypervolume(np.array([[2.0, 3.0, 4.0, 5.0]]), np.zeros(4)) == 120.0
    assert pareto.hypervolume(np.array([[0.5], [2.5]]), np.array([0.5])) == 2.0


def test_hypervolume_3d_two_points_by_inclusion_exclusion():
    first, second = np.array([2.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0])
    # |A ∪ B| = |A| + |B| − |A ∩ B|, the intersection being the box up to min(a, b) = (1, 1, 1).
    expected = np.prod(first) + np.prod(second) - np.prod(np.minimum(first, second))
    assert expected == 7.0
    assert pareto.hypervolume(np.stack([first, second]), np.zeros(3)) == expected
    assert pareto.hypervolume(np.stack([second, first]), np.zeros(3)) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hypervolume_3d_agrees_with_monte_carlo(seed):
    rng = np.random.default_rng(seed)
    ref_point = np.full(3, -0.2)
    points = rng.uniform(-0.3, 1.0, size=(12, 3))
    upper = np.max(points, axis=0)
    box_volume = np.prod(upper - ref_point)
    num_samples = 200_000
    samples = rng.uniform(ref_point, upper, size=(num_samples, 3))
    covered = np.any(np.all(samples[:, None, :] <= points[None, :, :], axis=-1), axis=1)
    fraction = covered.mean()
    estimate = fraction * box_volume
    standard_error = box_volume * np.sqrt(fraction * (1 - fraction) / num_samples)
    exact = pareto.hypervolume(points, ref_point)
    assert abs(exact - estimate) <= 3 * standard_error


@pytest.mark.parametrize("hypervolume", HYPERVOLUME_FUNCTIONS)
def test_dominated_and_points_not_above_ref_add_nothing_2d(hypervolume):
    ref_point = np.array([0.0, 0.0])
    base = np.array([(3.0, 1.0), (2.0, 2.0), (1.0, 3.0)])
    extra = np.array(
        [
            (2.0, 1.5),  # dominated by (2, 2), tied in objective 1
            (1.5, 1.5),  # strictly dominated
            (3.0, 1.0),  # exact duplicate
            (4.0, 0.0),  # on r in objective 2
            (0.0, 4.0),  # on r in objective 1
            (-1.0, 5.0),  # below r
        ]
    )
    expected = hypervolume(base, ref_point)
    assert expected == pytest.approx(3.0 + 2.0 + 1.0)
    for count in range(1, len(extra) + 1):
        for subset in itertools.combinations(extra, count):
            mixed = np.concatenate([np.stack(subset), base])
            assert hypervolume(mixed, ref_point) == expected
            assert hypervolume(mixed[::-1], ref_point) == expected


def with_useless_points(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """base `[P, m]` (all above r = 0) shuffled with dominated points (some tied with the point
    they are derived from in all but one objective), duplicates, points on r and points below r."""
    num_points, num_objectives = base.shape
    dominated = base[rng.integers(num_points, size=6)] * rng.uniform(0.5, 1.0, (6, num_objectives))
    tied = base[rng.integers(num_points, size=num_objectives)].copy()
    tied[np.arange(num_objectives), np.arange(num_objectives)] *= rng.uniform(0.9, 1.0)
    on_ref = base[:num_objectives] * (1 - np.eye(num_objectives))
    below = base[:num_objectives] * (1 - 2 * np.eye(num_objectives))
    duplicates = base[rng.integers(num_points, size=2)]
    extra = np.concatenate([dominated, tied, on_ref, below, duplicates])
    return rng.permutation(np.concatenate([base, extra]))


@pytest.mark.parametrize("hypervolume", HYPERVOLUME_FUNCTIONS)
def test_dominated_and_points_not_above_ref_add_nothing_random_2d(hypervolume):
    rng = np.random.default_rng(7)
    for _ in range(50):
        base = rng.uniform(0.1, 1.0, size=(int(rng.integers(2, 20)), 2))
        mixed = with_useless_points(base, rng)
        assert hypervolume(mixed, np.zeros(2)) == hypervolume(base, np.zeros(2))


def test_dominated_and_points_not_above_ref_add_nothing_random_3d():
    rng = np.random.default_rng(4)
    for _ in range(20):
        base = rng.uniform(0.1, 1.0, size=(20, 3))
        mixed = with_useless_points(base, rng)
        assert pareto.hypervolume(mixed, np.zeros(3)) == pareto.hypervolume(base, np.zeros(3))


# ---- non-dominated set ----


def test_non_dominated_of_mo_matrix_keeps_all_four_sorted():
    expected = np.array([(1.0, 0.0), (0.8, 0.2), (0.6, 0.6), (0.0, 1.0)])
    np.testing.assert_array_equal(pareto.non_dominated(FULL_FRONT), expected)
    with_dominated = np.concatenate([FULL_FRONT, [(0.5, 0.5), (0.7, 0.1), (0.0, 0.0)]])
    np.testing.assert_array_equal(pareto.non_dominated(with_dominated), expected)


def test_non_dominated_merges_duplicates_and_near_duplicates():
    points = np.array(
        [
            (1.0, 0.0),
            (0.0, 1.0),
            (1.0, 0.0),
            (0.5 + 4e-7, 0.5 - 4e-7),
            (0.5, 0.5),
            (0.5 - 5e-7, 0.5 + 5e-7),
        ]
    )
    front = pareto.non_dominated(points)
    # The near-duplicates collapse onto the first of them in output order.
    expected = np.array([(1.0, 0.0), (0.5 + 4e-7, 0.5 - 4e-7), (0.0, 1.0)])
    np.testing.assert_array_equal(front, expected)
    assert front.dtype == np.float64


def test_non_dominated_keeps_points_beyond_duplicate_tolerance():
    apart = 3 * pareto.DUPLICATE_TOLERANCE
    trade_off = np.array([(0.5, 0.5), (0.5 + apart, 0.5 - apart)])
    assert len(pareto.non_dominated(trade_off)) == 2
    better = np.array([(0.5, 0.5), (0.5, 0.5 + apart)])
    np.testing.assert_array_equal(pareto.non_dominated(better), [(0.5, 0.5 + apart)])
    # A gap of exactly the tolerance is not a duplicate (duplicates are max |Δ| < 1e-6).
    at_tolerance = np.array([(0.0, pareto.DUPLICATE_TOLERANCE), (0.0, 0.0)])
    np.testing.assert_array_equal(pareto.non_dominated(at_tolerance), at_tolerance[:1])


def test_non_dominated_ties():
    # Equal in objective 1 and worse in objective 2 -> dropped.
    np.testing.assert_array_equal(
        pareto.non_dominated(np.array([(1.0, 0.3), (1.0, 0.5)])), [(1.0, 0.5)]
    )
    np.testing.assert_array_equal(
        pareto.non_dominated(np.array([(0.2, 2.0), (0.4, 2.0), (0.3, 2.0)])), [(0.4, 2.0)]
    )
    # Equal in all objectives -> one kept.
    np.testing.assert_array_equal(
        pareto.non_dominated(np.array([(1.0, 2.0, 3.0)] * 3)), [(1.0, 2.0, 3.0)]
    )


def test_non_dominated_ignores_nan_rows():
    points = np.array([(np.nan, 9.0), (1.0, 0.0), (9.0, np.nan), (0.0, 1.0), (np.nan, np.nan)])
    np.testing.assert_array_equal(pareto.non_dominated(points), [(1.0, 0.0), (0.0, 1.0)])
    assert pareto.non_dominated(np.full((3, 2), np.nan)).shape == (0, 2)


def test_non_dominated_of_empty_input():
    front = pareto.non_dominated(np.empty((0, 3)))
    assert front.shape == (0, 3)
    assert front.dtype == np.float64


def test_non_dominated_matches_brute_force_and_is_sorted():
    rng = np.random.default_rng(5)
    for _ in range(50):
        num_objectives = int(rng.integers(2, 5))
        # Values on a coarse grid give many ties.
        points = rng.integers(0, 5, size=(int(rng.integers(1, 30)), num_objectives)) / 4
        front = pareto.non_dominated(points)
        unique_points = np.unique(points, axis=0)
        assert {tuple(row) for row in front} == brute_force_non_dominated(unique_points)
        assert len(front) == len({tuple(row) for row in front})
        rows = [tuple(row) for row in front]
        assert rows == sorted(rows, reverse=True)


# ---- front_metrics and plot_front ----


def test_front_metrics_keys_and_raw_values():
    points = np.concatenate([FULL_FRONT, [(0.5, 0.5), (np.nan, 2.0), (1.0, 0.0)]])
    metrics = pareto.front_metrics(points, MO_MATRIX_REF)
    assert tuple(metrics) == pareto.FRONT_METRICS
    assert pareto.FRONT_METRICS == (
        "num_nondominated",
        "hypervolume",
        "sparsity",
        "spacing",
        "scaled_hypervolume",
        "scaled_sparsity",
        "scaled_spacing",
    )
    assert metrics["num_nondominated"] == 4
    assert metrics["hypervolume"] == pytest.approx(0.61, abs=1e-12)
    assert metrics["sparsity"] == pytest.approx(pareto.sparsity(FULL_FRONT))
    assert metrics["spacing"] == pytest.approx(pareto.spacing(FULL_FRONT))
    for name in ("hypervolume", "sparsity", "spacing"):
        assert metrics[f"scaled_{name}"] == metrics[name]


def test_front_metrics_scaled_values():
    metrics = pareto.front_metrics(FULL_FRONT, MO_MATRIX_REF, scale=(2.0, 2.0))
    assert metrics["scaled_hypervolume"] == pytest.approx(metrics["hypervolume"] / 4)
    assert metrics["scaled_sparsity"] == pytest.approx(metrics["sparsity"] / 4)
    assert metrics["scaled_spacing"] == pytest.approx(metrics["spacing"] / 2)
    assert metrics["spacing"] > 0
    stretched = pareto.front_metrics(SUPPORTED_FRONT, MO_MATRIX_REF, scale=(1.0, 0.1))
    assert stretched["scaled_hypervolume"] == pytest.approx(5.7)
    # Scaled front (1, 0), (0.6, 6), (0, 10): sorted gaps 0.6, 0.4 and 6, 4 -> (0.52 + 52) / 2.
    assert stretched["scaled_sparsity"] == pytest.approx(26.26)


def test_front_metrics_rejects_non_positive_scale():
    with pytest.raises(ValueError, match="scale"):
        pareto.front_metrics(FULL_FRONT, MO_MATRIX_REF, scale=(1.0, 0.0))


@pytest.mark.parametrize("num_objectives", [2, 3])
def test_plot_front_writes_png(tmp_path, num_objectives):
    rng = np.random.default_rng(6)
    fronts = {
        "momix": rng.uniform(size=(10, num_objectives)),
        "qmix_outer": rng.uniform(size=(6, num_objectives)),
    }
    path = pareto.plot_front(
        fronts,
        tmp_path / "front.png",
        ref_point=np.zeros(num_objectives),
        objective_names=["reward", "cost"],
        title="mo_matrix",
    )
    assert path == tmp_path / "front.png"
    content = path.read_bytes()
    assert content.startswith(PNG_MAGIC)
    assert len(content) > 1000
