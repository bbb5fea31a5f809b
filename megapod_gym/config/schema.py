"""Typed, validated scenario configuration.

Every number that describes the site lives here, with its default and the figure it comes from.
A comment "sources §x" refers to section x of ``docs/sources.md`` (in this repository), which lists
every default with its links and a grade: P primary, S secondary, D derived, E our assumption.
Defaults describe the typical urban 12-stall site of sources §7 (the ``urban-12stall-bev``
scenario); other presets override them in YAML.

All models forbid unknown keys and are frozen. Validation errors are re-raised by
:func:`megapod_gym.config.load_scenario` as one :class:`ConfigError` naming every bad field path.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from megapod_gym.short_repr import short_repr
from megapod_gym.sim.layout import LEDGER_FIELDS

# No figure of a site comes near 1e9 in its unit (kW, kWh, USD, minutes, ...); a larger value is a
# typo or an attack, and up to it every product the simulator forms stays far from overflow.
MAX_MAGNITUDE = 1e9
Frac = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0, le=MAX_MAGNITUDE)]
NonNegFloat = Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]
Hour = Annotated[int, Field(ge=0, le=24)]
Weekday = Annotated[int, Field(ge=0, le=6)]  # 0 = Monday
Month = Annotated[int, Field(ge=1, le=12)]

ALL_WEEKDAYS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
ALL_MONTHS: tuple[int, ...] = tuple(range(1, 13))


class StrictModel(BaseModel):
    """Base: unknown keys are errors, instances are immutable, defaults are validated too, NaN and
    infinities are refused everywhere, and a number field takes numbers only (``True`` or
    ``"0.5"`` is an error, not 1.0 or 0.5)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and _wants_number(field.annotation):
            _refuse_non_numbers(value, _wants_sequence(field.annotation))
        return value


_NUMERIC = (int, float)


@functools.cache
def _wants_number(annotation: Any) -> bool:
    """True for ``float``/``int`` fields and sequences/optionals of them (not ``bool``)."""
    if annotation in _NUMERIC:
        return True
    args = [a for a in get_args(annotation) if a is not type(None) and a is not Ellipsis]
    return bool(args) and all(_wants_number(a) for a in args)


@functools.cache
def _wants_sequence(annotation: Any) -> bool:
    return get_origin(annotation) in (tuple, list)


def _refuse_non_numbers(value: Any, sequence: bool) -> None:
    items = value if sequence and isinstance(value, (list, tuple)) else [value]
    for i, v in enumerate(items):
        if v is None and not sequence:
            continue
        if isinstance(v, (bool, str)):
            kind = "a boolean" if isinstance(v, bool) else "a string"
            where = f"element {i} " if sequence else ""
            raise ValueError(f"{where}must be a number, not {kind}")


class TimeWindow(StrictModel):
    """A recurring window: hours ``[start_hour, end_hour)`` (wraps past midnight when start > end)
    on the listed weekdays (0 = Monday) and months (1 = January)."""

    start_hour: Hour = 0
    end_hour: Hour = 24
    weekdays: tuple[Weekday, ...] = ALL_WEEKDAYS
    months: tuple[Month, ...] = ALL_MONTHS

    @model_validator(mode="after")
    def _non_empty(self) -> TimeWindow:
        if self.start_hour == self.end_hour:
            raise ValueError("start_hour must differ from end_hour (an empty window)")
        if not self.weekdays or not self.months:
            raise ValueError("weekdays and months must each list at least one value")
        return self


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


# -------------------------------------------------------------------------------------------- EV
class AcceptanceCurve(StrictModel):
    """Max charging power (kW at the car) as a piecewise-linear function of SoC."""

    soc: tuple[Frac, ...]
    kw: tuple[NonNegFloat, ...]

    @model_validator(mode="after")
    def _consistent(self) -> AcceptanceCurve:
        if len(self.soc) != len(self.kw):
            raise ValueError(
                f"soc and kw must have equal length (got {len(self.soc)} and {len(self.kw)})"
            )
        if len(self.soc) < 2:
            raise ValueError("needs at least 2 points")
        if self.soc[0] != 0.0 or self.soc[-1] != 1.0:
            raise ValueError("soc points must start at 0.0 and end at 1.0")
        if any(b <= a for a, b in zip(self.soc, self.soc[1:])):
            raise ValueError("soc points must be strictly increasing")
        if max(self.kw) <= 0.0:
            raise ValueError("kw must have at least one positive value")
        return self


