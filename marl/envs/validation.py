"""Checks of environment parameters, shared by every game's `__post_init__`."""

from __future__ import annotations

import math

import numpy as np


def require(condition: bool, name: str, allowed: str, value) -> None:
    """Raise `ValueError` naming parameter `name` and what is allowed unless `condition`."""
    if not condition:
        raise ValueError(f"{name} must be {allowed}; got {value!r}")


def is_int(value) -> bool:
    """True for Python and numpy integers (not booleans)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """True for integers and finite floats (not booleans)."""
    return is_int(value) or (isinstance(value, (float, np.floating)) and math.isfinite(value))
