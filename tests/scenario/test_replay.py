"""Replay of recorded prices, temperatures and EV sessions (megapod_gym.scenario.replay)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from megapod_gym.config import ConfigError, load_scenario
from megapod_gym.config.schema import EVConfig, ReplayConfig, ScenarioConfig
from megapod_gym.scenario.replay import (
    ReplayData,
    ReplayError,
    SessionLog,
    TimeSeries,
    _soc_after_minutes,
    load_replay,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "configs" / "examples" / "replay-example.yaml"
DAY0 = dt.datetime(2025, 6, 2)  # a Monday


def write(tmp_path: Path, name: str, lines: list[str]) -> str:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def series_csv(
    tmp_path: Path,
    name: str,
    column: str,
    values: list[float] | np.ndarray,
    step_min: int,
    start: dt.datetime = DAY0,
) -> str:
    rows = [f"timestamp,{column}"]
    for i, v in enumerate(values):
        rows.append(f"{(start + dt.timedelta(minutes=i * step_min)).isoformat()},{v}")
    return write(tmp_path, name, rows)


def prices_only(path: str) -> ReplayData:
    return load_replay(ReplayConfig(prices_csv=path))


# --------------------------------------------------------------------------------- resampling
def test_hourly_prices_to_5min_steps(tmp_path: Path) -> None:
    hourly = np.arange(48) * 0.01 + 0.1
    data = prices_only(series_csv(tmp_path, "p.csv", "price_usd_per_kwh", hourly, 60))
    out = data.series_on("prices", DAY0.date(), 288, 5)
    assert out.shape == (288,) and out.dtype == np.float64
    np.testing.assert_allclose(out, np.repeat(hourly[:24], 12), rtol=0, atol=1e-12)
    # The second day, from its own midnight.
    out = data.series_on("prices", (DAY0 + dt.timedelta(days=1)).date(), 288, 5)
    np.testing.assert_allclose(out, np.repeat(hourly[24:], 12), atol=1e-12)


def test_5min_prices_to_15min_steps_is_time_weighted_mean(tmp_path: Path) -> None:
    values = [0.10, 0.40, 0.70, 1.00, 0.20, 0.30] * 48  # two days of 5-min samples
    data = prices_only(series_csv(tmp_path, "p.csv", "price_usd_per_kwh", values, 5))
    out = data.series_on("prices", DAY0.date(), 4, 15)
    np.testing.assert_allclose(out, [0.40, 0.50, 0.40, 0.50], atol=1e-12)


def test_irregular_samples_weighted_by_duration(tmp_path: Path) -> None:
    # Samples at 00:00=1, 00:10=4, 00:20=7, then hourly-ish; step [0,15) = (10*1 + 5*4)/15 = 2,
    # step [15,30) = (5*4 + 10*7)/15 = 6.
    rows = [
        "timestamp,price_usd_per_kwh",
        "2025-06-02T00:00,1",
        "2025-06-02T00:10,4",
        "2025-06-02T00:20,7",
    ]
    rows += [f"2025-06-02T{h:02d}:00,0.5" for h in range(1, 24)]
    rows += ["2025-06-03T00:00,0.5"]
    data = prices_only(write(tmp_path, "p.csv", rows))
    out = data.series_on("prices", DAY0.date(), 4, 15)
    np.testing.assert_allclose(out[:2], [2.0, 6.0], atol=1e-12)
    # [30, 45): 7 until 01:00 -> 7; [45, 60): 7.
    np.testing.assert_allclose(out[2:], [7.0, 7.0], atol=1e-12)


def test_mwh_prices_are_converted_to_kwh(tmp_path: Path) -> None:
    data = prices_only(series_csv(tmp_path, "p.csv", "price_usd_per_mwh", [45.0, -20.0] * 24, 60))
    out = data.series_on("prices", DAY0.date(), 2, 60)
    np.testing.assert_allclose(out, [0.045, -0.020], atol=1e-15)


def test_horizon_past_the_data_repeats_previous_day(tmp_path: Path) -> None:
    hourly = np.arange(48, dtype=float)  # two days, all hours distinct (cents)
    data = prices_only(series_csv(tmp_path, "p.csv", "price_cents_per_kwh", hourly, 60))
    hourly = hourly / 100.0  # $/kWh
    day1 = (DAY0 + dt.timedelta(days=1)).date()
    out = data.series_on("prices", day1, 24 * 12 * 3, 5)  # day 1 + two days past the data
    last_day = np.repeat(hourly[24:], 12)
    np.testing.assert_allclose(out, np.tile(last_day, 3), atol=1e-9)
    # From the first day: day 0, day 1, then day 1 again.
    out = data.series_on("prices", DAY0.date(), 3 * 24, 60)
    np.testing.assert_allclose(out, np.concatenate([hourly, hourly[24:]]), atol=1e-9)


def test_step_straddling_the_end_mixes_recorded_and_repeated(tmp_path: Path) -> None:
    # 30-min samples for a day and 15 min: covered until 24:30 (00:00 + 49 * 30 min).
    values = np.arange(49, dtype=float)  # cents
    data = prices_only(series_csv(tmp_path, "p.csv", "price_cents_per_kwh", values, 30))
    out = data.series_on("prices", DAY0.date(), 25, 60)
    # Hour 24: [24:00, 24:30) recorded value 48; [24:30, 25:00) repeats [00:30, 01:00) = 1.
    assert out[24] == pytest.approx((48.0 + 1.0) / 2 / 100.0)


def test_series_before_first_sample_is_an_error(tmp_path: Path) -> None:
    start = DAY0 + dt.timedelta(hours=1)
    data = prices_only(series_csv(tmp_path, "p.csv", "price_usd_per_kwh", [0.2] * 30, 60, start))
    with pytest.raises(ReplayError, match="start_days"):
        data.series_on("prices", DAY0.date(), 12, 5)


def test_timestamps_with_one_offset_are_read_as_local(tmp_path: Path) -> None:
    rows = ["timestamp,ambient_c"] + [f"2025-06-02T{h:02d}:00:00-07:00,{h}" for h in range(24)]
    data = load_replay(ReplayConfig(temperature_csv=write(tmp_path, "t.csv", rows)))
    assert data.temperature is not None
    assert data.temperature.timestamps[0] == np.datetime64("2025-06-02T00:00:00")
    np.testing.assert_allclose(data.series_on("temperature", DAY0.date(), 3, 60), [0, 1, 2])


# --------------------------------------------------------------------------------- start days
def test_start_days_on_three_day_file(tmp_path: Path) -> None:
    data = prices_only(series_csv(tmp_path, "p.csv", "price_usd_per_kwh", [0.2] * 72, 60))
    days = [DAY0.date() + dt.timedelta(days=i) for i in range(3)]
    assert data.start_days(288, 5) == days
    assert data.start_days(2 * 288, 5) == days[:2]
    assert data.start_days(96, 15) == days
    assert data.start_days(3 * 96, 15) == days[:1]
    with pytest.raises(ReplayError, match=r"needs 4 days.*3\.00 days"):
        data.start_days(4 * 288, 5)


def test_start_days_need_a_sample_at_or_before_midnight(tmp_path: Path) -> None:
    start = DAY0 + dt.timedelta(minutes=5)
    data = prices_only(series_csv(tmp_path, "p.csv", "price_usd_per_kwh", [0.2] * 71, 60, start))
    # Covers 00:05 on day 0 until 23:05 on day 2: only day 1 is a full day from midnight.
    assert data.start_days(288, 5) == [DAY0.date() + dt.timedelta(days=1)]


def test_start_days_intersect_prices_and_sessions(tmp_path: Path) -> None:
    prices = series_csv(tmp_path, "p.csv", "price_usd_per_kwh", [0.2] * 72, 60)
    sessions = write(
        tmp_path,
        "s.csv",
        ["arrival_time,energy_kwh", "2025-06-03T08:00,30", "2025-06-04T09:00,25",
         "2025-06-05T12:00,20"],
    )  # fmt: skip
    data = load_replay(ReplayConfig(prices_csv=prices, ev_sessions_csv=sessions))
    # Prices: Jun 2..4; sessions: Jun 3..5.
    assert data.start_days(288, 5) == [dt.date(2025, 6, 3), dt.date(2025, 6, 4)]
    assert data.start_days(2 * 288, 5) == [dt.date(2025, 6, 3)]
    with pytest.raises(ReplayError, match="sessions"):
        data.start_days(3 * 288, 5)


# ---------------------------------------------------------------------------- malformed files
GOOD_TEMPS = ["2025-06-02T00:00,10", "2025-06-02T01:00,11", "2025-06-02T02:00,12"]

MALFORMED = {
    "missing column": (
        "temperature_csv",
        ["timestamp"] + [row.split(",")[0] for row in GOOD_TEMPS],
        "1",
        "ambient_c",
    ),
    "bad timestamp": (
        "temperature_csv",
        ["timestamp,ambient_c", GOOD_TEMPS[0], "2025-06-02 1 o'clock,11", GOOD_TEMPS[2]],
        "3",
        "timestamp",
    ),
    "nan": (
        "temperature_csv",
        ["timestamp,ambient_c", GOOD_TEMPS[0], GOOD_TEMPS[1], "2025-06-02T02:00,nan"],
        "4",
        "ambient_c",
    ),
    "gap": (
        "prices_csv",
        ["timestamp,price_usd_per_kwh"]
        + [f"2025-06-02T00:{m:02d},0.2" for m in range(0, 60, 5)]
        + ["2025-06-02T02:00,0.2", "2025-06-02T02:05,0.2"],
        "14",
        "timestamp",
    ),
    "non-increasing": (
        "prices_csv",
        [
            "timestamp,price_usd_per_kwh",
            "2025-06-02T00:00,0.2",
            "2025-06-02T01:00,0.2",
            "2025-06-02T01:00,0.3",
        ],
        "4",
        "timestamp",
    ),
    "unknown column": (
        "prices_csv",
        ["timestamp,price_usd_per_kwh,node", "2025-06-02T00:00,0.2,X", "2025-06-02T01:00,0.2,X"],
        "1",
        "node",
    ),
    "temperature out of range": (
        "temperature_csv",
        ["timestamp,ambient_c", GOOD_TEMPS[0], "2025-06-02T01:00,75", GOOD_TEMPS[2]],
        "3",
        "ambient_c",
    ),
    "price out of range": (
        "prices_csv",
        ["timestamp,price_usd_per_kwh", "2025-06-02T00:00,0.2", "2025-06-02T01:00,250"],
        "3",
        "price_usd_per_kwh",
    ),
    "target not above arrival soc": (
        "ev_sessions_csv",
        [
            "arrival_time,arrival_soc,target_soc",
            "2025-06-02T08:00,0.2,0.8",
            "2025-06-02T09:00,0.6,0.6",
        ],
        "3",
        "target_soc",
    ),
    "negative energy": (
        "ev_sessions_csv",
        ["arrival_time,energy_kwh", "2025-06-02T08:00,20", "2025-06-02T09:00,-3"],
        "3",
        "energy_kwh",
    ),
    "soc above one": (
        "ev_sessions_csv",
        ["arrival_time,arrival_soc,target_soc", "2025-06-02T08:00,1.2,0.8"],
        "2",
        "arrival_soc",
    ),
    "sessions without a charge column": (
        "ev_sessions_csv",
        ["arrival_time,battery_kwh", "2025-06-02T08:00,75"],
        "1",
        "energy_kwh",
    ),
    "session row without a charge": (
        "ev_sessions_csv",
        ["arrival_time,energy_kwh,duration_min", "2025-06-02T08:00,20,", "2025-06-02T09:00,,"],
        "3",
        "energy_kwh",
    ),
    "departure not after arrival": (
        "ev_sessions_csv",
        [
            "arrival_time,energy_kwh,departure_time",
            "2025-06-02T08:00,20,2025-06-02T10:00",
            "2025-06-02T09:00,20,2025-06-02T09:00",
        ],
        "3",
        "departure_time",
    ),
    "departure and dwell both given": (
        "ev_sessions_csv",
        ["arrival_time,energy_kwh,departure_time,dwell_min", "2025-06-02T08:00,20,,30"],
        "1",
        "dwell_min",
    ),
    "zero dwell": (
        "ev_sessions_csv",
        ["arrival_time,energy_kwh,dwell_min", "2025-06-02T08:00,20,60", "2025-06-02T09:00,20,0"],
        "3",
        "dwell_min",
    ),
    "zero max power": (
        "ev_sessions_csv",
        ["arrival_time,energy_kwh,max_power_kw", "2025-06-02T08:00,20,0"],
        "2",
        "max_power_kw",
    ),
    "departure offset unlike the arrivals'": (
        "ev_sessions_csv",
        [
            "arrival_time,energy_kwh,departure_time",
            "2025-06-02T08:00-07:00,20,",
            "2025-06-02T09:00-07:00,20,2025-06-02T11:00",
        ],
        "3",
        "departure_time",
    ),
    "mixed utc offsets": (
        "temperature_csv",
        ["timestamp,ambient_c", "2025-06-02T00:00-07:00,10", "2025-06-02T01:00-08:00,11"],
        "3",
        "timestamp",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_names_file_row_and_column(tmp_path: Path, case: str) -> None:
    key, lines, row, column = MALFORMED[case]
    path = write(tmp_path, f"bad_{case.replace(' ', '_')}.csv", lines)
    with pytest.raises(ReplayError) as info:
        load_replay(ReplayConfig(**{key: path}))
    message = str(info.value)
    assert Path(path).name in message
    assert f"row {row}," in message
    assert column in message


def test_unknown_column_lists_allowed_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", ["arrival_time,energy_kwh,station_id", "2025-06-02T08:00,20,7"])
    with pytest.raises(ReplayError, match="station_id.*allowed columns: arrival_time, energy_kwh"):
        load_replay(ReplayConfig(ev_sessions_csv=path))


def test_misnamed_column_reports_unknown_and_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", ["timestamp,temperature", *GOOD_TEMPS])
    with pytest.raises(ReplayError, match="'temperature'.*unknown column.*ambient_c"):
        load_replay(ReplayConfig(temperature_csv=path))


def test_row_with_wrong_number_of_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", ["timestamp,ambient_c", GOOD_TEMPS[0], "2025-06-02T01:00,11,3"])
    with pytest.raises(ReplayError, match=r"t\.csv: row 3, .*3 fields"):
        load_replay(ReplayConfig(temperature_csv=path))


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere.csv")
    with pytest.raises(ReplayError, match="nowhere.csv"):
        load_replay(ReplayConfig(prices_csv=path))


def test_gap_limit_is_at_least_one_hour(tmp_path: Path) -> None:
    # 5-min data with a 55-min hole is accepted (limit max(10 min, 60 min)).
    rows = ["timestamp,price_usd_per_kwh", "2025-06-02T00:00,0.2", "2025-06-02T00:05,0.5"]
    rows += ["2025-06-02T01:00,0.3", "2025-06-02T01:05,0.3", "2025-06-02T01:10,0.3"]
    data = prices_only(write(tmp_path, "p.csv", rows))
    np.testing.assert_allclose(
        data.series_on("prices", DAY0.date(), 1, 60), [(5 * 0.2 + 55 * 0.5) / 60]
    )


# -------------------------------------------------------------------------------------- cars
SESSIONS = [
    "arrival_time,energy_kwh,duration_min,battery_kwh,arrival_soc,target_soc,patience_min",
    "2025-06-02T18:07:30,30,,,,,",  # unsorted on purpose
    "2025-06-02T00:00:00,,,80,0.3,0.8,4",
    "2025-06-02T09:14:59,,25,75,0.2,,",
    "2025-06-02T09:15:00,100,,60,0.5,,",  # more than the battery holds -> target 1.0
    "2025-06-02T23:59:59,10,,,0.4,,",
    "2025-06-03T00:00:00,20,,,,,",  # next day: outside a one-day episode
    "2025-06-01T23:59:00,20,,,,,",  # previous day
]


@pytest.fixture
def sessions(tmp_path: Path) -> ReplayData:
    return load_replay(ReplayConfig(ev_sessions_csv=write(tmp_path, "sessions.csv", SESSIONS)))


def test_cars_on_arrival_steps_and_recorded_values(sessions: ReplayData) -> None:
    ev = EVConfig()
    cars = sessions.cars_on(DAY0.date(), 288, 5, ev, np.random.default_rng(7))
    np.testing.assert_array_equal(cars.arrival_step, [0, 110, 111, 217, 287])
    assert cars.arrival_step.dtype == np.int64 and cars.curve_id.dtype == np.int64
    # Row "00:00": everything recorded.
    assert cars.battery_kwh[0] == 80 and cars.arrival_soc[0] == 0.3 and cars.target_soc[0] == 0.8
    assert cars.patience_min[0] == 4
    # Row "09:15": energy beyond the battery caps the target at 1.
    assert cars.battery_kwh[2] == 60 and cars.target_soc[2] == 1.0
    # Row "23:59:59": arrival soc recorded, battery drawn from the fleet.
    assert cars.arrival_soc[4] == 0.4
    assert cars.target_soc[4] == pytest.approx(0.4 + 10 / cars.battery_kwh[4])
    assert set(cars.battery_kwh[[3, 4]]) <= {v.battery_kwh for v in ev.fleet}
    assert np.all(cars.patience_min > 0) and np.all(cars.target_soc <= 1.0)
    assert np.all(cars.target_soc > cars.arrival_soc)
    # 15-min steps.
    cars15 = sessions.cars_on(DAY0.date(), 96, 15, ev, np.random.default_rng(7))
    np.testing.assert_array_equal(cars15.arrival_step, [0, 36, 37, 72, 95])


def test_cars_on_is_deterministic_per_seed(sessions: ReplayData) -> None:
    ev = EVConfig()
    a = sessions.cars_on(DAY0.date(), 288, 5, ev, np.random.default_rng(3))
    b = sessions.cars_on(DAY0.date(), 288, 5, ev, np.random.default_rng(3))
    c = sessions.cars_on(DAY0.date(), 288, 5, ev, np.random.default_rng(4))
    for name in (
        "arrival_step",
        "battery_kwh",
        "arrival_soc",
        "target_soc",
        "patience_min",
        "curve_id",
        "power_scale",
    ):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.patience_min, c.patience_min)


def test_duration_only_session_integrates_the_acceptance_curve(sessions: ReplayData) -> None:
    ev = EVConfig()
    cars = sessions.cars_on(DAY0.date(), 288, 5, ev, np.random.default_rng(11))
    i = 1  # 09:14:59, 25 min from SoC 0.2 with a 75 kWh battery
    curve = ev.curves[sorted(ev.curves)[cars.curve_id[i]]]
    soc = 0.2
    for _ in range(25):
        kw = min(float(np.interp(soc, curve.soc, curve.kw)) * cars.power_scale[i], 250.0)
        soc = min(soc + kw / 60.0 / 75.0, 1.0)
    assert cars.target_soc[i] == pytest.approx(soc, abs=1e-12)
    assert 0.5 < cars.target_soc[i] < 1.0


def test_soc_after_minutes_partial_minute_and_cap() -> None:
    curves = np.array([[[0.0, 1.0], [60.0, 60.0]]])  # one curve: flat 60 kW
    out = _soc_after_minutes(
        np.array([0.0, 0.5]),
        np.array([2.5, 1000.0]),
        np.array([10.0, 10.0]),
        np.zeros(2, dtype=np.int64),
        np.array([1.0, 10.0]),  # 600 kW -> capped at 250 kW
        curves,
        np.full(2, 250.0),  # per-car cap
    )
    assert out[0] == pytest.approx(2.5 / 10.0)  # 60 kW x 2.5 min = 2.5 kWh of 10
    assert out[1] == 1.0


# Level-2 / destination sessions: a departure (or dwell) and a power cap per session.
DWELL_SESSIONS = [
    "arrival_time,energy_kwh,battery_kwh,arrival_soc,departure_time,max_power_kw",
    "2025-06-02T08:02:00,15,75,0.2,2025-06-02T11:02:00,7.2",  # 3 h at 7.2 kW, 15 kWh asked
    "2025-06-02T09:00:00,30,,,,",  # a DC session: no departure, no cap
    "2025-06-02T10:01:00,5,,,2025-06-02T10:03:00,11",  # 2 min: still one step plugged in
    "2025-06-02T22:30:00,20,,,2025-06-03T07:30:00,6.6",  # overnight: departs after the episode
]


def test_sessions_with_departure_and_power_cap(tmp_path: Path) -> None:
    from megapod_gym.scenario.arrivals import NO_DEPARTURE_STEP

    data = load_replay(ReplayConfig(ev_sessions_csv=write(tmp_path, "l2.csv", DWELL_SESSIONS)))
    cars = data.cars_on(DAY0.date(), 288, 5, EVConfig(), np.random.default_rng(0))
    np.testing.assert_array_equal(cars.arrival_step, [96, 108, 120, 270])
    # departures floored onto the grid like arrivals; at least one step after the arrival
    np.testing.assert_array_equal(cars.departure_step, [132, NO_DEPARTURE_STEP, 121, 378])
    assert cars.departure_step.dtype == np.int64
    np.testing.assert_array_equal(cars.max_kw, [7.2, 0.0, 11.0, 6.6])  # 0 = no cap of its own
    assert cars.target_soc[0] == pytest.approx(0.2 + 15.0 / 75.0)  # the requested energy
    # dwell_min gives the same cars, and so does the old column set without the new ones
    rows = ["arrival_time,energy_kwh,battery_kwh,arrival_soc,dwell_min,max_power_kw"]
    rows += ["2025-06-02T08:02:00,15,75,0.2,180,7.2", "2025-06-02T09:00:00,30,,,,",
             "2025-06-02T10:01:00,5,,,2,11", "2025-06-02T22:30:00,20,,,540,6.6"]  # fmt: skip
    by_dwell = load_replay(ReplayConfig(ev_sessions_csv=write(tmp_path, "dwell.csv", rows)))
    again = by_dwell.cars_on(DAY0.date(), 288, 5, EVConfig(), np.random.default_rng(0))
    for name in ("arrival_step", "departure_step", "max_kw", "target_soc", "patience_min"):
        np.testing.assert_array_equal(getattr(again, name), getattr(cars, name))
    plain = [",".join(r.split(",")[:4]) for r in DWELL_SESSIONS]
    old = load_replay(ReplayConfig(ev_sessions_csv=write(tmp_path, "plain.csv", plain)))
    before = old.cars_on(DAY0.date(), 288, 5, EVConfig(), np.random.default_rng(0))
    assert np.all(before.departure_step == NO_DEPARTURE_STEP) and np.all(before.max_kw == 0.0)
    np.testing.assert_array_equal(before.target_soc, cars.target_soc)  # no extra random draw
    np.testing.assert_array_equal(before.patience_min, cars.patience_min)


def test_departure_time_converted_with_the_arrivals_time_zone(tmp_path: Path) -> None:
    rows = [
        "arrival_time,energy_kwh,departure_time",
        "2025-06-02T15:00:00Z,10,2025-06-02T18:00:00Z",  # 08:00 -> 11:00 in Los Angeles (PDT)
    ]
    path = write(tmp_path, "utc.csv", rows)
    data = load_replay(ReplayConfig(ev_sessions_csv=path, timezone="America/Los_Angeles"))
    cars = data.cars_on(DAY0.date(), 288, 5, EVConfig(), np.random.default_rng(0))
    assert (int(cars.arrival_step[0]), int(cars.departure_step[0])) == (96, 132)
    same = load_replay(ReplayConfig(ev_sessions_csv=path))  # one offset: read as local (UTC)
    cars = same.cars_on(DAY0.date(), 288, 5, EVConfig(), np.random.default_rng(0))
    assert (int(cars.arrival_step[0]), int(cars.departure_step[0])) == (180, 216)


def test_duration_is_integrated_at_the_sessions_power_cap(tmp_path: Path) -> None:
    rows = ["arrival_time,duration_min,battery_kwh,arrival_soc,max_power_kw",
            "2025-06-02T08:00,60,75,0.2,7.2", "2025-06-02T09:00,60,75,0.2,"]  # fmt: skip
    data = load_replay(ReplayConfig(ev_sessions_csv=write(tmp_path, "d.csv", rows)))
    cars = data.cars_on(DAY0.date(), 288, 5, EVConfig(), np.random.default_rng(0))
    assert cars.target_soc[0] == pytest.approx(0.2 + 7.2 / 75.0)  # 1 h at 7.2 kW
    assert cars.target_soc[1] > 0.8  # 1 h of DC charging at the acceptance curve


def test_level2_sessions_replay_through_the_env(tmp_path: Path) -> None:
    """A day of recorded 7.2 kW sessions with dwell, on a 4-stall site: every session gets at most
    what it asked for, at most 7.2 kW, is gone at its departure step; the energy balance closes
    and observations, rewards and infos stay finite at every step."""
    from megapod_gym.envs.site_env import MegapodSiteEnv
    from megapod_gym.sim import layout as L
    from megapod_gym.sim.kernel import CHARGING, WAITING

    rng = np.random.default_rng(5)
    rows = ["arrival_time,energy_kwh,battery_kwh,arrival_soc,dwell_min,max_power_kw"]
    for _ in range(14):
        minute = int(rng.integers(0, 14 * 60))  # gone before midnight (dwell <= 9 h)
        energy = float(rng.uniform(3.0, 40.0))  # some ask more than the dwell allows
        dwell = float(rng.uniform(20.0, 9 * 60.0))
        stamp = DAY0 + dt.timedelta(minutes=minute, seconds=int(rng.integers(0, 60)))
        rows.append(f"{stamp.isoformat()},{energy:.2f},75,0.3,{dwell:.1f},7.2")
    config = load_scenario(
        None,
        {"replay.ev_sessions_csv": write(tmp_path, "l2.csv", rows), "replay.held_out_frac": 0.0,
         "chargers.n_stalls": 4, "episode.days": 1.0},
    )  # fmt: skip
    env = MegapodSiteEnv(config)
    obs, _ = env.reset(seed=0)
    sim, trace = env.sim, env.trace
    n = int(trace.n_cars[0])
    assert n == 14
    departure = trace.car_departure_step[0, :n]
    requested = (trace.car_target_soc[0, :n] - trace.car_arrival_soc[0, :n]) * 75.0
    for t in range(sim.n_steps):
        obs, reward, _, _, info = env.step(env.action_space.high)
        assert np.isfinite(obs).all() and math.isfinite(reward)
        assert all(math.isfinite(v) for v in info.values())
        assert abs(info["energy_balance_residual_kwh"]) < 1e-6
        assert info["ev_delivered_kw"] <= 4 * 7.2 + 1e-6
        status = sim.car_status[0, :n]
        present = (status == WAITING) | (status == CHARGING)
        assert np.all(departure[present] > t + 1)
    got = (sim.car_dyn[0, 0, :n] - trace.car_arrival_soc[0, :n]) * 75.0
    assert np.all(got <= requested + 1e-9)
    assert np.any(got < requested - 1.0)  # a session whose dwell was too short left with less
    k = sim.kpis()
    assert k["cars_served"][0] + k["cars_balked"][0] == n  # everyone left by the end of the day
    assert sim.cars[0, L.C_CAR_MAX_KW, :n].tolist() == [7.2] * n


def test_cars_on_empty_window(sessions: ReplayData) -> None:
    cars = sessions.cars_on(dt.date(2025, 6, 10), 288, 5, EVConfig(), np.random.default_rng(0))
    assert cars.arrival_step.shape == (0,) and cars.target_soc.shape == (0,)


def test_session_log_sorts_by_arrival() -> None:
    log = SessionLog(
        arrival=np.array(["2025-06-02T10:00", "2025-06-02T08:00"], dtype="datetime64[s]"),
        energy_kwh=np.array([10.0, 20.0]),
        duration_min=np.full(2, np.nan),
        battery_kwh=np.full(2, np.nan),
        arrival_soc=np.full(2, np.nan),
        target_soc=np.full(2, np.nan),
        patience_min=np.full(2, np.nan),
    )
    np.testing.assert_array_equal(log.energy_kwh, [20.0, 10.0])


def test_time_series_rejects_non_increasing() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        TimeSeries(
            np.array(["2025-06-02T01:00", "2025-06-02T00:00"], dtype="datetime64[s]"), np.ones(2)
        )


# ------------------------------------------------------------------------------------ example
def test_example_scenario_replays_through_trace_sampler() -> None:
    from megapod_gym.scenario.trace import TraceSampler

    config = load_scenario(str(EXAMPLE))
    assert config.replay.prices_csv is not None and Path(config.replay.prices_csv).is_absolute()
    sampler = TraceSampler(config)
    assert sampler.replay is not None
    assert sampler.replay.sessions is not None and len(sampler.replay.sessions) >= 40
    trace = sampler.sample([0, 1])
    T, H = config.episode.n_steps, sampler.horizon_steps
    assert trace.price_usd_per_kwh.shape == (2, T + H)
    assert np.all(trace.n_cars > 0)
    for b in range(2):
        start = trace.start_date[b].astype(dt.date)
        assert start in sampler.replay.start_days(T, config.episode.step_min)
        np.testing.assert_allclose(
            trace.price_usd_per_kwh[b],
            sampler.replay.series_on("prices", start, T + H, config.episode.step_min),
        )
        np.testing.assert_allclose(
            trace.ambient_c[b],
            sampler.replay.series_on("temperature", start, T, config.episode.step_min),
        )
        n = int(trace.n_cars[b])
        assert np.all(np.diff(trace.car_arrival_step[b, :n]) >= 0)
        assert np.all(trace.car_arrival_step[b, :n] < T)
    again = sampler.sample([0, 1])
    np.testing.assert_array_equal(again.car_target_soc, trace.car_target_soc)


def _long_price_file(tmp_path: Path, days: int) -> Path:
    start = np.datetime64("2024-03-01T00:00")
    stamps = start + np.arange(days * 24) * np.timedelta64(1, "h")
    lines = ["timestamp,price_usd_per_kwh"] + [
        f"{str(t).replace('T', ' ')},{0.10 + 0.01 * (i % 24)}" for i, t in enumerate(stamps)
    ]
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_recorded_days_split_into_disjoint_train_and_held_out_sets(tmp_path: Path) -> None:
    from megapod_gym.scenario.trace import HELD_OUT_SEED_BASE, TraceSampler

    prices = _long_price_file(tmp_path, 21)
    config = load_scenario(None, {"replay.prices_csv": str(prices), "replay.held_out_frac": 0.25})
    sampler = TraceSampler(config)
    train, held = set(sampler.train_days), set(sampler.held_out_days)
    assert train and held and not train & held
    assert max(train) < min(held)  # the last days are held out
    # evaluation seeds replay held-out days only; training seeds training days only
    test_days = {sampler.replay_day(HELD_OUT_SEED_BASE + i) for i in range(50)}
    train_days = {sampler.replay_day(i) for i in range(200)}
    assert test_days == held and train_days == train
    # without replacement within a pass: n consecutive seeds visit n different days
    n = len(sampler.train_days)
    assert len({sampler.replay_day(i) for i in range(n)}) == n
    assert len({sampler.replay_day(n + i) for i in range(n)}) == n
    # the trace and the evaluation rows record the replayed day
    trace = sampler.sample([HELD_OUT_SEED_BASE])
    assert trace.start_date[0].astype(dt.date) == sampler.replay_day(HELD_OUT_SEED_BASE)
    from agents.evaluation.rollout import run_policy
    from agents.policies.registry import make_policy

    rows = run_policy(make_policy("greedy"), config, [HELD_OUT_SEED_BASE, 3]).rows
    assert rows[0]["start_date"] in {str(d) for d in held}
    assert rows[1]["start_date"] in {str(d) for d in train}


def test_too_few_recorded_days_for_a_split_is_an_error(tmp_path: Path) -> None:
    from megapod_gym.scenario.replay import ReplayError
    from megapod_gym.scenario.trace import TraceSampler

    prices = _long_price_file(tmp_path, 1)  # one possible start day: nothing left to train on
    config = load_scenario(None, {"replay.prices_csv": str(prices), "episode.days": 1})
    with pytest.raises(ReplayError, match="held_out_frac"):
        TraceSampler(config)
    no_split = load_scenario(None, {"replay.prices_csv": str(prices), "replay.held_out_frac": 0.0})
    assert TraceSampler(no_split).train_days == TraceSampler(no_split).held_out_days


def test_env_info_names_the_start_date() -> None:
    from megapod_gym.envs.site_env import MegapodSiteEnv

    env = MegapodSiteEnv(config_overrides={"episode.days": 0.25})
    _, info = env.reset(seed=0)
    assert str(info["start_date_yyyymmdd"]) == str(env.trace.start_date[0]).replace("-", "")


def test_declared_units_give_the_same_series(tmp_path: Path) -> None:
    """$/MWh, cents/kWh, a currency factor and a gzipped file all read as the $/kWh series; a
    $/kWh header on $/MWh values is refused; deg F and Wh convert."""
    import gzip

    usd = np.array([0.05, 0.12, -0.01, 0.30] * 6)
    ref = prices_only(series_csv(tmp_path, "kwh.csv", "price_usd_per_kwh", usd, 60)).prices
    for name, column, values, to_usd in [
        ("mwh.csv", "price_usd_per_mwh", usd * 1000, 1.0),
        ("cents.csv", "price_cents_per_kwh", usd * 100, 1.0),
        ("eur.csv", "price_usd_per_kwh", usd / 1.08, 1.08),
    ]:
        path = series_csv(tmp_path, name, column, values, 60)
        got = load_replay(ReplayConfig(prices_csv=path, price_to_usd=to_usd)).prices
        np.testing.assert_allclose(got.values, ref.values, atol=1e-12)
    plain = Path(series_csv(tmp_path, "z.csv", "price_usd_per_kwh", usd, 60))
    gz = tmp_path / "z.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    np.testing.assert_allclose(prices_only(str(gz)).prices.values, ref.values)
    wrong = series_csv(tmp_path, "wrong.csv", "price_usd_per_kwh", usd * 100, 60)  # cents
    with pytest.raises(
        ReplayError, match=r"median price is .* \$/kWh, implausible.*price_cents_per_kwh"
    ):
        prices_only(wrong)
    temps_c = np.array([10.0, 20.0, 30.0] * 8)
    c = load_replay(
        ReplayConfig(temperature_csv=series_csv(tmp_path, "c.csv", "ambient_c", temps_c, 60))
    )
    f = load_replay(
        ReplayConfig(
            temperature_csv=series_csv(tmp_path, "f.csv", "ambient_f", temps_c * 9 / 5 + 32, 60)
        )
    )
    np.testing.assert_allclose(f.temperature.values, c.temperature.values, atol=1e-9)


def test_session_energy_in_wh(tmp_path: Path) -> None:
    kwh = [32.5, 18.0, 41.2]
    rows = [f"2025-06-02T{8 + i:02d}:00:00" for i in range(3)]
    a = write(
        tmp_path, "kwh.csv", ["arrival_time,energy_kwh", *[f"{t},{e}" for t, e in zip(rows, kwh)]]
    )
    b = write(
        tmp_path,
        "wh.csv",
        ["arrival_time,energy_wh", *[f"{t},{e * 1000}" for t, e in zip(rows, kwh)]],
    )
    sa = load_replay(ReplayConfig(ev_sessions_csv=a)).sessions
    sb = load_replay(ReplayConfig(ev_sessions_csv=b)).sessions
    np.testing.assert_allclose(sa.energy_kwh, sb.energy_kwh)
    wrong = write(
        tmp_path,
        "w.csv",
        ["arrival_time,energy_kwh", *[f"{t},{e * 1000}" for t, e in zip(rows, kwh)]],
    )
    with pytest.raises(ReplayError, match="implausible for one car.*energy_wh"):
        load_replay(ReplayConfig(ev_sessions_csv=wrong))


def test_replayed_prices_get_the_realtime_adder(tmp_path: Path) -> None:
    from megapod_gym.scenario.trace import TraceSampler

    prices = series_csv(tmp_path, "p.csv", "price_usd_per_kwh", [0.05] * 24 * 12, 60)
    base = {"replay.prices_csv": prices, "replay.held_out_frac": 0.0}
    tou = TraceSampler(load_scenario("urban-12stall-bev", base)).sample([0])
    rt = TraceSampler(load_scenario("ercot-rt-summer", base)).sample([0])
    T = rt.price_usd_per_kwh.shape[1]
    adder = load_scenario("ercot-rt-summer").tariff.realtime_adder_usd_per_kwh
    assert adder > 0
    np.testing.assert_allclose(rt.price_usd_per_kwh[0], np.full(T, 0.05 + adder))
    np.testing.assert_allclose(tou.price_usd_per_kwh[0], 0.05)  # a TOU tariff: the file as is


def test_a_day_without_sessions_is_a_gap_never_a_day_without_cars(tmp_path: Path) -> None:
    sessions = write(
        tmp_path,
        "s.csv",
        ["arrival_time,energy_kwh", "2025-06-03T08:00,30", "2025-06-05T12:00,20",
         "2025-06-06T10:00,22"],
    )  # fmt: skip
    data = load_replay(ReplayConfig(ev_sessions_csv=sessions))
    assert dt.date(2025, 6, 4) not in data.start_days(288, 5)  # the gap
    assert data.start_days(288, 5) == [
        dt.date(2025, 6, 3),
        dt.date(2025, 6, 5),
        dt.date(2025, 6, 6),
    ]
    assert data.start_days(2 * 288, 5) == [dt.date(2025, 6, 5)]  # never runs through the gap


# ------------------------------------------------------------------------------ carbon intensity
CARBON_G_PER_KWH = np.array([400.0, 380.0, 120.0, 0.0, 520.0, 450.0] * 8)  # 48 hourly values
LB_PER_MWH_IN_G_PER_KWH = 0.45359237


def _carbon_scenario(tmp_path: Path, carbon_csv: str, **overrides: object) -> ScenarioConfig:
    prices = series_csv(tmp_path, "p.csv", "price_usd_per_kwh", [0.1] * 48, 60)
    base = {"replay.prices_csv": prices, "replay.carbon_csv": carbon_csv}
    return load_scenario(None, {**base, "replay.held_out_frac": 0.0, **overrides})


def test_carbon_in_lb_per_mwh_gives_the_same_trace_row(tmp_path: Path) -> None:
    """g/kWh, kg/MWh, lb/MWh and a gzipped file give the same trace carbon row: the file's."""
    import gzip

    from megapod_gym.scenario.trace import TraceSampler

    g = series_csv(tmp_path, "g.csv", "carbon_g_per_kwh", CARBON_G_PER_KWH, 60)
    gz = tmp_path / "g.csv.gz"
    gz.write_bytes(gzip.compress(Path(g).read_bytes()))
    files = [
        g,
        str(gz),
        series_csv(tmp_path, "kg.csv", "carbon_kg_per_mwh", CARBON_G_PER_KWH, 60),
        series_csv(
            tmp_path, "lb.csv", "carbon_lb_per_mwh", CARBON_G_PER_KWH / LB_PER_MWH_IN_G_PER_KWH, 60
        ),
    ]
    rows = []
    for path in files:
        sampler = TraceSampler(_carbon_scenario(tmp_path, path))
        assert sampler.replay is not None and sampler.replay.carbon is not None
        rows.append(sampler.sample([0, 1]))
    for trace in rows[1:]:
        np.testing.assert_allclose(trace.carbon_g_per_kwh, rows[0].carbon_g_per_kwh, rtol=1e-12)
    trace = rows[0]
    for b in range(2):
        day = (trace.start_date[b].astype(dt.date) - DAY0.date()).days
        hourly = CARBON_G_PER_KWH[24 * day : 24 * (day + 1)]
        np.testing.assert_allclose(trace.carbon_g_per_kwh[b], np.repeat(hourly, 12))


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("carbon_g_per_kwh", 2500.0, "2500 g/kWh"),
        ("carbon_g_per_kwh", -5.0, "-5 g/kWh"),
        ("carbon_lb_per_mwh", 5000.0, "5000 lb/MWh"),  # 2268 g/kWh
    ],
)
def test_implausible_carbon_value_names_file_column_row_and_value(
    tmp_path: Path, column: str, value: float, shown: str
) -> None:
    values = [400.0] * 24
    values[5] = value  # line 7 of the file (header = line 1)
    path = series_csv(tmp_path, "carbon_bad.csv", column, values, 60)
    prices = series_csv(tmp_path, "p.csv", "price_usd_per_kwh", [0.1] * 24, 60)
    with pytest.raises(ReplayError) as info:
        load_replay(ReplayConfig(prices_csv=prices, carbon_csv=path))
    message = str(info.value)
    assert "carbon_bad.csv" in message and "row 7," in message and repr(column) in message
    assert shown in message and "outside the physical range" in message


