"""Networks shared by the trainers: an encoder chosen by name, then policy/value or Q-value heads.

Encoders:
    `mlp`  vector observations `[..., D]`: separate actor and critic MLPs (PureJaxRL).
    `cnn`  grid observations `[..., H, W, C]`: by default Conv 32@5x5 -> 32@3x3 -> 32@3x3 -> Dense 64
           trunk shared by both heads (SocialJax); layer widths and kernels are parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from marl.config import ConfigError, require, require_choice

ENCODERS = ("mlp", "cnn")
ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def check_network_keys(config, where: str = "algo") -> None:
    """Range checks of the network keys every trainer config shares (`encoder`, `activation`,
    `hidden_sizes`, `cnn_channels`, `cnn_kernel_sizes`, `cnn_dense_size`)."""
    require_choice(config.encoder, ("auto", *ENCODERS), f"{where}.encoder")
    require_choice(config.activation, tuple(ACTIVATIONS), f"{where}.activation")
    require(
        len(config.hidden_sizes) >= 1 and min(config.hidden_sizes) >= 1,
        f"{where}.hidden_sizes must be a non-empty list of positive widths",
    )
    for key in ("cnn_channels", "cnn_kernel_sizes"):
        sizes = getattr(config, key)
        require(
            len(sizes) >= 1 and min(sizes) >= 1,
            f"{where}.{key} must be a non-empty list of positive integers; got {list(sizes)}",
        )
    require(
        len(config.cnn_channels) == len(config.cnn_kernel_sizes),
        f"{where}.cnn_channels ({len(config.cnn_channels)} layers) and {where}.cnn_kernel_sizes "
        f"({len(config.cnn_kernel_sizes)} layers) must have the same length",
    )
    require(
        config.cnn_dense_size >= 1,
        f"{where}.cnn_dense_size must be >= 1; got {config.cnn_dense_size}",
    )


def network_settings(config, obs_shape: tuple[int, ...]) -> dict:
    """Keyword arguments of `ActorCritic` / `QNetwork` from a trainer config's network keys, with
    the encoder resolved for `obs_shape` (see `encoder_for`)."""
    return {
        "encoder": encoder_for(obs_shape, config.encoder),
        "hidden_sizes": config.hidden_sizes,
        "activation": config.activation,
        "cnn_channels": config.cnn_channels,
        "cnn_kernel_sizes": config.cnn_kernel_sizes,
        "cnn_dense_size": config.cnn_dense_size,
    }


def encoder_for(obs_shape: tuple[int, ...], encoder: str) -> str:
    """The encoder to build: `auto` is `cnn` for grid observations (H, W, C), else `mlp`."""
    is_grid = len(obs_shape) == 3
    if encoder == "cnn" and not is_grid:
        raise ConfigError(
            f"algo.encoder=cnn needs grid observations (H, W, C); this env gives {obs_shape}"
        )
    if encoder != "auto":
        return encoder
    return "cnn" if is_grid else "mlp"


# Dense-layer initialisations: `orthogonal` (gain per layer, zero bias; PureJaxRL and SocialJax)
# or `uniform_fan_in` (weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's nn.Linear
# default, which reference implementations written in PyTorch train with).
INITIALISATIONS = ("orthogonal", "uniform_fan_in")


def _uniform_fan_in(fan_in: int):
    bound = 1.0 / np.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _dense(features: int, scale: float, init: str = "orthogonal", fan_in: int = 0) -> nn.Dense:
    """A Dense layer initialised by `init` (see INITIALISATIONS); `fan_in` for `uniform_fan_in`."""
    if init == "uniform_fan_in":
        uniform = _uniform_fan_in(fan_in)
        return nn.Dense(features, kernel_init=uniform, bias_init=uniform)
    return nn.Dense(
        features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros
    )


class MLP(nn.Module):
    """Stack of Dense layers (orthogonal(sqrt 2) or `layer_init`): `[..., D]` -> `[..., hidden_sizes[-1]]`."""

    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    layer_init: str = "orthogonal"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            layer = _dense(width, np.sqrt(2), self.layer_init, x.shape[-1])
            x = ACTIVATIONS[self.activation](layer(x))
        return x


_NHWC_HWIO = ("NHWC", "HWIO", "NHWC")


def _same_padding(kernel_shape: Sequence[int]) -> list[tuple[int, int]]:
    return [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_shape]


@jax.custom_vjp
def conv_same(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Stride-1 'SAME' convolution, NHWC input, HWIO kernel (what `nn.Conv` computes).

    The VJP below is the textbook one, but every convolution it emits is already in the NHWC/HWIO
    layout that XLA:CPU hands to Eigen. XLA's own transpose rules emit other layouts and XLA:CPU
    only canonicalises convolutions of the entry computation, so inside `lax.scan` bodies (the PPO
    minibatch loop) the backward convolutions fell back to naive loops, ~20x slower.
    """
    return lax.conv_general_dilated(
        x, kernel, (1, 1), _same_padding(kernel.shape[:2]), dimension_numbers=_NHWC_HWIO
    )


