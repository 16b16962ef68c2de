"""PNGs of a run drawn from its metrics.jsonl: the learning curve, and the Pareto front of
multi-objective learners."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from marl.run.logging import read_rows, seed_means

CURVE_FILE = "learning_curve.png"


def plot_learning_curve(run_dir: Path) -> Path | None:
    """Write `<run_dir>/learning_curve.png`: mean episode returns (per agent and collective)
    against env steps, averaged over seeds. Returns the path, or None if nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = seed_means(read_rows(run_dir))
    if not means:
        return None
    updates = sorted(means)
    steps = [means[u]["env_steps"] for u in updates]
    columns = [c for c in means[updates[0]] if c.startswith("episode/return/")]
    figure, axis = plt.subplots(figsize=(7, 4))
    for column in ["episode/collective_return", *columns]:
        values = [means[u].get(column, math.nan) for u in updates]
        label = (
            "collective"
            if column == "episode/collective_return"
            else f"agent {column.rsplit('/', 1)[1]}"
        )
        axis.plot(steps, values, label=label, linewidth=2 if label == "collective" else 1)
    axis.set_xlabel("env steps")
    axis.set_ylabel("episode return")
    axis.set_title(Path(run_dir).name)
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    path = Path(run_dir) / CURVE_FILE
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


FRONT_FILE = "pareto_front.png"
POINTS_PREFIX = "pareto/points/"


def last_front_points(rows: list[dict]) -> dict[int, np.ndarray]:
    """seed -> the points `[G, m]` of that seed's last logged Pareto evaluation (columns
    `pareto/points/<g>/<k>`; rows without an evaluation hold nulls)."""
    fronts = {}
    for row in rows:
        cells = {
            tuple(map(int, name[len(POINTS_PREFIX) :].split("/"))): value
            for name, value in row.items()
            if name.startswith(POINTS_PREFIX) and value is not None
        }
        if not cells:
            continue
        shape = tuple(max(index[axis] for index in cells) + 1 for axis in range(2))
        points = np.full(shape, np.nan)
        for index, value in cells.items():
            points[index] = value
        fronts[row["seed"]] = points
    return fronts


def plot_pareto_front(run_dir: Path, objectives) -> Path | None:
    """Write `<run_dir>/pareto_front.png`: every seed's last evaluated points and its
    non-dominated set, in the units of `objectives` (an `ObjectiveSpec`). None if no evaluation
    was logged."""
    from marl.eval.pareto import plot_front

    fronts = last_front_points(read_rows(run_dir))
    if not fronts:
        return None
    return plot_front(
        {f"seed {seed}": points for seed, points in sorted(fronts.items())},
        Path(run_dir) / FRONT_FILE,
        ref_point=objectives.ref_point,
        objective_names=objectives.names,
        title=f"{Path(run_dir).name}: greedy policies on the preference grid",
    )
