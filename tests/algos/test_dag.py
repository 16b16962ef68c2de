from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from marl.algos.dag import (
    DagNoise,
    DagProposer,
    fixed_order_dag,
    graph_statistics,
    greedy_permutation,
    hungarian_permutation,
    learned_dag,
    log_sinkhorn,
    open_ratio,
    sample_noise,
    sparsity_schedule,
    upper_triangular_mask,
    zero_noise,
)

batched_sample_noise = jax.jit(jax.vmap(sample_noise, in_axes=(0, None)), static_argnums=1)
batched_learned_dag = jax.jit(jax.vmap(learned_dag))
batched_greedy = jax.jit(jax.vmap(greedy_permutation))
batched_hungarian = jax.jit(jax.vmap(hungarian_permutation))
batched_fixed_order_dag = jax.jit(jax.vmap(fixed_order_dag))
jit_graph_statistics = jax.jit(graph_statistics, static_argnames="top_k")


def sample_inputs(seed: int, batch: int, n: int) -> tuple[jax.Array, jax.Array, DagNoise]:
    """Edge logits and order scores ~ N(0, 2^2) and fresh noise, each `[batch, n, n]` (numpy's
    generator: no JAX sampler to compile per shape)."""
    rng = np.random.default_rng(seed)
    edge_logits, order_scores = rng.normal(0.0, 2.0, (2, batch, n, n)).astype(np.float32)
    noise = DagNoise(
        edge=jnp.asarray(rng.logistic(size=(batch, n, n)), jnp.float32),
        order=jnp.asarray(rng.gumbel(size=(batch, n, n)), jnp.float32),
    )
    return jnp.asarray(edge_logits), jnp.asarray(order_scores), noise


def assert_permutation_matrices(perms: np.ndarray) -> None:
    assert np.isin(perms, [0.0, 1.0]).all()
    np.testing.assert_array_equal(perms.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(perms.sum(axis=-2), 1.0)


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_sampled_dags_are_acyclic_and_follow_their_order(n):
    edge_logits, order_scores, noise = sample_inputs(n, 1000, n)
    graphs, orders = map(np.asarray, batched_learned_dag(edge_logits, order_scores, noise))
    assert graphs.dtype == np.float32 and orders.dtype == np.int32
    assert np.isin(graphs, [0.0, 1.0]).all()
    np.testing.assert_array_equal(np.diagonal(graphs, axis1=1, axis2=2), 0.0)
    # default temperatures and noise scale: X~ = order_scores + order noise
    perms = np.asarray(batched_greedy(order_scores + noise.order))
    rank_mask = np.swapaxes(perms, 1, 2) @ upper_triangular_mask(n) @ perms
    assert (graphs <= rank_mask).all()
    np.testing.assert_array_equal(np.linalg.matrix_power(graphs, n), 0.0)
    np.testing.assert_array_equal(np.sort(orders, axis=1), np.broadcast_to(np.arange(n), (1000, n)))
    position = np.argsort(orders, axis=1)  # position[b, a] = rank of agent a
    backward = position[:, :, None] >= position[:, None, :]
    assert not (graphs.astype(bool) & backward).any()
    assert 0 < graphs.mean() < 1  # the samples are not all empty or all full


def test_greedy_permutation_is_always_a_permutation():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(2000, 6, 6)).astype(np.float32)
    ties = rng.integers(0, 3, (2000, 6, 6)).astype(np.float32)
    minus_inf = scores.copy()
    minus_inf[:, :3] = -np.inf
    for batch in (scores, ties, minus_inf):
        assert_permutation_matrices(np.asarray(batched_greedy(batch)))


def test_greedy_equals_hungarian_near_a_permutation():
    n, batch = 5, 200
    rng = np.random.default_rng(1)
    targets = np.stack([np.eye(n, dtype=np.float32)[rng.permutation(n)] for _ in range(batch)])
    scores = 10.0 * targets + rng.normal(0.0, 0.1, (batch, n, n)).astype(np.float32)
    greedy = np.asarray(batched_greedy(scores))
    assert_permutation_matrices(greedy)
    np.testing.assert_array_equal(greedy, np.asarray(batched_hungarian(scores)))
    np.testing.assert_array_equal(greedy, targets)


def test_log_sinkhorn_is_nearly_doubly_stochastic():
    scores = np.random.default_rng(2).normal(size=(64, 5, 5)).astype(np.float32)
    doubly = np.exp(np.asarray(jax.jit(jax.vmap(partial(log_sinkhorn, iters=20)))(scores)))
    np.testing.assert_allclose(doubly.sum(axis=-1), 1.0, atol=1e-3)
    np.testing.assert_allclose(doubly.sum(axis=-2), 1.0, atol=1e-3)


