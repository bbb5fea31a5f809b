"""Autocorrelated noise shared by the price, weather and inference generators."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def ar1(innovations: np.ndarray, phi: float, initial: float) -> np.ndarray:
    """``x[i] = phi * x[i-1] + innovations[i]`` with ``x[-1] = initial``."""
    out = np.empty_like(innovations)
    x = initial
    for i in range(innovations.shape[0]):
        x = phi * x + innovations[i]
        out[i] = x
    return out


def ar1_series(n: int, sd: float, phi: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary zero-mean AR(1) series of length ``n`` with marginal standard deviation ``sd``."""
    if sd == 0.0:
        return np.zeros(n)
    innov = rng.normal(0.0, sd * np.sqrt(1.0 - phi**2), n)
    return ar1(innov, phi, rng.normal(0.0, sd))
