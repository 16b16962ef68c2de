"""Social outcome metrics: the examples of `specs/envs/social_metrics.md` and their invariants."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marl.eval import social_metrics as sm

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)

equality_jit = jax.jit(sm.equality)
sustainability_fraction_jit = jax.jit(sm.sustainability_fraction)
peace_jit = jax.jit(sm.peace)


def finite_float32(max_magnitude: float | None = None) -> st.SearchStrategy[float]:
    """Finite float32 values; subnormal ones only without a bound (XLA may flush them to 0)."""
    return st.floats(
        min_value=None if max_magnitude is None else -max_magnitude,
        max_value=max_magnitude,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=max_magnitude is None,
        width=32,
    )


def agent_totals(elements: st.SearchStrategy[float]) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float32, st.integers(1, 6), elements=elements)


# Magnitudes in [1e-30, 1e30] (or 0) stay normal float32 numbers after scaling by [1e-3, 1e3].
scalable_float = st.one_of(
    st.just(0.0),
    st.builds(lambda sign, size: sign * size, st.sampled_from([-1.0, 1.0]), st.floats(1e-30, 1e30)),
)


def spec_equality(totals: np.ndarray) -> float:
    """The spec's formula, literally, in float64."""
    totals = totals.astype(np.float64)
    magnitude = np.abs(totals).sum()
    if magnitude == 0:
        return 1.0
    gaps = np.abs(totals[:, None] - totals[None, :]).sum()
    return 1.0 - gaps / (2 * len(totals) * magnitude)


# Spec examples.


@pytest.mark.parametrize(
    ("returns", "expected"),
    [((10.0, 0.0), 0.5), ((5.0, 5.0), 1.0), ((-50.0, 0.0), 0.5), ((0.0, 0.0), 1.0)],
)
def test_equality_spec_examples(returns, expected):
    assert float(equality_jit(np.array(returns, np.float32))) == pytest.approx(expected)


@pytest.mark.parametrize("num_agents", [1, 2, 3, 5, 8])
def test_equality_one_agent_holds_everything_is_one_over_n(num_agents):
    returns = np.zeros(num_agents, np.float32)
    returns[-1] = 7.0
    assert float(equality_jit(returns)) == pytest.approx(1.0 / num_agents)


def test_equality_resources_is_one_when_nobody_collected():
    metrics = sm.episode_social_metrics(
        np.full((10, 3), -1.0, np.float32), resource_events=np.zeros((10, 3), np.int32)
    )
    assert float(metrics["equality_resources"]) == 1.0


def test_collection_time_of_steps_one_and_three_is_two_and_never_is_t():
    events = np.zeros((10, 2), np.int32)
    events[[0, 2], 0] = 1
    np.testing.assert_allclose(sm.collection_times(events), [2.0, 10.0])
    assert float(sm.sustainability(events)) == pytest.approx(6.0)
    assert float(sm.sustainability_fraction(events)) == pytest.approx(0.6)


def test_collection_times_count_steps_not_events():
    events = np.zeros((10, 1), np.int32)
    events[[0, 2], 0] = [3, 1]
    assert float(sm.collection_times(events)[0]) == pytest.approx(2.0)


def test_gathering_peace_with_one_tag_out_of_25_steps():
    present = np.ones((1000, 2), bool)
    present[400:425, 1] = False
    assert float(sm.peace(present)) == pytest.approx(1.975)
    assert float(sm.peace_fraction(present)) == pytest.approx(1.975 / 2)


def test_efficiency_and_collective_return():
    rewards = np.array([[1.0, 0.0], [1.0, -50.0], [0.0, 1.0], [1.0, 0.0]], np.float32)
    assert float(sm.collective_return(rewards)) == pytest.approx(-46.0)
    assert float(sm.efficiency(rewards)) == pytest.approx(-11.5)


def test_resource_events_from_rewards_counts_positive_rewards():
    rewards = np.array([[1.0, -1.0], [0.0, 0.5]], np.float32)
    np.testing.assert_array_equal(sm.resource_events_from_rewards(rewards), [[1, 0], [0, 1]])


