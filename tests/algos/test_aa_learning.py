"""Learning checks of Advantage Alignment in the prisoner's dilemma (acceptance.md section 3b).

Each test trains the `algo=aa env=ipd` preset (`configs/tuning/aa_ipd.yaml`: -1/-3/0/-2 payoffs,
gamma 0.96, memory-one observations, 600 updates) for 4 vmapped seeds and plays 256 fresh
50-step episodes per seed. Run with `pytest -m slow tests/algos/test_aa_learning.py -s`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compose_config

from marl.run.experiment import build_env, build_trainer
from marl.run.runner import seed_keys

pytestmark = pytest.mark.slow

NUM_SEEDS = 4
EPISODES = 256


def train(overrides: list[str]):
    """(env, trainer, params stacked `[seeds, ...]`) after the preset's updates."""
    cfg = compose_config(["algo=aa", "env=ipd", *overrides])
    env = build_env(cfg.env)
    trainer = build_trainer(cfg.algo, env)
    states = jax.vmap(trainer.init)(seed_keys(0, NUM_SEEDS))

    @jax.jit
    def run(states):
        return jax.lax.scan(lambda s, _: (jax.vmap(trainer.update)(s)[0], None), states, None, 50)[
            0
        ]

    for _ in range(trainer.num_updates // 50):
        states = run(states)
    return env, trainer, states.params


def play(env, trainer, params, key, greedy: bool):
    """Actions int32 `[T, E, N]` and rewards `[T, E, N]` of `EPISODES` fresh episodes."""

    @jax.jit
    def run(key):
        reset_key, play_key = jax.random.split(key)
        obs, state = jax.vmap(env.reset)(jax.random.split(reset_key, EPISODES))

        def one_step(carry, step_key):
            obs, state = carry
            action_key, env_key = jax.random.split(step_key)
            if greedy:
                logits, _ = trainer.policy(params, obs)
                action = jnp.argmax(logits, axis=-1).astype(jnp.int32)
            else:
                action = trainer.act(params, obs, action_key)
            obs, state, reward, _, _ = jax.vmap(env.step)(
                jax.random.split(env_key, EPISODES), state, action
            )
            return (obs, state), (action, reward)

        _, (actions, rewards) = jax.lax.scan(
            one_step, (obs, state), jax.random.split(play_key, env.max_steps)
        )
        return actions, rewards

    return jax.device_get(run(key))


def conditional_cooperation(actions: np.ndarray) -> tuple[float, float]:
    """P(C at t | co-player played C at t-1) and P(C at t | co-player played D at t-1), pooled
    over both agents of a self-play game: actions `[T, E, 2]`, 0 = C."""
    cooperated = actions[1:] == 0
    co_player_cooperated = actions[:-1, :, ::-1] == 0
    after_c = cooperated[co_player_cooperated].mean()
    after_d = cooperated[~co_player_cooperated].mean()
    return float(after_c), float(after_d)


def per_seed(params, index: int):
    return jax.tree.map(lambda leaf: leaf[index], params)


def test_aa_self_play_ends_tit_for_tat_like():
    env, trainer, params = train([])
    for seed in range(NUM_SEEDS):
        seed_params = per_seed(params, seed)
        actions, rewards = play(env, trainer, seed_params, jax.random.PRNGKey(seed), False)
        after_c, after_d = conditional_cooperation(actions)
        sampled_return = float(rewards.mean())
        _, greedy_rewards = play(env, trainer, seed_params, jax.random.PRNGKey(seed), True)
        greedy_return = float(greedy_rewards.mean())
        print(
            f"seed {seed}: P(C | co-player C) {after_c:.3f}, P(C | co-player D) {after_d:.3f}, "
            f"reward/step sampled {sampled_return:.3f}, greedy {greedy_return:.3f}"
        )
        assert after_c >= 0.9
        assert after_d <= 0.2
        assert greedy_return >= -1.1


def sampled_reward_per_seed(overrides: list[str], label: str) -> list[float]:
    """Seat 0's mean reward per step with sampled actions, per seed, after training."""
    env, trainer, params = train(overrides)
    rewards = []
    for seed in range(NUM_SEEDS):
        _, played = play(env, trainer, per_seed(params, seed), jax.random.PRNGKey(seed), False)
        rewards.append(float(played[..., 0].mean()))
        print(f"seed {seed}: reward/step {label} {rewards[-1]:.3f}")
    return rewards


def test_aa_is_not_exploited_by_always_defect():
    assert min(sampled_reward_per_seed(["env.opponent=alld"], "against ALLD")) >= -2.1


def test_without_alignment_the_same_learners_defect():
    assert max(sampled_reward_per_seed(["algo.beta=0"], "with beta = 0")) <= -1.8
