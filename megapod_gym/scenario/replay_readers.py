"""The per-kind readers of the replay files, with their columns, units and plausibility checks
(the file formats, units and time rules are in the docstring of
:mod:`megapod_gym.scenario.replay`): prices, carbon intensity, temperature and EV sessions (with
their dwell)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from megapod_gym.scenario.replay_data import SessionLog, TimeSeries
from megapod_gym.scenario.replay_table import (
    ReplayError,
    _check_spacing,
    _fmt,
    _fmt_offset,
    _Table,
)

# Physical ranges of replayed values (inclusive).
TEMPERATURE_RANGE_C: tuple[float, float] = (-60.0, 60.0)
PRICE_RANGE_USD_PER_KWH: tuple[float, float] = (-10.0, 100.0)
# Grid carbon intensity: from zero (curtailed renewables on the margin) to above the dirtiest
# lignite unit (about 1.2 t/MWh, sources §5d anchors 0.4 t/MWh for gas); negative values are refused.
CARBON_RANGE_G_PER_KWH: tuple[float, float] = (0.0, 2000.0)

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


# price columns and their factor to $/kWh (the currency factor of the config applies on top)
PRICE_UNITS: dict[str, float] = {
    "price_usd_per_kwh": 1.0,
    "price_usd_per_mwh": 1e-3,
    "price_cents_per_kwh": 1e-2,
}
# a $/kWh series whose median magnitude exceeds this is almost surely $/MWh or cents
PRICE_MEDIAN_PLAUSIBLE_USD_PER_KWH = 2.0


def _unit_column(table: _Table, units: dict[str, float]) -> str:
    """The one value column of a series whose header declares its unit (the keys of ``units``,
    the first being the canonical one named in the error)."""
    table.check_columns(("timestamp", *units), ("timestamp",))
    given = [c for c in units if c in table.header]
    if len(given) != 1:
        raise ReplayError(
            f"{table.name}: row {table.header_line}, column {next(iter(units))!r}: give exactly one "
            f"of {', '.join(units)} (header has: {', '.join(table.header)})"
        )
    return given[0]


def _read_prices(path: Path, to_usd: float = 1.0, tz: ZoneInfo | None = None) -> TimeSeries:
    table = _Table(path, "prices")
    column = _unit_column(table, PRICE_UNITS)
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
    column = _unit_column(table, CARBON_UNITS)
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