def test_episode_social_metrics_defaults():
    rewards = np.zeros((10, 2), np.float32)
    rewards[[0, 2], 0] = 1.0
    rewards[5, 1] = -50.0
    metrics = sm.episode_social_metrics(rewards)
    assert set(metrics) == {
        "collective_return",
        "efficiency",
        "equality",
        "equality_resources",
        "sustainability",
        "sustainability_fraction",
        "peace",
        "peace_fraction",
    }
    expected = {
        "collective_return": -48.0,
        "efficiency": -4.8,
        "equality": 1 - 2 * 52 / (2 * 2 * 52),
        "equality_resources": 0.5,
        "sustainability": 6.0,
        "sustainability_fraction": 0.6,
        "peace": 2.0,
        "peace_fraction": 1.0,
    }
    for name, value in expected.items():
        assert metrics[name].shape == ()
        assert float(metrics[name]) == pytest.approx(value), name


def test_episode_social_metrics_uses_given_present_and_resource_events():
    rewards = np.full((4, 2), -1.0, np.float32)
    present = np.ones((4, 2), bool)
    present[1:3, 0] = False
    events = np.zeros((4, 2), np.int32)
    events[3, 1] = 1
    metrics = sm.episode_social_metrics(rewards, present, events)
    assert float(metrics["peace"]) == pytest.approx(1.5)
    assert float(metrics["equality_resources"]) == pytest.approx(0.5)
    assert float(metrics["sustainability"]) == pytest.approx(4.0)


# Companion metrics.


def test_beam_use_rate_divides_by_agent_steps_on_the_map():
    beam_uses = np.zeros((4, 2), np.int32)
    beam_uses[[0, 1, 3], [0, 0, 1]] = 1
    present = np.ones((4, 2), bool)
    present[2:, 0] = False
    assert float(sm.beam_use_rate(beam_uses, present)) == pytest.approx(3 / 6)
    assert np.isnan(sm.beam_use_rate(beam_uses, np.zeros((4, 2), bool)))


def test_beam_use_rate_from_episode_totals_equals_the_per_step_rate():
    beam_uses = np.zeros((4, 2), np.int32)
    beam_uses[[0, 1, 3], [0, 0, 1]] = 1
    present = np.ones((4, 2), bool)
    present[2:, 0] = False
    totals = sm.metrics_from_episode_totals(
        returns=np.zeros(2),
        length=4,
        present_total=present.sum(axis=0),
        beam_uses_total=beam_uses.sum(axis=0),
    )
    assert float(totals["beam_use_rate"]) == float(sm.beam_use_rate(beam_uses, present))
    assert "beam_use_rate" not in sm.metrics_from_episode_totals(np.zeros(2), 4)


def test_events_per_episode_sums_counters():
    tagged_out = np.zeros((5, 2), bool)
    tagged_out[[1, 3], [0, 1]] = True
    assert float(sm.events_per_episode(tagged_out)) == 2.0


def test_cleaning_rates():
    cleans = np.zeros((5, 2), np.int32)
    cleans[:, 0] = 1
    waste_cleaned = np.zeros((5, 2), np.int32)
    waste_cleaned[[0, 1], 0] = 1
    assert float(sm.cleaning_rate(cleans)) == pytest.approx(0.5)
    assert float(sm.waste_cleaned_per_step(waste_cleaned)) == pytest.approx(0.4)


def test_mean_map_count():
    assert float(sm.mean_map_count(np.array([10, 20, 30, 40]))) == pytest.approx(25.0)


def test_own_coin_fraction_is_nan_without_pickups():
    own = np.zeros((6, 2), np.int32)
    own[[0, 3], 0] = 1
    other = np.zeros((6, 2), np.int32)
    other[5, 0] = 1
    fraction = sm.own_coin_fraction(own, other)
    assert float(fraction[0]) == pytest.approx(2 / 3)
    assert np.isnan(fraction[1])


