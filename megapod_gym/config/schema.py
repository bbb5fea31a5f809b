"""Typed, validated scenario configuration: :class:`ScenarioConfig` and its sections.

Every number that describes the site lives here, with its default and the figure it comes from;
the ``ev`` and ``tariff`` sections live in :mod:`megapod_gym.config.ev` and
:mod:`megapod_gym.config.tariff`, the base model and its number types in
:mod:`megapod_gym.config.strict_model`, time windows in :mod:`megapod_gym.config.time_window`.
This module re-exports their public names (``from megapod_gym.config.schema import EVConfig``).
A comment "sources §x" refers to section x of ``docs/sources.md`` (in this repository), which lists
every default with its links and a grade: P primary, S secondary, D derived, E our assumption.
Defaults describe the typical urban 12-stall site of sources §7 (the ``urban-12stall-bev``
scenario); other presets override them in YAML.

All models forbid unknown keys and are frozen. Validation errors are re-raised by
:func:`megapod_gym.config.load_scenario` as one :class:`ConfigError` naming every bad field path.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from megapod_gym.config.ev import (
    IONIQ5_CURVE,
    TESLA_400V_CURVE,
    URBAN_PROFILE,
    AcceptanceCurve,
    BetaSpec,
    EVConfig,
    VehicleModel,
)
from megapod_gym.config.strict_model import (
    MAX_MAGNITUDE,
    Frac,
    NonNegFloat,
    PositiveFloat,
    StrictModel,
)
from megapod_gym.config.tariff import DemandCharge, RealtimePriceModel, TariffConfig, TOUPeriod
from megapod_gym.config.time_window import (
    ALL_MONTHS,
    ALL_WEEKDAYS,
    Hour,
    Month,
    TimeWindow,
    Weekday,
)
from megapod_gym.short_repr import short_repr
from megapod_gym.sim.layout import LEDGER_FIELDS

__all__ = [
    "ALL_MONTHS",
    "ALL_WEEKDAYS",
    "IONIQ5_CURVE",
    "MAX_MAGNITUDE",
    "TESLA_400V_CURVE",
    "URBAN_PROFILE",
    "AcceptanceCurve",
    "BatteryConfig",
    "BetaSpec",
    "ChargerConfig",
    "ComputeConfig",
    "DemandCharge",
    "EVConfig",
    "EpisodeConfig",
    "Frac",
    "GridConfig",
    "Hour",
    "Month",
    "NonNegFloat",
    "PUECurve",
    "PositiveFloat",
    "RealtimePriceModel",
    "ReplayConfig",
    "RewardConfig",
    "ScenarioConfig",
    "StrictModel",
    "TOUPeriod",
    "TariffConfig",
    "TimeWindow",
    "VehicleModel",
    "Weekday",
    "WeatherConfig",
]


# --------------------------------------------------------------------------------------- episode
class EpisodeConfig(StrictModel):
    """Time step, episode length and which calendar days episodes start on."""

    step_min: int = Field(5, ge=1, le=60)  # sources §8: 5-min control step
    days: float = Field(1.0, gt=0.0, le=366.0)  # sources §8: a day for training, a week for eval
    start_day_of_year: tuple[int, int] = (1, 365)  # inclusive range sampled uniformly per episode
    year: int = Field(2025, ge=1970, le=2100)  # calendar used for weekdays and months
    forecast_horizon_h: float = Field(24.0, ge=1.0, le=72.0)  # price forecast lookahead in trace
    # Local hour of day at step 0 (a fleet shifts each site by its time-zone offset so that all
    # sites start at the same instant); a whole number of steps after midnight.
    start_hour: float = Field(0.0, ge=0.0, lt=24.0)

    @field_validator("step_min")
    @classmethod
    def _divides_day(cls, v: int) -> int:
        if 1440 % v:
            raise ValueError("must divide 1440 (minutes per day), e.g. 1, 5, 10, 15, 30, 60")
        return v

    @field_validator("start_day_of_year")
    @classmethod
    def _doy_range(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if not (1 <= lo <= hi <= 365):
            raise ValueError("must be (lo, hi) with 1 <= lo <= hi <= 365")
        return v

    @model_validator(mode="after")
    def _whole_steps(self) -> EpisodeConfig:
        steps = self.days * 1440.0 / self.step_min
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError("days * 1440 / step_min must be a whole number of steps")
        offset = self.start_hour * 60.0 / self.step_min
        if abs(offset - round(offset)) > 1e-9:
            raise ValueError(
                f"start_hour {self.start_hour} must be a whole number of {self.step_min}-min steps"
            )
        return self

    @property
    def start_min(self) -> int:
        """Minutes after local midnight at step 0."""
        return int(round(self.start_hour * 60.0))

    @property
    def dt_h(self) -> float:
        return self.step_min / 60.0

    @property
    def n_steps(self) -> int:
        return int(round(self.days * 1440.0 / self.step_min))


# ------------------------------------------------------------------------------------------ grid
class GridConfig(StrictModel):
    """The site's interconnection."""

    import_limit_kw: PositiveFloat = 1500.0  # sources §7: 1.5 MVA for a 12-stall site (E/D), pf ~ 1
    export_limit_kw: NonNegFloat = 0.0  # E: storage export not allowed on EV tariffs by default
    demand_window_min: int = Field(15, ge=1, le=60)  # sources §8: 15-min demand interval


