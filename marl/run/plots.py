"""Learning-curve PNG of a run, drawn from its metrics.jsonl."""

from __future__ import annotations

import math
from pathlib import Path

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
