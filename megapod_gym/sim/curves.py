"""Piecewise-linear tables (acceptance curves, PUE vs temperature) and the charging of one car
along its acceptance curve: the one definition the kernel compiles, the replay of recorded
sessions integrates (charging time -> SoC) and MPC's expected session profile uses.

Charging rule (all users): the car takes ``min(curve(SoC) x power_scale, cap_kw)`` kW at the car,
integrated with explicit 1-minute Euler steps (the last step shortened to a fractional
remainder), and stops exactly at its target SoC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit

from megapod_gym.config.schema import EVConfig


def table(xs: Sequence[float], ys: Sequence[float], n: int) -> np.ndarray:
    """``[2, n]``: the points ``(xs, ys)`` padded to ``n`` with points beyond the last ``x`` that
    repeat the last ``y`` (so tables of different lengths stack into one array)."""
    out = np.empty((2, n))
    k = len(xs)
    out[0, :k] = xs
    out[1, :k] = ys
    out[0, k:] = xs[-1] + np.arange(1, n - k + 1)
    out[1, k:] = ys[-1]
    return out


def curve_tables(ev: EVConfig, n_points: int | None = None) -> np.ndarray:
    """``[C, 2, P]`` acceptance curves of ``ev`` in curve-id order (``sorted(ev.curves)``)."""
    names = sorted(ev.curves)
    n = n_points or max(len(ev.curves[c].soc) for c in names)
    return np.stack([table(ev.curves[c].soc, ev.curves[c].kw, n) for c in names])


@njit(cache=True, inline="always")
def interp(x: float, tab: np.ndarray) -> float:
    """Piecewise-linear interpolation in ``tab[0]`` (x, strictly increasing; padding points lie
    beyond the last real one) -> ``tab[1]``, flat outside."""
    xs = tab[0]
    ys = tab[1]
    if x <= xs[0]:
        return ys[0]
    for k in range(1, xs.shape[0]):
        if x < xs[k]:
            w = (x - xs[k - 1]) / (xs[k] - xs[k - 1])
            return ys[k - 1] + w * (ys[k] - ys[k - 1])
    return ys[xs.shape[0] - 1]


@njit(cache=True)
def charge_for_minutes(
    soc: float,
    target_soc: float,
    battery_kwh: float,
    curve: np.ndarray,
    power_scale: float,
    cap_kw: float,
    minutes: float,
) -> tuple[float, float]:
    """``(DC kWh taken, SoC reached)`` by a car charging for ``minutes`` from ``soc`` on its
    acceptance curve (``[2, P]`` table) x ``power_scale``, capped at ``cap_kw``, stopping at
    ``target_soc``."""
    energy_kwh = 0.0
    s = soc
    for m in range(int(math.ceil(minutes))):
        if s >= target_soc:
            break
        p = interp(s, curve) * power_scale
        if p > cap_kw:
            p = cap_kw
        de = p * min(minutes - m, 1.0) / 60.0
        room = (target_soc - s) * battery_kwh
        if de >= room:
            energy_kwh += room
            s = target_soc
            break
        energy_kwh += de
        s += de / battery_kwh
    return energy_kwh, s
