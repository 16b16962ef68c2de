"""Learning checks with known outcomes (`pytest -m slow`, about a minute each on 2 CPU cores).

Each trains three vmapped seeds through the real CLI path and reads the logged metrics of the last
10 % of updates: cooperation rate = cooperative steps / episode length, reward per step.
"""

from __future__ import annotations

import statistics

import pytest
from conftest import compose_config, read_metrics

from marl.run.cli import train_job

pytestmark = pytest.mark.slow

SEEDS = 3
COMMON = [f"num_seeds={SEEDS}", "run.updates_per_chunk=25", "run.progress=false"]


def final_behaviour(tmp_path, overrides: list[str]) -> list[dict[str, float]]:
    """Per seed: cooperation rate of each agent and agent 0's reward per step, late in training."""
    run_dir = tmp_path / "run"
    assert train_job(compose_config([*COMMON, *overrides]), run_dir) == 0
    rows = read_metrics(run_dir)
    last_update = max(row["update"] for row in rows)
    late = [row for row in rows if row["update"] > 0.9 * last_update]
    behaviour = []
    for seed in sorted({row["seed"] for row in late}):
        seed_rows = [row for row in late if row["seed"] == seed]

        def mean(column: str, seed_rows: list[dict] = seed_rows) -> float:
            return statistics.fmean(row[column] / row["episode/length"] for row in seed_rows)

        agents = sorted(
            k.rsplit("/", 1)[1] for k in seed_rows[0] if k.startswith("episode/cooperated/")
        )
        behaviour.append(
            {
                **{f"coop{a}": mean(f"episode/cooperated/{a}") for a in agents},
                "reward_per_step": mean("episode/return/0"),
            }
        )
    print(f"late behaviour per seed: {behaviour}")  # shown with `pytest -m slow -s`
    return behaviour


def median(behaviour: list[dict[str, float]], key: str) -> float:
    return statistics.median(seed[key] for seed in behaviour)


def test_ppo_against_tit_for_tat_learns_to_cooperate(tmp_path):
    behaviour = final_behaviour(
        tmp_path,
        ["env=ipd", "env.opponent=tft", "algo.total_timesteps=500000", "algo.num_minibatches=4"],
    )
    assert median(behaviour, "coop0") >= 0.9, behaviour
    assert median(behaviour, "reward_per_step") >= -1.1, behaviour


def test_ppo_self_play_with_individual_rewards_defects(tmp_path):
    behaviour = final_behaviour(
        tmp_path, ["env=ipd", "algo.total_timesteps=500000", "algo.num_minibatches=4"]
    )
    assert median(behaviour, "coop0") <= 0.1 and median(behaviour, "coop1") <= 0.1, behaviour
    assert median(behaviour, "reward_per_step") <= -1.8, behaviour


def test_ppo_self_play_with_collective_reward_cooperates(tmp_path):
    behaviour = final_behaviour(
        tmp_path,
        [
            "env=ipd",
            "algo.reward_mode=collective",
            "algo.total_timesteps=500000",
            "algo.num_minibatches=4",
        ],
    )
    assert median(behaviour, "coop0") >= 0.9 and median(behaviour, "coop1") >= 0.9, behaviour
    assert median(behaviour, "reward_per_step") >= -1.1, behaviour


def test_stag_hunt_self_play_ends_at_a_pure_nash_equilibrium(tmp_path):
    behaviour = final_behaviour(
        tmp_path,
        [
            "env=stag_hunt",
            "algo.total_timesteps=1000000",
            "algo.num_minibatches=4",
            "algo.ent_coef=0.01",
            "algo.ent_coef_final=null",
        ],
    )
    for seed in behaviour:
        both_stag = seed["coop0"] >= 0.9 and seed["coop1"] >= 0.9
        both_hare = seed["coop0"] <= 0.1 and seed["coop1"] <= 0.1
        assert both_stag or both_hare, behaviour
