"""Exogenous traces: everything outside the controller's influence, sampled once per episode.

``TraceSampler(config).sample(seeds)`` returns one :class:`ExogenousTrace` with a leading batch
axis (one row per seed). Row ``i`` depends only on ``(config, seeds[i])``: the same seed gives the
same trace bit for bit, whatever the batch it is sampled in. The same trace drives the environment,
the hindsight optimum and MPC, so every policy is compared on identical days.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from megapod_gym.config.schema import ScenarioConfig
from megapod_gym.scenario.arrivals import (
    NO_DEPARTURE_STEP,
    CarArrivals,
    CarSampler,
    arrival_rate_per_h,
)
from megapod_gym.scenario.calendar import Calendar, make_calendar, window_mask
from megapod_gym.scenario.noise import ar1_series
from megapod_gym.scenario.prices import RealtimeCalendar, realtime_price, tou_price
from megapod_gym.scenario.replay import ReplayData, ReplayError, load_replay

# Trace seeds >= HELD_OUT_SEED_BASE are held out for evaluation: environments reset without a seed
# draw their trace seeds below it, so training never sees an evaluation day.
HELD_OUT_SEED_BASE = 1_000_000

# 5-minute autocorrelation of the ambient-temperature and inference-load noise
_AR1_PHI_5MIN = 0.97


@dataclass(frozen=True)
class ExogenousTrace:
    """Exogenous inputs of ``B`` sites over ``T`` episode steps (+ ``H`` forecast steps for prices).

    Per-step arrays have shape ``[B, T]``; price arrays ``[B, T + H]``; car arrays ``[B, N]`` where
    ``N`` is the largest number of cars of any site, padded with ``arrival_step = T`` (never).

    A car with ``car_departure_step < NO_DEPARTURE_STEP`` (replayed sessions with a departure)
    holds its stall until the start of that step, whether or not it has reached its target SoC, and
    leaves the queue unserved (balks) if it is still waiting then; a car without one (every
    synthetic car) leaves its stall at its target SoC. ``car_max_kw`` caps the power into the car
    besides its acceptance curve and the stall (``0`` = no cap: every synthetic car).
    """

    seeds: np.ndarray  # [B] int64, the seeds the rows were sampled from
    step_min: int
    n_steps: int  # T
    horizon_steps: int  # H
    start_date: np.ndarray  # [B] datetime64[D], local date of step 0 (at episode.start_hour)
    hour: np.ndarray  # [B, T+H] fractional hour of day
    weekday: np.ndarray  # [B, T+H] 0 = Monday
    month: np.ndarray  # [B, T+H] 1..12
    price_usd_per_kwh: np.ndarray  # [B, T+H] energy import price
    price_forecast_usd_per_kwh: np.ndarray  # [B, T+H] what the controller may know ahead
    export_price_usd_per_kwh: np.ndarray  # [B, T+H]
    ev_price_usd_per_kwh: np.ndarray  # [B, T] retail price charged to drivers
    ambient_c: np.ndarray  # [B, T]
    inference_demand_frac: np.ndarray  # [B, T] inference load as a fraction of full-speed IT
    training_arrival_kwh: np.ndarray  # [B, T] new training work (IT kWh at full speed)
    carbon_g_per_kwh: np.ndarray  # [B, T] marginal grid carbon intensity
    demand_active: np.ndarray  # [B, T, K] bool: demand charge k applies to this step
    arrival_rate_per_h: np.ndarray  # [B, T+H] expected EV arrivals per hour
    n_cars: np.ndarray  # [B] int64
    car_arrival_step: np.ndarray  # [B, N] int64
    car_battery_kwh: np.ndarray  # [B, N]
    car_arrival_soc: np.ndarray  # [B, N]
    car_target_soc: np.ndarray  # [B, N]
    car_patience_min: np.ndarray  # [B, N]
    car_curve_id: np.ndarray  # [B, N] int64
    car_power_scale: np.ndarray  # [B, N]
    car_departure_step: np.ndarray  # [B, N] int64, NO_DEPARTURE_STEP = leaves at its target SoC
    car_max_kw: np.ndarray  # [B, N] kW into the car, 0 = no cap beyond curve and stall

    @property
    def batch_size(self) -> int:
        return int(self.seeds.shape[0])

    @property
    def dt_h(self) -> float:
        return self.step_min / 60.0

    @property
    def start_yyyymmdd(self) -> np.ndarray:
        """``start_date`` as integers ``YYYYMMDD`` ``[B]`` (a number, for ``info`` dicts)."""
        days = self.start_date.astype("datetime64[D]")
        months = days.astype("datetime64[M]")
        year = months.astype("datetime64[Y]").astype(np.int64) + 1970
        month = months.astype(np.int64) % 12 + 1
        day = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
        return year * 10_000 + month * 100 + day

    def site(self, i: int) -> ExogenousTrace:
        """Row ``i`` as a batch of one (car arrays trimmed to that site's cars)."""
        n = max(int(self.n_cars[i]), 1)
        kwargs = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value[i : i + 1]
                if f.name.startswith("car_"):
                    value = value[:, :n]
            kwargs[f.name] = value
        return ExogenousTrace(**kwargs)

    @staticmethod
    def stack(traces: Sequence[ExogenousTrace]) -> ExogenousTrace:
        """Concatenate batches along the batch axis (car arrays padded to the longest)."""
        first = traces[0]
        n_max = max(t.car_arrival_step.shape[1] for t in traces)
        kwargs = {}
        for f in fields(first):
            values = [getattr(t, f.name) for t in traces]
            if not isinstance(values[0], np.ndarray):
                if any(v != values[0] for v in values):
                    raise ValueError(f"cannot stack traces with different {f.name}")
                kwargs[f.name] = values[0]
                continue
            if f.name.startswith("car_"):
                fill = first.n_steps if f.name == "car_arrival_step" else _CAR_PAD.get(f.name, 0)
                values = [_pad(v, n_max, fill) for v in values]
            elif f.name == "demand_active":  # sites with fewer demand charges: never active
                k_max = max(v.shape[2] for v in values)
                values = [
                    np.concatenate(
                        [v, np.zeros(v.shape[:2] + (k_max - v.shape[2],), dtype=np.bool_)], axis=2
                    )
                    for v in values
                ]
            kwargs[f.name] = np.concatenate(values, axis=0)
        return ExogenousTrace(**kwargs)


# padding of car arrays beyond a site's cars (besides arrival_step = T): the no-car defaults
_CAR_PAD: dict[str, float] = {"car_departure_step": NO_DEPARTURE_STEP}


def _pad(a: np.ndarray, n: int, fill: float) -> np.ndarray:
    if a.shape[1] == n:
        return a
    out = np.full((a.shape[0], n), fill, dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


class TraceSampler:
    """Samples :class:`ExogenousTrace` batches for one scenario (replay files are read once)."""

    def __init__(self, config: ScenarioConfig) -> None:
        self.config = config
        ep = config.episode
        self.n_steps = ep.n_steps
        self.horizon_steps = int(round(ep.forecast_horizon_h * 60 / ep.step_min))
        if _has_replay(config) and ep.start_min:
            raise ValueError(
                f"episode.start_hour: replayed data starts at local midnight, so it must be 0 "
                f"(got {ep.start_hour})"
            )
        self.replay: ReplayData | None = load_replay(config.replay) if _has_replay(config) else None
        self._start_days = self._candidate_start_days()
        self.train_days, self.held_out_days = self._split_recorded_days()
        self._days: dict[dt.date, _DayTemplate] = {}
        self._replay_rate_per_h = self._replayed_arrival_rate()
        self._cars = CarSampler(config.ev, ep.dt_h)
        self._phi = _AR1_PHI_5MIN ** (ep.step_min / 5.0)  # ambient and inference noise

    def _split_recorded_days(self) -> tuple[list[dt.date], list[dt.date]]:
        """(training start days, held-out start days) of replayed data: the last
        ``replay.held_out_frac`` of the start days are held out, and a training episode never
        touches a held-out day. Synthetic traces: every start day in both (the seed alone
        separates training and evaluation)."""
        days = self._start_days
        if self.replay is None or self.config.replay.held_out_frac == 0.0:
            return days, days
        n_held = max(1, int(round(self.config.replay.held_out_frac * len(days))))
        held = days[len(days) - n_held :]
        ep = self.config.episode
        episode_days = -(-self.n_steps * ep.step_min // (24 * 60))
        train = [d for d in days if d + dt.timedelta(days=episode_days - 1) < held[0]]
        if not train:
            raise ReplayError(
                f"replay: {len(days)} possible start days ({days[0]} to {days[-1]}) are too few to "
                f"hold out {n_held} for evaluation and keep training days before them; give more "
                "data or set replay.held_out_frac: 0 (no train/evaluation separation)"
            )
        return train, held

    def _replayed_arrival_rate(self) -> np.ndarray | None:
        """``[24]`` arrivals per hour of day from the recorded sessions of the days training may
        see (every day an episode starting on a training day touches, before the first held-out
        day); None when no sessions are replayed (the config's arrival profile is used)."""
        if self.replay is None or self.replay.sessions is None:
            return None
        ep = self.config.episode
        episode_days = -(-self.n_steps * ep.step_min // (24 * 60))
        days = {d + dt.timedelta(days=k) for d in self.train_days for k in range(episode_days)}
        if self.held_out_days is not self.train_days:  # a real split: nothing from held-out days
            days = {d for d in days if d < self.held_out_days[0]}
        return self.replay.hourly_arrival_rate(sorted(days))

    def replay_day(self, seed: int) -> dt.date:
        """The recorded start day trace ``seed`` replays: evaluation seeds (>= HELD_OUT_SEED_BASE)
        map to held-out days, others to training days; consecutive seeds visit every day of their
        pool once per pass, in an order shuffled per pass (sampling without replacement)."""
        pool, k = (
            (self.held_out_days, seed - HELD_OUT_SEED_BASE)
            if seed >= HELD_OUT_SEED_BASE
            else (self.train_days, seed)
        )
        n = len(pool)
        order = np.random.default_rng([k // n, n, 0x5EED]).permutation(n)
        return pool[int(order[k % n])]

    def _candidate_start_days(self) -> list[dt.date]:
        ep = self.config.episode
        if self.replay is not None:
            days = self.replay.start_days(self.n_steps, ep.step_min)
            lo, hi = ep.start_day_of_year
            in_range = [d for d in days if lo <= d.timetuple().tm_yday <= hi]
            return in_range or days
        return list(_days_of_year(ep.year, *ep.start_day_of_year))

    def sample(
        self,
        seeds: Sequence[int] | np.ndarray,
        start_dates: Sequence[dt.date] | None = None,
    ) -> ExogenousTrace:
        """One trace row per seed (any non-negative integer; ``trace.seeds`` keeps it modulo
        2**63 so it fits an int64). ``start_dates`` (one local date per seed) replaces the
        sampled start day, e.g. so that the sites of a fleet share one date.

        The batch is drawn in one pass: what depends only on the start day (calendar, tariffs,
        replayed series, mean profiles) is built once per day and cached; per seed only the
        random draws remain, and rows are written straight into the batch arrays.
        """
        seeds = [int(s) for s in np.asarray(seeds, dtype=object).reshape(-1)]
        if not seeds:
            raise ValueError("seeds must not be empty")
        if min(seeds) < 0:
            raise ValueError(f"trace seeds must be non-negative integers (got {min(seeds)})")
        if start_dates is not None and len(start_dates) != len(seeds):
            raise ValueError(f"start_dates has {len(start_dates)} dates for {len(seeds)} seeds")
        if start_dates is not None and self.replay is not None:
            raise ValueError("start_dates cannot be forced on a scenario that replays CSV data")
        dates = list(start_dates) if start_dates is not None else [None] * len(seeds)
        # a (seed, date) repeated in the batch (e.g. several policies on the same days) is drawn
        # once: the draw is a function of the two, and _assemble only reads it
        draws: dict[tuple[int, dt.date | None], _SeedDraws] = {}
        for key in zip(seeds, dates):
            if key not in draws:
                draws[key] = self._draw(*key)
        return self._assemble([draws[key] for key in zip(seeds, dates)])

    # ------------------------------------------------------------------ per start day
    def _day(self, start: dt.date) -> _DayTemplate:
        """The seed-independent part of the trace of an episode starting on ``start`` (cached)."""
        tpl = self._days.get(start)
        if tpl is None:
            if len(self._days) >= _MAX_CACHED_DAYS:
                self._days.clear()
            tpl = self._days[start] = self._build_day(start)
        return tpl

    def _build_day(self, start: dt.date) -> _DayTemplate:
        cfg = self.config
        ep, tariff, compute, ev = cfg.episode, cfg.tariff, cfg.compute, cfg.ev
        T, H = self.n_steps, self.horizon_steps
        cal = make_calendar(start, T + H, ep.step_min, ep.start_min)
        ep_cal = _head(cal, T)

        # Energy prices ($/kWh) and the forecast the controller may use; None = drawn per seed.
        price = forecast = None
        if self.replay is not None and self.replay.prices is not None:
            price = self.replay.series_on("prices", start, T + H, ep.step_min)
            if tariff.energy_price == "realtime":  # a replayed wholesale series + delivery adder
                price = price + tariff.realtime_adder_usd_per_kwh
            forecast = price.copy()
        elif tariff.energy_price == "tou":
            price = tou_price(tariff, cal)
            forecast = price.copy()
        realtime = RealtimeCalendar.build(tariff.realtime, cal) if price is None else None

        ev_price = np.where(
            window_mask(ev.retail_peak_window, ep_cal),
            ev.retail_peak_usd_per_kwh,
            ev.retail_offpeak_usd_per_kwh,
        )
        # Ambient temperature: replayed, or monthly mean + daily cosine (+ AR(1) noise per seed).
        if self.replay is not None and self.replay.temperature is not None:
            ambient = self.replay.series_on("temperature", start, T, ep.step_min)
        else:
            w = cfg.weather
            ambient = np.asarray(w.monthly_mean_c)[ep_cal.month - 1] + w.daily_amplitude_c * np.cos(
                2 * np.pi * (ep_cal.hour - w.peak_hour) / 24.0
            )
        inference = compute.inference_mean_frac + compute.inference_amplitude_frac * np.cos(
            2 * np.pi * (ep_cal.hour - compute.inference_peak_hour) / 24.0
        )
        carbon = (  # g/kWh: replayed series if any, else the tariff's hourly vector
            self.replay.series_on("carbon", start, T, ep.step_min)
            if self.replay is not None and self.replay.carbon is not None
            else np.asarray(tariff.carbon_g_per_kwh, dtype=np.float64)[ep_cal.hour_index]
        )
        demand = (
            np.stack([window_mask(d.window, ep_cal) for d in tariff.demand_charges], axis=-1)
            if tariff.demand_charges
            else np.zeros((T, 0), dtype=bool)
        )
        return _DayTemplate(
            start=np.datetime64(start, "D"),
            cal=cal,
            price=price,
            forecast=forecast,
            realtime=realtime,
            ev_price=ev_price,
            ambient=ambient,
            inference=inference,
            carbon=carbon,
            demand=demand,
            rate=(
                arrival_rate_per_h(ev, cal)
                if self._replay_rate_per_h is None
                else self._replay_rate_per_h[cal.hour_index]
            ),
        )

    # ------------------------------------------------------------------ per seed
    def _draw(self, seed: int, start_date: dt.date | None) -> _SeedDraws:
        """The random part of one row. The order of the draws is the trace stream (v1): changing
        it changes every trace (``tests/scenario/data/trace_reference_v1.json`` guards it)."""
        cfg = self.config
        ep = cfg.episode
        rng = np.random.default_rng(seed)
        T = self.n_steps
        start = self._start_days[int(rng.integers(len(self._start_days)))]
        if self.replay is not None:  # the draw above stays, so the rest of the stream is unchanged
            start = self.replay_day(seed % 2**63)
        if start_date is not None:
            start = start_date
        day = self._day(start)
        price = forecast = None
        if day.realtime is not None:
            rt, rt_forecast = realtime_price(cfg.tariff.realtime, day.realtime, ep.step_min, rng)
            adder = cfg.tariff.realtime_adder_usd_per_kwh
            price, forecast = rt / 1000.0 + adder, rt_forecast / 1000.0 + adder
        ambient_noise = (
            None
            if self.replay is not None and self.replay.temperature is not None
            else ar1_series(T, cfg.weather.noise_sd_c, self._phi, rng)
        )
        inference_noise = ar1_series(T, cfg.compute.inference_noise_frac, self._phi, rng)
        if self.replay is not None and self.replay.sessions is not None:
            cars = self.replay.cars_on(start, T, ep.step_min, cfg.ev, rng)
        else:
            cars = self._cars.sample(day.rate[:T], rng)
        return _SeedDraws(seed % 2**63, day, price, forecast, ambient_noise, inference_noise, cars)

    def _assemble(self, rows: list[_SeedDraws]) -> ExogenousTrace:
        """Write the rows into batch arrays (car arrays padded with ``arrival_step = T``, no
        departure and no power cap)."""
        cfg = self.config
        T, H, B = self.n_steps, self.horizon_steps, len(rows)
        # the seed-independent fields: one table row per distinct start day, gathered per row
        index: dict[int, int] = {}  # id of a day template -> its row in the tables
        days: list[_DayTemplate] = []
        for r in rows:
            if id(r.day) not in index:
                index[id(r.day)] = len(days)
                days.append(r.day)
        day_of_row = np.array([index[id(r.day)] for r in rows])

        def by_day(name: str, dtype: type = np.float64) -> np.ndarray:
            table = np.stack([getattr(d, name) for d in days]).astype(dtype, copy=False)
            return table[day_of_row]

        drawn_price = days[0].price is None  # synthetic real-time prices: drawn per seed
        price = np.stack([r.price for r in rows]) if drawn_price else by_day("price")
        forecast = np.stack([r.forecast for r in rows]) if drawn_price else by_day("forecast")
        ambient = by_day("ambient")
        if self.replay is None or self.replay.temperature is None:
            ambient += np.stack([r.ambient_noise for r in rows])
        inference = by_day("inference")
        inference += np.stack([r.inference_noise for r in rows])
        np.clip(inference, 0.0, 1.0, out=inference)
        c = cfg.compute
        training = np.full((B, T), c.training_arrival_h_per_day / 24.0 * c.it_kw * cfg.episode.dt_h)

        n = np.array([r.cars.arrival_step.shape[0] for r in rows], dtype=np.int64)
        n_max = max(int(n.max()), 1)
        row_of = np.repeat(np.arange(B), n)
        col_of = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)

        def cars(name: str, dtype: type, fill: float) -> np.ndarray:
            out = np.full((B, n_max), fill, dtype=dtype)
            if row_of.shape[0]:
                out[row_of, col_of] = np.concatenate([getattr(r.cars, name) for r in rows])
            return out

        return ExogenousTrace(
            seeds=np.array([r.seed for r in rows], dtype=np.int64),
            step_min=cfg.episode.step_min,
            n_steps=T,
            horizon_steps=H,
            start_date=np.array([d.start for d in days])[day_of_row],
            hour=by_day("hour"),
            weekday=by_day("weekday", np.int64),
            month=by_day("month", np.int64),
            price_usd_per_kwh=price,
            price_forecast_usd_per_kwh=forecast,
            export_price_usd_per_kwh=price * cfg.tariff.export_price_frac_of_energy,
            ev_price_usd_per_kwh=by_day("ev_price"),
            ambient_c=ambient,
            inference_demand_frac=inference,
            training_arrival_kwh=training,
            carbon_g_per_kwh=by_day("carbon"),
            demand_active=by_day("demand", np.bool_),
            arrival_rate_per_h=by_day("rate"),
            n_cars=n,
            car_arrival_step=cars("arrival_step", np.int64, T),
            car_battery_kwh=cars("battery_kwh", np.float64, 0.0),
            car_arrival_soc=cars("arrival_soc", np.float64, 0.0),
            car_target_soc=cars("target_soc", np.float64, 0.0),
            car_patience_min=cars("patience_min", np.float64, 0.0),
            car_curve_id=cars("curve_id", np.int64, 0),
            car_power_scale=cars("power_scale", np.float64, 0.0),
            car_departure_step=cars("departure_step", np.int64, NO_DEPARTURE_STEP),
            car_max_kw=cars("max_kw", np.float64, 0.0),
        )


# A synthetic scenario has at most 366 start days; replayed data may have thousands.
_MAX_CACHED_DAYS = 1024


@dataclass(frozen=True)
class _DayTemplate:
    """What a trace row starting on one day holds whatever the seed."""

    start: np.datetime64
    cal: Calendar  # T + H steps
    price: np.ndarray | None  # [T+H] $/kWh, None when drawn per seed (synthetic real-time)
    forecast: np.ndarray | None  # [T+H]
    realtime: RealtimeCalendar | None  # what the per-seed real-time price draws need
    ev_price: np.ndarray  # [T]
    ambient: np.ndarray  # [T] replayed, or the mean profile before the per-seed noise
    inference: np.ndarray  # [T] mean profile before the per-seed noise and the clip to [0, 1]
    carbon: np.ndarray  # [T]
    demand: np.ndarray  # [T, K] bool
    rate: np.ndarray  # [T+H] expected arrivals per hour

    @property
    def hour(self) -> np.ndarray:
        return self.cal.hour

    @property
    def weekday(self) -> np.ndarray:
        return self.cal.weekday

    @property
    def month(self) -> np.ndarray:
        return self.cal.month


@dataclass(frozen=True)
class _SeedDraws:
    """The random part of one trace row."""

    seed: int
    day: _DayTemplate
    price: np.ndarray | None  # [T+H], only when the day's template has none
    forecast: np.ndarray | None
    ambient_noise: np.ndarray | None  # [T], None when temperatures are replayed
    inference_noise: np.ndarray  # [T]
    cars: CarArrivals


@functools.lru_cache(maxsize=64)
def _days_of_year(year: int, first_day: int, last_day: int) -> tuple[dt.date, ...]:
    """The dates of days ``first_day .. last_day`` (1-based day of year) of ``year``."""
    first = dt.date(year, 1, 1)
    return tuple(first + dt.timedelta(days=d - 1) for d in range(first_day, last_day + 1))


def _has_replay(config: ScenarioConfig) -> bool:
    r = config.replay
    return any(
        p is not None for p in (r.prices_csv, r.temperature_csv, r.ev_sessions_csv, r.carbon_csv)
    )


def _head(cal: Calendar, n: int) -> Calendar:
    return Calendar(cal.hour[:n], cal.hour_index[:n], cal.weekday[:n], cal.month[:n], cal.day[:n])
