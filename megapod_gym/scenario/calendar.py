"""Calendar of an episode: hour of day, weekday and month of every step, and recurring windows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from megapod_gym.config.schema import TimeWindow

# Month (1..12) of each day of a 365-day year, index 0 = January 1.
_MONTH_OF_DOY = np.repeat(
    np.arange(1, 13, dtype=np.int8), [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
)


@dataclass(frozen=True)
class Calendar:
    """Per-step calendar arrays for one site, all of length ``n`` (episode + forecast horizon)."""

    hour: np.ndarray  # float64, fractional hour of day at the start of each step, [0, 24)
    hour_index: np.ndarray  # int64, integer hour 0..23
    weekday: np.ndarray  # int64, 0 = Monday
    month: np.ndarray  # int64, 1..12
    day: np.ndarray  # int64, day number since the episode start (0-based)


def make_calendar(year: int, start_day_of_year: int, n: int, step_min: int) -> Calendar:
    """Calendar of ``n`` steps starting at local midnight of ``start_day_of_year`` (1-based).

    Years are treated as 365 days (February 29 is skipped); an episode that runs past December 31
    continues into January of the same synthetic year.
    """
    minutes = np.arange(n, dtype=np.int64) * step_min
    day = minutes // 1440
    hour = (minutes % 1440) / 60.0
    first_weekday = dt.date(year, 1, 1).weekday()
    doy0 = (start_day_of_year - 1 + day) % 365
    return Calendar(
        hour=hour,
        hour_index=(minutes % 1440) // 60,
        weekday=(first_weekday + start_day_of_year - 1 + day) % 7,
        month=_MONTH_OF_DOY[doy0].astype(np.int64),
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
