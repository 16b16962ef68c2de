"""QMIX's monotonic mixing network, and m of them side by side for MO-MIX.

Spec: `specs/algos/momix.md` §3. A mixer combines the n agents' chosen Q values of one objective
into Q_tot with weights that hypernetworks emit from a conditioning vector z (the global state,
and the preference in MO-MIX); an absolute value keeps the weights non-negative, so
∂Q_tot/∂Q_i >= 0. Every Dense layer is initialised like PyTorch's `nn.Linear` (pymarl's QMIX):
weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)). The non-zero biases matter: with zero
biases a constant zero state (a matrix game's) makes every hypernetwork output 0, so W1 = W2 = 0,
Q_tot ignores the agents and, the gradient of |x| at 0 being 0, it never recovers.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from marl.networks import _uniform_fan_in


class MonotonicMixer(nn.Module):
    """Q_tot `[B]` from agents' Q values q `[B, n]` and conditioning z `[B, Z]`.

    W1 = |H_W1(z)| `(n, e)`, b1 = H_b1(z) `(e)`, h = ELU(q·W1 + b1), W2 = |H_W2(z)| `(e,)`,
    b2 = H_V(z), Q_tot = h·W2 + b2; H_W1 and H_W2 are Dense `hypernet_hidden` -> ReLU -> Dense,
    H_b1 one Dense, H_V Dense e -> ReLU -> Dense 1 (e = `embed_dim`).
    """

    embed_dim: int = 32
    hypernet_hidden: int = 64

    def _hypernet(self, z: jax.Array, outputs: int, name: str) -> jax.Array:
        hidden = nn.relu(_linear(self.hypernet_hidden, z.shape[-1], f"{name}_hidden")(z))
        return _linear(outputs, self.hypernet_hidden, name)(hidden)

    @nn.compact
    def __call__(self, q: jax.Array, z: jax.Array) -> jax.Array:
        num_agents, embed = q.shape[-1], self.embed_dim
        w1 = jnp.abs(self._hypernet(z, num_agents * embed, "hyper_w1"))
        w1 = w1.reshape(-1, num_agents, embed)
        b1 = _linear(embed, z.shape[-1], "hyper_b1")(z)
        hidden = nn.elu(jnp.einsum("bn,bne->be", q, w1) + b1)
        w2 = jnp.abs(self._hypernet(z, embed, "hyper_w2"))
        value_hidden = nn.relu(_linear(embed, z.shape[-1], "hyper_v_hidden")(z))
        b2 = _linear(1, embed, "hyper_v")(value_hidden)
        return (hidden * w2).sum(axis=-1) + b2[:, 0]


def _linear(features: int, fan_in: int, name: str) -> nn.Dense:
    """A Dense layer with PyTorch's default initialisation (see the module docstring)."""
    init = _uniform_fan_in(fan_in)
    return nn.Dense(features, kernel_init=init, bias_init=init, name=name)


def init_mixers(
    mixer: MonotonicMixer, key: jax.Array, num_mixers: int, num_agents: int, z_size: int
):
    """Parameters of `num_mixers` independent mixers stacked on a leading axis `[K, ...]`."""
    q = jnp.zeros((1, num_agents), jnp.float32)
    z = jnp.zeros((1, z_size), jnp.float32)
    return jax.vmap(lambda k: mixer.init(k, q, z))(jax.random.split(key, num_mixers))


def mix(mixer: MonotonicMixer, params, q: jax.Array, z: jax.Array) -> jax.Array:
    """Q_tot `[B, K]`: mixer k (parameters `params[k]`) on objective k of q `[B, n, K]`, all
    conditioned on z `[B, Z]`."""
    return jax.vmap(mixer.apply, in_axes=(0, 2, None), out_axes=1)(params, q, z)