# -------------------------------------------------------------------------------------- chargers
class ChargerConfig(StrictModel):
    """Stalls and the cabinets that feed them."""

    n_stalls: int = Field(12, ge=1, le=1024)  # sources §7: 12 stalls (typical; sources §1 avg 9-13)
    stall_kw: PositiveFloat = 250.0  # sources §1: V3 per-stall peak 250 kW
    stalls_per_cabinet: int = Field(4, ge=1, le=64)  # sources §1/§7: V3 cabinet feeds 4 stalls
    cabinet_kw: PositiveFloat = 1000.0  # sources §7: 1,000 kW per V3 cabinet
    efficiency: float = Field(0.94, gt=0.0, le=1.0)  # sources §1: V3 cabinet ~94 % AC->DC (E)


# --------------------------------------------------------------------------------------- battery
class BatteryConfig(StrictModel):
    """The on-site battery (Megapack-like). ``energy_kwh = 0`` means no battery."""

    energy_kwh: NonNegFloat = 3854.0  # sources §3/§7: 1 x Megapack 2 XL 2-hour, 3,854 kWh (S)
    charge_kw: NonNegFloat = 1927.0  # sources §3: 1,927 kW (2-hour config, S)
    discharge_kw: NonNegFloat = 1927.0  # sources §3: 1,927 kW (S)
    charge_efficiency: float = Field(0.959, gt=0.0, le=1.0)  # sources §3: sqrt(0.92 2-h RTE) (D)
    discharge_efficiency: float = Field(0.959, gt=0.0, le=1.0)  # sources §3: sqrt(0.92) (D)
    soc_min: Frac = 0.05  # sources §3: 5-95 % operating window (E)
    soc_max: Frac = 0.95  # sources §3 (E)
    initial_soc: Frac = 0.5  # E: half full at midnight
    degradation_usd_per_kwh: NonNegFloat = 0.03  # sources §3: $0.03 per kWh discharged (D/E)
    aux_kw: NonNegFloat = 1.5  # sources §3: 1.5 kW parasitic per unit (E)

    @model_validator(mode="after")
    def _window(self) -> BatteryConfig:
        if not (self.soc_min < self.soc_max):
            raise ValueError(f"soc_min must be < soc_max (got {self.soc_min} >= {self.soc_max})")
        if not (self.soc_min <= self.initial_soc <= self.soc_max):
            raise ValueError(
                f"initial_soc must lie in [soc_min, soc_max] = [{self.soc_min}, {self.soc_max}] "
                f"(got {self.initial_soc})"
            )
        return self


