"""Fixed Coin Game strategies: exact actions on hand-made observations, shortest paths, never
taking the other's coin (`cooperative`), the same action in every observation format."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.envs.coin_game import NO_CELL, CoinGame, CoinGameState
from marl.envs.coin_strategies import (
    COIN_STRATEGIES,
    coin_distances,
    coin_strategy,
    cooperative_action,
    greedy_action,
    random_action,
)

RIGHT, LEFT, DOWN, UP, STAY = range(5)
ONE_COIN = CoinGame(variant="one_coin")
TWO_COINS = CoinGame()


@functools.cache
def actions_fn(env, name):
    """Jitted: the strategy's actions `[B]` at observations `[B, *obs_shape]`."""
    strategy = coin_strategy(name, env)
    return jax.jit(jax.vmap(lambda obs: strategy(obs, jax.random.key(0))))


def seat_obs(env, agents, coins, seat=0):
    """The observation `[*obs_shape]` of `seat` in a hand-made state (as `make_state`)."""
    return env._observe(env.make_state(agents, coins))[seat]


# (case, strategy, seat, agents, coins owned by agent 0 and by agent 1, action)
ONE_COIN_CASES = [
    ("greedy: other's coin at right", "greedy", 0, ((1, 1), (2, 0)), (None, (1, 2)), RIGHT),
    ("greedy: own coin above", "greedy", 0, ((1, 1), (2, 0)), ((0, 1), None), UP),
    ("greedy: left across the edge", "greedy", 0, ((0, 0), (1, 1)), ((0, 2), None), LEFT),
    ("greedy: up across the edge", "greedy", 0, ((0, 0), (1, 1)), ((2, 0), None), UP),
    ("greedy: diagonal, sideways first", "greedy", 0, ((0, 0), (2, 0)), ((1, 1), None), RIGHT),
    ("greedy: wrapped diagonal", "greedy", 0, ((0, 0), (1, 0)), (None, (2, 2)), LEFT),
    ("greedy: seat 1 wraps right", "greedy", 1, ((0, 0), (2, 2)), (None, (2, 0)), RIGHT),
    ("cooperative: own coin", "cooperative", 0, ((0, 0), (2, 2)), ((1, 1), None), RIGHT),
    ("cooperative: no coin", "cooperative", 0, ((0, 0), (2, 2)), (None, (1, 1)), RIGHT),
    ("cooperative: other's at right", "cooperative", 0, ((0, 0), (2, 2)), (None, (0, 1)), LEFT),
    ("cooperative: seat 1 owns it", "cooperative", 1, ((0, 0), (2, 2)), (None, (1, 2)), UP),
    ("cooperative: seat 1 does not", "cooperative", 1, ((0, 0), (2, 2)), ((2, 0), None), LEFT),
]
TWO_COIN_CASES = [
    ("greedy: nearest coin", "greedy", 0, ((0, 0), (1, 1)), ((2, 2), (1, 0)), DOWN),
    ("greedy: equally near coins", "greedy", 0, ((0, 0), (2, 2)), ((1, 0), (0, 1)), RIGHT),
    ("greedy: coin underfoot", "greedy", 0, ((0, 0), (2, 2)), ((1, 1), (0, 0)), STAY),
    ("cooperative: own far", "cooperative", 0, ((0, 0), (1, 1)), ((2, 2), (1, 0)), LEFT),
    ("cooperative: other's in the way", "cooperative", 0, ((0, 0), (2, 2)), ((1, 1), (0, 1)), DOWN),
    ("cooperative: own underfoot", "cooperative", 0, ((0, 0), (2, 2)), ((0, 0), (1, 1)), STAY),
]
FOUR_BY_FOUR_CASES = [  # a coin half-way round: both ways are shortest
    ("greedy: half-way across", "greedy", 0, ((0, 0), (3, 3)), ((0, 2), (2, 2)), RIGHT),
    ("greedy: half-way down", "greedy", 0, ((0, 0), (3, 3)), ((2, 0), (2, 2)), DOWN),
]
HAND_MADE = [
    *((ONE_COIN, *case) for case in ONE_COIN_CASES),
    *((TWO_COINS, *case) for case in TWO_COIN_CASES),
    *((CoinGame(grid_size=4), *case) for case in FOUR_BY_FOUR_CASES),
]