def test_carbon_series_in_lb_per_mwh_named_as_g_per_kwh_is_refused(tmp_path: Path) -> None:
    path = series_csv(tmp_path, "c.csv", "carbon_g_per_kwh", [1500.0] * 24, 60)  # lb/MWh values
    prices = series_csv(tmp_path, "p.csv", "price_usd_per_kwh", [0.1] * 24, 60)
    with pytest.raises(ReplayError, match=r"c\.csv: row -, column 'carbon_g_per_kwh'.*lb/MWh"):
        load_replay(ReplayConfig(prices_csv=prices, carbon_csv=path))


def test_carbon_needs_exactly_one_unit_column_and_may_be_replayed_alone(tmp_path: Path) -> None:
    rows = ["timestamp,carbon_g_per_kwh,carbon_lb_per_mwh", "2025-06-02T00:00,1,2"]
    path = write(tmp_path, "c.csv", rows + ["2025-06-02T01:00,1,2"])
    prices = series_csv(tmp_path, "p.csv", "price_usd_per_kwh", [0.1] * 24, 60)
    with pytest.raises(ReplayError, match="row 1, column 'carbon_g_per_kwh': give exactly one"):
        load_replay(ReplayConfig(prices_csv=prices, carbon_csv=path))
    from megapod_gym.scenario.trace import TraceSampler

    alone = series_csv(tmp_path, "c1.csv", "carbon_g_per_kwh", CARBON_G_PER_KWH, 60)
    trace = TraceSampler(load_scenario(None, {"replay.carbon_csv": alone})).sample([0])
    step_h = trace.step_min / 60.0
    hours = (np.arange(trace.n_steps) * step_h).astype(int)
    np.testing.assert_allclose(trace.carbon_g_per_kwh[0], np.asarray(CARBON_G_PER_KWH)[hours])