# --------------------------------------------------------------------------------------- compute
class PUECurve(StrictModel):
    """PUE as a piecewise-linear function of ambient temperature (held flat outside the points)."""

    temp_c: tuple[float, ...] = (15.0, 35.0, 45.0)  # sources §4b container PUE vs ambient (E)
    pue: tuple[Annotated[float, Field(ge=1.0, le=3.0)], ...] = (1.10, 1.22, 1.30)

    @model_validator(mode="after")
    def _consistent(self) -> PUECurve:
        if len(self.temp_c) != len(self.pue) or len(self.temp_c) < 1:
            raise ValueError("temp_c and pue must be non-empty and of equal length")
        if any(b <= a for a, b in zip(self.temp_c, self.temp_c[1:])):
            raise ValueError("temp_c must be strictly increasing")
        return self


class ComputeConfig(StrictModel):
    """The Megapod: IT capacity, power-capping curves, workloads and their value."""

    it_kw: PositiveFloat = (
        1200.0  # sources §7: ~1.2 MW IT on 1.5 MVA = 10 GB200-NVL72 racks x 120 kW (sources §4a, S)
    )
    training_exponent: float = Field(0.4, gt=0.0, le=1.0)  # sources §4c: training f = p^0.4 (E)
    inference_exponent: float = Field(0.15, gt=0.0, le=1.0)  # sources §4c: inference f = p^0.15 (E)
    cap_floor_frac: float = Field(0.29, gt=0.0, lt=1.0)  # sources §4a: cap floor 0.29 x TDP (P)
    standby_frac: Frac = 0.25  # sources §4c: idle ~20-30 % of max (E)
    # sources §4e: $2.25/GPU-h H100-class (E); sources §4a: DGX H100 10.2 kW / 8 GPUs = 1.275 kW
    # per GPU (S)
    # -> 2.25 / 1.275 = $1.76 per kWh of IT energy at full throughput (D).
    training_value_usd_per_kwh: NonNegFloat = 1.76
    inference_value_usd_per_kwh: NonNegFloat = 1.76  # E: same rental value as training
    sla_penalty_usd_per_kwh: NonNegFloat = 3.5  # E: ~2x the value of the work not served
    checkpoint_min: NonNegFloat = 1.5  # sources §4d: graceful pause = 60-120 s async checkpoint (E)
    resume_min: NonNegFloat = 4.0  # sources §4d: cold resume 3-5 min (E)
    pue: PUECurve = PUECurve()
    inference_mean_frac: Frac = 0.15  # E: inference share of cluster at full speed, daily mean
    inference_amplitude_frac: Frac = 0.08  # E: daily swing (peak at inference_peak_hour)
    inference_peak_hour: float = Field(14.0, ge=0.0, lt=24.0)  # E
    inference_noise_frac: NonNegFloat = 0.02  # E: AR(1) noise sd
    training_backlog_initial_h: NonNegFloat = 48.0  # E: hours of full-cluster work queued at start
    training_arrival_h_per_day: NonNegFloat = 24.0  # E: new work per day (in full-cluster hours)
    training_backlog_max_h: PositiveFloat = 168.0  # E: a week of queued work at most

    @model_validator(mode="after")
    def _floor(self) -> ComputeConfig:
        if self.standby_frac > self.cap_floor_frac:
            raise ValueError(
                f"standby_frac must be <= cap_floor_frac = {self.cap_floor_frac} (got {self.standby_frac})"
            )
        return self


# --------------------------------------------------------------------------------------- weather
class WeatherConfig(StrictModel):
    """Ambient temperature: monthly mean + daily sinusoid + AR(1) noise."""

    # E: coastal-California-like monthly means (deg C), Jan..Dec.
    monthly_mean_c: tuple[float, ...] = (
        10.0, 11.5, 13.0, 14.5, 16.5, 19.0, 21.0, 21.5, 20.5, 17.5, 13.5, 10.5,
    )  # fmt: skip
    daily_amplitude_c: NonNegFloat = 6.0  # E: half the day-night swing
    peak_hour: float = Field(15.0, ge=0.0, lt=24.0)  # E
    noise_sd_c: NonNegFloat = 1.0  # E

    @field_validator("monthly_mean_c")
    @classmethod
    def _months(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) != 12:
            raise ValueError(f"must have 12 values, January..December (got {len(v)})")
        if any(not (-60.0 <= x <= 60.0) for x in v):
            raise ValueError("values must lie in [-60, 60] deg C")
        return v


