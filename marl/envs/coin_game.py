"""Coin Game: a two-player social dilemma on a small torus (spec `coin_game.md`).

Agents 0 ("red") and 1 ("blue") move on an n x n torus; stepping onto a coin picks it up and pays
the picker, but taking the other player's coin costs its owner more. Two variants:

* `two_coins` (M-FOS / pax / JaxMARL): a red coin owned by agent 0 and a blue coin owned by
  agent 1, both always on the board; rewards from `payoff_matrix` `[2, 3]` (row = agent; columns:
  picking the red coin, picking the blue coin, penalty when the other agent takes this agent's
  coin). Actions 0-4: right, left, down, up, stay.
* `one_coin` (LOQA / Advantage Alignment): one coin whose owner alternates at every pickup;
  +1 to each picker, −2 to the owner if the other agent picked it. Actions 0-3: right, left,
  down, up.

Cells are flat indices row·n + col (row 0 on top). The state keeps the cell of each agent and the
cell of the coin each agent owns (`NO_CELL` where it owns none: the non-owner in `one_coin`), so
the rules, rewards and observations of both variants are one computation. A step makes one
random draw (two uniforms for the respawn cells, four more for the reset in `jaxmarl_compat`), a
reset one draw of four; a free cell is chosen by its rank among the cells not excluded, in O(1)
without masks (`uniform_free_cell`).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from marl.envs.base import Env, Info
from marl.envs.validation import is_int

VARIANTS: tuple[str, ...] = ("two_coins", "one_coin")
DEFAULT_PAYOFF_MATRIX: tuple[tuple[float, ...], ...] = ((1.0, 1.0, -2.0), (1.0, 1.0, -2.0))

# (row, col) displacement of each action, JaxMARL's vectors; `one_coin` uses the first four.
MOVES = np.array([[0, 1], [0, -1], [1, 0], [-1, 0], [0, 0]], np.int32)

# Cell of a coin that does not exist (the non-owner's coin in `one_coin`); matches no cell.
NO_CELL = -1
# Cells are int8, so n² must stay below 128.
MAX_GRID_SIZE = 11

# Observation planes, channel-last.
SELF, OTHER, OWN_COIN, OTHER_COIN = range(4)
NUM_PLANES = 4

# Rows of `[agent 0, agent 1, coin of 0, coin of 1]` in each observer's plane order.
_VIEW_INDEX = np.array([[0, 1, 2, 3], [1, 0, 3, 2]], np.int32)

# Render: pixels per cell and colours.
CELL_PIXELS = 32
_BACKGROUND = (235, 235, 235)
_GRID_LINE = (180, 180, 180)
_AGENT_COLOURS = ((215, 40, 40), (40, 90, 215))
_COIN_RING = (255, 255, 255)


@struct.dataclass
class CoinGameState:
    """agent_cells int8 `[2]`: cells (row·n + col) of agents 0 and 1;
    coin_cells int8 `[2]`: cell of the coin owned by agent j (`NO_CELL` if agent j owns none,
    i.e. the non-owner in `one_coin`); t int32 `[]`: steps taken in the episode.
    """

    agent_cells: jax.Array
    coin_cells: jax.Array
    t: jax.Array


def uniform_free_cell(
    uniform: jax.Array, excluded: tuple[jax.Array, jax.Array, jax.Array], num_cells: int
) -> jax.Array:
    """A cell drawn uniformly among `num_cells` cells minus `excluded`, from `uniform` in [0, 1).

    `excluded`: three cells (int scalars, repeats allowed) that must not be drawn; at least one
    cell must remain. The three are sorted with a compare-swap network, the number m of distinct
    ones gives a rank r uniform in [0, num_cells − m), and r is pushed past every excluded cell at
    or below it in ascending order, which lands on the r-th free cell. Returns a scalar of the
    dtype of `excluded`.
    """
    first, second, third = excluded
    low, high = jnp.minimum(first, second), jnp.maximum(first, second)
    smallest, rest = jnp.minimum(low, third), jnp.maximum(low, third)
    middle, largest = jnp.minimum(rest, high), jnp.maximum(rest, high)
    middle_is_new = middle != smallest
    largest_is_new = largest != middle
    num_free = num_cells - 1 - middle_is_new.astype(jnp.int32) - largest_is_new.astype(jnp.int32)
    rank = jnp.minimum((uniform * num_free).astype(jnp.int32), num_free - 1)
    rank = rank + (rank >= smallest)
    rank = rank + (middle_is_new & (rank >= middle))
    rank = rank + (largest_is_new & (rank >= largest))
    return rank.astype(first.dtype)


@dataclasses.dataclass(frozen=True)
class CoinGame(Env):
    """Coin Game; obs float32 `[2, 4n²]` (`[2, n, n, 4]` with `cnn`), global state `[n, n, 4]`.

    variant: `two_coins` or `one_coin`; grid_size: n >= 2 (torus side); max_steps: episode
    length >= 1; egocentric: roll every plane so that the observer sits at (n // 2, n // 2);
    cnn: keep observations as `[n, n, 4]`; payoff_matrix: `two_coins` rewards `[2, 3]` in
    JaxMARL's format (a nested tuple; lists are converted); jaxmarl_compat: `two_coins` only,
    JaxMARL/pax placement (i.i.d. uniform cells at reset, coins respawn anywhere) and a last step
    with zero reward that returns a reset observation and state.
    """

    variant: str = "two_coins"
    grid_size: int = 3
    max_steps: int = 16
    egocentric: bool = False
    cnn: bool = False
    payoff_matrix: tuple = DEFAULT_PAYOFF_MATRIX
    jaxmarl_compat: bool = False

    # int8 [n², A]: cell after each action; int32 [n², n² + 1]: cell as seen egocentrically from
    # each observer cell (column n², reached by index NO_CELL = -1, keeps NO_CELL);
    # float32 [2, 3]: the payoff matrix.
    move_table: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    egocentric_table: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)
    payoff_table: np.ndarray = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}; got {self.variant!r}")
        if not is_int(self.grid_size) or not 2 <= self.grid_size <= MAX_GRID_SIZE:
            raise ValueError(
                f"grid_size must be an integer from 2 to {MAX_GRID_SIZE}; got {self.grid_size!r}"
            )
        if not is_int(self.max_steps) or self.max_steps < 1:
            raise ValueError(f"max_steps must be an integer >= 1; got {self.max_steps!r}")
        for name in ("egocentric", "cnn", "jaxmarl_compat"):
            value = getattr(self, name)
            if value not in (True, False):
                raise ValueError(f"{name} must be true or false; got {value!r}")
            object.__setattr__(self, name, bool(value))
        payoff = _payoff_matrix(self.payoff_matrix)
        if self.variant == "one_coin":
            if not np.array_equal(payoff, DEFAULT_PAYOFF_MATRIX):
                raise ValueError(
                    "payoff_matrix applies to variant two_coins only; one_coin pays +1 per "
                    "pickup and -2 to the owner of a taken coin"
                )
            if self.jaxmarl_compat:
                raise ValueError("jaxmarl_compat must be false with variant one_coin")
        object.__setattr__(self, "grid_size", int(self.grid_size))
        object.__setattr__(self, "max_steps", int(self.max_steps))
        object.__setattr__(self, "payoff_matrix", tuple(tuple(map(float, row)) for row in payoff))
        object.__setattr__(self, "payoff_table", payoff.astype(np.float32))
        object.__setattr__(self, "move_table", _move_table(self.grid_size, self.num_actions))
        object.__setattr__(self, "egocentric_table", _egocentric_table(self.grid_size))

    @property
    def num_agents(self) -> int:
        return 2

    @property
    def num_actions(self) -> int:
        return 5 if self.variant == "two_coins" else 4

    @property
    def num_cells(self) -> int:
        """n²."""
        return self.grid_size**2

    @property
    def obs_shape(self) -> tuple[int, ...]:
        if self.cnn:
            return (self.grid_size, self.grid_size, NUM_PLANES)
        return (NUM_PLANES * self.num_cells,)

    def coin_owner(self, state: CoinGameState) -> jax.Array:
        """`one_coin`: int32 `[]`, the agent that owns the coin."""
        return (state.coin_cells[1] != NO_CELL).astype(jnp.int32)

    def make_state(self, agents, coins, t: int = 0) -> CoinGameState:
        """A state from positions, for scripted play and tests (not jittable).

        agents: ((row, col) of agent 0, (row, col) of agent 1); coins: position of the coin owned
        by agent 0 and by agent 1, each (row, col) or None (`two_coins`: both given; `one_coin`:
        exactly one, the owner's); t: steps already taken.
        """
        n = self.grid_size
        if len(agents) != 2 or len(coins) != 2:
            raise ValueError("agents and coins must each hold two entries")
        num_given = sum(coin is not None for coin in coins)
        if self.variant == "two_coins" and num_given != 2:
            raise ValueError(f"two_coins needs both coin positions; got {coins!r}")
        if self.variant == "one_coin" and num_given != 1:
            raise ValueError(
                f"one_coin needs exactly one coin position, the owner's; got {coins!r}"
            )

        def cell(position) -> int:
            if position is None:
                return NO_CELL
            row, col = position
            if not (0 <= row < n and 0 <= col < n):
                raise ValueError(f"position {position!r} is off the {n} x {n} grid")
            return row * n + col

        return CoinGameState(
            agent_cells=jnp.array([cell(p) for p in agents], jnp.int8),
            coin_cells=jnp.array([cell(p) for p in coins], jnp.int8),
            t=jnp.asarray(t, jnp.int32),
        )

    def _initial_state(self, uniform: jax.Array) -> CoinGameState:
        """Reset state from `uniform` float32 `[4]` in [0, 1)."""
        cells = (uniform * self.num_cells).astype(jnp.int8)
        agents = cells[:2]
        if self.jaxmarl_compat:
            coins = cells[2:]
        elif self.variant == "two_coins":
            red = uniform_free_cell(uniform[2], (agents[0], agents[1], agents[1]), self.num_cells)
            blue = uniform_free_cell(uniform[3], (agents[0], agents[1], red), self.num_cells)
            coins = jnp.stack([red, blue])
        else:
            coin = uniform_free_cell(uniform[2], (agents[0], agents[1], agents[1]), self.num_cells)
            owner = (uniform[3] < 0.5).astype(jnp.int32)
            coins = jnp.where(jnp.arange(2) == owner, coin, jnp.int8(NO_CELL))
        return CoinGameState(agent_cells=agents, coin_cells=coins, t=jnp.zeros((), jnp.int32))

    def _views(self, state: CoinGameState) -> jax.Array:
        """int32 `[2, 4]`: cells of (self, other, own coin, other coin) for each observer."""
        cells = jnp.concatenate([state.agent_cells, state.coin_cells]).astype(jnp.int32)
        views = cells[_VIEW_INDEX]
        if self.egocentric:
            views = jnp.asarray(self.egocentric_table)[views[:, :1], views]
        return views

    def _planes(self, cells: jax.Array) -> jax.Array:
        """float32 `[..., n², 4]`: one-hot planes of `cells` int32 `[..., 4]` (NO_CELL: empty).

        One comparison per plane, stacked last: XLA on CPU runs this about 1.5x faster than a
        single broadcast comparison of `[..., 1, 4]` cells against a `[n², 1]` grid.
        """
        grid = jnp.arange(self.num_cells, dtype=cells.dtype)
        planes = [(cells[..., plane, None] == grid).astype(jnp.float32) for plane in range(4)]
        return jnp.stack(planes, axis=-1)

    def _observe(self, state: CoinGameState) -> jax.Array:
        """obs float32 `[2, *obs_shape]`."""
        return self._planes(self._views(state)).reshape(2, *self.obs_shape)

    def reset(self, key: jax.Array) -> tuple[jax.Array, CoinGameState]:
        """Returns obs float32 `[2, *obs_shape]` and a fresh state (one draw of 4 uniforms)."""
        state = self._initial_state(jax.random.uniform(key, (4,)))
        return self._observe(state), state

    def step(
        self, key: jax.Array, state: CoinGameState, actions: jax.Array
    ) -> tuple[jax.Array, CoinGameState, jax.Array, jax.Array, Info]:
        """Moves both agents by `actions` int32 `[2]`, pays pickups, respawns picked coins.

        Reward float32 `[2]`. Info: `own_pickups` and `other_pickups` float32 `[2]` (agent i
        picked its own / the other's coin); `one_coin` adds `coin_owner` int32 `[]`, the owner at
        the start of the step (whose coin this step's pickups took).
        """
        uniform = jax.random.uniform(key, (6 if self.jaxmarl_compat else 2,))
        agents = jnp.asarray(self.move_table)[state.agent_cells, actions]
        # picked[i, j]: agent i's new cell holds the coin owned by agent j.
        picked = agents[:, None] == state.coin_cells[None, :]
        taken_from = jnp.stack([picked[1, 0], picked[0, 1]])  # the other agent took i's coin
        payoff = jnp.asarray(self.payoff_table)
        reward = jnp.sum(jnp.where(picked, payoff[:, :2], 0.0), axis=1)
        reward = reward + jnp.where(taken_from, payoff[:, 2], 0.0)
        if self.variant == "two_coins":
            coins = self._respawn_two_coins(uniform[:2], agents, state.coin_cells, picked.any(0))
        else:
            coins = self._respawn_one_coin(uniform[0], agents, state.coin_cells, picked.any())
        t = state.t + 1
        done = t >= self.max_steps
        next_state = CoinGameState(agent_cells=agents, coin_cells=coins, t=t)
        if self.jaxmarl_compat:  # JaxMARL's inner-episode end: reset state, zero reward
            restart = self._initial_state(uniform[2:])
            next_state = jax.tree.map(lambda a, b: jnp.where(done, a, b), restart, next_state)
            reward = jnp.where(done, 0.0, reward)
        info = {
            "own_pickups": jnp.diagonal(picked).astype(jnp.float32),
            "other_pickups": jnp.stack([picked[0, 1], picked[1, 0]]).astype(jnp.float32),
        }
        if self.variant == "one_coin":
            info["coin_owner"] = self.coin_owner(state)
        return self._observe(next_state), next_state, reward, done, info

    def _respawn_two_coins(
        self, uniform: jax.Array, agents: jax.Array, coins: jax.Array, picked: jax.Array
    ) -> jax.Array:
        """Coin cells int8 `[2]` after the step; `picked` bool `[2]` per coin."""
        if self.jaxmarl_compat:
            anywhere = (uniform * self.num_cells).astype(coins.dtype)
            return jnp.where(picked, anywhere, coins)
        # The red coin avoids the agents and the blue coin's old cell (under an agent if picked);
        # the blue coin avoids the agents and the red coin's new cell.
        red = uniform_free_cell(uniform[0], (agents[0], agents[1], coins[1]), self.num_cells)
        red = jnp.where(picked[0], red, coins[0])
        blue = uniform_free_cell(uniform[1], (agents[0], agents[1], red), self.num_cells)
        blue = jnp.where(picked[1], blue, coins[1])
        return jnp.stack([red, blue])

    def _respawn_one_coin(
        self, uniform: jax.Array, agents: jax.Array, coins: jax.Array, picked: jax.Array
    ) -> jax.Array:
        """Coin cells int8 `[2]` after the step: after a pickup the coin moves, owner alternates."""
        owner = (coins[1] != NO_CELL).astype(jnp.int32)
        coin = jnp.max(coins)
        new_coin = uniform_free_cell(uniform, (agents[0], agents[1], agents[1]), self.num_cells)
        coin = jnp.where(picked, new_coin, coin)
        owner = jnp.where(picked, 1 - owner, owner)
        return jnp.where(jnp.arange(2) == owner, coin, jnp.int8(NO_CELL))

    def global_state(self, state: CoinGameState) -> jax.Array:
        """Agent 0's allocentric planes float32 `[n, n, 4]` (agent 0, agent 1, coin of 0, of 1)."""
        cells = jnp.concatenate([state.agent_cells, state.coin_cells]).astype(jnp.int32)
        n = self.grid_size
        return self._planes(cells).reshape(n, n, NUM_PLANES)

    def render(self, state: CoinGameState) -> np.ndarray:
        """uint8 RGB `[32n, 32n, 3]`: agents as red/blue squares, coins as smaller ringed discs."""
        n, size = self.grid_size, CELL_PIXELS
        image = np.full((n * size, n * size, 3), _BACKGROUND, np.uint8)
        image[::size, :] = _GRID_LINE
        image[:, ::size] = _GRID_LINE
        agents = np.asarray(state.agent_cells).tolist()
        for agent, cell in enumerate(agents):
            row, col = divmod(cell, n)
            top, left = row * size + 3, col * size + 3
            width = size - 6
            if agents[0] == agents[1]:  # shared cell: agent 0 left half, agent 1 right half
                width //= 2
                left += agent * width
            image[top : top + size - 6, left : left + width] = _AGENT_COLOURS[agent]
        coins = [int(cell) for cell in np.asarray(state.coin_cells)]
        yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
        for owner, cell in enumerate(coins):
            if cell == NO_CELL:
                continue
            row, col = divmod(cell, n)
            shift = (owner - 0.5) * size / 3 if coins[0] == coins[1] else 0.0
            distance = np.hypot(yy, xx - shift)
            block = image[row * size : (row + 1) * size, col * size : (col + 1) * size]
            block[distance <= size / 4 + 2] = _COIN_RING
            block[distance <= size / 4] = _AGENT_COLOURS[owner]
        return image


def _payoff_matrix(payoff) -> np.ndarray:
    """Validates `payoff_matrix` (nested sequence `[2, 3]` of finite numbers) as float64."""
    try:
        table = np.array(payoff, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"payoff_matrix must be a 2 x 3 nested sequence of numbers; got {payoff!r}"
        ) from error
    if table.shape != (2, 3):
        raise ValueError(f"payoff_matrix must have shape (2, 3); got shape {table.shape}")
    if not all(math.isfinite(x) for x in table.flat):
        raise ValueError("payoff_matrix must contain only finite numbers")
    return table


def _move_table(n: int, num_actions: int) -> np.ndarray:
    """int8 `[n², num_actions]`: the cell reached from each cell by each action, on the torus."""
    rows, cols = np.divmod(np.arange(n * n), n)
    moves = MOVES[:num_actions]
    next_rows = (rows[:, None] + moves[None, :, 0]) % n
    next_cols = (cols[:, None] + moves[None, :, 1]) % n
    return (next_rows * n + next_cols).astype(np.int8)


def _egocentric_table(n: int) -> np.ndarray:
    """int32 `[n², n² + 1]`: cell c seen by an observer at cell o, rolled so o is at the centre.

    Column n² holds NO_CELL, so that indexing with NO_CELL (-1) keeps an absent coin absent.
    """
    rows, cols = np.divmod(np.arange(n * n), n)
    centre = n // 2
    seen_rows = (rows[None, :] - rows[:, None] + centre) % n
    seen_cols = (cols[None, :] - cols[:, None] + centre) % n
    table = np.full((n * n, n * n + 1), NO_CELL, np.int32)
    table[:, : n * n] = seen_rows * n + seen_cols
    return table
