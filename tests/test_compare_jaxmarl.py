"""`benchmarks/compare_jaxmarl.py` without jaxmarl (as in CI): the install hint, exit status 0,
nothing written; and our side of the measurement at a tiny size (throughput is never asserted as a
time, see DESIGN.md)."""

from __future__ import annotations

import math
import sys

import jax
import pytest
from conftest import REPO

from marl.envs import make


@pytest.fixture
def compare_jaxmarl(monkeypatch: pytest.MonkeyPatch):
    """The benchmark module, imported as its script imports it (benchmarks/ on the path)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import compare_jaxmarl

    return compare_jaxmarl


def test_without_jaxmarl_prints_the_install_hint_and_writes_nothing(
    compare_jaxmarl, monkeypatch, tmp_path, capsys
):
    monkeypatch.setitem(sys.modules, "jaxmarl", None)  # `import jaxmarl` now fails
    monkeypatch.setattr(compare_jaxmarl, "RESULTS_DIR", tmp_path / "results")
    out = tmp_path / "compare.json"

    compare_jaxmarl.main(["--num-envs", "1", "--out", str(out)])  # returns: exit status 0

    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1
    assert "jaxmarl is not installed" in lines[0]
    assert "pip install jaxmarl" in lines[0]
    assert captured.err == ""
    assert list(tmp_path.iterdir()) == []


def test_env_override_is_one_error_line(compare_jaxmarl, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare_jaxmarl.main(["env.max_steps=16"])
    assert exit_info.value.code == 2
    assert "env.max_steps=16" in capsys.readouterr().err


def test_our_side_of_the_measurement_at_a_tiny_size(compare_jaxmarl):
    env = make("coin_game", variant="two_coins", jaxmarl_compat=True, max_steps=10)
    row = compare_jaxmarl.measure_ours(
        env, num_envs=2, num_steps=3, repeats=1, key=jax.random.PRNGKey(0)
    )
    assert set(row) == {"env_steps_per_s", "compile_s", "rollout_s"}
    for value in row.values():
        assert math.isfinite(value) and value > 0
    assert row["env_steps_per_s"] == pytest.approx(2 * 3 / row["rollout_s"])