# ---------------------------------------------------------------------------------------- replay
class ReplayConfig(StrictModel):
    """Optional CSV files that replace synthetic traces (paths relative to the scenario file).

    File formats and the handling of time zones are in ``megapod_gym.scenario.replay``.
    """

    prices_csv: str | None = None  # columns: timestamp, price_usd_per_kwh
    temperature_csv: str | None = None  # columns: timestamp, ambient_c
    ev_sessions_csv: str | None = None  # columns: arrival_time, energy_kwh [, duration_min, ...]
    # grid carbon intensity (replaces tariff.carbon_g_per_kwh); columns: timestamp,
    # carbon_g_per_kwh (or carbon_kg_per_mwh, carbon_lb_per_mwh)
    carbon_csv: str | None = None
    # prices in another currency: multiply the file's values by this to get USD (e.g. EUR: 1.08)
    price_to_usd: Annotated[float, Field(gt=0.0, le=1000.0)] = 1.0
    # share of the recorded start days held out for evaluation (the last ones): evaluation seeds
    # (>= 1,000,000) replay only those, training seeds only the days before them
    held_out_frac: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    # IANA time zone of the site (e.g. America/Los_Angeles): naive timestamps are its local time
    # (daylight-saving days load with 23 or 25 hours) and timestamps with a UTC offset are
    # converted into it; None: naive timestamps as they stand, one fixed offset per file dropped
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(
                f"unknown time zone {short_repr(v, 60)}; give an IANA name such as "
                "America/Los_Angeles, Europe/Berlin or UTC"
            ) from None
        return v


# ---------------------------------------------------------------------------------------- reward
class RewardConfig(StrictModel):
    """Reward = ``scale`` x the ledger's terms, each signed and weighted (every weight 1 by default:
    the reward is the ledger total, i.e. the profit; see ``megapod_gym.sim.reward``)."""

    scale: PositiveFloat = 0.01  # E: keeps per-step rewards O(1) (a full step earns ~$170)
    # ledger term name (e.g. wait_penalty_usd) -> weight; terms not named keep weight 1
    weights: dict[str, float] = Field(default_factory=dict)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        terms = [t for t in LEDGER_FIELDS if t != "total_usd"]
        unknown = sorted(set(v) - set(terms))
        if unknown:
            raise ValueError(f"unknown ledger terms {unknown}; terms: {terms}")
        bad = {k: w for k, w in v.items() if not (math.isfinite(w) and 0.0 <= w <= 100.0)}
        if bad:
            raise ValueError(f"weights must be finite and in [0, 100] (got {bad})")
        return v


class ScenarioConfig(StrictModel):
    """A complete site scenario."""

    name: str = "urban-12stall-bev"
    description: str = "Typical urban 12-stall site with a PG&E BEV-2-S-like tariff."
    ev_priority: Literal["strict", "soft"] = "strict"
    episode: EpisodeConfig = EpisodeConfig()
    grid: GridConfig = GridConfig()
    chargers: ChargerConfig = ChargerConfig()
    ev: EVConfig = EVConfig()
    battery: BatteryConfig = BatteryConfig()
    compute: ComputeConfig = ComputeConfig()
    tariff: TariffConfig = TariffConfig()
    weather: WeatherConfig = WeatherConfig()
    replay: ReplayConfig = ReplayConfig()
    reward: RewardConfig = RewardConfig()

    @model_validator(mode="after")
    def _site_consistent(self) -> ScenarioConfig:
        window = self.grid.demand_window_min
        if window % self.episode.step_min:
            raise ValueError(
                f"grid.demand_window_min ({window}) must be a multiple of episode.step_min "
                f"({self.episode.step_min})"
            )
        floor_kw = self.compute.it_kw * self.compute.standby_frac * max(self.compute.pue.pue)
        floor_kw += self.battery.aux_kw if self.battery.energy_kwh > 0 else 0.0
        if floor_kw >= self.grid.import_limit_kw:
            raise ValueError(
                f"grid.import_limit_kw ({self.grid.import_limit_kw}) must exceed the site's "
                f"irreducible load (compute standby x max PUE + battery aux = {floor_kw:.1f} kW)"
            )
        return self
