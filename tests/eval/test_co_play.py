"""Co-play: which co-players fit which game, seat 1's action replaced, the per-seat metrics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.config import ConfigError
from marl.envs import make
from marl.envs.coin_game import CoinGame
from marl.envs.opponent import FixedOpponent
from marl.eval.co_play import (
    co_play_metrics,
    co_player_names,
    match_actions,
    play_matches,
    trained_seats,
)
from marl.eval.rollout import LoadedRun

IPD = make("matrix_game", game="ipd", max_steps=5)
CD, DC = 1, 2  # memory-one observation indices, from the observer's side


@pytest.mark.parametrize(
    "env, requested, expected",
    [
        (CoinGame(), "all", ("self", "greedy", "cooperative", "random")),
        (CoinGame(variant="one_coin"), ["greedy", "self"], ("greedy", "self")),
        (IPD, "all", ("self", "allc", "alld", "tft", "wsls", "random")),
        (IPD, ["tft", "self", "tft", "all"], ("tft", "self", "allc", "alld", "wsls", "random")),
        (make("public_goods", num_agents=2), ["alld"], ("alld",)),
        (make("matrix_game", game="climbing"), "all", ("self",)),
    ],
)
def test_names_expand_all_and_keep_the_order_without_repeats(env, requested, expected):
    assert co_player_names(requested, env, "game") == expected


@pytest.mark.parametrize(
    "env, name, requested, message",
    [
        (
            CoinGame(),
            "coin_game",
            ["self", "tft"],
            (
                "opponents: tft does not fit coin_game; allowed for coin_game: self, greedy, "
                "cooperative, random or all"
            ),
        ),
        (IPD, "ipd", "greedy", "opponents: greedy does not fit ipd; allowed for ipd: self, allc"),
        (IPD, "ipd", ["bogus"], "opponents: unknown co-player 'bogus'; allowed for ipd: self, "),
        (
            IPD,
            "ipd",
            [],
            "opponents is empty; allowed for ipd: self, allc, alld, tft, wsls, random",
        ),
        (make("public_goods"), "public_goods", "self", "opponents needs a two-player game; "),
    ],
)
def test_a_co_player_that_does_not_fit_is_one_clear_line(env, name, requested, message):
    with pytest.raises(ConfigError) as error:
        co_player_names(requested, env, name)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


class EchoPolicy:
    """Stand-in trainer: each seat plays 1 if it saw CD (it cooperated, the other defected)."""

    def act(self, params, obs, key):
        return (obs[..., CD] > 0).astype(jnp.int32)


class AlwaysDefect:
    """Stand-in trainer: every seat defects."""

    def act(self, params, obs, key):
        return jnp.ones(obs.shape[:2], jnp.int32)


def loaded(env, trainer) -> LoadedRun:
    return LoadedRun(cfg=None, env=env, trainer=trainer, params=None, updates_done=0)


# seat 0 saw CD, so seat 1 saw DC; in each of 3 envs
OBS = jax.nn.one_hot(jnp.array([[CD, DC]] * 3), 5)
KEY = jax.random.key(0)


def test_co_player_replaces_seat_1_and_the_trained_policy_keeps_seat_0():
    act = match_actions(loaded(IPD, EchoPolicy()), IPD, ("self", "alld", "tft", "allc"))
    # self: the echo in both seats; tft in seat 1 saw DC, so it copies seat 0's cooperation
    expected = {0: [1, 0], 1: [1, 1], 2: [1, 0], 3: [1, 0]}
    for match, actions in expected.items():
        np.testing.assert_array_equal(act(jnp.int32(match), OBS, KEY), [actions] * 3)


def test_a_run_trained_against_a_fixed_opponent_plays_every_seat_from_its_own_view():
    run = loaded(FixedOpponent(IPD, "tft"), EchoPolicy())  # one learner seat
    np.testing.assert_array_equal(trained_seats(run, IPD)(OBS, KEY), [[1, 0]] * 3)
    act = match_actions(run, IPD, ("alld",))
    np.testing.assert_array_equal(act(jnp.int32(0), OBS, KEY), [[1, 1]] * 3)


def test_matches_play_the_spec_rewards_and_metrics_are_per_seat():
    """matrix_games.md §2.1 over 5 steps: ALLD vs TFT earns (0 − 2·4, −3 − 2·4) in total."""
    matches = play_matches(loaded(IPD, AlwaysDefect()), IPD, ("tft", "allc"), KEY, 3)
    assert list(matches) == ["tft", "allc"] and matches["tft"]["reward"].shape == (5, 3, 2)
    metrics = co_play_metrics(matches["tft"])
    assert set(metrics) == {"reward_per_step", "cooperation_rate"}
    np.testing.assert_allclose(metrics["reward_per_step"][0], [-8 / 5, -11 / 5])
    np.testing.assert_allclose(metrics["reward_per_step"][1], [0, 0])  # equal episodes
    np.testing.assert_allclose(metrics["cooperation_rate"][0], [0, 1 / 5])
    np.testing.assert_allclose(co_play_metrics(matches["allc"])["reward_per_step"][0], [0, -3])


def test_coin_metrics_average_the_own_coin_fraction_over_episodes_with_pickups():
    # 2 steps x 3 episodes x 2 seats; seat 0 picks: own, own | nothing | own, other's
    own = np.zeros((2, 3, 2), np.float32)
    other = np.zeros((2, 3, 2), np.float32)
    own[:, 0, 0] = 1
    own[0, 2, 0], other[1, 2, 0] = 1, 1
    reward = own + other - 2 * other[..., ::-1]
    metrics = co_play_metrics({"reward": reward, "own_pickups": own, "other_pickups": other})
    fraction, stderr = metrics["own_coin_fraction"]
    np.testing.assert_allclose(fraction[0], 0.75)  # episodes 0 and 2: (1 + 0.5) / 2
    np.testing.assert_allclose(stderr[0], 0.25)
    assert np.isnan(fraction[1])  # seat 1 never picked a coin
    np.testing.assert_allclose(metrics["pickups_per_step"][0], [(1 + 0 + 1) / 3, 0])
    np.testing.assert_allclose(metrics["reward_per_step"][0], [(1 + 0 + 1) / 3, -1 / 3])
