"""Calendar of an episode: hour of day, weekday and month of every step, and recurring windows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from megapod_gym.config.schema import TimeWindow


@dataclass(frozen=True)
class Calendar:
    """Per-step calendar arrays for one site, all of length ``n`` (episode + forecast horizon)."""

    hour: np.ndarray  # float64, fractional hour of day at the start of each step, [0, 24)
    hour_index: np.ndarray  # int64, integer hour 0..23
    weekday: np.ndarray  # int64, 0 = Monday
    month: np.ndarray  # int64, 1..12
    day: np.ndarray  # int64, day number since the start date (0-based)


def make_calendar(start: dt.date, n: int, step_min: int, start_min: int = 0) -> Calendar:
    """Calendar of ``n`` steps starting ``start_min`` minutes after local midnight of ``start``
    (real dates: leap years and year ends are handled by the calendar itself)."""
    minutes = start_min + np.arange(n, dtype=np.int64) * step_min
    day = minutes // 1440
    dates = np.datetime64(start, "D") + day.astype("timedelta64[D]")
    return Calendar(
        hour=(minutes % 1440) / 60.0,
        hour_index=(minutes % 1440) // 60,
        weekday=(dates.astype(np.int64) + 3) % 7,  # 1970-01-01 was a Thursday (Monday = 0)
        month=dates.astype("datetime64[M]").astype(np.int64) % 12 + 1,
        day=day,
    )


def window_mask(window: TimeWindow, cal: Calendar) -> np.ndarray:
    """Boolean mask of the steps inside ``window`` (hours wrap past midnight when start > end)."""
    if window.start_hour < window.end_hour:
        in_hours = (cal.hour >= window.start_hour) & (cal.hour < window.end_hour)
    else:
        in_hours = (cal.hour >= window.start_hour) | (cal.hour < window.end_hour)
    mask = in_hours
    if len(window.weekdays) < 7:
        mask = mask & np.isin(cal.weekday, window.weekdays)
    if len(window.months) < 12:
        mask = mask & np.isin(cal.month, window.months)
    return mask
