"""`coin_game`: rules on hand-made states, placement invariants, observations, scripted play and
the JaxMARL-compatible mode (spec `coin_game.md` §8)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compose_config
from hypothesis import given, settings
from hypothesis import strategies as st

from marl.envs import make
from marl.envs.coin_game import (
    NO_CELL,
    OTHER,
    OTHER_COIN,
    OWN_COIN,
    SELF,
    CoinGame,
    uniform_free_cell,
)
from marl.envs.coin_strategies import coin_strategy
from marl.envs.wrappers import AutoReset, EpisodeStatistics
from marl.eval.social_metrics import own_coin_fraction
from marl.run.experiment import build_env

RIGHT, LEFT, DOWN, UP, STAY = range(5)
TWO_COINS = CoinGame()
ONE_COIN = CoinGame(variant="one_coin")


@functools.cache
def step_fn(env):
    return jax.jit(env.step)


@functools.cache
def reset_many_fn(env):
    """Jitted: `reset` vmapped over keys `[K]`."""
    return jax.jit(jax.vmap(env.reset))


@functools.cache
def step_many_keys_fn(env):
    """Jitted: one `step` from one state with the same actions, vmapped over keys `[K]`."""
    return jax.jit(jax.vmap(env.step, in_axes=(0, None, None)))


def play(env, agents, coins, actions, t=0, key=0):
    """One step from a hand-made state; returns (obs, state, reward, done, info) as numpy."""
    state = env.make_state(agents, coins, t)
    out = step_fn(env)(jax.random.key(key), state, jnp.array(actions, jnp.int32))
    return jax.device_get(out)


def positions(env, cells):
    return [divmod(int(cell), env.grid_size) if cell != NO_CELL else None for cell in cells]


# --- rewards (§3, §4) -------------------------------------------------------------------------

# (case, agents, red coin, blue coin, actions, reward, own_pickups, other_pickups)
TWO_COIN_CASES = [
    ("nobody", ((1, 1), (2, 2)), (1, 2), (2, 0), (STAY, STAY), (0, 0), (0, 0), (0, 0)),
    ("0 takes own", ((1, 1), (2, 2)), (1, 2), (0, 0), (RIGHT, STAY), (1, 0), (1, 0), (0, 0)),
    ("0 takes other's", ((1, 1), (2, 2)), (0, 0), (1, 2), (RIGHT, STAY), (1, -2), (0, 0), (1, 0)),
    ("1 takes own", ((1, 1), (2, 2)), (0, 0), (2, 0), (STAY, RIGHT), (0, 1), (0, 1), (0, 0)),
    ("1 takes other's", ((1, 1), (2, 2)), (2, 0), (0, 0), (STAY, RIGHT), (-2, 1), (0, 0), (0, 1)),
    ("both take red", ((1, 0), (1, 2)), (1, 1), (0, 0), (RIGHT, LEFT), (-1, 1), (1, 0), (0, 1)),
    ("both take blue", ((1, 0), (1, 2)), (0, 0), (1, 1), (RIGHT, LEFT), (1, -1), (0, 1), (1, 0)),
    ("each takes own", ((1, 1), (2, 2)), (1, 2), (2, 0), (RIGHT, RIGHT), (1, 1), (1, 1), (0, 0)),
    (
        "each takes other's",
        ((1, 1), (2, 2)),
        (2, 0),
        (1, 2),
        (RIGHT, RIGHT),
        (-1, -1),
        (0, 0),
        (1, 1),
    ),
]


@pytest.mark.parametrize(
    "agents, red, blue, actions, reward, own, other",
    [case[1:] for case in TWO_COIN_CASES],
    ids=[case[0] for case in TWO_COIN_CASES],
)
def test_two_coins_reward_table(agents, red, blue, actions, reward, own, other):
    _, state, r, done, info = play(TWO_COINS, agents, (red, blue), actions)
    assert r.dtype == np.float32 and r.shape == (2,)
    np.testing.assert_array_equal(r, reward)
    np.testing.assert_array_equal(info["own_pickups"], own)
    np.testing.assert_array_equal(info["other_pickups"], other)
    assert info["own_pickups"].dtype == np.float32 and set(info) == {"own_pickups", "other_pickups"}
    assert not done and state.t == 1


def test_two_coins_payoff_matrix_columns_are_red_coin_blue_coin_and_penalty():
    env = CoinGame(payoff_matrix=((2, 3, -5), (7, 11, -13)))
    expected = {
        "0 takes own": (2, 0),
        "0 takes other's": (3, -13),
        "1 takes own": (0, 11),
        "1 takes other's": (-5, 7),
        "both take red": (2 - 5, 7),
        "each takes other's": (3 - 5, 7 - 13),
    }
    for name, agents, red, blue, actions, *_ in TWO_COIN_CASES:
        if name in expected:
            _, _, reward, _, _ = play(env, agents, (red, blue), actions)
            np.testing.assert_array_equal(reward, expected[name], err_msg=name)


# (case, owner, actions, reward, own_pickups, other_pickups); agents (1, 0) and (1, 2), coin (1, 1)
ONE_COIN_CASES = [
    ("nobody", 0, (UP, DOWN), (0, 0), (0, 0), (0, 0)),
    ("owner 0 takes it", 0, (RIGHT, UP), (1, 0), (1, 0), (0, 0)),
    ("1 takes 0's coin", 0, (UP, LEFT), (-2, 1), (0, 0), (0, 1)),
    ("both take 0's coin", 0, (RIGHT, LEFT), (-1, 1), (1, 0), (0, 1)),
    ("owner 1 takes it", 1, (UP, LEFT), (0, 1), (0, 1), (0, 0)),
    ("0 takes 1's coin", 1, (RIGHT, UP), (1, -2), (0, 0), (1, 0)),
    ("both take 1's coin", 1, (RIGHT, LEFT), (1, -1), (0, 1), (1, 0)),
]


@pytest.mark.parametrize(
    "owner, actions, reward, own, other",
    [case[1:] for case in ONE_COIN_CASES],
    ids=[case[0] for case in ONE_COIN_CASES],
)
def test_one_coin_reward_table_and_owner_switch(owner, actions, reward, own, other):
    coins = ((1, 1), None) if owner == 0 else (None, (1, 1))
    _, state, r, _, info = play(ONE_COIN, ((1, 0), (1, 2)), coins, actions)
    np.testing.assert_array_equal(r, reward)
    np.testing.assert_array_equal(info["own_pickups"], own)
    np.testing.assert_array_equal(info["other_pickups"], other)
    assert info["coin_owner"] == owner  # the owner at the start of the step
    picked = sum(own) + sum(other) > 0
    assert ONE_COIN.coin_owner(state) == (1 - owner if picked else owner)
    coin_cells = state.coin_cells.tolist()
    assert coin_cells.count(NO_CELL) == 1
    coin = positions(ONE_COIN, [max(coin_cells)])[0]
    if picked:
        assert coin not in positions(ONE_COIN, state.agent_cells)
    else:
        assert coin == (1, 1)


# --- movement (§2) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action, reached",
    [(RIGHT, (0, 1)), (LEFT, (0, 2)), (DOWN, (1, 0)), (UP, (2, 0)), (STAY, (0, 0))],
)
def test_actions_move_on_the_torus_and_agents_may_share_a_cell(action, reached):
    _, state, _, _, _ = play(TWO_COINS, ((0, 0), reached), ((2, 2), (1, 1)), (action, STAY))
    assert positions(TWO_COINS, state.agent_cells) == [reached, reached]


def test_one_coin_has_four_actions_and_two_coins_five():
    assert (TWO_COINS.num_actions, ONE_COIN.num_actions) == (5, 4)
    np.testing.assert_array_equal(ONE_COIN.move_table, TWO_COINS.move_table[:, :4])


def test_staying_on_a_coin_picks_it():
    """Only the JaxMARL placement can put a coin under an agent; the pickup rule is the same."""
    _, _, reward, _, info = play(TWO_COINS, ((0, 0), (2, 2)), ((0, 0), (1, 1)), (STAY, STAY))
    np.testing.assert_array_equal(reward, (1, 0))
    np.testing.assert_array_equal(info["own_pickups"], (1, 0))


def test_unpicked_coins_stay_and_episode_truncates_at_max_steps():
    env = CoinGame(max_steps=5)
    _, state, _, done, _ = play(env, ((0, 0), (2, 2)), ((1, 1), (0, 2)), (DOWN, UP), t=3)
    assert positions(env, state.coin_cells) == [(1, 1), (0, 2)] and state.t == 4 and not done
    _, state, _, done, _ = play(env, ((0, 0), (2, 2)), ((1, 1), (0, 2)), (DOWN, UP), t=4)
    assert done and state.t == 5


# --- placement (§3, §4) -----------------------------------------------------------------------


@pytest.mark.parametrize("excluded", [(0, 0, 0), (8, 0, 4), (3, 3, 3), (2, 5, 2), (1, 0, 0)])
def test_uniform_free_cell_hits_every_free_cell_equally_often(excluded):
    num_free = 9 - len(set(excluded))
    draws = 10 * num_free
    uniform = (jnp.arange(draws, dtype=jnp.float32) + 0.5) / draws
    cells = jax.vmap(
        lambda u: uniform_free_cell(u, tuple(jnp.int8(e) for e in excluded), num_cells=9)
    )(uniform)
    counts = np.bincount(np.asarray(cells), minlength=9)
    expected = [0 if cell in excluded else 10 for cell in range(9)]
    np.testing.assert_array_equal(counts, expected)


@functools.cache
def free_cell_fn(num_cells):
    return jax.jit(lambda u, e: uniform_free_cell(u, (e[0], e[1], e[2]), num_cells))


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(2, 11),
    data=st.data(),
    uniform=st.floats(0, 1, exclude_max=True, width=32),
)
def test_uniform_free_cell_never_returns_an_excluded_cell(n, data, uniform):
    excluded = data.draw(st.lists(st.integers(0, n * n - 1), min_size=3, max_size=3))
    cell = int(free_cell_fn(n * n)(jnp.float32(uniform), jnp.array(excluded, jnp.int8)))
    assert 0 <= cell < n * n and cell not in excluded


def test_respawn_on_a_2x2_torus_takes_the_only_free_cell():
    env = CoinGame(grid_size=2)
    # agent 0 takes the red coin at (0, 1); agent 1 stays on (1, 0); blue coin on (1, 1).
    state = env.make_state(((0, 0), (1, 0)), ((0, 1), (1, 1)))
    keys = jax.random.split(jax.random.key(0), 64)
    _, states, reward, _, _ = jax.device_get(
        step_many_keys_fn(env)(keys, state, jnp.array([RIGHT, STAY]))
    )
    np.testing.assert_array_equal(reward, np.tile([1, 0], (64, 1)))
    np.testing.assert_array_equal(states.coin_cells, np.tile([0, 3], (64, 1)))


def test_both_coins_picked_respawn_on_the_two_free_cells_in_both_orders():
    env = CoinGame(grid_size=2)
    state = env.make_state(((0, 0), (1, 0)), ((0, 1), (1, 1)))
    keys = jax.random.split(jax.random.key(1), 256)
    _, states, reward, _, _ = jax.device_get(
        step_many_keys_fn(env)(keys, state, jnp.array([RIGHT, RIGHT]))
    )
    np.testing.assert_array_equal(reward, np.tile([1, 1], (256, 1)))
    # agents now on cells 1 and 3; the coins take cells 0 and 2, each order about half the time.
    assert {tuple(c) for c in states.coin_cells.tolist()} == {(0, 2), (2, 0)}
    assert 0.4 < np.mean(states.coin_cells[:, 0] == 0) < 0.6


@functools.cache
def random_rollout_fn(env, num_envs, num_steps):
    """Jitted: `num_steps` uniform-random steps of `num_envs` auto-resetting envs from reset.

    Returns the states after reset and after every step (leading axis 1 + num_steps), rewards,
    dones and infos `[num_steps, num_envs, ...]`.
    """
    stepped = jax.vmap(AutoReset(env).step)

    def run(key):
        reset_key, key = jax.random.split(key)
        _, state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))

        def one_step(state, key):
            action_key, step_key = jax.random.split(key)
            actions = jax.random.randint(action_key, (num_envs, 2), 0, env.num_actions)
            _, state, reward, done, info = stepped(
                jax.random.split(step_key, num_envs), state, actions
            )
            return state, (state, reward, done, info)

        _, (states, reward, done, info) = jax.lax.scan(
            one_step, state, jax.random.split(key, num_steps)
        )
        states = jax.tree.map(
            lambda first, rest: jnp.concatenate([first[None], rest]), state, states
        )
        return states, reward, done, info

    return jax.jit(run)


def placement_run(variant, grid_size):
    """64 envs x 40 random steps with `max_steps` 5: respawns and 8 resets per env."""
    env = CoinGame(variant=variant, grid_size=grid_size, max_steps=5)
    return jax.device_get(random_rollout_fn(env, 64, 40)(jax.random.key(grid_size)))


@pytest.mark.parametrize("variant", ["two_coins", "one_coin"])
@pytest.mark.parametrize("grid_size", [2, 3])
def test_coins_never_lie_under_agents_or_on_each_other(variant, grid_size):
    states, _, done, _ = placement_run(variant, grid_size)
    assert done.sum() == 64 * 8  # the run went through resets as well as respawns
    agents, coins = states.agent_cells, states.coin_cells
    assert agents.min() >= 0 and agents.max() < grid_size**2
    for coin in (coins[..., 0], coins[..., 1]):
        assert not np.any((coin[..., None] == agents).any(-1) & (coin != NO_CELL))
    if variant == "two_coins":
        assert coins.min() >= 0 and np.all(coins[..., 0] != coins[..., 1])
    else:
        assert np.all((coins == NO_CELL).sum(-1) == 1) and coins.max() < grid_size**2


@pytest.mark.parametrize("variant", ["two_coins", "one_coin"])
def test_coins_move_and_owner_alternates_exactly_at_pickups(variant):
    states, _, done, info = placement_run(variant, 3)
    coins = states.coin_cells
    picked = (info["own_pickups"] + info["other_pickups"]).sum(-1) > 0
    within_episode = ~done  # after a last step the state is a fresh reset
    changed = np.any(coins[1:] != coins[:-1], axis=-1)
    assert picked[within_episode].sum() > 100
    np.testing.assert_array_equal(changed[within_episode], picked[within_episode])
    if variant == "one_coin":
        owner = (coins[..., 1] != NO_CELL).astype(int)
        np.testing.assert_array_equal(info["coin_owner"], owner[:-1])
        flipped = owner[1:] != owner[:-1]
        np.testing.assert_array_equal(flipped[within_episode], picked[within_episode])


# --- observations (§5) ------------------------------------------------------------------------


def planes_of(env, obs):
    """obs `[..., *obs_shape]` -> `[..., n, n, 4]` numpy."""
    return np.asarray(obs).reshape(
        *np.shape(obs)[: -len(env.obs_shape)], *((env.grid_size,) * 2), 4
    )


def test_observation_planes_of_a_hand_made_state():
    state = TWO_COINS.make_state(((0, 1), (2, 2)), ((1, 0), (0, 0)))
    obs = jax.jit(TWO_COINS._observe)(state)
    assert obs.shape == (2, 36) and obs.dtype == jnp.float32
    planes = planes_of(TWO_COINS, obs)
    expected = {0: [(0, 1), (2, 2), (1, 0), (0, 0)], 1: [(2, 2), (0, 1), (0, 0), (1, 0)]}
    for agent, cells in expected.items():
        for plane, (row, col) in zip((SELF, OTHER, OWN_COIN, OTHER_COIN), cells):
            assert planes[agent, :, :, plane].sum() == 1
            assert planes[agent, row, col, plane] == 1
    # flattened row-major over (row, col, channel)
    assert obs[0, (0 * 3 + 1) * 4 + SELF] == 1 and obs[0, (1 * 3 + 0) * 4 + OWN_COIN] == 1
    np.testing.assert_array_equal(TWO_COINS.global_state(state), planes[0])


def test_one_coin_shows_the_coin_as_own_or_other_by_owner():
    state = ONE_COIN.make_state(((0, 0), (2, 2)), (None, (1, 1)))
    planes = planes_of(ONE_COIN, ONE_COIN._observe(state))
    assert planes[0, 1, 1, OTHER_COIN] == 1 and planes[0, :, :, OWN_COIN].sum() == 0
    assert planes[1, 1, 1, OWN_COIN] == 1 and planes[1, :, :, OTHER_COIN].sum() == 0
    global_state = np.asarray(ONE_COIN.global_state(state))
    assert global_state.shape == (3, 3, 4) and global_state[1, 1, 3] == 1
    assert global_state[..., 2].sum() == 0


KEYS = jax.random.split(jax.random.key(3), 256)


@pytest.mark.parametrize("variant", ["two_coins", "one_coin"])
def test_agent_1_sees_agent_0s_view_with_roles_swapped(variant):
    env = CoinGame(variant=variant)
    obs, states = reset_many_fn(env)(KEYS)
    planes = planes_of(env, obs)
    assert planes.shape == (256, 2, 3, 3, 4)
    np.testing.assert_array_equal(planes[:, 0, :, :, SELF].sum((-1, -2)), 1)
    np.testing.assert_array_equal(planes[:, 0, :, :, OTHER].sum((-1, -2)), 1)
    coins = planes[:, 0][..., [OWN_COIN, OTHER_COIN]].sum((1, 2, 3))
    np.testing.assert_array_equal(coins, 2 if variant == "two_coins" else 1)
    swapped = planes[:, 0][..., [OTHER, SELF, OTHER_COIN, OWN_COIN]]
    np.testing.assert_array_equal(planes[:, 1], swapped)
    np.testing.assert_array_equal(jax.vmap(env.global_state)(states), planes[:, 0])


@pytest.mark.parametrize("grid_size", [3, 4, 5])
def test_egocentric_rolls_every_plane_to_put_self_at_the_centre(grid_size):
    allocentric = CoinGame(grid_size=grid_size)
    egocentric = CoinGame(grid_size=grid_size, egocentric=True)
    plain, states = jax.device_get(reset_many_fn(allocentric)(KEYS[:32]))
    ego, ego_states = jax.device_get(reset_many_fn(egocentric)(KEYS[:32]))
    np.testing.assert_array_equal(states.agent_cells, ego_states.agent_cells)
    plain, ego = planes_of(allocentric, plain), planes_of(egocentric, ego)
    centre = grid_size // 2
    np.testing.assert_array_equal(ego[:, :, centre, centre, SELF], 1)
    for index in range(plain.shape[0]):
        for agent in range(2):
            row, col = np.argwhere(plain[index, agent, :, :, SELF])[0]
            rolled = np.roll(plain[index, agent], (centre - row, centre - col), axis=(0, 1))
            np.testing.assert_array_equal(ego[index, agent], rolled)


def test_egocentric_hand_made_state_and_absent_coin():
    env = CoinGame(variant="one_coin", egocentric=True)
    # agent 0 at (0, 0) sees everything shifted by (+1, +1); the coin (owner 1) at (2, 2).
    state = env.make_state(((0, 0), (0, 2)), (None, (2, 2)))
    planes = planes_of(env, env._observe(state))
    assert planes[0, 1, 1, SELF] == 1 and planes[0, 1, 0, OTHER] == 1
    assert planes[0, 0, 0, OTHER_COIN] == 1 and planes[0, :, :, OWN_COIN].sum() == 0
    # agent 1 at (0, 2): shift (+1, -1); agent 0 at (1, 2), its own coin at (0, 1)
    assert planes[1, 1, 1, SELF] == 1 and planes[1, 1, 2, OTHER] == 1
    assert planes[1, 0, 1, OWN_COIN] == 1 and planes[1, :, :, OTHER_COIN].sum() == 0


def test_obs_shapes_follow_cnn_and_grid_size():
    assert TWO_COINS.obs_shape == (36,)
    assert CoinGame(grid_size=5).obs_shape == (100,)
    cnn = CoinGame(grid_size=4, cnn=True)
    assert cnn.obs_shape == (4, 4, 4)
    obs, state = cnn.reset(jax.random.key(0))
    assert obs.shape == (2, 4, 4, 4) and obs.dtype == jnp.float32
    flat = CoinGame(grid_size=4)._observe(state)
    np.testing.assert_array_equal(obs, flat.reshape(2, 4, 4, 4))


# --- scripted play (§6, §8) -------------------------------------------------------------------


@functools.cache
def scripted_totals_fn(env, num_envs, num_steps, policy):
    """Jitted: per-episode totals of rewards and pickups when both seats play the Coin Game
    strategy `policy` (`marl.envs.coin_strategies`) with EpisodeStatistics(AutoReset(env));
    returns (done, rewards, own, other) `[num_steps, num_envs, 2]` (totals valid where done)."""
    wrapped = EpisodeStatistics(AutoReset(env))
    strategy = jax.vmap(coin_strategy(policy, env))  # over the two seats

    def run(key):
        reset_key, key = jax.random.split(key)
        obs, state = jax.vmap(wrapped.reset)(jax.random.split(reset_key, num_envs))

        def one_step(carry, key):
            obs, state = carry
            keys = jax.random.split(key, (num_envs, 3))
            actions = jax.vmap(strategy)(obs, keys[:, :2])
            obs, state, reward, done, info = jax.vmap(wrapped.step)(keys[:, 2], state, actions)
            totals = info["episode_totals"]
            return (obs, state), (done, reward, totals["own_pickups"], totals["other_pickups"])

        return jax.lax.scan(one_step, (obs, state), jax.random.split(key, num_steps))[1]

    return jax.jit(run)


@pytest.mark.parametrize("variant", ["two_coins", "one_coin"])
def test_always_cooperate_pair_takes_only_own_coins(variant):
    env = CoinGame(variant=variant)
    done, reward, own, other = jax.device_get(
        scripted_totals_fn(env, 16, 3 * env.max_steps, "cooperative")(jax.random.key(0))
    )
    assert reward.min() >= 0 and reward.max() == 1
    own, other = own[done], other[done]  # [episodes, 2]
    assert own.shape == (48, 2) and own.sum() > 48
    fraction = np.asarray(own_coin_fraction(own[None], other[None]))  # one-step 'episodes'
    assert np.nanmean(fraction) == 1.0 and other.sum() == 0


@pytest.mark.parametrize("variant", ["two_coins", "one_coin"])
def test_random_pair_takes_own_coins_about_half_the_time(variant):
    env = CoinGame(variant=variant)
    done, _, own, other = jax.device_get(
        scripted_totals_fn(env, 128, 4 * env.max_steps, "random")(jax.random.key(1))
    )
    own, other = own[done], other[done]
    assert own.sum() + other.sum() > 1000
    fraction = np.asarray(own_coin_fraction(own[None], other[None]))  # one-step 'episodes'
    np.testing.assert_allclose(np.nanmean(fraction, axis=0), [0.5, 0.5], atol=0.06)
    np.testing.assert_allclose(own.sum() / (own.sum() + other.sum()), 0.5, atol=0.03)


# --- jaxmarl_compat (§7) ----------------------------------------------------------------------


def test_jaxmarl_compat_reset_draws_all_four_cells_independently():
    compat = CoinGame(jaxmarl_compat=True, max_steps=10)
    keys = jax.random.split(jax.random.key(0), 4000)
    for env, under_agent, shared in ((compat, 1 - (8 / 9) ** 2, 1 / 9), (TWO_COINS, 0.0, 0.0)):
        _, states = jax.device_get(reset_many_fn(env)(keys))
        coins, agents = states.coin_cells, states.agent_cells
        red_under_agent = (coins[:, :1] == agents).any(-1)
        np.testing.assert_allclose(red_under_agent.mean(), under_agent, atol=0.03)
        np.testing.assert_allclose((coins[:, 0] == coins[:, 1]).mean(), shared, atol=0.03)
        np.testing.assert_array_equal(states.t, 0)


def test_jaxmarl_compat_respawns_anywhere():
    env = CoinGame(grid_size=2, jaxmarl_compat=True)
    state = env.make_state(((0, 0), (1, 0)), ((0, 1), (1, 1)))
    keys = jax.random.split(jax.random.key(2), 2000)
    _, states, *_ = jax.device_get(step_many_keys_fn(env)(keys, state, jnp.array([RIGHT, STAY])))
    # under agent 0 (cell 1), agent 1 (cell 2), the blue coin (cell 3) or free (cell 0)
    counts = np.bincount(states.coin_cells[:, 0], minlength=4) / 2000
    np.testing.assert_allclose(counts, 0.25, atol=0.04)
    np.testing.assert_array_equal(states.coin_cells[:, 1], 3)


def test_jaxmarl_compat_last_step_pays_nothing_and_returns_a_reset():
    agents, coins, actions = ((1, 1), (2, 2)), ((1, 2), (2, 0)), (RIGHT, RIGHT)
    compat = CoinGame(jaxmarl_compat=True, max_steps=10)
    obs, state, reward, done, info = play(compat, agents, coins, actions, t=9)
    assert done and state.t == 0
    np.testing.assert_array_equal(reward, (0, 0))
    np.testing.assert_array_equal(info["own_pickups"], (1, 1))  # the pickups still happened
    np.testing.assert_array_equal(obs, compat._observe(state))
    # any step but the last pays as usual, and so does the default env on the last step
    _, state, reward, done, _ = play(compat, agents, coins, actions, t=8)
    assert not done and state.t == 9
    np.testing.assert_array_equal(reward, (1, 1))
    _, state, reward, done, _ = play(CoinGame(max_steps=10), agents, coins, actions, t=9)
    assert done and state.t == 10
    np.testing.assert_array_equal(reward, (1, 1))


# --- construction, config, render ---------------------------------------------------------------


@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"variant": "three_coins"}, "variant"),
        ({"grid_size": 1}, "grid_size"),
        ({"grid_size": 12}, "grid_size"),
        ({"grid_size": 3.0}, "grid_size"),
        ({"grid_size": True}, "grid_size"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": "16"}, "max_steps"),
        ({"egocentric": "yes"}, "egocentric"),
        ({"cnn": 2}, "cnn"),
        ({"jaxmarl_compat": None}, "jaxmarl_compat"),
        ({"payoff_matrix": ((1, 1), (1, 1))}, "payoff_matrix"),
        ({"payoff_matrix": ((1, 1, float("inf")), (1, 1, -2))}, "payoff_matrix"),
        ({"payoff_matrix": "cooperative"}, "payoff_matrix"),
        ({"variant": "one_coin", "payoff_matrix": ((1, 1, -3), (1, 1, -3))}, "payoff_matrix"),
        ({"variant": "one_coin", "jaxmarl_compat": True}, "jaxmarl_compat"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_them(params, parameter):
    with pytest.raises(ValueError, match=parameter):
        make("coin_game", **params)


def test_parameters_are_normalised_and_hashable():
    env = CoinGame(payoff_matrix=[[1, 1, -2], [1, 1, -2]], egocentric=np.bool_(True))
    assert env == CoinGame(egocentric=True) and hash(env) == hash(CoinGame(egocentric=True))
    assert env.payoff_matrix == ((1.0, 1.0, -2.0), (1.0, 1.0, -2.0))


def test_make_state_rejects_states_of_the_wrong_variant():
    with pytest.raises(ValueError, match="both coin"):
        TWO_COINS.make_state(((0, 0), (1, 1)), ((2, 2), None))
    with pytest.raises(ValueError, match="exactly one"):
        ONE_COIN.make_state(((0, 0), (1, 1)), ((2, 2), (0, 2)))
    with pytest.raises(ValueError, match="off the 3 x 3 grid"):
        TWO_COINS.make_state(((0, 3), (1, 1)), ((2, 2), (0, 2)))


def test_config_file_builds_the_default_env():
    cfg = compose_config(["env=coin_game"])
    assert build_env(cfg.env) == CoinGame()
    cfg = compose_config(["env=coin_game", "env.variant=one_coin", "env.egocentric=true"])
    assert build_env(cfg.env) == CoinGame(variant="one_coin", egocentric=True)


def test_render_draws_agents_and_coins_in_their_cells():
    state = TWO_COINS.make_state(((0, 0), (1, 2)), ((2, 1), (0, 2)))
    image = TWO_COINS.render(state)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    red, blue = (215, 40, 40), (40, 90, 215)
    assert tuple(image[16, 16]) == red and tuple(image[32 + 16, 64 + 16]) == blue
    assert tuple(image[64 + 16, 32 + 16]) == red and tuple(image[16, 64 + 16]) == blue
    assert tuple(image[64 + 4, 32 + 4]) == (235, 235, 235)  # a coin is smaller than a cell
