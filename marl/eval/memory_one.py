"""Exact discounted values of memory-one policy pairs in 2 x 2 iterated games (spec §2.1).

Outcomes are indexed from agent 0's side as [CC, CD, DC, DD] = (a0, a1) = (0,0), (0,1), (1,0),
(1,1). A memory-one policy θ `[5]` is P(action 0) after each outcome seen from its own side,
followed by P(action 0) at START. With p0 the distribution of the first outcome and P the 4 x 4
outcome transition matrix, the normalised discounted value of agent i is
V_i = (1 - γ)·p0ᵀ(I - γP)⁻¹ r_i (the formula of pax `pax/envs/infinite_matrix_game.py`).
"""

from __future__ import annotations

import numpy as np

# Agent 1's observation index after each outcome of agent 0's side: CD and DC swap.
_AGENT_ONE_VIEW = np.array([0, 2, 1, 3])


def _check_theta(name: str, theta) -> np.ndarray:
    theta = np.asarray(theta, np.float64)
    if theta.shape != (5,) or not np.all((theta >= 0) & (theta <= 1)):
        raise ValueError(f"{name} must be 5 probabilities in [0, 1]; got {theta!r}")
    return theta


def _joint_outcome_probs(cooperate0: np.ndarray, cooperate1: np.ndarray) -> np.ndarray:
    """Distribution `[..., 4]` over [CC, CD, DC, DD] from each agent's P(action 0) `[...]`."""
    action_probs0 = np.stack([cooperate0, 1 - cooperate0], axis=-1)
    action_probs1 = np.stack([cooperate1, 1 - cooperate1], axis=-1)
    joint = action_probs0[..., :, None] * action_probs1[..., None, :]
    return joint.reshape(*joint.shape[:-2], 4)


def exact_values(theta0, theta1, payoff, gamma: float) -> np.ndarray:
    """Normalised discounted values float64 `[2]` (agent 0, agent 1) of a memory-one pair.

    theta0, theta1: `[5]` P(action 0 | own-side observation [CC, CD, DC, DD, START]);
    payoff: `[2, 2, 2]` with payoff[a0, a1] = (r0, r1); gamma in [0, 1).
    """
    theta0 = _check_theta("theta0", theta0)
    theta1 = _check_theta("theta1", theta1)
    payoff = np.asarray(payoff, np.float64)
    if payoff.shape != (2, 2, 2):
        raise ValueError(f"payoff must have shape (2, 2, 2); got {payoff.shape}")
    if not 0 <= gamma < 1:
        raise ValueError(f"gamma must be in [0, 1); got {gamma!r}")

    first_outcome = _joint_outcome_probs(theta0[4], theta1[4])
    transitions = _joint_outcome_probs(theta0[:4], theta1[_AGENT_ONE_VIEW])
    discounted_visits = np.linalg.solve(np.eye(4) - gamma * transitions.T, first_outcome)
    return (1 - gamma) * discounted_visits @ payoff.reshape(4, 2)
