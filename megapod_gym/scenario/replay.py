"""Replay of recorded data: energy prices, carbon intensity, ambient temperature and EV charging
sessions from CSV.

:func:`load_replay` reads the files named in :class:`~megapod_gym.config.schema.ReplayConfig` once
(at environment construction) and validates every cell; :class:`ReplayData` then serves episode
windows cheaply at every reset:

* :meth:`ReplayData.start_days` lists the local-midnight dates an episode may start on;
* :meth:`ReplayData.series_on` resamples prices, carbon intensity or temperature onto the
  episode's step grid;
* :meth:`ReplayData.cars_on` turns the sessions of an episode window into :class:`CarArrivals`.

File formats (CSV with a header row, read with the standard :mod:`csv` module)
-----------------------------------------------------------------------------
Timestamps are ISO 8601 (``2025-06-02T13:05:00``, ``2025-06-02 13:05``, with or without a UTC
offset ``...-07:00`` / ``...Z``). The simulator runs on the site's local wall-clock time (every
day has 24 h of steps from local midnight), and the timestamps are mapped onto it as follows:

* ``replay.timezone`` not set: naive timestamps are local wall-clock time as they stand; a file
  whose timestamps all carry the same UTC offset is read as local time of that offset (the offset
  is dropped). Different offsets in one file (e.g. across a daylight-saving change) or naive and
  offset rows mixed are an error asking for ``replay.timezone``, and so are naive timestamps that
  repeat or step back (the repeated hour when daylight saving time ends is ambiguous without a
  zone).
* ``replay.timezone`` set (an IANA name, e.g. ``America/Los_Angeles``): timestamps with an offset
  are converted into that zone's local time; naive ones are local time of that zone. A naive time
  in the repeated hour of an autumn change is the first occurrence unless the row order says it
  is the second (it does not come after the previous row otherwise), so the 25 hours of that day
  load in order; a naive time in the hour skipped by a spring change does not exist and is an
  error.

Series (prices, carbon, temperature) are piecewise constant in real (absolute) time; a step's
value is the time-weighted mean over the instants whose local wall-clock time lies in the step.
On the autumn day the repeated hour's two occurrences are thus averaged into its steps; on the
spring day the steps of the skipped hour hold the value in effect when the clocks jumped. The
clock change is placed at the first sample carrying the new UTC offset (exact for data sampled on
the hour or more often). EV session arrival times are used as local wall-clock times.

The unit of every value column is in its name. A file ending in ``.gz`` is read through gzip.

* prices: ``timestamp`` and exactly one of ``price_usd_per_kwh``, ``price_usd_per_mwh`` (divided
  by 1000) or ``price_cents_per_kwh`` (divided by 100); a series in another currency is named as
  if in USD and converted by ``replay.price_to_usd``. A series whose median exceeds 2 $/kWh after
  conversion is refused as a probable unit error. Any spacing (5-min, hourly, irregular); each
  sample holds until the next one.
* carbon intensity (marginal or average, of grid imports): ``timestamp`` and exactly one of
  ``carbon_g_per_kwh`` (gCO2/kWh), ``carbon_kg_per_mwh`` (the same number) or
  ``carbon_lb_per_mwh`` (x 0.45359237 to g/kWh). Every value must lie in
  ``CARBON_RANGE_G_PER_KWH`` (0 to 2000 g/kWh) after conversion, and a median above
  1300 g/kWh (dirtier than an all-lignite fleet) is refused as a probable lb/MWh column. Spacing
  as for prices.
* temperature: ``timestamp`` and ``ambient_c`` or ``ambient_f``.
* EV sessions: ``arrival_time`` (required) and at least one of ``energy_kwh`` (or ``energy_wh``;
  a median session above 300 kWh is refused as a probable Wh column), ``duration_min`` or
  the pair ``arrival_soc`` + ``target_soc``; optional ``battery_kwh`` and ``patience_min``. Rows
  need not be sorted. Empty cells in optional columns mean "unknown" and are drawn from the
  scenario's :class:`~megapod_gym.config.schema.EVConfig` (see :meth:`ReplayData.cars_on`).
  The charge columns give the energy the driver **requests** (``target_soc``, or
  ``arrival_soc + energy_kwh / battery_kwh``); ``duration_min`` is minutes of charging at the
  acceptance limit, turned into a requested energy, never a dwell.

  Sessions with dwell (destination / AC charging, or any log that records when the car left),
  optional, no random draw: ``departure_time`` (a timestamp after ``arrival_time``, read like it;
  without ``replay.timezone`` it must carry the arrivals' UTC offset) **or** ``dwell_min``
  (minutes plugged in, > 0), and ``max_power_kw`` (> 0: the session's power cap in kW into the
  car, on top of the acceptance curve and ``chargers.stall_kw``: for an AC session the EVSE or
  onboard-charger rating, e.g. 7.2; it also caps the power ``duration_min`` is integrated at).
  A car with a departure holds its stall from the step it is plugged in until its departure
  step, whether or not it has received its requested energy (done early, it stays parked and
  draws nothing), never takes more than requested, and, still queued at its departure, leaves
  unserved and counts as balked (with the balk penalty), like a car whose patience runs out.
  Departures are floored onto the step grid like arrivals (at least one step after the
  arrival). Empty cells: no departure (the car leaves at its target SoC, as every synthetic car
  does) and no power cap. A DC fast-charging log needs neither column.

Series must be strictly increasing in absolute time, without gaps wider than max(2 x median
spacing, 1 h) (fill missing data before replaying). Columns not listed above are an error. Every
error is a :class:`ReplayError` whose message names the file, the 1-based row (line number in
the file, header = line 1) and the column.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
from numba import njit

from megapod_gym.config.schema import EVConfig, ReplayConfig
from megapod_gym.scenario.arrivals import NO_DEPARTURE_STEP, CarArrivals, sample_beta
from megapod_gym.sim.curves import charge_for_minutes, curve_tables

__all__ = [
    "ReplayData",
    "ReplayError",
    "SessionLog",
    "TimeSeries",
    "load_replay",
]

# Physical ranges of replayed values (inclusive).
TEMPERATURE_RANGE_C: tuple[float, float] = (-60.0, 60.0)
PRICE_RANGE_USD_PER_KWH: tuple[float, float] = (-10.0, 100.0)
# Grid carbon intensity: from zero (curtailed renewables on the margin) to above the dirtiest
# lignite unit (about 1.2 t/MWh, sources §5d anchors 0.4 t/MWh for gas); negative values are refused.
CARBON_RANGE_G_PER_KWH: tuple[float, float] = (0.0, 2000.0)
# Car-side power cap used to turn a session duration into energy (V3 stall peak, sources §1).
DURATION_POWER_CAP_KW: float = 250.0
# A series may skip at most max(GAP_MEDIAN_FACTOR x median spacing, MIN_GAP_LIMIT_S).
GAP_MEDIAN_FACTOR: float = 2.0
MIN_GAP_LIMIT_S: int = 3600

_S_PER_MIN = 60
_S_PER_DAY = 86400

# a median session above this many kWh is a unit error (Wh), not a car
SESSION_MEDIAN_PLAUSIBLE_KWH = 300.0
_SESSION_COLUMNS = (
    "arrival_time",
    "energy_kwh",
    "energy_wh",
    "duration_min",
    "battery_kwh",
    "arrival_soc",
    "target_soc",
    "patience_min",
    "departure_time",
    "dwell_min",
    "max_power_kw",
)


class ReplayError(ValueError):
    """A replay file is missing or malformed; the message names the file, the row and the column."""


# ------------------------------------------------------------------------------------ containers
@dataclass(frozen=True)
class TimeSeries:
    """A sampled series, piecewise constant forward: sample ``i`` holds on ``[t_i, t_{i+1})``.

    Times ``t_i`` are absolute (real elapsed) times. The last sample holds for one more spacing
    (``t_last - t_{last-1}``), so the series covers ``[t_0, t_last + (t_last - t_{last-1}))``.

    Attributes
    ----------
    timestamps
        ``datetime64[s]``, local wall-clock time of each sample, at least 2 samples, in order.
    values
        ``float64``, one per timestamp (units given by the owner: $/kWh, g/kWh or deg C).
    utc_offset_s
        ``int64``, the local clock's UTC offset at each sample in seconds (local = UTC + offset),
        or ``None`` (the default): the clock never changes, i.e. all offsets 0. Absolute time is
        ``timestamps - utc_offset_s`` and must be strictly increasing; local timestamps step back
        where the offset drops (the repeated hour when daylight saving time ends) and jump where
        it rises. Stored as an array (zeros when ``None`` was given).
    """

    timestamps: np.ndarray
    values: np.ndarray
    utc_offset_s: np.ndarray | None = None
    # Absolute seconds since the first sample, and the integral of the series at each sample
    # (value x s); pieces of constant UTC offset: absolute start (s) and wall-clock shift (s) of
    # each, relative to the first sample.
    _t_s: np.ndarray = field(init=False, repr=False, compare=False)
    _cum: np.ndarray = field(init=False, repr=False, compare=False)
    _piece_start_s: np.ndarray = field(init=False, repr=False, compare=False)
    _piece_shift_s: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ts = np.asarray(self.timestamps, dtype="datetime64[s]")
        vals = np.asarray(self.values, dtype=np.float64)
        if ts.ndim != 1 or ts.shape != vals.shape:
            raise ValueError(
                f"timestamps and values must be 1-D of equal length (got {ts.shape} and {vals.shape})"
            )
        if ts.shape[0] < 2:
            raise ValueError(
                "a time series needs at least 2 samples (the spacing defines the last one's span)"
            )
        off = (
            np.zeros(ts.shape, dtype=np.int64)
            if self.utc_offset_s is None
            else np.asarray(self.utc_offset_s, dtype=np.int64)
        )
        if off.shape != ts.shape:
            raise ValueError(
                f"utc_offset_s must have one entry per timestamp ({ts.shape[0]}), got shape "
                f"{off.shape}"
            )
        t_s = (ts - ts[0]).astype(np.int64) - (off - off[0])
        if np.any(np.diff(t_s) <= 0):
            raise ValueError(
                "timestamps must be strictly increasing (in absolute time: timestamps - utc_offset_s)"
            )
        if not np.all(np.isfinite(vals)):
            raise ValueError("values must be finite")
        cum = np.concatenate(([0.0], np.cumsum(vals[:-1] * np.diff(t_s))))
        change = np.flatnonzero(np.diff(off)) + 1
        object.__setattr__(self, "timestamps", ts)
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "utc_offset_s", off)
        object.__setattr__(self, "_t_s", t_s)
        object.__setattr__(self, "_cum", cum)
        object.__setattr__(self, "_piece_start_s", np.concatenate(([0], t_s[change])))
        object.__setattr__(self, "_piece_shift_s", np.concatenate(([0], off[change] - off[0])))

    @property
    def start(self) -> np.datetime64:
        """Local time of the first sample."""
        return self.timestamps[0]

    @property
    def end(self) -> np.datetime64:
        """Local time of the end of coverage: last sample + the (absolute) spacing before it."""
        return self.timestamps[-1] + np.timedelta64(int(self._t_s[-1] - self._t_s[-2]), "s")

    def wall_means(self, edges_s: np.ndarray) -> np.ndarray:
        """Mean of the series over each local wall-clock interval ``[edges_s[k], edges_s[k+1])``.

        ``edges_s`` are increasing local times in seconds since the first sample's local time
        (``>= 0``). The mean is time-weighted over every instant whose local time lies in the
        interval: both occurrences of a repeated hour count; an interval that no instant maps to
        (the hour skipped when the clocks jump forward) takes the value in effect just before the
        jump. Past the end of the data the series repeats itself from 24 h earlier (see
        :meth:`ReplayData.series_on`).
        """
        edges_s = np.asarray(edges_s, dtype=np.int64)
        if self._piece_start_s.shape[0] == 1:  # one clock: local time is absolute time
            return np.diff(self._extended_integral(edges_s)) / np.diff(edges_s)
        a = self._piece_start_s
        b = np.append(a[1:], np.iinfo(np.int64).max // 4)
        # absolute time reached in each piece by local time w (clipped to the piece)
        u = np.clip(edges_s[None, :] - self._piece_shift_s[:, None], a[:, None], b[:, None])
        integral = self._extended_integral(u.ravel()).reshape(u.shape)
        integral = integral - self._extended_integral(a)[:, None]
        num = np.diff(integral.sum(axis=0))
        measure = (u - a[:, None]).sum(axis=0)  # absolute seconds with local time < w
        den = np.diff(measure)
        out = np.empty(num.shape)
        some = den > 0
        out[some] = num[some] / den[some]
        if not np.all(some):  # inside a skipped hour: the value just before the jump
            m = np.maximum(measure[:-1][~some], 1)
            out[~some] = self._extended_integral(m) - self._extended_integral(m - 1)
        return out

    def _integral(self, x_s: np.ndarray) -> np.ndarray:
        """Integral of the series from the first sample to ``x_s`` (seconds since it), x_s in [0, end]."""
        idx = np.clip(np.searchsorted(self._t_s, x_s, side="right") - 1, 0, self._t_s.shape[0] - 1)
        return self._cum[idx] + self.values[idx] * (x_s - self._t_s[idx])

    def _extended_integral(self, x_s: np.ndarray) -> np.ndarray:
        """Integral up to ``x_s`` where past ``end`` the series repeats itself from 24 h earlier."""
        end_s = int(self._t_s[-1] + (self._t_s[-1] - self._t_s[-2]))
        inside = x_s <= end_s
        if np.all(inside):
            return self._integral(x_s)
        if end_s < _S_PER_DAY:
            raise ValueError(
                f"the series covers only {end_s / 3600:.2f} h, so steps past its end cannot repeat "
                "the value from 24 h earlier"
            )
        out = np.empty(x_s.shape, dtype=np.float64)
        out[inside] = self._integral(x_s[inside])
        i_end = float(self._integral(np.array([end_s]))[0])
        day_ago_s = end_s - _S_PER_DAY
        i_day_ago = float(self._integral(np.array([day_ago_s]))[0])
        past = x_s[~inside] - end_s
        k, r = np.divmod(past, _S_PER_DAY)
        out[~inside] = i_end + k * (i_end - i_day_ago) + (self._integral(day_ago_s + r) - i_day_ago)
        return out


@dataclass(frozen=True)
class SessionLog:
    """Recorded EV charging sessions, sorted by arrival (one entry per session in every array).

    Unknown values are NaN and are drawn from the scenario's :class:`EVConfig` by
    :meth:`ReplayData.cars_on`.

    Attributes
    ----------
    arrival
        ``datetime64[s]`` naive local arrival time (non-decreasing after construction).
    energy_kwh, duration_min, battery_kwh, arrival_soc, target_soc, patience_min
        ``float64`` per session, NaN where the file gives no value.
    dwell_min
        ``float64`` minutes from arrival to departure on the local wall clock (from
        ``departure_time`` or ``dwell_min``); NaN = no departure (the car leaves at its target).
        ``None`` (the default): no session has one.
    max_power_kw
        ``float64`` the session's power cap in kW; NaN = none. ``None`` (the default): no cap.
    """

    arrival: np.ndarray
    energy_kwh: np.ndarray
    duration_min: np.ndarray
    battery_kwh: np.ndarray
    arrival_soc: np.ndarray
    target_soc: np.ndarray
    patience_min: np.ndarray
    dwell_min: np.ndarray | None = None
    max_power_kw: np.ndarray | None = None

    def __post_init__(self) -> None:
        arrival = np.asarray(self.arrival, dtype="datetime64[s]")
        if arrival.ndim != 1:
            raise ValueError(f"arrival must be 1-D (got shape {arrival.shape})")
        order = np.argsort(arrival, kind="stable")
        object.__setattr__(self, "arrival", arrival[order])
        for name in ("dwell_min", "max_power_kw"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(arrival.shape, np.nan))
        for name in (
            "energy_kwh",
            "duration_min",
            "battery_kwh",
            "arrival_soc",
            "target_soc",
            "patience_min",
            "dwell_min",
            "max_power_kw",
        ):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.shape != arrival.shape:
                raise ValueError(
                    f"{name} must have one entry per session ({arrival.shape[0]}), got shape {a.shape}"
                )
            object.__setattr__(self, name, a[order])

    def __len__(self) -> int:
        return int(self.arrival.shape[0])


@dataclass(frozen=True)
class ReplayData:
    """Replayed exogenous data; any of the parts may be absent (``None``).

    Attributes
    ----------
    prices
        Energy import price in $/kWh.
    temperature
        Ambient temperature in deg C.
    sessions
        Recorded EV sessions.
    carbon
        Grid carbon intensity in g/kWh (gCO2 per kWh imported).
    sources
        The file each present part was read from, keyed ``"prices"``, ``"temperature"``,
        ``"sessions"``, ``"carbon"`` (used in error messages).
    """

    prices: TimeSeries | None
    temperature: TimeSeries | None
    sessions: SessionLog | None
    carbon: TimeSeries | None = None
    # Which file each part came from (for error messages); not part of equality.
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    # ----------------------------------------------------------------------- arrival forecast
    def hourly_arrival_rate(self, days: Sequence[dt.date]) -> np.ndarray:
        """``[24]`` expected arrivals per hour of the local day: the recorded sessions arriving on
        ``days`` counted by clock hour, divided by the number of days (days without a session
        count as zero). The trace's ``arrival_rate_per_h`` (the observation's arrival forecast and
        MPC's) is this profile when sessions are replayed; the sampler passes only days before
        the held-out ones, so the forecast never learns from evaluation days."""
        if self.sessions is None:
            raise ReplayError("replay has no EV sessions (no file configured)")
        if not days:
            raise ValueError("days must not be empty")
        arrival = self.sessions.arrival
        day = arrival.astype("datetime64[D]")
        wanted = np.array(sorted(set(days)), dtype="datetime64[D]")
        keep = np.isin(day, wanted)
        hour = ((arrival[keep] - day[keep]).astype(np.int64) // 3600).astype(np.int64)
        return np.bincount(hour, minlength=24)[:24].astype(np.float64) / len(wanted)

    # ------------------------------------------------------------------------------ start days
    def start_days(self, n_steps: int, step_min: int) -> list[dt.date]:
        """Local-midnight dates on which an episode of ``n_steps`` steps can start.

        A date ``d`` qualifies when every present series has a sample at or before ``d 00:00`` and
        covers ``[d, d + n_steps * step_min)`` (a series covers up to its last sample + the spacing
        before it), and, if sessions are present, ``d`` and every day the episode touches lie
        within ``[first arrival date, last arrival date]`` and hold at least one recorded session
        each (a day without any is a gap in the log and is skipped, never replayed as a day
        without cars).

        Parameters
        ----------
        n_steps
            Episode length in steps (without the forecast horizon: steps past the data repeat the
            previous day, see :meth:`series_on`).
        step_min
            Step length in minutes.

        Returns
        -------
        list[datetime.date]
            Qualifying dates in increasing order (never empty).

        Raises
        ------
        ReplayError
            If no date qualifies, saying how many days of data exist and how many are needed.
        """
        if n_steps < 1 or step_min < 1:
            raise ValueError(f"n_steps and step_min must be >= 1 (got {n_steps}, {step_min})")
        episode_s = n_steps * step_min * _S_PER_MIN
        episode_days = -(-episode_s // _S_PER_DAY)  # calendar days the episode touches
        lo: dt.date | None = None
        hi: dt.date | None = None
        spans: list[str] = []

        def narrow(first: dt.date, last: dt.date) -> None:
            nonlocal lo, hi
            lo = first if lo is None else max(lo, first)
            hi = last if hi is None else min(hi, last)

        for name, series in (
            ("prices", self.prices),
            ("temperature", self.temperature),
            ("carbon", self.carbon),
        ):
            if series is None:
                continue
            start, end = series.start, series.end
            first_midnight = _ceil_to_day(start)
            last_start = (end - np.timedelta64(episode_s, "s")).astype("datetime64[D]")
            narrow(_to_date(first_midnight), _to_date(last_start))
            spans.append(f"{name} {_fmt(start)} to {_fmt(end)} ({_days(end - start):.2f} days)")
        if self.sessions is not None and len(self.sessions):
            first = _to_date(self.sessions.arrival[0].astype("datetime64[D]"))
            last = _to_date(self.sessions.arrival[-1].astype("datetime64[D]"))
            narrow(first, last - dt.timedelta(days=episode_days - 1))
            spans.append(f"sessions {first} to {last} ({(last - first).days + 1} days)")
        if lo is None or hi is None:
            raise ReplayError(
                "replay data holds no prices, carbon, temperature or sessions to start an "
                "episode on"
            )
        if lo > hi:
            raise ReplayError(
                f"replay data too short: an episode needs {episode_s / _S_PER_DAY:g} days starting at "
                f"local midnight ({episode_days} calendar days), but the data has "
                + "; ".join(spans)
                + (f"; files: {', '.join(self.sources.values())}" if self.sources else "")
            )
        days = [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]
        if self.sessions is not None and len(self.sessions):
            # a recorded day without a single session is a gap in the log, not a day without cars:
            # episodes never start on (or run through) such a day (documented fill policy: skip)
            with_cars = set(self.sessions.arrival.astype("datetime64[D]").tolist())
            days = [
                d
                for d in days
                if all(d + dt.timedelta(days=k) in with_cars for k in range(episode_days))
            ]
            if not days:
                raise ReplayError(
                    "replay: every possible start day runs through a day without a single recorded "
                    "session (a gap in the session log)"
                    + (f"; file: {self.sources['sessions']}" if "sessions" in self.sources else "")
                )
        return days

    # -------------------------------------------------------------------------------- resample
    def series_on(
        self,
        which: Literal["prices", "carbon", "temperature"],
        start: dt.date,
        n: int,
        step_min: int,
    ) -> np.ndarray:
        """The series on ``n`` steps of ``step_min`` minutes from local midnight of ``start``.

        The series is piecewise constant forward (a sample holds until the next one; the last one
        for one more spacing) and a step's value is its time-weighted mean over
        ``[step start, step end)`` in local wall-clock time (on a daylight-saving change day the
        repeated hour's two occurrences are averaged and the skipped hour holds the value in
        effect at the jump, see :meth:`TimeSeries.wall_means`). Steps past the end of the data (e.g. the price forecast horizon
        running beyond the file) repeat the value from exactly 24 h earlier, iteratively, so the
        last recorded day is replayed again as often as needed. A step straddling the end mixes
        the recorded part and the repeated part, time-weighted.

        Parameters
        ----------
        which
            ``"prices"`` ($/kWh), ``"carbon"`` (g/kWh) or ``"temperature"`` (deg C).
        start
            Date whose local midnight is the start of step 0.
        n
            Number of steps.
        step_min
            Step length in minutes.

        Returns
        -------
        numpy.ndarray
            ``float64`` array of shape ``[n]``.

        Raises
        ------
        ReplayError
            If the series is absent, if step 0 starts before its first sample, or if steps past
            the end are needed but the series covers less than 24 h.
        """
        if which not in ("prices", "carbon", "temperature"):
            raise ValueError(f"which must be 'prices', 'carbon' or 'temperature' (got {which!r})")
        series: TimeSeries | None = getattr(self, which)
        source = self.sources.get(which, which)
        if series is None:
            raise ReplayError(f"replay has no {which} series (no file configured)")
        if n < 0 or step_min < 1:
            raise ValueError(f"n must be >= 0 and step_min >= 1 (got {n}, {step_min})")
        t0 = np.datetime64(start, "s")
        offset_s = int((t0 - series.start).astype(np.int64))
        if offset_s < 0:
            raise ReplayError(
                f"{source}: {which} start at {_fmt(series.start)}, after the requested episode start "
                f"{_fmt(t0)} (use ReplayData.start_days to pick start dates)"
            )
        step_s = step_min * _S_PER_MIN
        edges = offset_s + np.arange(n + 1, dtype=np.int64) * step_s
        try:
            return series.wall_means(edges)
        except ValueError as exc:
            raise ReplayError(f"{source}: {which}: {exc}") from None

    # ------------------------------------------------------------------------------------ cars
    def cars_on(
        self, start: dt.date, n_steps: int, step_min: int, ev: EVConfig, rng: np.random.Generator
    ) -> CarArrivals:
        """Cars of the recorded sessions arriving in ``[start 00:00, start + n_steps * step_min)``.

        Cars are sorted by arrival; ``arrival_step = floor(minutes since start / step_min)``.
        Random draws, all made for every car in this fixed order so a seed gives the same cars
        whatever columns the file fills: (1) a fleet vehicle model per car from ``ev.fleet`` by
        share (curve id = index into ``sorted(ev.curves)``, power scale, default battery size),
        (2) an arrival SoC per car from ``ev.arrival_soc`` (:func:`sample_beta`), (3) a standard
        normal per car for patience ``ev.patience_median_min * exp(ev.patience_sigma * z)``.
        Recorded values override the draws: ``battery_kwh``, ``arrival_soc``, ``patience_min``.

        The target SoC is, by priority: the ``target_soc`` column; else ``arrival_soc +
        energy_kwh / battery_kwh``; else (only ``duration_min`` known) the SoC the car's
        acceptance curve (x power scale, capped at 250 kW at the car) reaches after
        ``duration_min`` minutes from the arrival SoC, integrated with 1-min Euler steps. The
        target is capped at 1.0. Unlike synthetic cars, no minimum charge is imposed: a session
        recording 0 kWh gives ``target_soc == arrival_soc``.

        Departure and power cap (no random draw): ``departure_step = floor(minutes from start to
        arrival + dwell / step_min)``, the same floor as the arrival so the dwell is kept to within
        a step, and at least ``arrival_step + 1``; it may lie beyond the episode (the car then
        stays to its end). A session without a departure gets ``NO_DEPARTURE_STEP`` (it leaves at
        its target SoC, like a synthetic car). ``max_kw`` is the ``max_power_kw`` column (``0`` =
        no cap where empty); it also caps the power used to turn ``duration_min`` into a
        target.

        Parameters
        ----------
        start
            Date whose local midnight is the start of step 0.
        n_steps
            Episode length in steps.
        step_min
            Step length in minutes.
        ev
            EV settings (fleet, curves, SoC and patience distributions).
        rng
            Random generator for the values the file does not give.

        Returns
        -------
        CarArrivals
            The episode's cars (possibly none).
        """
        if self.sessions is None:
            raise ReplayError("replay has no EV sessions (no file configured)")
        s = self.sessions
        t0 = np.datetime64(start, "s")
        t1 = t0 + np.timedelta64(n_steps * step_min * _S_PER_MIN, "s")
        i0, i1 = np.searchsorted(s.arrival, [t0, t1], side="left")
        n = int(i1 - i0)
        steps = (s.arrival[i0:i1] - t0).astype(np.int64) // (step_min * _S_PER_MIN)

        fleet = _fleet_arrays(ev)
        model = rng.choice(fleet.share.shape[0], size=n, p=fleet.share)
        soc_draw = sample_beta(ev.arrival_soc, n, rng)
        z = rng.standard_normal(n)

        curve = fleet.curve_id[model]
        scale = fleet.power_scale[model]
        battery = _fill(s.battery_kwh[i0:i1], fleet.battery_kwh[model])
        soc0 = _fill(s.arrival_soc[i0:i1], soc_draw)
        patience = _fill(
            s.patience_min[i0:i1], ev.patience_median_min * np.exp(ev.patience_sigma * z)
        )

        target = s.target_soc[i0:i1].copy()
        energy = s.energy_kwh[i0:i1]
        use_energy = np.isnan(target) & ~np.isnan(energy)
        target[use_energy] = soc0[use_energy] + energy[use_energy] / battery[use_energy]
        max_kw = _fill(s.max_power_kw[i0:i1], np.zeros(n))  # 0 = no cap
        duration = s.duration_min[i0:i1]
        use_duration = np.isnan(target) & ~np.isnan(duration)
        if np.any(use_duration):
            target[use_duration] = _soc_after_minutes(
                soc0[use_duration],
                duration[use_duration],
                battery[use_duration],
                curve[use_duration],
                scale[use_duration],
                fleet.curves,
                np.where(
                    max_kw[use_duration] > 0.0,
                    np.minimum(max_kw[use_duration], DURATION_POWER_CAP_KW),
                    DURATION_POWER_CAP_KW,
                ),
            )
        if np.any(np.isnan(target)):  # only possible for a hand-built SessionLog
            raise ReplayError("a session has none of target_soc, energy_kwh, duration_min")
        target = np.minimum(target, 1.0)
        # departure: floor onto the step grid like the arrival (the dwell is kept to within a
        # step), at least one step after the arrival
        dwell_s = np.round(s.dwell_min[i0:i1] * 60.0)
        has_departure = ~np.isnan(dwell_s)
        departure = np.full(n, NO_DEPARTURE_STEP, dtype=np.int64)
        if np.any(has_departure):
            since_start_s = (s.arrival[i0:i1] - t0).astype(np.int64)
            leave = (since_start_s[has_departure] + dwell_s[has_departure].astype(np.int64)) // (
                step_min * _S_PER_MIN
            )
            departure[has_departure] = np.maximum(leave, steps[has_departure] + 1)
        return CarArrivals(steps, battery, soc0, target, patience, curve, scale, departure, max_kw)


def _fill(recorded: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Recorded values where known (not NaN), drawn ones elsewhere."""
    return np.where(np.isnan(recorded), drawn, recorded).astype(np.float64)