def test_replayed_carbon_is_charged_at_every_step_and_observed(tmp_path: Path) -> None:
    from megapod_gym.envs.site_env import MegapodSiteEnv

    carbon_csv = series_csv(tmp_path, "c.csv", "carbon_g_per_kwh", CARBON_G_PER_KWH, 60)
    price_usd_per_tonne = 100.0
    config = _carbon_scenario(
        tmp_path,
        carbon_csv,
        **{"tariff.carbon_price_usd_per_tonne": price_usd_per_tonne, "episode.days": 0.25},
    )
    env = MegapodSiteEnv(config)
    obs, _ = env.reset(seed=0)
    start = env.trace.start_date[0].astype(dt.date)
    T = env.sim.n_steps
    expected = env.sampler.replay.series_on("carbon", start, T, 5)
    np.testing.assert_allclose(env.trace.carbon_g_per_kwh[0], expected)
    decode = env.unwrapped.encoder.decode
    total = 0.0
    for t in range(T):
        assert decode(obs, "carbon_g_per_kwh") == pytest.approx(expected[t])
        assert decode(obs, "carbon_next_1h_mean_g_per_kwh") == pytest.approx(
            expected[np.minimum(np.arange(t + 1, t + 13), T - 1)].mean()
        )
        obs, _, _, _, info = env.step(env.action_space.high)
        import_kwh = info["grid_import_kw"] * env.sim.dt_h
        cost = import_kwh * expected[t] * price_usd_per_tonne / 1e6
        assert info["carbon_cost_usd"] == pytest.approx(cost, rel=1e-9, abs=1e-12)
        total += info["carbon_cost_usd"]
    assert total > 0.0


