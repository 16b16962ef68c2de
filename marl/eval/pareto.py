"""Pareto-front metrics of multi-objective returns (MOMIX evaluation, `specs/algos/momix.md` §6).

Host-side numpy, never jitted: the evaluation collects the mean vector returns F(w) of the
preference grid, keeps their non-dominated set (NDS) and scores it. Every objective is maximised.
Shapes (P = points, m = objectives):

    points     float `[P, m]`  one vector return per row; rows containing NaN are ignored
    ref_point  float `[m]`     hypervolume reference r; only points strictly above r in every
                               objective count

`front_metrics` bundles the logged metrics, on raw and on scaled objectives; `plot_front` draws
fronts to a PNG.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

DUPLICATE_TOLERANCE = 1e-6
# The smallest positive float64: a gap at least this large is any gap, so only exact copies match.
_ANY_GAP = float(np.finfo(np.float64).smallest_subnormal)


def _as_points(points: ArrayLike) -> np.ndarray:
    """`points` as float64 `[P, m]`."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must have shape [P, m], got {points.shape}")
    return points


def _without_nan_rows(points: np.ndarray) -> np.ndarray:
    """The rows of `[P, m]` without a NaN."""
    return points[~np.any(np.isnan(points), axis=1)]


def _dominated(points: np.ndarray, min_gap: float) -> np.ndarray:
    """`[P]` bool: row p is dominated, i.e. some row q has q >= p in every objective and is ahead
    of p by at least `min_gap` somewhere (so q is not a duplicate of p)."""
    gains = points[:, None, :] - points[None, :, :]  # [q, p, m]: q − p
    no_worse = np.all(gains >= 0, axis=-1)
    distinct = np.max(gains, axis=-1) >= min_gap
    return np.any(no_worse & distinct, axis=0)


def _sorted_descending(points: np.ndarray) -> np.ndarray:
    """Rows of `[P, m]` sorted by the first objective descending, ties by the next ones."""
    return points[np.lexsort(-points.T[::-1])]


def _merge_duplicates(points: np.ndarray) -> np.ndarray:
    """Keep each row of `[P, m]` unless it is within `DUPLICATE_TOLERANCE` (max |Δ|) of an
    earlier kept row; the order is preserved."""
    kept: list[np.ndarray] = []
    for point in points:
        if all(np.max(np.abs(point - other)) >= DUPLICATE_TOLERANCE for other in kept):
            kept.append(point)
    return np.array(kept).reshape(-1, points.shape[1])


def non_dominated(points: ArrayLike) -> np.ndarray:
    """The non-dominated set of points `[P, m]` as float64 `[Q, m]`.

    A point is dropped if another, non-duplicate point is >= it in every objective; duplicates
    (max |Δ| < `DUPLICATE_TOLERANCE`) are merged into the first of them in output order. Rows
    with NaN are ignored. Sorted by the first objective descending, ties by the next ones.
    """
    points = _without_nan_rows(_as_points(points))
    survivors = points[~_dominated(points, DUPLICATE_TOLERANCE)]
    return _merge_duplicates(_sorted_descending(survivors))


