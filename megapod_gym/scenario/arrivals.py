"""EV arrivals: a non-homogeneous Poisson process and the attributes of each arriving car."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from megapod_gym.config.schema import BetaSpec, EVConfig
from megapod_gym.scenario.calendar import Calendar

# ``departure_step`` of a car without a departure: it leaves its stall when it reaches its target
# SoC (every synthetic car). Far beyond any episode, exact in float64 and in int64.
NO_DEPARTURE_STEP: int = 2**62


@dataclass(frozen=True)
class CarArrivals:
    """Arriving cars of one site, sorted by arrival step (all arrays have one entry per car).

    ``departure_step`` and ``max_kw`` are optional (``None``: every car gets the defaults, which
    keep today's fast-charging behaviour): a car with a departure (``< NO_DEPARTURE_STEP``) holds
    its stall until the start of that step, done or not, and leaves the queue unserved if it is
    still waiting then; ``max_kw`` caps the power into the car on top of its acceptance curve and
    the stall (``0``: no extra cap, so that every trace value stays finite), e.g. an AC session's
    charger or onboard-charger rating.
    """

    arrival_step: np.ndarray  # int64
    battery_kwh: np.ndarray
    arrival_soc: np.ndarray
    target_soc: np.ndarray
    patience_min: np.ndarray
    curve_id: np.ndarray  # int64 index into the sorted curve names of EVConfig.curves
    power_scale: np.ndarray
    departure_step: np.ndarray | None = None  # int64, NO_DEPARTURE_STEP = leaves at its target
    max_kw: np.ndarray | None = None  # kW into the car, 0 = no cap beyond curve and stall

    def __post_init__(self) -> None:
        n = self.arrival_step.shape[0]
        if self.departure_step is None:
            object.__setattr__(self, "departure_step", np.full(n, NO_DEPARTURE_STEP, np.int64))
        if self.max_kw is None:
            object.__setattr__(self, "max_kw", np.zeros(n))


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


class CarSampler:
    """Draws the cars of one site's day: Poisson arrivals per step and each car's attributes.

    The fleet's arrays and the Beta parameters are derived once from ``ev`` (a trace batch draws
    thousands of days). A car's target SoC is at least its arrival SoC + 5 points (capped at 1):
    nobody stops at a fast charger to take nothing.
    """

    def __init__(self, ev: EVConfig, dt_h: float) -> None:
        self.ev = ev
        self.dt_h = dt_h
        shares = np.array([v.share for v in ev.fleet])
        p = shares / shares.sum()
        # Generator.choice(k, size=n, p=p) draws random(n) and looks it up in this normalized
        # cumulative distribution (numpy's own algorithm); doing it here skips choice()'s checks.
        self._model_cdf = p.cumsum()
        self._model_cdf /= self._model_cdf[-1]
        curve_names = sorted(ev.curves)
        self._battery_kwh = np.array([v.battery_kwh for v in ev.fleet])
        self._curve_id = np.array([curve_names.index(v.curve) for v in ev.fleet], dtype=np.int64)
        self._power_scale = np.array([v.power_scale for v in ev.fleet])

    def sample(self, rate_per_h: np.ndarray, rng: np.random.Generator) -> CarArrivals:
        """Cars arriving under the expected rate ``rate_per_h`` (one entry per step)."""
        ev = self.ev
        counts = rng.poisson(rate_per_h * self.dt_h)
        steps = np.repeat(np.arange(rate_per_h.shape[0]), counts)
        n = steps.shape[0]
        model = self._model_cdf.searchsorted(rng.random(n), side="right")
        soc0 = sample_beta(ev.arrival_soc, n, rng)
        target = np.minimum(np.maximum(sample_beta(ev.target_soc, n, rng), soc0 + 0.05), 1.0)
        patience = ev.patience_median_min * np.exp(ev.patience_sigma * rng.standard_normal(n))
        return CarArrivals(
            steps,
            self._battery_kwh[model],
            soc0,
            target,
            patience,
            self._curve_id[model],
            self._power_scale[model],
        )