def _conv_same_fwd(x, kernel):
    return conv_same(x, kernel), (x, kernel)


def _conv_same_bwd(residuals, g):
    x, kernel = residuals
    (lo_h, hi_h), (lo_w, hi_w) = _same_padding(kernel.shape[:2])
    # d/dx: correlate g with the spatially flipped kernel, in/out features swapped.
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
    dx = lax.conv_general_dilated(
        g, flipped, (1, 1), [(hi_h, lo_h), (hi_w, lo_w)], dimension_numbers=_NHWC_HWIO
    )
    # d/dkernel: a convolution with batch <-> feature roles swapped: x as [C_in, H, W, B],
    # g as a [H, W, B, C_out] kernel -> [C_in, kh, kw, C_out].
    dkernel = lax.conv_general_dilated(
        x.transpose(3, 1, 2, 0),
        g.transpose(1, 2, 0, 3),
        (1, 1),
        [(lo_h, hi_h), (lo_w, hi_w)],
        dimension_numbers=_NHWC_HWIO,
    )
    return dx, dkernel.transpose(1, 2, 0, 3)


conv_same.defvjp(_conv_same_fwd, _conv_same_bwd)


class SameConv(nn.Module):
    """`nn.Conv(features, (k, k), padding="SAME")` with the same parameters, through `conv_same`."""

    features: int
    kernel_size: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel",
            nn.initializers.orthogonal(np.sqrt(2)),
            (self.kernel_size, self.kernel_size, x.shape[-1], self.features),
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return conv_same(x, kernel) + bias


class GridCNN(nn.Module):
    """Conv trunk for one-hot grid observations: `[B, H, W, C]` -> `[B, dense_size]`."""

    channels: Sequence[int] = (32, 32, 32)
    kernel_sizes: Sequence[int] = (5, 3, 3)
    dense_size: int = 64
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for i, (features, kernel) in enumerate(zip(self.channels, self.kernel_sizes, strict=True)):
            # Named like the nn.Conv layers they replace, so parameter trees stay unchanged.
            x = act(SameConv(features, kernel, name=f"Conv_{i}")(x))
        x = x.reshape(x.shape[0], -1)
        return act(_dense(self.dense_size, np.sqrt(2))(x))


class ActorCritic(nn.Module):
    """Policy logits and state value from one observation.

    Input: obs `[B, *obs_shape]` (one batch axis; any dtype, cast to float32) and, when `num_agent_ids` > 0, a
    one-hot agent id `[B, num_agent_ids]` (joined to the MLP input or to the CNN features).
    Output: logits `[B, num_actions]`, value `[B]` (`[B, num_values]` when `num_values` > 1).

    `separate_critic_encoder`: the critic gets its own CNN trunk (`critic_cnn`) instead of sharing
    the actor's, so actor and critic parameters are disjoint (MLP torsos always are). Parameters
    of the critic: the subtrees `critic`, `critic_cnn` and the value head (`VALUE_HEAD`).
    """

    num_actions: int
    encoder: str = "mlp"
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    head_size: int = 64
    cnn_channels: Sequence[int] = (32, 32, 32)
    cnn_kernel_sizes: Sequence[int] = (5, 3, 3)
    cnn_dense_size: int = 64
    separate_critic_encoder: bool = False
    num_values: int = 1

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

            def trunk(name: str) -> jax.Array:
                features = GridCNN(
                    self.cnn_channels, self.cnn_kernel_sizes, self.cnn_dense_size, name=name
                )(x)
                if agent_id is not None:
                    features = jnp.concatenate([features, agent_id], axis=-1)
                return features

            actor_features = trunk("cnn")
            critic_features = (
                trunk("critic_cnn") if self.separate_critic_encoder else actor_features
            )
            actor = MLP((self.head_size,), "relu", name="actor")(actor_features)
            critic = MLP((self.head_size,), "relu", name="critic")(critic_features)
        else:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}; got {self.encoder!r}")
        logits = _dense(self.num_actions, 0.01)(actor)
        value = _dense(self.num_values, 1.0)(critic)
        return logits, value[..., 0] if self.num_values == 1 else value