def _strictly_above(points: ArrayLike, ref_point: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(rows of `[P, m]` strictly above ref in every objective, ref as float64 `[m]`)."""
    points = _as_points(points)
    ref_point = np.asarray(ref_point, dtype=np.float64)
    return points[np.all(points > ref_point, axis=1)], ref_point


def hypervolume_2d(points: ArrayLike, ref_point: ArrayLike) -> float:
    """Exact 2-D hypervolume of points `[P, 2]` w.r.t. ref_point `[2]` by a sweep.

    Points are visited by f1 descending (ties by f2 descending); each adds (p1 − r1)·(p2 − prev)
    when its p2 beats the best p2 so far (prev, starting at r2). Dominated points add exact zeros
    and the sum is exact (`math.fsum`), so they leave the result unchanged bit for bit.
    """
    points, ref_point = _strictly_above(points, ref_point)
    points = _sorted_descending(points)
    best_so_far = np.maximum.accumulate(np.concatenate([ref_point[1:], points[:, 1]]))
    height_gains = np.diff(best_so_far)
    return math.fsum((points[:, 0] - ref_point[0]) * height_gains)


def _prefix_hypervolumes(points: np.ndarray, ref_point: np.ndarray) -> np.ndarray:
    """`[P]`: the hypervolume of the first k + 1 rows of points `[P, m]` for every k."""
    if points.shape[1] == 1:
        return np.maximum.accumulate(points[:, 0]) - ref_point[0]
    return np.array([_sliced_hypervolume(points[: k + 1], ref_point) for k in range(len(points))])


def _sliced_hypervolume(points: np.ndarray, ref_point: np.ndarray) -> float:
    """Hypervolume of points `[P, m]` (P >= 1, all strictly above ref) by slicing along the last
    objective: Σ_k (v_k − v_{k+1})·HV_{m−1}(first k points), v sorted descending, v_{P+1} = r_m."""
    if points.shape[1] == 1:
        return float(np.max(points) - ref_point[0])
    front = points[~_dominated(points, _ANY_GAP)]
    front = front[np.argsort(-front[:, -1], kind="stable")]
    thicknesses = -np.diff(np.append(front[:, -1], ref_point[-1]))
    return math.fsum(thicknesses * _prefix_hypervolumes(front[:, :-1], ref_point[:-1]))


def hypervolume(points: ArrayLike, ref_point: ArrayLike) -> float:
    """Exact hypervolume of points `[P, m]` w.r.t. ref_point `[m]`, any m >= 1, by slicing.

    Points not strictly above ref are dropped and each level keeps only its non-dominated set;
    slices are summed exactly (`math.fsum`).
    The recursion runs down to m = 1 (no 2-D shortcut), so it is independent of `hypervolume_2d`.
    Cost grows like P^(m−1): fine for m <= 4, P <= 100. 0.0 when no point is above ref.
    """
    points, ref_point = _strictly_above(points, ref_point)
    if len(points) == 0:
        return 0.0
    return _sliced_hypervolume(points, ref_point)


def sparsity(points: ArrayLike) -> float:
    """PGMORL sparsity of points `[P, m]` (pass the NDS); lower means denser; 0.0 when P < 2.

    S = 1/(P − 1)·Σ_j Σ_i (P̃_j(i) − P̃_j(i+1))², P̃_j the sorted values of objective j.
    """
    points = _as_points(points)
    if len(points) < 2:
        return 0.0
    gaps = np.diff(np.sort(points, axis=0), axis=0)
    return float(np.sum(gaps**2) / (len(points) - 1))


def spacing(points: ArrayLike) -> float:
    """Schott spacing of points `[P, m]`; lower means more even; 0.0 when P < 2.

    d_i = min_{k≠i} Σ_j |p_ij − p_kj| (L1), SP = sqrt(1/(P − 1)·Σ_i (d̄ − d_i)²).
    """
    points = _as_points(points)
    if len(points) < 2:
        return 0.0
    distances = np.sum(np.abs(points[:, None, :] - points[None, :, :]), axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = np.min(distances, axis=1)
    return float(np.sqrt(np.sum((nearest.mean() - nearest) ** 2) / (len(points) - 1)))


def _front_scores(front: np.ndarray, ref_point: np.ndarray) -> dict[str, float]:
    """Hypervolume, sparsity and spacing of a non-dominated set `[Q, m]`."""
    return {
        "hypervolume": hypervolume(front, ref_point),
        "sparsity": sparsity(front),
        "spacing": spacing(front),
    }


# The keys of `front_metrics`, in order.
FRONT_METRICS = (
    "num_nondominated",
    "hypervolume",
    "sparsity",
    "spacing",
    "scaled_hypervolume",
    "scaled_sparsity",
    "scaled_spacing",
)


def front_metrics(
    points: ArrayLike, ref_point: ArrayLike, scale: ArrayLike | None = None
) -> dict[str, float]:
    """Metrics of the NDS of points `[P, m]` (NaN rows ignored) w.r.t. ref_point `[m]`.

    `num_nondominated`, `hypervolume`, `sparsity` and `spacing` on raw objectives, and
    `scaled_hypervolume`, `scaled_sparsity`, `scaled_spacing` on objectives (and ref) divided by
    the positive per-objective `scale` `[m]` (None: all ones).
    """
    front = non_dominated(points)
    ref_point = np.asarray(ref_point, dtype=np.float64)
    scale = np.ones(front.shape[1]) if scale is None else np.asarray(scale, dtype=np.float64)
    if np.any(scale <= 0):
        raise ValueError(f"scale must be positive, got {scale}")
    scaled = _front_scores(front / scale, ref_point / scale)
    return {
        "num_nondominated": float(len(front)),
        **_front_scores(front, ref_point),
        **{f"scaled_{name}": value for name, value in scaled.items()},
    }


def plot_front(
    fronts: Mapping[str, ArrayLike],
    path: str | Path,
    ref_point: ArrayLike | None = None,
    objective_names: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """Write a PNG of fronts (label -> points `[P, m]`) to `path` and return the path.

    Each label's points are scattered; for m = 2 its NDS is joined as a staircase (the border of
    the dominated region). For m > 2 only the first two objectives are drawn, as the title says.
    The reference point, if given, is marked.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = objective_names or ("objective 1", "objective 2")
    figure, axis = plt.subplots(figsize=(6, 5))
    num_objectives = 2
    for index, (label, points) in enumerate(fronts.items()):
        points = _without_nan_rows(_as_points(points))
        num_objectives = max(num_objectives, points.shape[1])
        color = f"C{index}"
        axis.scatter(points[:, 0], points[:, 1], color=color, alpha=0.5, label=label)
        if points.shape[1] == 2:
            front = non_dominated(points)
            axis.step(front[:, 0], front[:, 1], where="post", color=color)
    if ref_point is not None:
        ref_xy = np.asarray(ref_point, dtype=np.float64)[:2]
        axis.scatter(*ref_xy, marker="x", color="black", label="reference point")
    if num_objectives > 2:
        title = f"{title} (first 2 of {num_objectives} objectives)".strip()
    axis.set_xlabel(names[0])
    axis.set_ylabel(names[1])
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
