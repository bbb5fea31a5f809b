"""The ``tariff`` section of a scenario: energy prices (time-of-use or a synthetic real-time
market), demand charges, export credit and the carbon price and intensity.

A comment "sources §x" refers to section x of ``docs/sources.md`` (in this repository), which lists
every default with its links and a grade: P primary, S secondary, D derived, E our assumption.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from megapod_gym.config.strict_model import Frac, NonNegFloat, PositiveFloat, StrictModel
from megapod_gym.config.time_window import TimeWindow


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