def _torso(
    obs: jax.Array,
    extra: jax.Array | None,
    encoder: str,
    hidden_sizes: Sequence[int],
    activation: str,
    head_size: int,
    cnn_channels: Sequence[int],
    cnn_kernel_sizes: Sequence[int],
    cnn_dense_size: int,
    layer_init: str,
) -> jax.Array:
    """Features `[B, F]` of obs `[B, *obs_shape]` (cast to float32) and optional extra inputs
    `[B, D]`, built inside the calling module's `nn.compact` method (submodules `torso`, `cnn`).

    `mlp`: [flattened obs, extra] -> `hidden_sizes` Dense layers. `cnn`: the `GridCNN` trunk, then
    [features, extra] -> one `head_size` ReLU layer."""
    x = obs.astype(jnp.float32)
    if encoder == "mlp":
        x = x.reshape(x.shape[0], -1)
        if extra is not None:
            x = jnp.concatenate([x, extra], axis=-1)
        return MLP(hidden_sizes, activation, layer_init, name="torso")(x)
    if encoder == "cnn":
        x = GridCNN(cnn_channels, cnn_kernel_sizes, cnn_dense_size, name="cnn")(x)
        if extra is not None:
            x = jnp.concatenate([x, extra], axis=-1)
        return MLP((head_size,), "relu", layer_init, name="torso")(x)
    raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}; got {encoder!r}")


class QNetwork(nn.Module):
    """One Q value per action from one observation (the DQN trainer's network).

    Input: obs `[B, *obs_shape]` (any dtype, cast to float32) and optionally a one-hot agent id
    `[B, num_agent_ids]` (joined to the MLP input or to the CNN features). Output: `[B, num_actions]`.
    `mlp`: `hidden_sizes` Dense layers, then a linear head. `cnn`: the `GridCNN` trunk, one
    `head_size` ReLU layer, then the linear head. `layer_init` initialises the Dense layers (the
    convolutions stay orthogonal), see `INITIALISATIONS`.
    """

    num_actions: int
    encoder: str = "mlp"
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    head_size: int = 64
    cnn_channels: Sequence[int] = (32, 32, 32)
    cnn_kernel_sizes: Sequence[int] = (5, 3, 3)
    cnn_dense_size: int = 64
    layer_init: str = "orthogonal"

    @nn.compact
    def __call__(self, obs: jax.Array, agent_id: jax.Array | None = None) -> jax.Array:
        x = _torso(obs, agent_id, **self._torso_settings())
        return _dense(self.num_actions, 1.0, self.layer_init, x.shape[-1])(x)

    def _torso_settings(self) -> dict:
        return {
            "encoder": self.encoder,
            "hidden_sizes": self.hidden_sizes,
            "activation": self.activation,
            "head_size": self.head_size,
            "cnn_channels": self.cnn_channels,
            "cnn_kernel_sizes": self.cnn_kernel_sizes,
            "cnn_dense_size": self.cnn_dense_size,
            "layer_init": self.layer_init,
        }


