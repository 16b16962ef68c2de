"""Sampling acyclic graphs over agents: the DAG of the Bayesian-network policy (`algo=bnac`).

Conventions: adjacency `G[j, i] = 1` iff agent j is a parent of agent i (row parent, column child).
A permutation matrix `P` has rows = ranks and columns = nodes (`P[r, a] = 1`: node a sits at rank
r). `M` is the strictly upper-triangular mask (`M[r, s] = 1` iff r < s), so `(P^T M P)[a, b] = 1`
iff rank(a) < rank(b), and `G = U * (P^T M P)` is acyclic for any edge matrix `U`.

Source: Chen & Zhang, ICML 2023 (`dchen48/BNPG`, `probabilistic_dag.py`), whose sampler follows
Charpentier et al., Differentiable DAG Sampling, ICLR 2022. The hard permutation is found greedily
(jittable) instead of by the reference's Hungarian solver; `hungarian_permutation` keeps the
latter for parity tests.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from flax import struct
from jax import lax

from marl.networks import MLP

PERM_HARD = ("greedy", "hungarian")


def upper_triangular_mask(num_agents: int) -> np.ndarray:
    """float32 `[n, n]` with `M[j, i] = 1` iff j < i."""
    return np.triu(np.ones((num_agents, num_agents), np.float32), 1)


@struct.dataclass
class DagNoise:
    """The noise behind one or more sampled graphs (stored while acting, reused in the update)."""

    edge: jax.Array  # [..., n, n] Logistic(0, 1), the law of g - g' for iid Gumbels g, g'
    order: jax.Array  # [..., n, n] Gumbel(0, 1)


def sample_noise(key: jax.Array, num_agents: int) -> DagNoise:
    """Fresh noise for one graph: `edge` and `order` of shape `[n, n]`."""
    edge_key, order_key = jax.random.split(key)
    shape = (num_agents, num_agents)
    return DagNoise(jax.random.logistic(edge_key, shape), jax.random.gumbel(order_key, shape))


def zero_noise(num_agents: int) -> DagNoise:
    """All-zero noise: the deterministic (evaluation) graph."""
    zeros = jnp.zeros((num_agents, num_agents), jnp.float32)
    return DagNoise(zeros, zeros)


def log_sinkhorn(scores: jax.Array, iters: int) -> jax.Array:
    """`[n, n]` -> log of a (nearly) doubly-stochastic `[n, n]`: `iters` rounds of row, then
    column log-sum-exp normalisation."""

    def normalise(_, x):
        x = x - jax.nn.logsumexp(x, axis=1, keepdims=True)
        return x - jax.nn.logsumexp(x, axis=0, keepdims=True)

    return lax.fori_loop(0, iters, normalise, scores)


def greedy_permutation(scores: jax.Array) -> jax.Array:
    """`[n, n]` -> float32 permutation matrix `[n, n]`: n rounds of "take the largest remaining
    entry, then exclude its row and column"."""
    n = scores.shape[0]
    # -inf scores become the lowest finite value, so a free entry always beats an excluded one.
    finite = jnp.maximum(scores, jnp.finfo(scores.dtype).min)

    def take_largest(_, carry):
        perm, free_rows, free_cols = carry
        free = free_rows[:, None] & free_cols[None, :]
        row, col = jnp.divmod(jnp.argmax(jnp.where(free, finite, -jnp.inf)), n)
        return (
            perm.at[row, col].set(1.0),
            free_rows.at[row].set(False),
            free_cols.at[col].set(False),
        )

    init = (jnp.zeros((n, n), jnp.float32), jnp.ones(n, bool), jnp.ones(n, bool))
    return lax.fori_loop(0, n, take_largest, init)[0]


def _assignment(scores: np.ndarray) -> np.ndarray:
    rows, cols = scipy.optimize.linear_sum_assignment(scores, maximize=True)
    perm = np.zeros(scores.shape, np.float32)
    perm[rows, cols] = 1.0
    return perm