def test_cooperation_rate_is_fraction_of_cooperative_steps():
    cooperated = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], bool)
    np.testing.assert_allclose(sm.cooperation_rate(cooperated), [0.75, 0.25])


# Aggregation over episodes.


def test_mean_and_stderr_matches_numpy_and_ignores_nan():
    values = np.array([[1.0, np.nan], [2.0, 4.0], [4.0, np.nan], [5.0, 8.0]])
    mean, stderr = sm.mean_and_stderr(values)
    np.testing.assert_allclose(mean, [3.0, 6.0])
    np.testing.assert_allclose(
        stderr, [np.std([1, 2, 4, 5], ddof=1) / 2, np.std([4, 8], ddof=1) / np.sqrt(2)], rtol=1e-6
    )


def test_mean_and_stderr_undefined_cases():
    mean, stderr = sm.mean_and_stderr(np.array([[np.nan, 3.0]]))
    assert np.isnan(mean[0]) and np.isnan(stderr[0])
    assert float(mean[1]) == 3.0 and np.isnan(stderr[1])


# Properties.


@PROPERTY_SETTINGS
@given(agent_totals(finite_float32()))
def test_equality_in_unit_interval_for_any_real_returns(returns):
    value = float(equality_jit(returns))
    assert 0.0 <= value <= 1.0


@PROPERTY_SETTINGS
@given(agent_totals(finite_float32(1e6)))
def test_equality_matches_spec_formula(returns):
    assert float(equality_jit(returns)) == pytest.approx(spec_equality(returns), abs=1e-5)


@PROPERTY_SETTINGS
@given(agent_totals(scalable_float), st.randoms(use_true_random=False), st.floats(1e-3, 1e3))
def test_equality_invariant_to_permutation_and_positive_scaling(returns, rng, scale):
    value = float(equality_jit(returns))
    permuted = returns[np.array(rng.sample(range(len(returns)), len(returns)))]
    assert float(equality_jit(permuted)) == pytest.approx(value, abs=1e-5)
    scaled = (returns.astype(np.float64) * scale).astype(np.float32)
    assert float(equality_jit(scaled)) == pytest.approx(value, abs=1e-5)


episode_shapes = st.sampled_from([(1, 1), (1, 3), (7, 2), (25, 5)])


@PROPERTY_SETTINGS
@given(
    episode_shapes.flatmap(lambda shape: hnp.arrays(np.int32, shape, elements=st.integers(0, 2)))
)
def test_sustainability_fraction_in_half_open_unit_interval(resource_events):
    fraction = float(sustainability_fraction_jit(resource_events))
    assert 0.0 < fraction <= 1.0


@PROPERTY_SETTINGS
@given(episode_shapes.flatmap(lambda shape: hnp.arrays(np.bool_, shape)))
def test_peace_between_zero_and_n(present):
    value = float(peace_jit(present))
    assert 0.0 <= value <= present.shape[1]
    assert value == pytest.approx(present.sum() / present.shape[0])


# Batching over episodes.


def test_vmap_over_episodes_matches_per_episode_calls():
    rng = np.random.default_rng(0)
    shape = (5, 30, 3)
    rewards = rng.integers(-2, 3, shape).astype(np.float32)
    present = rng.random(shape) < 0.8
    events = rng.integers(0, 2, shape)
    batched_metrics = jax.jit(jax.vmap(sm.episode_social_metrics))
    batched = batched_metrics(rewards, present, events)
    per_episode = jax.jit(sm.episode_social_metrics)
    for episode in range(shape[0]):
        single = per_episode(rewards[episode], present[episode], events[episode])
        for name, value in single.items():
            np.testing.assert_allclose(batched[name][episode], value, rtol=1e-6)
    batched_defaults = batched_metrics(rewards)
    defaults_spelled_out = batched_metrics(
        rewards, np.ones(shape, bool), sm.resource_events_from_rewards(rewards)
    )
    for name, value in defaults_spelled_out.items():
        np.testing.assert_allclose(batched_defaults[name], value, rtol=1e-6)
