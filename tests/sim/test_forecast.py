"""Forecast-window summaries (megapod_gym.sim.forecast) against a direct computation."""

from __future__ import annotations

import numpy as np
import pytest

from megapod_gym.sim.forecast import WINDOW_NAMES, forecast_windows


def direct(forecast: np.ndarray, steps_h: int) -> np.ndarray:
    """Each window summed and maximized element by element (steps past the end repeat the last)."""
    B, n = forecast.shape
    out = np.empty((B, 4, n))
    for b in range(B):
        pad = np.concatenate([forecast[b], np.repeat(forecast[b, -1], 24 * steps_h + 1)])
        for t in range(n):
            for row, (k, how) in enumerate(
                [(steps_h, np.mean), (4 * steps_h, np.mean), (4 * steps_h, np.max),
                 (24 * steps_h, np.mean)]
            ):  # fmt: skip
                out[b, row, t] = how(pad[t + 1 : t + 1 + k])
    return out


@pytest.mark.parametrize(("n", "steps_h"), [(576, 12), (50, 1), (96, 4), (7, 2), (1, 3)])
def test_windows_match_a_direct_computation(n: int, steps_h: int) -> None:
    rng = np.random.default_rng(n)
    forecast = rng.normal(0.1, 0.05, (3, n))
    forecast[0, n // 2 :] = -0.02  # a flat negative tail
    got = forecast_windows(forecast, steps_h)
    assert got.shape == (3, len(WINDOW_NAMES), n)
    np.testing.assert_allclose(got, direct(forecast, steps_h), rtol=1e-12, atol=1e-15)
    # the max is exact: it must equal one of the forecast values
    np.testing.assert_array_equal(got[:, 2], direct(forecast, steps_h)[:, 2])
