"""marl: JAX-accelerated multi-agent reinforcement learning for cooperation research."""

__version__ = "0.1.0"