@pytest.mark.parametrize(
    "env, name, seat, agents, coins, action",
    [(env, *case[1:]) for env, *case in HAND_MADE],
    ids=[case[0] for _, *case in HAND_MADE],
)
def test_hand_made_observation_gives_exactly_this_action(env, name, seat, agents, coins, action):
    obs = seat_obs(env, agents, coins, seat)
    assert int(actions_fn(env, name)(obs[None])[0]) == action


def test_distances_after_each_action_of_a_hand_made_observation():
    # agent 0 at (0, 0); own coin at (1, 1), the other's at (0, 2): right, left, down, up, stay
    own, other = coin_distances(TWO_COINS, seat_obs(TWO_COINS, ((0, 0), (2, 2)), ((1, 1), (0, 2))))
    np.testing.assert_array_equal(own, [1, 2, 1, 2, 2])
    np.testing.assert_array_equal(other, [1, 0, 2, 2, 1])
    own, _ = coin_distances(ONE_COIN, seat_obs(ONE_COIN, ((0, 0), (2, 2)), (None, (1, 1))))
    np.testing.assert_array_equal(own, [7, 7, 7, 7])  # no own coin: 2n + 1, above any distance


def all_states(n, num_coins):
    """Every placement on the n x n torus of the observer and `num_coins` coins on distinct
    cells: (agent_cells `[S, 2]`, coin cells `[S, num_coins]`); agent 1 shares agent 0's cell."""
    cells = np.array(
        [c for c in itertools.product(range(n * n), repeat=1 + num_coins) if len(set(c)) == len(c)],
        np.int8,
    )
    return np.repeat(cells[:, :1], 2, axis=1), cells[:, 1:]


