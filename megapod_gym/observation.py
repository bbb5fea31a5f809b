"""Observation encoding: raw site measurements -> the scaled float32 vector a policy sees.

One encoder serves the environment, the baselines (which read features by name) and the exported
controller runtime, so this module needs NumPy only. Feature ``i`` is
``clip((measurement_i - center_i) / scale_i, -OBS_CLIP, OBS_CLIP)``.

The simulator's kernel writes the 27 base measurements (``megapod_gym.sim.layout.MEAS_FIELDS``).
A scenario that prices carbon (``tariff.carbon_price_usd_per_tonne > 0``) appends the
:data:`CARBON_FEATURES` (grid carbon intensity now and its forecast), computed from the trace by
:func:`carbon_measurements`; scenarios that do not price carbon keep the 27 features unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from megapod_gym.short_repr import short_repr

OBS_CLIP = 10.0
# raw grid carbon intensity per unit of the carbon features (g/kWh)
CARBON_SCALE_G_PER_KWH = 500.0


@dataclass(frozen=True)
class Feature:
    """One observation feature: its raw unit, affine scaling and meaning."""

    name: str
    unit: str
    center: float
    scale: float
    description: str


def _features(
    import_limit_kw: float, n_stalls: int, battery_power_kw: float
) -> tuple[Feature, ...]:
    lim, stalls, batt = import_limit_kw, float(n_stalls), max(battery_power_kw, 1.0)
    return (
        Feature("time_of_day_sin", "-", 0.0, 1.0, "sin(2 pi hour / 24) at the step start"),
        Feature("time_of_day_cos", "-", 0.0, 1.0, "cos(2 pi hour / 24)"),
        Feature("is_weekend", "0/1", 0.0, 1.0, "Saturday or Sunday"),
        Feature("price_usd_per_kwh", "USD/kWh", 0.0, 0.5, "energy import price now"),
        Feature("price_next_1h_usd_per_kwh", "USD/kWh", 0.0, 0.5, "forecast mean price, next hour"),
        Feature(
            "price_next_4h_mean_usd_per_kwh", "USD/kWh", 0.0, 0.5, "forecast mean price, next 4 h"
        ),
        Feature(
            "price_next_4h_max_usd_per_kwh", "USD/kWh", 0.0, 0.5, "forecast max price, next 4 h"
        ),
        Feature(
            "price_next_24h_mean_usd_per_kwh", "USD/kWh", 0.0, 0.5, "forecast mean price, next 24 h"
        ),
        Feature("ev_price_usd_per_kwh", "USD/kWh", 0.0, 0.5, "retail price drivers pay now"),
        Feature(
            "demand_headroom_kw",
            "kW",
            0.0,
            lim,
            "active demand peak minus import so far in this demand window (/ import limit)",
        ),
        Feature(
            "demand_rate_usd_per_kw_month",
            "USD/kW-month",
            0.0,
            20.0,
            "sum of demand-charge rates active now",
        ),
        Feature("battery_soc_frac", "-", 0.5, 0.5, "battery state of charge"),
        Feature("stalls_occupied_frac", "-", 0.0, 1.0, "share of stalls with a car"),
        Feature(
            "ev_requested_kw",
            "kW",
            0.0,
            lim,
            "AC power the plugged-in cars can take this step (/ import limit)",
        ),
        Feature(
            "compute_headroom_kw",
            "kW",
            0.0,
            lim,
            "import limit minus car request minus battery aux (/ import limit)",
        ),
        Feature("queue_length", "cars", 0.0, stalls, "cars waiting for a stall (/ stalls)"),
        Feature("longest_wait_min", "min", 0.0, 30.0, "wait of the car at the head of the queue"),
        Feature(
            "expected_arrivals_next_h", "cars/h", 0.0, stalls, "expected arrival rate (/ stalls)"
        ),
        Feature(
            "training_backlog_h",
            "h",
            0.0,
            24.0,
            "queued training work in hours of full-cluster compute",
        ),
        Feature(
            "inference_demand_frac", "-", 0.0, 1.0, "inference load as a share of full-speed IT"
        ),
        Feature("ambient_c", "degC", 20.0, 15.0, "ambient temperature"),
        Feature("pue", "-", 1.0, 0.3, "power usage effectiveness at this temperature"),
        Feature("prev_compute_frac", "-", 0.0, 1.0, "IT power fraction applied last step"),
        Feature(
            "prev_battery_kw",
            "kW",
            0.0,
            batt,
            "battery power applied last step, + = discharge (/ max power)",
        ),
        Feature(
            "prev_ev_cap_kw", "kW", 0.0, lim, "charger AC power applied last step (/ import limit)"
        ),
        Feature("compute_paused", "0/1", 0.0, 1.0, "compute is paused (standby)"),
        Feature("hours_left_h", "h", 0.0, 24.0, "hours to the episode end, capped at 24"),
    )


# appended after the base features when the scenario prices carbon, in this order
CARBON_FEATURES: tuple[Feature, ...] = (
    Feature(
        "carbon_g_per_kwh",
        "g/kWh",
        0.0,
        CARBON_SCALE_G_PER_KWH,
        "grid carbon intensity now (gCO2 per kWh imported)",
    ),
    Feature(
        "carbon_next_1h_mean_g_per_kwh",
        "g/kWh",
        0.0,
        CARBON_SCALE_G_PER_KWH,
        "forecast mean carbon intensity, next hour",
    ),
    Feature(
        "carbon_next_4h_mean_g_per_kwh",
        "g/kWh",
        0.0,
        CARBON_SCALE_G_PER_KWH,
        "forecast mean carbon intensity, next 4 h",
    ),
)


def carbon_measurements(carbon_g_per_kwh: np.ndarray, t: np.ndarray, steps_h: int) -> np.ndarray:
    """Raw values of :data:`CARBON_FEATURES` ``[B, 3]`` at step ``t`` of each site.

    Parameters
    ----------
    carbon_g_per_kwh
        ``[B, T]`` the episode's carbon intensity per step (g/kWh).
    t
        ``[B]`` current step of each site; ``t >= T`` (episode over) reads step ``T - 1``.
    steps_h
        Steps per hour.

    Returns
    -------
    numpy.ndarray
        Intensity at step ``t``; the mean over steps ``t+1 .. t+k`` for the next hour and the next
        4 h (a perfect forecast, like TOU prices; steps past the episode repeat its last value).
    """
    carbon = np.asarray(carbon_g_per_kwh, dtype=np.float64)
    last = carbon.shape[1] - 1
    t = np.minimum(np.asarray(t, dtype=np.int64), last)
    rows = np.arange(carbon.shape[0])[:, None]
    ahead = np.minimum(t[:, None] + 1 + np.arange(4 * steps_h), last)
    window = carbon[rows, ahead]
    out = np.empty((carbon.shape[0], len(CARBON_FEATURES)))
    out[:, 0] = carbon[rows[:, 0], t]
    out[:, 1] = window[:, :steps_h].mean(axis=1)
    out[:, 2] = window.mean(axis=1)
    return out


class ObservationEncoder:
    """Scales raw measurements (``[B, F]`` in the order of :attr:`names`) into observations.

    Parameters
    ----------
    import_limit_kw, n_stalls, battery_power_kw
        Site figures that set the scale of power and queue features.
    carbon_priced
        Append :data:`CARBON_FEATURES` (for scenarios that price carbon).
    """

    def __init__(
        self,
        import_limit_kw: float,
        n_stalls: int,
        battery_power_kw: float,
        carbon_priced: bool = False,
    ) -> None:
        self.features = _features(import_limit_kw, n_stalls, battery_power_kw) + (
            CARBON_FEATURES if carbon_priced else ()
        )
        self.carbon_priced = bool(carbon_priced)
        self.names: tuple[str, ...] = tuple(f.name for f in self.features)
        self.center = np.array([f.center for f in self.features])
        self.scale = np.array([f.scale for f in self.features])
        self._inv_scale = 1.0 / self.scale
        self.index = {n: i for i, n in enumerate(self.names)}
        self.site: dict[str, Any] = {
            "import_limit_kw": import_limit_kw,
            "n_stalls": n_stalls,
            "battery_power_kw": battery_power_kw,
        }
        if carbon_priced:  # absent otherwise, so sidecars without carbon stay as they were
            self.site["carbon_priced"] = True

    @property
    def size(self) -> int:
        return len(self.features)

    def encode(self, measurements: np.ndarray) -> np.ndarray:
        """``[..., F]`` raw measurements -> float32 observations clipped to ``[-OBS_CLIP, OBS_CLIP]``."""
        obs = (measurements - self.center) * self._inv_scale
        return np.clip(obs, -OBS_CLIP, OBS_CLIP, out=obs).astype(np.float32)

    def decode(self, obs: np.ndarray, name: str) -> np.ndarray:
        """Raw value of feature ``name`` from observations ``[..., F]`` (exact unless it was clipped)."""
        i = self.index[name]
        return np.asarray(obs, dtype=np.float64)[..., i] * self.scale[i] + self.center[i]

    def from_mapping(self, values: Mapping[str, Any]) -> np.ndarray:
        """Raw measurement vector ``[F]`` from a mapping of feature names to finite numbers.

        Raises ``ValueError`` naming missing, unknown or non-finite fields.
        """
        missing = [n for n in self.names if n not in values]
        unknown = sorted(set(values) - set(self.names))
        if missing or unknown:
            raise ValueError(f"measurements: missing fields {missing}, unknown fields {unknown}")
        out = np.empty(self.size)
        for i, n in enumerate(self.names):
            v = values[n]
            # numbers only: a string ("0.5") or a boolean is an upstream bug, not a reading
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
                raise ValueError(f"measurements.{n}: must be a number (got {short_repr(v, 40)})")
            try:
                out[i] = float(v)
            except OverflowError:  # an integer beyond float range
                raise ValueError(
                    f"measurements.{n}: must be finite (got {short_repr(v, 40)})"
                ) from None
            if not math.isfinite(out[i]):
                raise ValueError(f"measurements.{n}: must be finite (got {short_repr(v, 40)})")
        return out

    def describe(self) -> list[dict[str, Any]]:
        """Feature table (name, unit, center, scale, description), e.g. for a JSON sidecar."""
        return [asdict(f) for f in self.features]
