"""Price-forecast summaries the observation carries: the mean and max of the forecast over the
hours after each step, computed once per episode at reset (compiled, one pass per site)."""

from __future__ import annotations

import numpy as np
from numba import njit

# rows of the array ``forecast_windows`` returns, in this order
WINDOW_NAMES = (
    "price_next_1h_mean",
    "price_next_4h_mean",
    "price_next_4h_max",
    "price_next_24h_mean",
)


def forecast_windows(forecast: np.ndarray, steps_h: int) -> np.ndarray:
    """``[B, 4, n]``: for each step ``t`` of ``forecast`` ``[B, n]``, the mean of the next hour,
    the mean and max of the next 4 hours and the mean of the next 24 hours of the forecast (steps
    ``t+1 .. t+k``; steps past the end repeat the last value). Rows follow ``WINDOW_NAMES``."""
    forecast = np.ascontiguousarray(forecast, dtype=np.float64)
    out = np.empty((forecast.shape[0], len(WINDOW_NAMES), forecast.shape[1]))
    _windows(forecast, int(steps_h), out)
    return out


@njit(cache=True)
def _windows(forecast: np.ndarray, steps_h: int, out: np.ndarray) -> None:
    B, n = forecast.shape
    m = n + 24 * steps_h + 1  # the forecast, then its last value repeated
    pad = np.empty(m)
    csum = np.empty(m + 1)  # csum[j] = pad[0] + ... + pad[j-1], summed in order
    w = 4 * steps_h
    for b in range(B):
        last = forecast[b, n - 1]
        csum[0] = 0.0
        for j in range(m):
            pad[j] = forecast[b, j] if j < n else last
            csum[j + 1] = csum[j] + pad[j]
        for t in range(n):
            out[b, 0, t] = (csum[t + 1 + steps_h] - csum[t + 1]) / steps_h
            out[b, 1, t] = (csum[t + 1 + w] - csum[t + 1]) / w
            out[b, 3, t] = (csum[t + 1 + 24 * steps_h] - csum[t + 1]) / (24 * steps_h)
        # max over pad[t+1 .. t+w]: running maxima within blocks of w, forward and backward
        # (van Herk / Gil-Werman), O(m) instead of O(m * w)
        fwd = np.empty(m)
        bwd = np.empty(m)
        for j in range(m):
            fwd[j] = pad[j] if j % w == 0 else max(fwd[j - 1], pad[j])
        for j in range(m - 1, -1, -1):
            bwd[j] = pad[j] if (j % w == w - 1 or j == m - 1) else max(bwd[j + 1], pad[j])
        for t in range(n):
            lo = t + 1
            out[b, 2, t] = max(bwd[lo], fwd[lo + w - 1])