def test_straight_through_gradients_reach_both_heads():
    edge_logits, order_scores, noise = sample_inputs(3, 16, 4)
    weights = np.random.default_rng(4).normal(size=(16, 4, 4)).astype(np.float32)

    def weighted_graph_sum(edge_logits, order_scores):
        graphs, _ = jax.vmap(learned_dag)(edge_logits, order_scores, noise)
        return (weights * graphs).sum()

    grads = jax.jit(jax.grad(weighted_graph_sum, argnums=(0, 1)))(edge_logits, order_scores)
    for grad in map(np.asarray, grads):
        assert np.isfinite(grad).all()
        assert (grad != 0).any()


def test_open_ratio():
    np.testing.assert_allclose(open_ratio(jnp.asarray(upper_triangular_mask(4))), 1.0)
    np.testing.assert_allclose(open_ratio(jnp.zeros((4, 4))), 0.0)
    one_edge = jnp.zeros((3, 3)).at[0, 2].set(1.0)
    np.testing.assert_allclose(open_ratio(one_edge), 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(open_ratio(jnp.stack([one_edge, one_edge])), [1 / 3, 1 / 3])


def test_sparsity_schedule():
    schedule = jax.jit(
        partial(sparsity_schedule, num_updates=1000, num_decay=40, alpha=0.1, alpha_final=1.0)
    )
    updates = jnp.array([0, 399, 400, 550, 699, 700, 850, 1000], jnp.int32)
    thetas, alphas = jax.vmap(schedule)(updates)
    # decay from 400 to 700 in steps of 300 / 40 = 7.5 updates:
    # theta = 1 - floor((u - 400) / 7.5) / 40 for u >= 400, clipped to [0, 1].
    # 550: floor(150 / 7.5) = 20 -> 0.5; 699: floor(299 / 7.5) = 39 -> 0.025; 700: 40 -> 0.
    np.testing.assert_allclose(thetas, [1.0, 1.0, 1.0, 0.5, 0.025, 0.0, 0.0, 0.0], atol=1e-6)
    # alpha = 0.1 until 700, then 0.1 + 0.9 * (u - 700) / 300: 850 -> 0.55, 1000 -> 1.0.
    np.testing.assert_allclose(alphas, [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.55, 1.0], atol=1e-6)
    assert thetas.dtype == alphas.dtype == jnp.float32


def test_sample_noise_is_logistic_and_gumbel():
    n, batch = 4, 4000
    noise = batched_sample_noise(jax.random.split(jax.random.key(5), batch), n)
    assert noise.edge.shape == noise.order.shape == (batch, n, n)
    edge, order = np.asarray(noise.edge).ravel(), np.asarray(noise.order).ravel()
    # Logistic(0, 1): mean 0, variance pi^2 / 3; Gumbel(0, 1): mean Euler's gamma, variance pi^2 / 6
    # (3 standard errors of the mean; the samples of one graph are independent).
    assert abs(edge.mean()) < 3 * np.sqrt(np.pi**2 / 3 / edge.size)
    assert abs(order.mean() - np.euler_gamma) < 3 * np.sqrt(np.pi**2 / 6 / order.size)
    np.testing.assert_allclose(edge.var(), np.pi**2 / 3, rtol=0.05)
    np.testing.assert_allclose(order.var(), np.pi**2 / 6, rtol=0.05)
    zeros = zero_noise(n)
    np.testing.assert_array_equal(zeros.edge, np.zeros((n, n)))
    np.testing.assert_array_equal(zeros.order, np.zeros((n, n)))


def test_fixed_order_dag():
    n, batch, prob = 4, 4000, 0.3
    noise = batched_sample_noise(jax.random.split(jax.random.key(5), batch), n)
    mask = upper_triangular_mask(n)

    full, orders = batched_fixed_order_dag(jnp.full((batch, n, n), 1e9), noise)
    np.testing.assert_array_equal(full, np.broadcast_to(mask, (batch, n, n)))
    np.testing.assert_array_equal(orders, np.broadcast_to(np.arange(n), (batch, n)))

    logits = jnp.full((batch, n, n), np.log(prob / (1 - prob)))
    graphs = np.asarray(batched_fixed_order_dag(logits, noise)[0])
    freq = graphs.mean(axis=0)
    standard_error = np.sqrt(prob * (1 - prob) / batch)
    assert (np.abs(freq - prob)[mask == 1] < 3 * standard_error).all(), freq
    np.testing.assert_array_equal(freq[mask == 0], 0.0)
    np.testing.assert_array_equal(np.linalg.matrix_power(graphs, n), 0.0)


def test_graph_statistics_counts_distinct_graphs():
    a = np.zeros((3, 3), np.float32)
    a[0, 1] = 1.0
    b = a.copy()
    b[1, 2] = 1.0
    c = np.zeros((3, 3), np.float32)
    batch = np.stack([b, a, c, a, b, a, c, a, b, a])  # 5 A, 3 B, 2 C
    stats = jit_graph_statistics(jnp.asarray(batch))
    expected_freq = np.zeros((3, 3))
    expected_freq[0, 1], expected_freq[1, 2] = 0.8, 0.3
    np.testing.assert_allclose(stats["edge_freq"], expected_freq, atol=1e-6)
    np.testing.assert_allclose(stats["open_ratio"], (5 / 3 + 3 * 2 / 3) / 10, atol=1e-6)
    assert stats["distinct_graphs"] == 3.0
    np.testing.assert_array_equal(stats["top_graphs"], np.stack([a, b, c]))
    np.testing.assert_allclose(stats["top_graph_share"], [0.5, 0.3, 0.2], atol=1e-6)


def test_graph_statistics_pads_when_few_graphs_are_distinct():
    a = np.asarray(upper_triangular_mask(3))
    stats = jit_graph_statistics(jnp.asarray(np.stack([a] * 4)), top_k=3)
    assert stats["distinct_graphs"] == 1.0
    np.testing.assert_array_equal(
        stats["top_graphs"], np.stack([a, np.zeros_like(a), np.zeros_like(a)])
    )
    np.testing.assert_allclose(stats["top_graph_share"], [1.0, 0.0, 0.0])


def test_graph_statistics_with_ten_agents():
    # x and y differ in edge 0 -> 1 (flat bit 1, first 30-bit word); x and z in edge 8 -> 9 (flat
    # bit 89, third word).
    x = np.zeros((10, 10), np.float32)
    x[8, 9] = 1.0
    y = x.copy()
    y[0, 1] = 1.0
    z = np.zeros((10, 10), np.float32)
    stats = jit_graph_statistics(jnp.asarray(np.stack([y, x, z, x, y, x])))
    assert stats["distinct_graphs"] == 3.0
    np.testing.assert_array_equal(stats["top_graphs"], np.stack([x, y, z]))
    np.testing.assert_allclose(stats["top_graph_share"], [3 / 6, 2 / 6, 1 / 6], atol=1e-6)


@pytest.mark.parametrize("obs_shape", [(5,), (4, 4, 2)])
def test_dag_proposer_shapes(obs_shape):
    batch, n = 7, 3
    obs = np.random.default_rng(6).uniform(size=(batch, n, *obs_shape)).astype(np.float32)
    proposer = DagProposer(num_agents=n, hidden_size=16)
    params = jax.jit(proposer.init)(jax.random.key(7), obs)
    assert set(params["params"]) == {"phi", "rho", "edge_head", "order_head"}
    edge_logits, order_scores = jax.jit(proposer.apply)(params, obs)
    assert edge_logits.shape == order_scores.shape == (batch, n, n)
    assert (order_scores <= 0).all()
    assert np.isfinite(edge_logits).all()


def test_learned_dag_with_zero_noise_is_deterministic():
    n = 5
    edge_logits, order_scores, _ = sample_inputs(8, 1, n)
    edge_logits, order_scores = edge_logits[0], order_scores[0]
    first = learned_dag(edge_logits, order_scores, zero_noise(n))
    second = jax.jit(learned_dag)(edge_logits, order_scores, zero_noise(n))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    # without noise: edges where the logit is positive, ranks from the scores alone
    perm = np.asarray(greedy_permutation(order_scores))
    expected = (np.asarray(edge_logits) > 0) * (perm.T @ upper_triangular_mask(n) @ perm)
    np.testing.assert_array_equal(first[0], expected)
    np.testing.assert_array_equal(first[1], perm.argmax(axis=1))


def test_learned_dag_hungarian_and_bad_perm_hard():
    edge_logits, order_scores, noise = sample_inputs(9, 1, 4)
    args = edge_logits[0], order_scores[0], jax.tree.map(lambda x: x[0], noise)
    graph, order = learned_dag(*args, perm_hard="hungarian")
    assert np.isin(graph, [0.0, 1.0]).all()
    position = np.argsort(order)
    assert not (np.asarray(graph).astype(bool) & (position[:, None] >= position[None, :])).any()
    with pytest.raises(ValueError, match="perm_hard"):
        learned_dag(*args, perm_hard="sort")