@dataclass(frozen=True)
class _FleetArrays:
    """Per-vehicle-model arrays of an :class:`EVConfig`, and its curves on one common SoC grid."""

    share: np.ndarray  # normalised shares
    battery_kwh: np.ndarray
    curve_id: np.ndarray  # int64 index into sorted(ev.curves)
    power_scale: np.ndarray
    curves: np.ndarray  # [n_curves, 2, P] acceptance-curve tables (megapod_gym.sim.curves)


_FLEET_CACHE: dict[int, tuple[EVConfig, _FleetArrays]] = {}


def _fleet_arrays(ev: EVConfig) -> _FleetArrays:
    """Arrays derived from ``ev`` (cached per config object; configs are immutable)."""
    hit = _FLEET_CACHE.get(id(ev))
    if hit is not None and hit[0] is ev:
        return hit[1]
    shares = np.array([v.share for v in ev.fleet], dtype=np.float64)
    names = sorted(ev.curves)
    arrays = _FleetArrays(
        share=shares / shares.sum(),
        battery_kwh=np.array([v.battery_kwh for v in ev.fleet], dtype=np.float64),
        curve_id=np.array([names.index(v.curve) for v in ev.fleet], dtype=np.int64),
        power_scale=np.array([v.power_scale for v in ev.fleet], dtype=np.float64),
        curves=curve_tables(ev),
    )
    if len(_FLEET_CACHE) > 64:
        _FLEET_CACHE.clear()
    _FLEET_CACHE[id(ev)] = (ev, arrays)  # the reference keeps id(ev) from being reused
    return arrays


