"""The replayed data containers (file formats, units and time rules:
:mod:`megapod_gym.scenario.replay`): :class:`TimeSeries` (a piecewise constant series in
absolute time, averaged over local wall-clock steps), :class:`SessionLog` (recorded EV sessions)
and :class:`ReplayData` (``start_days``, ``series_on``, ``cars_on``, ``hourly_arrival_rate``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from megapod_gym.config.schema import EVConfig
from megapod_gym.scenario.arrivals import NO_DEPARTURE_STEP, CarArrivals, sample_beta
from megapod_gym.scenario.replay_cars import (
    DURATION_POWER_CAP_KW,
    _fill,
    _fleet_arrays,
    _soc_after_minutes,
)
from megapod_gym.scenario.replay_table import ReplayError, _fmt

_S_PER_MIN = 60
_S_PER_DAY = 86400


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


# ---------------------------------------------------------------------------------- date helpers
def _to_date(day: np.datetime64) -> dt.date:
    return day.astype("datetime64[D]").astype(dt.date)


def _ceil_to_day(t: np.datetime64) -> np.datetime64:
    day = t.astype("datetime64[D]")
    return day if day == t else day + np.timedelta64(1, "D")


def _days(delta: np.timedelta64) -> float:
    return float(delta.astype("timedelta64[s]").astype(np.int64)) / _S_PER_DAY