# ----------------------------------------------------------------------- time zones and DST
LA = "America/Los_Angeles"


def _local_rows(
    zone: str, start: dt.datetime, n: int, step_min: int, with_offset: bool = False
) -> list[tuple[str, float]]:
    """``n`` samples every ``step_min`` real minutes from local ``start`` in ``zone``, as local
    timestamps (naive, or with their UTC offset), value = sample index."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    t0 = start.replace(tzinfo=tz).astimezone(dt.timezone.utc)
    rows = []
    for i in range(n):
        local = (t0 + dt.timedelta(minutes=i * step_min)).astimezone(tz)
        rows.append(
            (local.isoformat() if with_offset else local.replace(tzinfo=None).isoformat(), i)
        )
    return rows


def _csv(tmp_path: Path, name: str, column: str, rows: list[tuple[str, float]]) -> str:
    return write(tmp_path, name, [f"timestamp,{column}"] + [f"{t},{v}" for t, v in rows])


def test_autumn_dst_day_loads_25_hours_in_order(tmp_path: Path) -> None:
    day = dt.datetime(2024, 11, 3)  # US daylight saving time ends at 02:00 (01:00-02:00 twice)
    rows = _local_rows(LA, day, 25, 60)
    assert [t[11:13] for t, _ in rows[:4]] == ["00", "01", "01", "02"]
    path = _csv(tmp_path, "autumn.csv", "ambient_c", rows)
    data = load_replay(ReplayConfig(temperature_csv=path, timezone=LA))
    series = data.temperature
    assert series is not None and len(series.values) == 25
    np.testing.assert_array_equal(series.values, np.arange(25))  # both 01:00 values, in order
    assert series.timestamps[1] == series.timestamps[2] == np.datetime64("2024-11-03T01:00")
    np.testing.assert_array_equal(
        series.utc_offset_s[:4], [-7 * 3600, -7 * 3600, -8 * 3600, -8 * 3600]
    )
    assert data.start_days(24, 60) == [day.date()]  # covers local midnight to midnight
    hourly = data.series_on("temperature", day.date(), 24, 60)
    # 01:00-02:00 local happened twice: its step averages both; later hours are one sample later
    np.testing.assert_allclose(hourly, [0.0, 1.5, *range(3, 25)])
    five_min = data.series_on("temperature", day.date(), 288, 5)
    np.testing.assert_allclose(five_min, np.repeat(hourly, 12))


def test_spring_dst_day_loads_23_hours(tmp_path: Path) -> None:
    day = dt.datetime(2024, 3, 10)  # US daylight saving time starts: 02:00-03:00 never happens
    rows = _local_rows(LA, day, 23 * 12, 5)
    assert rows[24][0].startswith("2024-03-10T03:00")  # 01:55 is followed by 03:00
    path = _csv(tmp_path, "spring.csv", "price_usd_per_mwh", rows)
    with pytest.raises(
        ReplayError, match=r"spring\.csv: row 26, column 'timestamp': gap.*timezone"
    ):
        load_replay(ReplayConfig(prices_csv=path))  # naive without a zone: a 65-min gap
    data = load_replay(ReplayConfig(prices_csv=path, timezone=LA))
    assert data.prices is not None and len(data.prices.values) == 23 * 12
    assert data.start_days(288, 5) == [day.date()]
    hourly = data.series_on("prices", day.date(), 24, 60)
    # the skipped hour holds the value in effect when the clocks jumped (the last 01:55 sample)
    expected = [np.arange(12).mean() + 0.0, np.arange(12, 24).mean(), 23.0]
    expected += [np.arange(12 * h, 12 * h + 12).mean() for h in range(2, 23)]
    np.testing.assert_allclose(hourly, np.array(expected) / 1000)


def test_ambiguous_naive_timestamps_without_timezone_are_an_error(tmp_path: Path) -> None:
    rows = _local_rows(LA, dt.datetime(2024, 11, 3), 25 * 4, 15)
    path = _csv(tmp_path, "naive.csv", "carbon_g_per_kwh", [(t, 300.0) for t, _ in rows])
    prices = series_csv(tmp_path, "p.csv", "price_usd_per_kwh", [0.1] * 24, 60)
    with pytest.raises(ReplayError) as info:
        load_replay(ReplayConfig(prices_csv=prices, carbon_csv=path))
    message = str(info.value)
    # row 10 (line 10) is the second 01:00, after 01:45
    assert "naive.csv: row 10, column 'timestamp'" in message
    assert "ambiguous" in message and "replay.timezone" in message


def test_local_time_skipped_by_the_clock_change_is_an_error(tmp_path: Path) -> None:
    rows = [("2024-03-10T01:30", 1.0), ("2024-03-10T02:30", 2.0), ("2024-03-10T03:30", 3.0)]
    path = _csv(tmp_path, "skipped.csv", "ambient_c", rows)
    with pytest.raises(
        ReplayError, match=r"skipped\.csv: row 3, column 'timestamp'.*does not exist"
    ):
        load_replay(ReplayConfig(temperature_csv=path, timezone=LA))


@pytest.mark.parametrize("offsets", ["local", "utc"])
def test_offset_timestamps_equal_naive_local_time_with_timezone(
    tmp_path: Path, offsets: str
) -> None:
    zone = "America/New_York"  # e.g. 2024-11-03T01:30:00-04:00, then 01:30:00-05:00
    day = dt.datetime(2024, 11, 2)
    naive = _local_rows(zone, day, 2 * 24 * 2 + 2, 30)
    aware = _local_rows(zone, day, len(naive), 30, with_offset=True)
    if offsets == "utc":  # the same instants written in UTC
        aware = [
            (dt.datetime.fromisoformat(t).astimezone(dt.timezone.utc).isoformat(), v)
            for t, v in aware
        ]
    assert "2024-11-03T01:30:00-05:00" in {t for t, _ in aware} or offsets == "utc"
    a = load_replay(
        ReplayConfig(
            prices_csv=_csv(tmp_path, "naive.csv", "price_usd_per_mwh", naive), timezone=zone
        )
    ).prices
    b = load_replay(
        ReplayConfig(
            prices_csv=_csv(tmp_path, "aware.csv", "price_usd_per_mwh", aware), timezone=zone
        )
    ).prices
    assert a is not None and b is not None
    np.testing.assert_array_equal(b.timestamps, a.timestamps)
    np.testing.assert_array_equal(b.utc_offset_s, a.utc_offset_s)
    np.testing.assert_array_equal(b.values, a.values)
    data = load_replay(
        ReplayConfig(
            prices_csv=_csv(tmp_path, "aware2.csv", "price_usd_per_mwh", aware), timezone=zone
        )
    )
    assert data.start_days(288, 5) == [dt.date(2024, 11, 2), dt.date(2024, 11, 3)]
    for start in data.start_days(288, 5):
        got = data.series_on("prices", start, 288, 5)
        ref = load_replay(
            ReplayConfig(prices_csv=str(tmp_path / "naive.csv"), timezone=zone)
        ).series_on("prices", start, 288, 5)
        np.testing.assert_array_equal(got, ref)


def test_unknown_timezone_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"replay\.timezone: unknown time zone 'Mars/Olympus'"):
        load_scenario(None, {"replay.timezone": "Mars/Olympus"})


def test_belgian_day_ahead_example_loads_with_its_held_out_week() -> None:
    """The shipped real-price example: 36 recorded days, the last 7 held out, the spring DST day
    (23 local hours in the file) loads, EUR/MWh converted at price_to_usd."""
    import datetime as dt

    from megapod_gym.scenario.trace import HELD_OUT_SEED_BASE, TraceSampler

    root = Path(__file__).resolve().parents[2]
    cfg = load_scenario(root / "configs/examples/replay-belgium-day-ahead.yaml")
    sampler = TraceSampler(cfg)
    assert (len(sampler.train_days), len(sampler.held_out_days)) == (29, 7)
    assert sampler.held_out_days[0] == dt.date(2023, 4, 23)
    held = sampler.sample(range(HELD_OUT_SEED_BASE, HELD_OUT_SEED_BASE + 7))
    assert sorted(held.start_yyyymmdd.tolist()) == list(range(20230423, 20230430))
    dst_day = sampler.replay.series_on("prices", dt.date(2023, 3, 26), 288, 5)
    assert np.isfinite(dst_day).all()
    # 01:00 local on 25 March 2023 cleared at -7.29 EUR/MWh
    first = sampler.replay.series_on("prices", dt.date(2023, 3, 25), 288, 5)
    np.testing.assert_allclose(first[12:24], -7.29 * cfg.replay.price_to_usd / 1000.0)


def test_replayed_arrival_forecast_counts_training_days_only(tmp_path: Path) -> None:
    """With sessions replayed, the trace's arrival forecast is the recorded sessions' hourly
    profile over the days training may see: sessions on held-out days never enter it."""
    from megapod_gym.scenario.trace import HELD_OUT_SEED_BASE, TraceSampler

    rows = ["arrival_time,energy_kwh"]
    for day in range(1, 11):  # 10 days: 2 sessions at 08:xx on each; 5 more at 18:xx on day 10
        rows += [f"2025-06-{day:02d}T08:{m:02d}:00,20" for m in (5, 35)]
    rows += [f"2025-06-10T18:{m:02d}:00,20" for m in range(0, 50, 10)]
    cfg = load_scenario(
        None,
        {"replay.ev_sessions_csv": write(tmp_path, "s.csv", rows), "replay.held_out_frac": 0.2},
    )
    sampler = TraceSampler(cfg)
    assert sampler.held_out_days[0] == dt.date(2025, 6, 9)
    train = sampler.sample([0])
    hours = (train.hour[0] // 1).astype(int)
    expected = np.where(hours == 8, 2.0, 0.0)  # per hour: 2 arrivals at 08 h on every day seen
    np.testing.assert_array_equal(train.arrival_rate_per_h[0], expected)
    held = sampler.sample([HELD_OUT_SEED_BASE])  # the held-out day's 18 h rush stays unknown
    np.testing.assert_array_equal(held.arrival_rate_per_h[0], expected)