def hungarian_permutation(scores: jax.Array) -> jax.Array:
    """`[n, n]` -> float32 permutation matrix maximising `<P, scores>` exactly (scipy on the host,
    through `jax.pure_callback`; for CPU parity tests)."""
    result = jax.ShapeDtypeStruct(scores.shape, jnp.float32)
    return jax.pure_callback(_assignment, result, scores, vmap_method="sequential")


def _straight_through(hard: jax.Array, soft: jax.Array) -> jax.Array:
    """Forward value exactly `hard` (soft - soft == 0 in float), gradient of `soft`."""
    return hard + (soft - lax.stop_gradient(soft))


def learned_dag(
    edge_logits: jax.Array,
    order_scores: jax.Array,
    noise: DagNoise,
    *,
    edge_temp: float = 1.0,
    perm_temp: float = 1.0,
    perm_noise: float = 1.0,
    sinkhorn_iters: int = 20,
    perm_hard: str = "greedy",
) -> tuple[jax.Array, jax.Array]:
    """One sampled DAG (callers vmap over graphs).

    Input: `edge_logits`, `order_scores` `[n, n]` (order scores already log-sigmoid outputs), and
    the graph's `noise`. Output: `G` float32 `[n, n]`, exactly 0/1 in the forward pass with
    straight-through gradients to both inputs, and `order` int32 `[n]`, the agent at each rank
    (a topological order of `G`).
    """
    z = edge_logits + noise.edge
    edges = _straight_through((z > 0).astype(jnp.float32), jax.nn.sigmoid(z / edge_temp))

    scores = (order_scores + perm_noise * noise.order) / perm_temp
    if perm_hard == "greedy":
        perm_hard_matrix = greedy_permutation(scores)
    elif perm_hard == "hungarian":
        perm_hard_matrix = hungarian_permutation(scores)
    else:
        raise ValueError(f"perm_hard must be one of {', '.join(PERM_HARD)}; got {perm_hard!r}")
    perm = _straight_through(perm_hard_matrix, jnp.exp(log_sinkhorn(scores, sinkhorn_iters)))

    mask = upper_triangular_mask(edge_logits.shape[0])
    graph = edges * (perm.T @ mask @ perm)
    return graph, jnp.argmax(perm_hard_matrix, axis=1).astype(jnp.int32)


def fixed_order_dag(edge_logits: jax.Array, noise: DagNoise) -> tuple[jax.Array, jax.Array]:
    """Graph over the identity order (`dag=full`: huge logits; `dag=random`: logit(edge_prob)).

    Input: `edge_logits` `[n, n]`, `noise`. Output: `G = (edge_logits + noise.edge > 0) * M`
    float32 `[n, n]` (no gradient) and `order = arange(n)` int32.
    """
    n = edge_logits.shape[0]
    graph = (edge_logits + noise.edge > 0).astype(jnp.float32) * upper_triangular_mask(n)
    return graph, jnp.arange(n, dtype=jnp.int32)


def open_ratio(graph: jax.Array) -> jax.Array:
    """`[..., n, n]` -> `[...]`: fraction of the n(n-1)/2 possible DAG edges that are open."""
    n = graph.shape[-1]
    return 2.0 * graph.sum(axis=(-2, -1)) / max(n * (n - 1), 1)


def sparsity_schedule(
    update: jax.Array, num_updates: int, num_decay: int, alpha: float, alpha_final: float
) -> tuple[jax.Array, jax.Array]:
    """Target density `theta_t` and weight `alpha_t` (float32 scalars) at 0-based `update`.

    theta: 1 until 40 % of `num_updates`, then down by 1/`num_decay` every 0.3 * num_updates /
    num_decay updates, 0 from 70 % on. alpha: `alpha` until 70 %, then linear to `alpha_final` at
    100 %.
    """
    u = jnp.asarray(update, jnp.float32)
    decay_start, ramp_start, phase = 0.4 * num_updates, 0.7 * num_updates, 0.3 * num_updates
    # Before 40 % the step count is negative and the clip holds theta at 1.
    steps = jnp.floor((u - decay_start) * num_decay / phase)
    theta = jnp.clip(1.0 - steps / num_decay, 0.0, 1.0)
    ramp = alpha + (alpha_final - alpha) * (u - ramp_start) / phase
    alpha_t = jnp.where(u < ramp_start, alpha, ramp)
    return theta.astype(jnp.float32), alpha_t.astype(jnp.float32)


