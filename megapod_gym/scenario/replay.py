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

Code layout
-----------
This module holds :func:`load_replay` and re-exports the names of its parts (import them from
here): the CSV table reader, timestamps, time zones and spacing checks in
:mod:`megapod_gym.scenario.replay_table`; the per-kind readers with their units and plausibility
limits in :mod:`megapod_gym.scenario.replay_readers`; the containers :class:`TimeSeries`,
:class:`SessionLog` and :class:`ReplayData` in :mod:`megapod_gym.scenario.replay_data`; the
per-car helpers of :meth:`ReplayData.cars_on` in :mod:`megapod_gym.scenario.replay_cars`.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from megapod_gym.config.schema import ReplayConfig

# The "noqa: F401" names are re-exported so that every name this module had before it was split
# stays importable from here: the limits and unit tables of the readers, the duration kernel
# (tests import it) and the one charging definition (tests/sim/test_curves.py checks identity).
from megapod_gym.scenario.replay_cars import (  # noqa: F401
    DURATION_POWER_CAP_KW,
    _soc_after_minutes,
    _warm_up_duration_kernel,
)
from megapod_gym.scenario.replay_data import ReplayData, SessionLog, TimeSeries
from megapod_gym.scenario.replay_readers import (  # noqa: F401
    CARBON_MEDIAN_PLAUSIBLE_G_PER_KWH,
    CARBON_RANGE_G_PER_KWH,
    CARBON_UNITS,
    PRICE_MEDIAN_PLAUSIBLE_USD_PER_KWH,
    PRICE_RANGE_USD_PER_KWH,
    PRICE_UNITS,
    SESSION_MEDIAN_PLAUSIBLE_KWH,
    TEMPERATURE_RANGE_C,
    _read_carbon,
    _read_prices,
    _read_sessions,
    _read_temperature,
)
from megapod_gym.scenario.replay_table import (  # noqa: F401
    GAP_MEDIAN_FACTOR,
    MIN_GAP_LIMIT_S,
    ReplayError,
)
from megapod_gym.sim.curves import charge_for_minutes  # noqa: F401

__all__ = [
    "ReplayData",
    "ReplayError",
    "SessionLog",
    "TimeSeries",
    "load_replay",
]


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