# sources §2b: default piecewise-linear curve, 400 V Tesla pack on V3/V4 (D from measured 0->80 %).
TESLA_400V_CURVE = AcceptanceCurve(
    soc=(0.0, 0.05, 0.25, 0.45, 0.60, 0.80, 0.90, 1.0),
    kw=(150.0, 250.0, 250.0, 170.0, 120.0, 65.0, 40.0, 10.0),
)
# sources §2b: Ioniq 5 58 kWh: ~177 kW peak 7-45 %, ~140 kW to 57 %, 50 kW by 86 % (S).
IONIQ5_CURVE = AcceptanceCurve(
    soc=(0.0, 0.07, 0.45, 0.57, 0.86, 1.0), kw=(100.0, 177.0, 177.0, 140.0, 50.0, 10.0)
)


class VehicleModel(StrictModel):
    """One vehicle type in the arriving fleet."""

    name: str
    share: NonNegFloat  # share of arrivals (normalised over the fleet)
    battery_kwh: PositiveFloat
    curve: str = "tesla_400v"  # a key of EVConfig.curves
    power_scale: PositiveFloat = 1.0  # multiplies the curve's kW (e.g. for 800 V cars)


def _default_fleet() -> tuple[VehicleModel, ...]:
    # sources §2a fleet mix (E): Model Y 45 %, Model 3 30 %, S/X 8 %, Cybertruck 5 %, others 12 %.
    return (
        VehicleModel(name="model_y_lr", share=0.45, battery_kwh=75.0),  # sources §2a ~75 kWh (S)
        VehicleModel(name="model_3_lr", share=0.30, battery_kwh=78.0),  # sources §2a 75-80 kWh (S)
        VehicleModel(name="model_s_x", share=0.08, battery_kwh=95.0),  # sources §2a ~95 kWh (E)
        VehicleModel(
            name="cybertruck", share=0.05, battery_kwh=123.0, power_scale=1.3
        ),  # sources §1 ~325 kW peak
        VehicleModel(
            name="non_tesla", share=0.12, battery_kwh=77.4, curve="ioniq5"
        ),  # sources §2a Ioniq 5 LR
    )


def _default_curves() -> dict[str, AcceptanceCurve]:
    return {"tesla_400v": TESLA_400V_CURVE, "ioniq5": IONIQ5_CURVE}


class BetaSpec(StrictModel):
    """A Beta distribution given by mean and standard deviation, clipped to [lo, hi]."""

    mean: Frac
    sd: PositiveFloat
    lo: Frac = 0.0
    hi: Frac = 1.0

    @model_validator(mode="after")
    def _feasible(self) -> BetaSpec:
        if not (self.lo < self.hi):
            raise ValueError(f"lo must be < hi (got lo={self.lo}, hi={self.hi})")
        if not (0.0 < self.mean < 1.0):
            raise ValueError(f"mean must be in (0, 1) (got {self.mean})")
        if self.sd**2 >= self.mean * (1.0 - self.mean):
            raise ValueError(
                f"sd must satisfy sd^2 < mean*(1-mean) = {self.mean * (1 - self.mean):.4f} (got sd={self.sd})"
            )
        return self


# sources §2d urban hourly arrival profile (E).
URBAN_PROFILE = (
    0.016, 0.011, 0.007, 0.005, 0.005, 0.009, 0.016, 0.030, 0.043, 0.048, 0.053, 0.059,
    0.061, 0.061, 0.059, 0.060, 0.064, 0.070, 0.073, 0.072, 0.064, 0.051, 0.037, 0.026,
)  # fmt: skip


