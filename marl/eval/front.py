"""Pareto evaluation of a trained multi-objective run (`algo=momix`, `algo=qmix_outer`).

Greedy episodes at every preference of the trainer's grid give one point F(w_g) each; the
non-dominated set of those points and its metrics (`marl.eval.pareto.front_metrics`) summarise
the run, in the units of the env's objectives (raw, and divided by their scale).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from marl.eval.pareto import front_metrics, non_dominated, plot_front
from marl.eval.rollout import LoadedRun


def evaluate_front(run: LoadedRun, key: jax.Array, episodes: int) -> dict:
    """{"objectives": names, "preferences" `[G, m]`, "points" `[G, m]`, "nondominated" `[Q, m]`,
    "metrics": front_metrics} for `episodes` greedy episodes per preference."""
    trainer, objectives = run.trainer, run.env.objectives
    points = np.asarray(
        jax.jit(trainer.evaluate_front, static_argnums=2)(run.params, key, episodes)
    )
    return {
        "objectives": list(objectives.names),
        "ref_point": list(objectives.ref_point),
        "preferences": np.asarray(trainer.grid),
        "points": points,
        "nondominated": non_dominated(points),
        "metrics": front_metrics(points, objectives.ref_point, objectives.scale),
    }


def print_front(summary: dict, header: str) -> None:
    """The grid's points, one row per preference, then the front's metrics."""
    names = summary["objectives"]
    print(header)
    print(
        "  "
        + "  ".join(f"{'w_' + name:>16s}" for name in names)
        + "  |  "
        + "  ".join(f"{name:>16s}" for name in names)
    )
    for preference, point in zip(summary["preferences"], summary["points"]):
        cells = "  ".join(f"{w:16.3f}" for w in preference)
        values = "  ".join(f"{v:16.3f}" for v in point)
        print(f"  {cells}  |  {values}")
    print(
        f"  non-dominated points: {len(summary['nondominated'])} (reference point {summary['ref_point']})"
    )
    for name, value in summary["metrics"].items():
        print(f"  {name:32s} {value:9.4f}")


def plot_evaluated_front(summary: dict, path: Path, title: str) -> Path:
    """PNG of the evaluated points and their non-dominated set."""
    return plot_front(
        {"greedy policies": summary["points"]},
        path,
        ref_point=summary["ref_point"],
        objective_names=summary["objectives"],
        title=title,
    )