def torus_distance(n, a, b):
    rows, cols = np.abs(a // n - b // n), np.abs(a % n - b % n)
    return np.minimum(rows, n - rows) + np.minimum(cols, n - cols)


@functools.cache
def walk_fn(env, name, num_steps):
    """Jitted: agent 0 follows strategy `name` for `num_steps` steps with the coins held still.

    Takes agent_cells `[S, 2]` and coin_cells `[S, 2]` (NO_CELL: absent); returns the step at
    which agent 0 first stands on a coin (num_steps if never) and which coin (0: its own, 1: the
    other's, -1: none), each `[S]`.
    """
    strategy = jax.vmap(lambda obs: coin_strategy(name, env)(obs, jax.random.key(0)))
    moves = jnp.asarray(env.move_table)

    def run(agent_cells, coin_cells):
        def one_step(carry, step):
            cell, arrived, coin = carry
            agents = jnp.stack([cell, cell], axis=1)
            state = CoinGameState(agents, coin_cells, jnp.zeros(cell.shape, jnp.int32))
            obs = jax.vmap(env._observe)(state)[:, 0]
            cell = jnp.where(coin >= 0, cell, moves[cell, strategy(obs)])
            on_coin = cell[:, None] == coin_cells
            first = (coin < 0) & on_coin.any(axis=1)
            arrived = jnp.where(first, step + 1, arrived)
            coin = jnp.where(first, jnp.argmax(on_coin, axis=1), coin)
            return (cell, arrived, coin), None

        size = agent_cells.shape[0]
        start = (agent_cells[:, 0], jnp.full(size, num_steps), jnp.full(size, -1))
        (_, arrived, coin), _ = jax.lax.scan(one_step, start, jnp.arange(num_steps))
        return arrived, coin

    return jax.jit(run)


@pytest.mark.parametrize("grid_size", [3, 4])
def test_greedy_reaches_the_nearest_coin_in_the_fewest_steps(grid_size):
    n = grid_size
    one_coin, two_coins = CoinGame("one_coin", grid_size=n), CoinGame(grid_size=n)
    agents, coins = all_states(n, 2)
    arrived, _ = walk_fn(two_coins, "greedy", 2 * n)(agents, coins)
    nearest = np.minimum(
        torus_distance(n, agents[:, 0], coins[:, 0]), torus_distance(n, agents[:, 0], coins[:, 1])
    )
    np.testing.assert_array_equal(arrived, nearest)
    agents, coin = all_states(n, 1)
    for owner in (0, 1):
        coins = np.full((len(coin), 2), NO_CELL, np.int8)
        coins[:, owner] = coin[:, 0]
        arrived, taken = walk_fn(one_coin, "greedy", 2 * n)(agents, coins)
        np.testing.assert_array_equal(arrived, torus_distance(n, agents[:, 0], coin[:, 0]))
        np.testing.assert_array_equal(taken, owner)


@pytest.mark.parametrize("grid_size", [3, 5])
def test_cooperative_never_steps_onto_the_other_coin(grid_size):
    """Own coin, other's coin and observer on distinct cells: it always reaches its own coin
    first, in the fewest steps on 3 x 3 (on 5 x 5 the other's coin can block the only shortest
    path); without an own coin (`one_coin`) it walks 4n steps without taking any."""
    n = grid_size
    agents, coins = all_states(n, 2)
    arrived, taken = walk_fn(CoinGame(grid_size=n), "cooperative", 4 * n)(agents, coins)
    np.testing.assert_array_equal(taken, 0)
    distance = torus_distance(n, agents[:, 0], coins[:, 0])
    if n == 3:
        np.testing.assert_array_equal(arrived, distance)
    else:
        assert np.all(arrived >= distance) and np.mean(arrived == distance) > 0.9
    agents, coin = all_states(n, 1)
    coins = np.stack([np.full(len(coin), NO_CELL, np.int8), coin[:, 0]], axis=1)
    _, taken = walk_fn(CoinGame("one_coin", grid_size=n), "cooperative", 4 * n)(agents, coins)
    np.testing.assert_array_equal(taken, -1)


@pytest.mark.parametrize("variant", ["two_coins", "one_coin"])
def test_every_observation_format_gives_the_same_action(variant):
    """Flat or `cnn`, allocentric or egocentric, seat 0 or seat 1: one decision per state."""
    formats = list(itertools.product((False, True), repeat=2))
    envs = [
        CoinGame(variant=variant, grid_size=4, egocentric=egocentric, cnn=cnn)
        for egocentric, cnn in formats
    ]

    @jax.jit
    def greedy_and_cooperative(keys):
        """Per format `[4]`, both strategies `[2]` at both seats of the reset states `[2K]`."""
        per_format = []
        for env in envs:
            obs, _ = jax.vmap(env.reset)(keys)  # the same states for every format
            seats = obs.reshape(-1, *env.obs_shape)
            greedy = jax.vmap(lambda o, env=env: greedy_action(env, o))(seats)
            cooperative = jax.vmap(lambda o, env=env: cooperative_action(env, o))(seats)
            per_format.append(jnp.stack([greedy, cooperative]))
        return jnp.stack(per_format)

    actions = np.asarray(greedy_and_cooperative(jax.random.split(jax.random.key(5), 128)))
    assert all(len(np.unique(strategy)) >= 4 for strategy in actions[0])  # varied decisions
    for other in actions[1:]:
        np.testing.assert_array_equal(other, actions[0])


def test_random_plays_every_action_uniformly_whatever_it_sees():
    keys = jax.random.split(jax.random.key(0), 8000)
    both = jax.jit(
        jax.vmap(lambda key: (random_action(ONE_COIN, key), random_action(TWO_COINS, key)))
    )
    for env, actions in zip((ONE_COIN, TWO_COINS), map(np.asarray, both(keys))):
        assert actions.dtype == np.int32
        counts = np.bincount(actions, minlength=env.num_actions)
        assert len(counts) == env.num_actions
        np.testing.assert_allclose(counts / 8000, 1 / env.num_actions, atol=0.02)
    obs = seat_obs(TWO_COINS, ((0, 0), (2, 2)), ((1, 1), (0, 1)))
    assert coin_strategy("random", TWO_COINS)(obs, keys[0]) == random_action(TWO_COINS, keys[0])


def test_strategy_functions_are_the_named_ones_and_reject_unknown_names():
    obs = seat_obs(TWO_COINS, ((0, 0), (2, 2)), ((1, 1), (0, 1)))
    key = jax.random.key(0)
    assert coin_strategy("greedy", TWO_COINS)(obs, key) == greedy_action(TWO_COINS, obs)
    assert coin_strategy("cooperative", TWO_COINS)(obs, key) == cooperative_action(TWO_COINS, obs)
    assert COIN_STRATEGIES == ("greedy", "cooperative", "random")
    with pytest.raises(ValueError, match="greedy, cooperative, random; got 'tft'"):
        coin_strategy("tft", TWO_COINS)