class EVConfig(StrictModel):
    """Arriving cars, their batteries and their patience."""

    # <= 20,000 cars/day: the busiest charging sites see a few thousand a day
    arrivals_per_day: Annotated[float, Field(ge=0.0, le=20_000.0)] = (
        70.0  # sources §7: 70/day for 12 stalls (~5.8 per stall, D/E)
    )
    hourly_profile: tuple[NonNegFloat, ...] = URBAN_PROFILE  # sources §2d urban vector (E)
    weekday_factors: tuple[NonNegFloat, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # Mon..Sun
    fleet: tuple[VehicleModel, ...] = Field(default_factory=_default_fleet)
    curves: dict[str, AcceptanceCurve] = Field(default_factory=_default_curves)
    arrival_soc: BetaSpec = BetaSpec(mean=0.35, sd=0.12, lo=0.03, hi=0.70)  # sources §2c urban (E)
    target_soc: BetaSpec = BetaSpec(mean=0.78, sd=0.07, lo=0.55, hi=0.95)  # sources §2c (E)
    patience_median_min: PositiveFloat = 5.0  # sources §2f: W_max median 5 min urban (E)
    patience_sigma: Annotated[float, Field(ge=0.0, le=5.0)] = (
        0.6  # sources §2f: lognormal spread of W_max (E)
    )
    retail_peak_usd_per_kwh: NonNegFloat = 0.55  # sources §5b default retail peak (E)
    retail_offpeak_usd_per_kwh: NonNegFloat = 0.30  # sources §5b default retail off-peak (E)
    retail_peak_window: TimeWindow = TimeWindow(start_hour=11, end_hour=21)  # sources §2d/§5b
    wait_cost_usd_per_min: NonNegFloat = 0.50  # E: half Tesla's $1/min congestion fee (sources §2f)
    balk_penalty_usd: NonNegFloat = 15.0  # E: lost margin of a ~30 kWh sale plus goodwill

    @field_validator("hourly_profile")
    @classmethod
    def _profile(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) != 24:
            raise ValueError(f"must have 24 values, one per hour (got {len(v)})")
        if sum(v) <= 0:
            raise ValueError("must have a positive sum")
        return v

    @field_validator("weekday_factors")
    @classmethod
    def _weekdays(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) != 7:
            raise ValueError(f"must have 7 values, Monday..Sunday (got {len(v)})")
        return v

    @model_validator(mode="after")
    def _fleet(self) -> EVConfig:
        if not self.fleet:
            raise ValueError("fleet must list at least one vehicle model")
        if sum(v.share for v in self.fleet) <= 0:
            raise ValueError("fleet shares must have a positive sum")
        for i, v in enumerate(self.fleet):
            if v.curve not in self.curves:
                raise ValueError(
                    f"fleet.{i}.curve: unknown curve {v.curve!r}; defined curves: {sorted(self.curves)}"
                )
        return self


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


# ---------------------------------------------------------------------------------------- tariff
class TOUPeriod(StrictModel):
    """One time-of-use period; the first period whose window matches a step sets its price."""

    name: str
    price_usd_per_kwh: float = Field(ge=-5.0, le=20.0)
    window: TimeWindow


class RealtimePriceModel(StrictModel):
    """Synthetic real-time (wholesale) price: hourly shape x day factor x AR(1) lognormal noise,
    with negative-price blocks and scarcity spikes. Prices in $/MWh as markets quote them."""

    mean_usd_per_mwh: float = Field(45.0, ge=-100.0, le=1000.0)  # sources §5c CAISO-like mean (E)
    hourly_shape: tuple[float, ...] = (
        0.9,
        0.85,
        0.8,
        0.8,
        0.85,
        0.95,
        1.05,
        0.9,
        0.5,
        0.3,
        0.22,
        0.22,
        0.22,
        0.22,
        0.25,
        0.4,
        0.8,
        1.4,
        2.0,
        2.0,
        2.0,
        1.7,
        1.2,
        1.0,
    )  # fmt: skip  sources §5c: midday ~$10, evening 18-21 h ~$90 (E)
    day_factor_sigma: NonNegFloat = 0.15  # E: day-to-day level variation
    noise_sigma: NonNegFloat = 0.35  # sources §5c: lognormal noise sigma 0.35 (E)
    noise_autocorr: float = Field(0.9, ge=0.0, lt=1.0)  # E: per-step AR(1) coefficient
    negative_prob: Frac = 0.35  # E: P(hour in negative_window is negative), tuned (sources §5c)
    negative_window: TimeWindow = TimeWindow(start_hour=8, end_hour=17, months=(2, 3, 4, 5, 6))
    negative_usd_per_mwh: tuple[float, float] = (-30.0, -5.0)  # sources §5c: -$5 to -$30 (E)
    spike_prob: Frac = 0.003  # sources §5c: 0.3 %/interval (E)
    spike_window: TimeWindow = TimeWindow()
    spike_usd_per_mwh: tuple[float, float] = (250.0, 1000.0)  # sources §5c CAISO spikes (E)
    spike_duration_steps: PositiveFloat = 3.0  # E: mean spike length (geometric)

    @field_validator("hourly_shape")
    @classmethod
    def _shape(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) != 24:
            raise ValueError(f"must have 24 values (got {len(v)})")
        if any(x < 0 for x in v) or sum(v) <= 0:
            raise ValueError("values must be >= 0 with a positive sum")
        return v

    @field_validator("negative_usd_per_mwh", "spike_usd_per_mwh")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] > v[1]:
            raise ValueError(f"must be (low, high) with low <= high (got {v})")
        return v