@njit(cache=True)
def _soc_after_minutes(
    soc0: np.ndarray,
    duration_min: np.ndarray,
    battery_kwh: np.ndarray,
    curve_id: np.ndarray,
    power_scale: np.ndarray,
    curves: np.ndarray,
    cap_kw: np.ndarray,
) -> np.ndarray:
    """SoC each car reaches charging ``duration_min`` from ``soc0`` at its acceptance-curve limit
    (``cap_kw`` per car), capped at 1: :func:`megapod_gym.sim.curves.charge_for_minutes`."""
    out = np.empty(soc0.shape[0])
    for k in range(soc0.shape[0]):
        out[k] = charge_for_minutes(
            soc0[k], 1.0, battery_kwh[k], curves[curve_id[k]], power_scale[k], cap_kw[k],
            duration_min[k],
        )[1]  # fmt: skip
    return out


def _warm_up_duration_kernel() -> None:
    """Compile (or load from numba's cache) :func:`_soc_after_minutes` for the types used."""
    one = np.ones(1)
    _soc_after_minutes(
        one * 0.5,
        one,
        one * 75.0,
        np.zeros(1, dtype=np.int64),
        one,
        np.array([[[0.0, 1.0], [1.0, 1.0]]]),
        one * 250.0,
    )


# ---------------------------------------------------------------------------------- date helpers
def _to_date(day: np.datetime64) -> dt.date:
    return day.astype("datetime64[D]").astype(dt.date)


