"""EV arrivals: a non-homogeneous Poisson process and the attributes of each arriving car."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from megapod_gym.config.schema import BetaSpec, EVConfig
from megapod_gym.scenario.calendar import Calendar


@dataclass(frozen=True)
class CarArrivals:
    """Arriving cars of one site, sorted by arrival step (all arrays have one entry per car)."""

    arrival_step: np.ndarray  # int64
    battery_kwh: np.ndarray
    arrival_soc: np.ndarray
    target_soc: np.ndarray
    patience_min: np.ndarray
    curve_id: np.ndarray  # int64 index into the sorted curve names of EVConfig.curves
    power_scale: np.ndarray


def arrival_rate_per_h(ev: EVConfig, cal: Calendar) -> np.ndarray:
    """Expected arrivals per hour at each step (hour-of-day profile x weekday factor)."""
    profile = np.asarray(ev.hourly_profile) / np.sum(ev.hourly_profile)
    return (
        ev.arrivals_per_day * profile[cal.hour_index] * np.asarray(ev.weekday_factors)[cal.weekday]
    )


def sample_beta(spec: BetaSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Beta(mean, sd) draws clipped to [lo, hi]."""
    common = spec.mean * (1.0 - spec.mean) / spec.sd**2 - 1.0
    return np.clip(rng.beta(spec.mean * common, (1.0 - spec.mean) * common, n), spec.lo, spec.hi)


def sample_cars(
    ev: EVConfig, rate_per_h: np.ndarray, dt_h: float, rng: np.random.Generator
) -> CarArrivals:
    """Draw Poisson arrivals per step from ``rate_per_h`` and the attributes of each car.

    A car's target SoC is at least its arrival SoC + 5 points (capped at 1): nobody stops at a
    fast charger to take nothing.
    """
    counts = rng.poisson(rate_per_h * dt_h)
    steps = np.repeat(np.arange(rate_per_h.shape[0]), counts)
    n = steps.shape[0]
    shares = np.array([v.share for v in ev.fleet])
    model = rng.choice(len(ev.fleet), size=n, p=shares / shares.sum())
    curve_names = sorted(ev.curves)
    battery = np.array([v.battery_kwh for v in ev.fleet])[model]
    curve = np.array([curve_names.index(v.curve) for v in ev.fleet], dtype=np.int64)[model]
    scale = np.array([v.power_scale for v in ev.fleet])[model]
    soc0 = sample_beta(ev.arrival_soc, n, rng)
    target = np.minimum(np.maximum(sample_beta(ev.target_soc, n, rng), soc0 + 0.05), 1.0)
    patience = ev.patience_median_min * np.exp(ev.patience_sigma * rng.standard_normal(n))
    return CarArrivals(steps, battery, soc0, target, patience, curve, scale)