class DemandCharge(StrictModel):
    """A demand charge on the peak average import over ``GridConfig.demand_window_min`` within
    ``window``, above ``threshold_kw`` (a subscription level), in $/kW per billing period."""

    name: str
    usd_per_kw_month: NonNegFloat
    threshold_kw: NonNegFloat = 0.0
    window: TimeWindow = TimeWindow()


class TariffConfig(StrictModel):
    """What energy costs and what exported energy and charging sessions earn."""

    energy_price: Literal["tou", "realtime"] = "tou"
    # sources §5a PG&E BEV-2-S energy (S): peak 16-21 h ~$0.41, super-off-peak 09-14 h ~$0.17,
    # off-peak ~$0.20.
    tou: tuple[TOUPeriod, ...] = (
        TOUPeriod(
            name="peak", price_usd_per_kwh=0.41, window=TimeWindow(start_hour=16, end_hour=21)
        ),
        TOUPeriod(
            name="super_off_peak",
            price_usd_per_kwh=0.17,
            window=TimeWindow(start_hour=9, end_hour=14),
        ),
        TOUPeriod(name="off_peak", price_usd_per_kwh=0.20, window=TimeWindow()),
    )
    realtime: RealtimePriceModel = RealtimePriceModel()
    realtime_adder_usd_per_kwh: float = Field(0.0, ge=-1.0, le=5.0)  # delivery adder on RT price
    # sources §5a PG&E BEV-2-S: subscription $95.56 per 50-kW block; overage $3.82/kW above it (P).
    # Subscribed 1,000 kW here (E); the fixed subscription fee does not depend on control and is
    # left out of the ledger.
    demand_charges: tuple[DemandCharge, ...] = (
        DemandCharge(name="subscription_overage", usd_per_kw_month=3.82, threshold_kw=1000.0),
    )
    billing_days: PositiveFloat = (
        30.0  # demand charges are prorated from this period to the episode
    )
    export_price_frac_of_energy: float = Field(
        0.75, ge=0.0, le=1.0
    )  # E: export earns 75 % of import price
    carbon_price_usd_per_tonne: NonNegFloat = 0.0  # optional; 0 = no carbon cost
    # sources §5d CAISO-like marginal intensity by hour (E), g/kWh.
    carbon_g_per_kwh: tuple[NonNegFloat, ...] = (
        400, 400, 400, 400, 400, 400, 400, 380, 350, 200, 150, 120,
        120, 150, 200, 300, 400, 480, 520, 520, 500, 480, 450, 420,
    )  # fmt: skip

    @field_validator("carbon_g_per_kwh")
    @classmethod
    def _carbon(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if len(v) != 24:
            raise ValueError(f"must have 24 values, one per hour (got {len(v)})")
        return v

    @model_validator(mode="after")
    def _tou_covers(self) -> TariffConfig:
        if self.energy_price == "tou" and not self.tou:
            raise ValueError("tou must list at least one period when energy_price is 'tou'")
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