def _ceil_to_day(t: np.datetime64) -> np.datetime64:
    day = t.astype("datetime64[D]")
    return day if day == t else day + np.timedelta64(1, "D")


def _fmt(t: np.datetime64) -> str:
    return str(np.datetime64(t, "m")).replace("T", " ")


def _days(delta: np.timedelta64) -> float:
    return float(delta.astype("timedelta64[s]").astype(np.int64)) / _S_PER_DAY


# ------------------------------------------------------------------------------------- CSV parsing
class _Table:
    """Rows of one CSV file as strings, with the line number of each row."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.name = str(path)
        self.naive = True  # no timestamp carried a UTC offset (set by timestamps())
        if not path.is_file():
            raise ReplayError(f"{self.name}: {what} file not found (row -, column -)")
        opener = (
            (lambda: gzip.open(path, "rt", encoding="utf-8-sig", newline=""))
            if path.suffix == ".gz"
            else (lambda: path.open("r", encoding="utf-8-sig", newline=""))
        )
        try:
            with opener() as fh:
                reader = csv.reader(fh)
                header: list[str] | None = None
                rows: list[list[str]] = []
                lines: list[int] = []
                for raw in reader:
                    if not raw or all(not c.strip() for c in raw):
                        continue  # blank line
                    if header is None:
                        header = [c.strip() for c in raw]
                        self.header_line = reader.line_num
                        continue
                    rows.append(raw)
                    lines.append(reader.line_num)
        except (OSError, UnicodeDecodeError, csv.Error, EOFError, zlib.error) as exc:
            raise ReplayError(
                f"{self.name}: cannot read {what} file: {exc} (row -, column -)"
            ) from None
        if header is None:
            raise ReplayError(f"{self.name}: row 1, column -: empty file, expected a header row")
        seen: set[str] = set()
        for col in header:
            if col in seen:
                raise ReplayError(
                    f"{self.name}: row {self.header_line}, column {col!r}: column appears twice"
                )
            seen.add(col)
        self.header = header
        self.rows = rows
        self.lines = lines

    def error(self, line: int, column: str, message: str) -> ReplayError:
        return ReplayError(f"{self.name}: row {line}, column {column!r}: {message}")

    def check_columns(self, allowed: Sequence[str], required: Sequence[str]) -> None:
        """Header has only ``allowed`` columns and all ``required`` ones; rows match its width."""
        unknown = [c for c in self.header if c not in allowed]
        missing = [c for c in required if c not in self.header]
        if unknown:
            also = f"; missing required column(s): {', '.join(missing)}" if missing else ""
            raise ReplayError(
                f"{self.name}: row {self.header_line}, column {', '.join(map(repr, unknown))}: unknown "
                f"column(s); allowed columns: {', '.join(allowed)}{also}"
            )
        if missing:
            raise ReplayError(
                f"{self.name}: row {self.header_line}, column {missing[0]!r}: required column missing "
                f"(header has: {', '.join(self.header)})"
            )
        for raw, line in zip(self.rows, self.lines, strict=True):
            if len(raw) != len(self.header):
                raise ReplayError(
                    f"{self.name}: row {line}, column -: {len(raw)} fields but the header has "
                    f"{len(self.header)}"
                )

    def need_rows(self, minimum: int) -> None:
        if len(self.rows) < minimum:
            raise ReplayError(
                f"{self.name}: row {self.header_line + 1}, column -: needs at least {minimum} data "
                f"row(s), found {len(self.rows)}"
            )

    def cells(self, column: str) -> list[tuple[int, str]]:
        j = self.header.index(column)
        return [(line, raw[j].strip()) for raw, line in zip(self.rows, self.lines, strict=True)]

    def timestamps(
        self, column: str, tz: ZoneInfo | None = None, *, optional: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Parse a timestamp column into local wall-clock times and their UTC offsets.

        Returns ``(local, utc_offset_s)``: ``local`` is naive ``datetime64[s]``; ``utc_offset_s``
        (``int64`` seconds, local = UTC + offset) is ``None`` when ``tz`` is ``None`` (naive
        times as they stand, or one shared UTC offset dropped). With ``tz``, offset timestamps are
        converted into ``tz`` and naive ones are read as ``tz`` local time (see the module
        docstring for the repeated and the skipped hour). Sets ``self.naive`` (no row had an
        offset) and, without ``tz``, ``self.shared_offset`` (the one offset of the column, None
        for naive times) and ``self.offset_line`` (the first row giving it). ``optional``: empty
        cells are NaT instead of an error.
        """
        out = np.empty(len(self.rows), dtype="datetime64[s]")
        offsets = np.zeros(len(self.rows), dtype=np.int64)
        offset: dt.timedelta | None = None
        first_line = 0
        previous_utc: dt.datetime | None = None  # absolute time of the previous row (with tz)
        self.naive = True
        for i, (line, text) in enumerate(self.cells(column)):
            if not text:
                if optional:
                    out[i] = np.datetime64("NaT")
                    continue
                raise self.error(line, column, "empty timestamp")
            iso = text[:-1] + "+00:00" if text[-1] in "zZ" else text
            try:
                stamp = dt.datetime.fromisoformat(iso)
            except ValueError:
                raise self.error(
                    line, column, f"cannot parse timestamp {text!r} (expected ISO 8601)"
                ) from None
            this = stamp.utcoffset()
            if this is not None:
                self.naive = False
            if tz is None:
                if not first_line:
                    offset, first_line = this, line
                elif this != offset:
                    raise self.error(
                        line,
                        column,
                        f"UTC offset {_fmt_offset(this)} differs from {_fmt_offset(offset)} on row "
                        f"{first_line}; give naive local times or one fixed offset for the whole "
                        "file, or declare replay.timezone (an IANA name, e.g. America/Los_Angeles) "
                        "to convert the timestamps into the site's local time",
                    )
                out[i] = np.datetime64(stamp.replace(tzinfo=None), "s")
                continue
            local = (
                stamp.astimezone(tz)
                if this is not None
                else self._localize(stamp, tz, previous_utc, line, column)
            )
            previous_utc = local.astimezone(dt.timezone.utc)
            out[i] = np.datetime64(local.replace(tzinfo=None), "s")
            offsets[i] = int((local.utcoffset() or dt.timedelta(0)).total_seconds())
        self.shared_offset, self.offset_line = offset, first_line
        return out, (None if tz is None else offsets)

    def _localize(
        self,
        stamp: dt.datetime,
        tz: ZoneInfo,
        previous_utc: dt.datetime | None,
        line: int,
        column: str,
    ) -> dt.datetime:
        """Naive local time ``stamp`` in ``tz``: the first occurrence of a repeated local time
        unless it would not come after the previous row; a skipped local time is an error."""
        first = stamp.replace(tzinfo=tz, fold=0)
        first_utc = first.astimezone(dt.timezone.utc)
        if first_utc.astimezone(tz).replace(tzinfo=None) != stamp:
            raise self.error(
                line,
                column,
                f"local time {stamp.isoformat(sep=' ')} does not exist in {tz.key} (the clocks "
                "jump forward over it when daylight saving time starts); is the file in another "
                "zone than replay.timezone?",
            )
        second = stamp.replace(tzinfo=tz, fold=1)
        if previous_utc is not None and first_utc <= previous_utc:
            if second.astimezone(dt.timezone.utc) != first_utc:  # repeated: the second occurrence
                return second.astimezone(tz)
        return first.astimezone(tz)

    def numbers(
        self,
        column: str,
        lo: float | None = None,
        hi: float | None = None,
        *,
        optional: bool = False,
        lo_open: bool = False,
        unit: str = "",
    ) -> np.ndarray:
        """Parse a numeric column (empty cells -> NaN if ``optional``); check ``[lo, hi]``."""
        out = np.full(len(self.rows), np.nan)
        if column not in self.header:
            return out
        for i, (line, text) in enumerate(self.cells(column)):
            if not text:
                if optional:
                    continue
                raise self.error(line, column, "empty value")
            try:
                x = float(text)
            except ValueError:
                raise self.error(line, column, f"not a number: {text!r}") from None
            if not math.isfinite(x):
                raise self.error(line, column, f"value must be finite (got {text!r})")
            below = lo is not None and (x <= lo if lo_open else x < lo)
            above = hi is not None and x > hi
            if below or above:
                left = "(" if lo_open else "["
                lo_s = "-inf" if lo is None else f"{lo:g}"
                hi_s = "inf)" if hi is None else f"{hi:g}]"
                raise self.error(
                    line,
                    column,
                    f"value {x:g}{unit} outside the physical range {left}{lo_s}, {hi_s}",
                )
            out[i] = x
        return out


