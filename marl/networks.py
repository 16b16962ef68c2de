"""Actor-critic networks shared by the trainers: an encoder chosen by name, policy and value heads.

Encoders:
    `mlp`  vector observations `[..., D]`: separate actor and critic MLPs (PureJaxRL).
    `cnn`  grid observations `[..., H, W, C]`: Conv 32@5x5 -> 32@3x3 -> 32@3x3 -> Dense 64 trunk
           shared by both heads (SocialJax).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ENCODERS = ("mlp", "cnn")
ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def _dense(features: int, scale: float) -> nn.Dense:
    return nn.Dense(
        features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros
    )


class MLP(nn.Module):
    """Stack of Dense layers with orthogonal(sqrt 2) init: `[..., D]` -> `[..., hidden_sizes[-1]]`."""

    hidden_sizes: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = ACTIVATIONS[self.activation](_dense(width, np.sqrt(2))(x))
        return x


class GridCNN(nn.Module):
    """Conv trunk for one-hot grid observations: `[B, H, W, C]` -> `[B, dense_size]`."""

    channels: Sequence[int] = (32, 32, 32)
    kernel_sizes: Sequence[int] = (5, 3, 3)
    dense_size: int = 64
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for features, kernel in zip(self.channels, self.kernel_sizes, strict=True):
            x = act(
                nn.Conv(
                    features,
                    (kernel, kernel),
                    padding="SAME",
                    kernel_init=nn.initializers.orthogonal(np.sqrt(2)),
                    bias_init=nn.initializers.zeros,
                )(x)
            )
        x = x.reshape(x.shape[0], -1)
        return act(_dense(self.dense_size, np.sqrt(2))(x))


class ActorCritic(nn.Module):
    """Policy logits and state value from one observation.

    Input: obs `[B, *obs_shape]` (one batch axis; any dtype, cast to float32) and, when `num_agent_ids` > 0, a
    one-hot agent id `[B, num_agent_ids]` (joined to the MLP input or to the CNN features).
    Output: logits `[B, num_actions]`, value `[B]`.
    """

    num_actions: int
    encoder: str = "mlp"
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    head_size: int = 64

    @nn.compact
    def __call__(
        self, obs: jax.Array, agent_id: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        x = obs.astype(jnp.float32)
        if self.encoder == "mlp":
            x = x.reshape(x.shape[0], -1)
            if agent_id is not None:
                x = jnp.concatenate([x, agent_id], axis=-1)
            actor = MLP(self.hidden_sizes, self.activation, name="actor")(x)
            critic = MLP(self.hidden_sizes, self.activation, name="critic")(x)
        elif self.encoder == "cnn":
            features = GridCNN(name="cnn")(x)
            if agent_id is not None:
                features = jnp.concatenate([features, agent_id], axis=-1)
            actor = MLP((self.head_size,), "relu", name="actor")(features)
            critic = MLP((self.head_size,), "relu", name="critic")(features)
        else:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}; got {self.encoder!r}")
        logits = _dense(self.num_actions, 0.01)(actor)
        value = _dense(1, 1.0)(critic)[..., 0]
        return logits, value
