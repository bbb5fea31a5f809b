"""The ``ev`` section of a scenario: arriving cars, their fleet mix and charging curves, their state
of charge and patience, and what charging earns.

A comment "sources §x" refers to section x of ``docs/sources.md`` (in this repository), which lists
every default with its links and a grade: P primary, S secondary, D derived, E our assumption.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from megapod_gym.config.strict_model import Frac, NonNegFloat, PositiveFloat, StrictModel
from megapod_gym.config.time_window import TimeWindow


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