def _fmt_offset(offset: dt.timedelta | None) -> str:
    if offset is None:
        return "none (naive)"
    total = int(offset.total_seconds())
    sign = "+" if total >= 0 else "-"
    return f"{sign}{abs(total) // 3600:02d}:{abs(total) % 3600 // 60:02d}"


def _check_spacing(
    table: _Table, stamps: np.ndarray, column: str, utc_offset_s: np.ndarray | None = None
) -> None:
    """Strictly increasing absolute times (``stamps - utc_offset_s``) without gaps wider than
    max(2 x median spacing, 1 h); errors show local times. Naive timestamps read without a zone
    that repeat or skip an hour get a hint to declare ``replay.timezone``."""
    t_s = stamps.astype(np.int64)
    if utc_offset_s is not None:
        t_s = t_s - utc_offset_s
    diff = np.diff(t_s)
    dst_hint = table.naive and utc_offset_s is None
    bad = np.flatnonzero(diff <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        message = (
            f"timestamp {_fmt(stamps[i])} is not after the previous row's {_fmt(stamps[i - 1])} "
            "(timestamps must be strictly increasing)"
        )
        if dst_hint and -diff[i - 1] < 3600:
            message += (
                "; naive local times that repeat like this are ambiguous (e.g. the repeated hour "
                "when daylight saving time ends): declare replay.timezone (an IANA name, e.g. "
                "America/Los_Angeles) or give timestamps with UTC offsets"
            )
        raise table.error(table.lines[i], column, message)
    limit_s = max(GAP_MEDIAN_FACTOR * float(np.median(diff)), float(MIN_GAP_LIMIT_S))
    gaps = np.flatnonzero(diff > limit_s)
    if gaps.size:
        i = int(gaps[0]) + 1
        message = (
            f"gap of {diff[i - 1] / 60:g} min after {_fmt(stamps[i - 1])} exceeds the limit of "
            f"{limit_s / 60:g} min (max of {GAP_MEDIAN_FACTOR:g} x median spacing and "
            f"{MIN_GAP_LIMIT_S // 60} min); fill missing data before replaying"
        )
        if dst_hint and diff[i - 1] - 3600 <= limit_s:
            message += (
                " (if this is the hour skipped when daylight saving time starts, declare "
                "replay.timezone, an IANA name such as America/Los_Angeles)"
            )
        raise table.error(table.lines[i], column, message)


# price columns and their factor to $/kWh (the currency factor of the config applies on top)
PRICE_UNITS: dict[str, float] = {
    "price_usd_per_kwh": 1.0,
    "price_usd_per_mwh": 1e-3,
    "price_cents_per_kwh": 1e-2,
}
# a $/kWh series whose median magnitude exceeds this is almost surely $/MWh or cents
PRICE_MEDIAN_PLAUSIBLE_USD_PER_KWH = 2.0


def _read_prices(path: Path, to_usd: float = 1.0, tz: ZoneInfo | None = None) -> TimeSeries:
    table = _Table(path, "prices")
    table.check_columns(("timestamp", *PRICE_UNITS), ("timestamp",))
    given = [c for c in PRICE_UNITS if c in table.header]
    if len(given) != 1:
        raise ReplayError(
            f"{table.name}: row {table.header_line}, column 'price_usd_per_kwh': give exactly one "
            f"of {', '.join(PRICE_UNITS)} (header has: {', '.join(table.header)})"
        )
    column = given[0]
    factor = PRICE_UNITS[column] * to_usd
    table.need_rows(2)
    stamps, utc_offset_s = table.timestamps("timestamp", tz)
    lo, hi = PRICE_RANGE_USD_PER_KWH
    unit = {"price_usd_per_kwh": "$/kWh", "price_usd_per_mwh": "$/MWh"}.get(column, "cents/kWh")
    values = table.numbers(column, lo / factor, hi / factor, unit=f" {unit}") * factor
    median = float(np.median(np.abs(values)))
    if median > PRICE_MEDIAN_PLAUSIBLE_USD_PER_KWH:
        raise ReplayError(
            f"{table.name}: row -, column {column!r}: the median price is {median:.2f} $/kWh, "
            "implausible for energy; is the series in $/MWh (name the column price_usd_per_mwh) "
            "or cents (price_cents_per_kwh), or is replay.price_to_usd wrong?"
        )
    _check_spacing(table, stamps, "timestamp", utc_offset_s)
    return TimeSeries(stamps, values, utc_offset_s)


# carbon columns and their factor to g/kWh (gCO2 per kWh; 1 lb = 0.45359237 kg, exact)
CARBON_UNITS: dict[str, float] = {
    "carbon_g_per_kwh": 1.0,
    "carbon_kg_per_mwh": 1.0,
    "carbon_lb_per_mwh": 0.45359237,
}
_CARBON_UNIT_LABELS = {
    "carbon_g_per_kwh": "g/kWh",
    "carbon_kg_per_mwh": "kg/MWh",
    "carbon_lb_per_mwh": "lb/MWh",
}
# a g/kWh series whose median exceeds this is dirtier than an all-lignite fleet (~1.2 t/MWh):
# almost surely lb/MWh (E, our threshold)
CARBON_MEDIAN_PLAUSIBLE_G_PER_KWH = 1300.0


def _read_carbon(path: Path, tz: ZoneInfo | None = None) -> TimeSeries:
    table = _Table(path, "carbon intensity")
    table.check_columns(("timestamp", *CARBON_UNITS), ("timestamp",))
    given = [c for c in CARBON_UNITS if c in table.header]
    if len(given) != 1:
        raise ReplayError(
            f"{table.name}: row {table.header_line}, column 'carbon_g_per_kwh': give exactly one "
            f"of {', '.join(CARBON_UNITS)} (header has: {', '.join(table.header)})"
        )
    column = given[0]
    factor = CARBON_UNITS[column]
    table.need_rows(2)
    stamps, utc_offset_s = table.timestamps("timestamp", tz)
    lo, hi = CARBON_RANGE_G_PER_KWH
    unit = _CARBON_UNIT_LABELS[column]
    values = table.numbers(column, lo / factor, hi / factor, unit=f" {unit}") * factor
    median = float(np.median(values))
    if median > CARBON_MEDIAN_PLAUSIBLE_G_PER_KWH:
        raise ReplayError(
            f"{table.name}: row -, column {column!r}: the median carbon intensity is "
            f"{median:.0f} g/kWh, above {CARBON_MEDIAN_PLAUSIBLE_G_PER_KWH:g} g/kWh (an all-lignite "
            "fleet); is the series in lb/MWh (name the column carbon_lb_per_mwh)?"
        )
    _check_spacing(table, stamps, "timestamp", utc_offset_s)
    return TimeSeries(stamps, values, utc_offset_s)


def _read_temperature(path: Path, tz: ZoneInfo | None = None) -> TimeSeries:
    table = _Table(path, "temperature")
    table.check_columns(("timestamp", "ambient_c", "ambient_f"), ("timestamp",))
    given = [c for c in ("ambient_c", "ambient_f") if c in table.header]
    if len(given) != 1:
        raise ReplayError(
            f"{table.name}: row {table.header_line}, column 'ambient_c': give exactly one of "
            f"ambient_c or ambient_f (header has: {', '.join(table.header)})"
        )
    table.need_rows(2)
    stamps, utc_offset_s = table.timestamps("timestamp", tz)
    lo, hi = TEMPERATURE_RANGE_C
    if given[0] == "ambient_c":
        values = table.numbers("ambient_c", lo, hi, unit=" deg C")
    else:
        f_lo, f_hi = lo * 9 / 5 + 32, hi * 9 / 5 + 32
        values = (table.numbers("ambient_f", f_lo, f_hi, unit=" deg F") - 32.0) * 5.0 / 9.0
    _check_spacing(table, stamps, "timestamp", utc_offset_s)
    return TimeSeries(stamps, values, utc_offset_s)


def _read_sessions(path: Path, tz: ZoneInfo | None = None) -> SessionLog:
    table = _Table(path, "EV sessions")
    table.check_columns(_SESSION_COLUMNS, ("arrival_time",))
    header = table.header
    if not (
        "energy_kwh" in header
        or "energy_wh" in header
        or "duration_min" in header
        or ("arrival_soc" in header and "target_soc" in header)
    ):
        raise ReplayError(
            f"{table.name}: row {table.header_line}, column 'energy_kwh': needs at least one of "
            f"energy_kwh, duration_min, or both arrival_soc and target_soc (header has: {', '.join(header)})"
        )
    table.need_rows(1)
    arrival, _ = table.timestamps("arrival_time", tz)  # local wall-clock arrival times
    dwell = _read_dwell(table, arrival, tz)
    max_kw = table.numbers("max_power_kw", 0.0, optional=True, lo_open=True, unit=" kW")
    if "energy_kwh" in header and "energy_wh" in header:
        raise ReplayError(
            f"{table.name}: row {table.header_line}, column 'energy_wh': give energy_kwh or "
            "energy_wh, not both"
        )
    if "energy_wh" in header:
        energy = table.numbers("energy_wh", 0.0, optional=True, unit=" Wh") / 1000.0
    else:
        energy = table.numbers("energy_kwh", 0.0, optional=True, unit=" kWh")
    known = energy[~np.isnan(energy)]
    if known.size and float(np.median(known)) > SESSION_MEDIAN_PLAUSIBLE_KWH:
        raise ReplayError(
            f"{table.name}: row -, column 'energy_kwh': the median session energy is "
            f"{float(np.median(known)):,.0f} kWh, implausible for one car; is the column in Wh "
            "(name it energy_wh)?"
        )
    duration = table.numbers("duration_min", 0.0, optional=True, unit=" min")
    battery = table.numbers("battery_kwh", 0.0, optional=True, lo_open=True, unit=" kWh")
    soc0 = table.numbers("arrival_soc", 0.0, 1.0, optional=True)
    target = table.numbers("target_soc", 0.0, 1.0, optional=True)
    patience = table.numbers("patience_min", 0.0, optional=True, unit=" min")
    for i, line in enumerate(table.lines):
        if not np.isnan(target[i]):
            if np.isnan(soc0[i]):
                raise table.error(
                    line, "arrival_soc", "target_soc is given, so arrival_soc is needed too"
                )
            if target[i] <= soc0[i]:
                raise table.error(
                    line,
                    "target_soc",
                    f"target_soc {target[i]:g} must exceed arrival_soc {soc0[i]:g}",
                )
        elif np.isnan(energy[i]) and np.isnan(duration[i]):
            present = [c for c in ("energy_kwh", "duration_min", "target_soc") if c in header]
            raise table.error(
                line,
                present[0],
                f"no charge given: fill one of {', '.join(present)} (target_soc with arrival_soc)",
            )
    return SessionLog(arrival, energy, duration, battery, soc0, target, patience, dwell, max_kw)


def _read_dwell(table: _Table, arrival: np.ndarray, tz: ZoneInfo | None) -> np.ndarray:
    """Minutes from arrival to departure per session (local wall clock), NaN where the file gives
    none: from ``departure_time`` (after ``arrival_time``; without ``replay.timezone`` with the
    arrivals' UTC offset) or ``dwell_min`` (> 0); not both columns."""
    header = table.header
    if "departure_time" in header and "dwell_min" in header:
        raise ReplayError(
            f"{table.name}: row {table.header_line}, column 'dwell_min': give departure_time or "
            "dwell_min, not both"
        )
    if "dwell_min" in header:
        return table.numbers("dwell_min", 0.0, optional=True, lo_open=True, unit=" min")
    dwell = np.full(arrival.shape, np.nan)
    if "departure_time" not in header:
        return dwell
    arrival_offset, arrival_naive = table.shared_offset, table.naive
    departure, _ = table.timestamps("departure_time", tz, optional=True)
    if (
        tz is None
        and table.offset_line
        and (table.shared_offset != arrival_offset or table.naive != arrival_naive)
    ):
        raise table.error(
            table.offset_line,
            "departure_time",
            f"UTC offset {_fmt_offset(table.shared_offset)} differs from the arrival_time "
            f"column's {_fmt_offset(arrival_offset)}; give both columns the same offset (or naive "
            "local times), or declare replay.timezone",
        )
    for i, line in enumerate(table.lines):
        if np.isnat(departure[i]):
            continue
        seconds = int((departure[i] - arrival[i]).astype(np.int64))
        if seconds <= 0:
            raise table.error(
                line,
                "departure_time",
                f"departure {_fmt(departure[i])} is not after the arrival {_fmt(arrival[i])}",
            )
        dwell[i] = seconds / 60.0
    return dwell


def load_replay(cfg: ReplayConfig) -> ReplayData:
    """Read and validate the replay files named in ``cfg``.

    Paths are used as given (the scenario loader has already made them absolute, relative to the
    YAML file that names them). Files not named are ``None`` in the result.

    Parameters
    ----------
    cfg
        The scenario's replay section.

    Returns
    -------
    ReplayData
        Prices converted to $/kWh, carbon intensity to g/kWh, temperatures in deg C, sessions
        sorted by arrival; timestamps in local time of ``cfg.timezone`` when it is set.

    Raises
    ------
    ReplayError
        On a missing file or any malformed cell, naming the file, the row (line number, header =
        1) and the column.
    """
    sources: dict[str, str] = {}
    prices = temperature = carbon = None
    sessions = None
    tz = ZoneInfo(cfg.timezone) if cfg.timezone is not None else None
    if cfg.prices_csv is not None:
        sources["prices"] = cfg.prices_csv
        prices = _read_prices(Path(cfg.prices_csv), cfg.price_to_usd, tz)
    if cfg.carbon_csv is not None:
        sources["carbon"] = cfg.carbon_csv
        carbon = _read_carbon(Path(cfg.carbon_csv), tz)
    if cfg.temperature_csv is not None:
        sources["temperature"] = cfg.temperature_csv
        temperature = _read_temperature(Path(cfg.temperature_csv), tz)
    if cfg.ev_sessions_csv is not None:
        sources["sessions"] = cfg.ev_sessions_csv
        sessions = _read_sessions(Path(cfg.ev_sessions_csv), tz)
        if np.any(np.isnan(sessions.target_soc) & np.isnan(sessions.energy_kwh)):
            _warm_up_duration_kernel()  # compile now (env construction), not at the first reset
    return ReplayData(
        prices=prices, temperature=temperature, sessions=sessions, carbon=carbon, sources=sources
    )