_WORD_BITS = 30


def graph_statistics(graphs: jax.Array, top_k: int = 3) -> dict[str, jax.Array]:
    """Summary of a batch of 0/1 graphs `[B, n, n]` (jittable, static shapes).

    Returns `open_ratio` `[]` (batch mean), `edge_freq` `[n, n]` (fraction of graphs with each
    edge), `distinct_graphs` `[]`, `top_graphs` `[top_k, n, n]` (most frequent first; zero graphs
    when fewer are distinct) and `top_graph_share` `[top_k]` (their fraction of the batch, 0 for
    padding).
    """
    batch, n = graphs.shape[0], graphs.shape[-1]
    bits = (graphs > 0.5).reshape(batch, n * n).astype(jnp.int32)
    # Pack the bits into int32 words of 30 bits and sort the graphs lexicographically on them.
    num_words = -(-n * n // _WORD_BITS)
    bits = jnp.pad(bits, ((0, 0), (0, num_words * _WORD_BITS - n * n)))
    words = bits.reshape(batch, num_words, _WORD_BITS) @ (2 ** jnp.arange(_WORD_BITS))
    *sorted_words, order = lax.sort((*words.T, jnp.arange(batch)), num_keys=num_words)
    sorted_words = jnp.stack(sorted_words, axis=1)
    starts = jnp.concatenate(
        [jnp.ones(1, bool), jnp.any(sorted_words[1:] != sorted_words[:-1], axis=1)]
    )
    group = jnp.cumsum(starts) - 1
    counts = jax.ops.segment_sum(jnp.ones(batch), group, num_segments=batch)
    first = jax.ops.segment_min(jnp.arange(batch), group, num_segments=batch)
    top_counts, top_groups = lax.top_k(counts, top_k)
    top_graphs = graphs[order[jnp.clip(first[top_groups], 0, batch - 1)]]
    present = (top_counts > 0)[:, None, None]
    return {
        "open_ratio": open_ratio(graphs).mean(),
        "edge_freq": graphs.mean(axis=0),
        "distinct_graphs": starts.sum().astype(jnp.float32),
        "top_graphs": jnp.where(present, top_graphs, 0.0),
        "top_graph_share": top_counts / batch,
    }


class DagProposer(nn.Module):
    """Context network and DAG heads (`context=obs_set`): a DeepSet over all agents' observations.

    Input: obs `[B, N, *obs_shape]` (any dtype, cast to float32). Output: `edge_logits` and
    `order_scores` (log-sigmoid, so <= 0), each `[B, N, N]`.
    phi: per agent, [flattened o_i, one-hot(i)] -> MLP (hidden, hidden) ReLU; mean over agents;
    rho: MLP (hidden,) ReLU; two Dense heads of N * N outputs. The agent one-hot is ours (the
    reference pools bare observations): it tells the pooled context which agent saw what.
    The heads start near zero (orthogonal(0.01)): edge probabilities ~0.5, near-uniform orders.
    """

    num_agents: int
    hidden_size: int = 64

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        batch, n = obs.shape[0], self.num_agents
        x = obs.astype(jnp.float32).reshape(batch, n, -1)
        agent_ids = jnp.broadcast_to(jnp.eye(n, dtype=jnp.float32), (batch, n, n))
        x = MLP((self.hidden_size, self.hidden_size), "relu", name="phi")(
            jnp.concatenate([x, agent_ids], axis=-1)
        )
        context = MLP((self.hidden_size,), "relu", name="rho")(x.mean(axis=1))

        def head(name: str) -> jax.Array:
            dense = nn.Dense(
                n * n,
                kernel_init=nn.initializers.orthogonal(0.01),
                bias_init=nn.initializers.zeros,
                name=name,
            )
            return dense(context).reshape(batch, n, n)

        return head("edge_head"), jax.nn.log_sigmoid(head("order_head"))