class ConditionalQNetwork(QNetwork):
    """A vector of Q values per action from one observation and extra inputs, with an optional GRU
    (MO-MIX's conditional agent network, `specs/algos/momix.md` §2).

    Inputs: obs `[B, *obs_shape]`, extra `[B, D]` or None (the previous action's one-hot, the
    agent id, the preference: joined to the MLP input or to the CNN features), carry `[B, H]`
    (the GRU state; ignored when `rnn_hidden` is 0). Output: (Q `[B, num_actions,
    num_objectives]`, next carry `[B, H]`). Layout: torso -> GRU `rnn_hidden` -> Dense A·m.
    """

    num_objectives: int = 1
    rnn_hidden: int = 0

    @nn.compact
    def __call__(
        self, obs: jax.Array, extra: jax.Array | None, carry: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        x = _torso(obs, extra, **self._torso_settings())
        if self.rnn_hidden:
            carry, x = nn.GRUCell(self.rnn_hidden, name="gru")(carry, x)
        outputs = self.num_actions * self.num_objectives
        q = _dense(outputs, 1.0, self.layer_init, x.shape[-1])(x)
        return q.reshape(-1, self.num_actions, self.num_objectives), carry


class StateValue(QNetwork):
    """V(s) of a global state `[B, *state_shape]` -> `[B]`: the `QNetwork` torso with one output
    (centralised critics). `num_actions` is unused and fixed to 1."""

    num_actions: int = 1
    activation: str = "tanh"

    @nn.compact
    def __call__(self, state: jax.Array) -> jax.Array:
        x = _torso(state, None, **self._torso_settings())
        return _dense(1, 1.0, self.layer_init, x.shape[-1])(x)[:, 0]


class ParentConditionedPolicy(QNetwork):
    """Logits of one agent given its observation, id and its parents' actions (BN-AC actor).

    Inputs: obs `[B, *obs_shape]`, agent_id one-hot `[B, N]` (or None), parents `[B, P]`: the
    parents' action one-hots, zeros for non-parents. The torso reads obs (and the id); the output
    layer reads [torso features, parents], so `parents = 0` gives exactly the policy without
    parents. `num_heads` > 0: one output layer per agent, chosen by the id (which must be given).
    `init_logit_std` (tests only): the output bias and the output weights on the parents are drawn
    from N(0, std²) instead of the usual small orthogonal init. Output: logits `[B, num_actions]`.
    """

    activation: str = "tanh"
    num_heads: int = 0
    init_logit_std: float | None = None

    @nn.compact
    def __call__(
        self, obs: jax.Array, agent_id: jax.Array | None = None, parents: jax.Array | None = None
    ) -> jax.Array:
        features = _torso(obs, agent_id, **self._torso_settings())
        num_features = features.shape[-1]
        x = features if parents is None else jnp.concatenate([features, parents], axis=-1)
        heads = max(self.num_heads, 1)
        kernel_init = nn.initializers.orthogonal(0.01)
        bias_init = nn.initializers.zeros
        if self.init_logit_std is not None:
            kernel_init = _split_init(kernel_init, num_features, self.init_logit_std)
            bias_init = nn.initializers.normal(self.init_logit_std)
        kernel = self.param(
            "kernel", kernel_init, (heads, x.shape[-1], self.num_actions), jnp.float32
        )
        bias = self.param("bias", bias_init, (heads, self.num_actions), jnp.float32)
        if self.num_heads == 0:
            return x @ kernel[0] + bias[0]
        head = jnp.argmax(agent_id, axis=-1)
        return jnp.einsum("bd,bda->ba", x, kernel[head]) + bias[head]


def _split_init(feature_init, num_features: int, parent_std: float):
    """Output-kernel init `[heads, D, A]`: `feature_init` on the first `num_features` input rows,
    N(0, parent_std²) on the rest (the parents' one-hots)."""

    def init(key, shape, dtype=jnp.float32):
        feature_key, parent_key = jax.random.split(key)
        heads, inputs, outputs = shape
        features = feature_init(feature_key, (heads, num_features, outputs), dtype)
        parents = parent_std * jax.random.normal(
            parent_key, (heads, inputs - num_features, outputs), dtype
        )
        return jnp.concatenate([features, parents], axis=1)

    return init


# Auto-generated name of ActorCritic's value head (its second top-level Dense layer).
VALUE_HEAD = "Dense_1"
CRITIC_SUBTREES = ("critic", "critic_cnn", VALUE_HEAD)


def critic_labels(params) -> dict:
    """The tree of `params` (ActorCritic parameters, possibly stacked) with every leaf labelled
    `critic` (a subtree in `CRITIC_SUBTREES`) or `actor`: the labels `optax.multi_transform` takes."""
    return {
        "params": {
            name: jax.tree.map(lambda _, n=name: "critic" if n in CRITIC_SUBTREES else "actor", sub)
            for name, sub in params["params"].items()
        }
    }
