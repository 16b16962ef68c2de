"""Fixed Coin Game strategies (spec `coin_game.md` §6, §8): `greedy`, `cooperative`, `random`.

* `greedy` ("always defect"): walks a shortest torus path to the nearest coin, whatever its owner.
* `cooperative` ("always cooperate", §8): heads for its own coin and never steps onto a coin it
  does not own. Each step it takes the move that ends nearest its own coin among the moves that
  avoid the other's coin (on the 3 x 3 torus always a shortest path); without a coin of its own
  (the non-owner in `one_coin`) any move that avoids the other's coin.
* `random`: uniformly random actions.

Like the memory-one strategies of `marl.envs.strategies`, each is a pure, jittable function of one
seat's own observation (and a key) to that seat's action, so it can take a seat of any trained
run's game. Positions are decoded from the observation planes (SELF, OWN_COIN, OTHER_COIN) rather
than read from the env state: the observation is all a seat sees, both seats see the game from
their own side in the same layout, and it needs no access to a (possibly wrapped) state. Flat
observations are reshaped to the `[n, n, 4]` planes (flattened row-major); egocentric ones need
nothing else, because rolling every plane on the torus keeps every torus distance.

Ties are broken deterministically: every action is scored by the torus distance from the cell it
reaches to the target, and the lowest score with the lowest action index wins, in the order right,
left, down, up, stay. So a diagonal target is approached sideways first (right or left), and on an
even torus a target half-way round is approached rightwards or downwards. Without a coin of
its own, `cooperative` moves right, or left when the other's coin lies to its right.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from marl.envs.coin_game import NUM_PLANES, OTHER_COIN, OWN_COIN, SELF, CoinGame

COIN_STRATEGIES: tuple[str, ...] = ("greedy", "cooperative", "random")

# (obs `[*obs_shape]` of one seat, key) -> action int32 `[]`
StrategyFn = Callable[[jax.Array, jax.Array], jax.Array]


def _unreachable(game: CoinGame) -> int:
    """A score above every torus distance on the n x n torus (at most 2·(n // 2) <= n)."""
    return 2 * game.grid_size + 1


def _torus_distance(game: CoinGame, cells: jax.Array, target: jax.Array) -> jax.Array:
    """Shortest number of moves from each of `cells` int `[A]` to `target` int `[]` on the torus."""
    n = game.grid_size
    rows = jnp.abs(cells // n - target // n)
    cols = jnp.abs(cells % n - target % n)
    return jnp.minimum(rows, n - rows) + jnp.minimum(cols, n - cols)


def coin_distances(game: CoinGame, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Distances after each action: (to the own coin, to the other's coin), each int32 `[A]`.

    obs float `[*obs_shape]`: one seat's observation of `game`. Entry a is the torus distance from
    the cell that action a reaches to the coin, or `2n + 1` (more than any distance) when the
    observer sees no such coin.
    """
    planes = obs.reshape(game.num_cells, NUM_PLANES)
    cells = jnp.argmax(planes, axis=0).astype(jnp.int32)  # [4]: the cell of each plane's 1
    present = jnp.max(planes, axis=0) > 0
    reached = jnp.asarray(game.move_table, jnp.int32)[cells[SELF]]

    def distance(plane: int) -> jax.Array:
        return jnp.where(
            present[plane], _torus_distance(game, reached, cells[plane]), _unreachable(game)
        )

    return distance(OWN_COIN), distance(OTHER_COIN)


def greedy_action(game: CoinGame, obs: jax.Array) -> jax.Array:
    """`greedy`'s action int32 `[]` at one seat's obs `[*obs_shape]`: towards the nearest coin."""
    own, other = coin_distances(game, obs)
    return jnp.argmin(jnp.minimum(own, other)).astype(jnp.int32)


def cooperative_action(game: CoinGame, obs: jax.Array) -> jax.Array:
    """`cooperative`'s action int32 `[]` at one seat's obs `[*obs_shape]`: towards its own coin,
    never onto the other's coin (a move onto it scores above every other move)."""
    own, other = coin_distances(game, obs)
    return jnp.argmin(own + _unreachable(game) * (other == 0)).astype(jnp.int32)


def random_action(game: CoinGame, key: jax.Array) -> jax.Array:
    """`random`'s action int32 `[]`: uniform over the game's actions."""
    return jax.random.randint(key, (), 0, game.num_actions, dtype=jnp.int32)


def coin_strategy(name: str, game: CoinGame) -> StrategyFn:
    """The action function `(obs [*obs_shape], key) -> int32 []` of strategy `name` in `game`."""
    if name == "greedy":
        return lambda obs, key: greedy_action(game, obs)
    if name == "cooperative":
        return lambda obs, key: cooperative_action(game, obs)
    if name == "random":
        return lambda obs, key: random_action(game, key)
    raise ValueError(f"strategy must be one of {', '.join(COIN_STRATEGIES)}; got {name!r}")
