"""The inputs of the site LP (:mod:`agents.optim.site_lp`): the site figures it needs
(:class:`SiteLPParams`, from a :class:`ScenarioConfig`), one window's exogenous inputs and initial
state (:class:`SiteLPInputs`) and the optional per-car EV block of ``soft`` mode
(:class:`CarBlock`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from megapod_gym.config.schema import ScenarioConfig

__all__ = ["CarBlock", "SiteLPInputs", "SiteLPParams"]


# --------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class SiteLPParams:
    """The site figures the LP needs, taken from a :class:`ScenarioConfig` (units in names)."""

    dt_h: float
    n_steps: int
    window_steps: int
    import_limit_kw: float
    export_limit_kw: float
    it_kw: float
    standby_frac: float
    cap_floor_frac: float
    training_exponent: float
    inference_exponent: float
    training_value_usd_per_kwh: float
    inference_value_usd_per_kwh: float
    sla_penalty_usd_per_kwh: float
    backlog_initial_kwh: float
    backlog_max_kwh: float
    battery_energy_kwh: float
    battery_charge_kw: float
    battery_discharge_kw: float
    battery_charge_efficiency: float
    battery_discharge_efficiency: float
    battery_soc_min: float
    battery_soc_max: float
    battery_initial_soc: float
    battery_degradation_usd_per_kwh: float
    battery_aux_kw: float
    charger_efficiency: float
    carbon_price_usd_per_g: float
    pue_temp_c: np.ndarray
    pue_values: np.ndarray
    demand_threshold_kw: np.ndarray  # [K]
    demand_rate_usd_per_kw: np.ndarray  # [K], prorated to the episode

    @staticmethod
    def from_config(config: ScenarioConfig) -> SiteLPParams:
        ep, grid, bat, comp, tariff = (
            config.episode,
            config.grid,
            config.battery,
            config.compute,
            config.tariff,
        )
        has_batt = bat.energy_kwh > 0.0
        prorate = ep.days / tariff.billing_days
        return SiteLPParams(
            dt_h=ep.dt_h,
            n_steps=ep.n_steps,
            window_steps=grid.demand_window_min // ep.step_min,
            import_limit_kw=grid.import_limit_kw,
            export_limit_kw=grid.export_limit_kw,
            it_kw=comp.it_kw,
            standby_frac=comp.standby_frac,
            cap_floor_frac=comp.cap_floor_frac,
            training_exponent=comp.training_exponent,
            inference_exponent=comp.inference_exponent,
            training_value_usd_per_kwh=comp.training_value_usd_per_kwh,
            inference_value_usd_per_kwh=comp.inference_value_usd_per_kwh,
            sla_penalty_usd_per_kwh=comp.sla_penalty_usd_per_kwh,
            backlog_initial_kwh=comp.training_backlog_initial_h * comp.it_kw,
            backlog_max_kwh=comp.training_backlog_max_h * comp.it_kw,
            battery_energy_kwh=bat.energy_kwh,
            battery_charge_kw=bat.charge_kw if has_batt else 0.0,
            battery_discharge_kw=bat.discharge_kw if has_batt else 0.0,
            battery_charge_efficiency=bat.charge_efficiency,
            battery_discharge_efficiency=bat.discharge_efficiency,
            battery_soc_min=bat.soc_min,
            battery_soc_max=bat.soc_max,
            battery_initial_soc=bat.initial_soc,
            battery_degradation_usd_per_kwh=bat.degradation_usd_per_kwh,
            battery_aux_kw=bat.aux_kw if has_batt else 0.0,
            charger_efficiency=config.chargers.efficiency,
            carbon_price_usd_per_g=tariff.carbon_price_usd_per_tonne / 1e6,
            pue_temp_c=np.asarray(comp.pue.temp_c, dtype=np.float64),
            pue_values=np.asarray(comp.pue.pue, dtype=np.float64),
            demand_threshold_kw=np.array([d.threshold_kw for d in tariff.demand_charges]),
            demand_rate_usd_per_kw=np.array(
                [d.usd_per_kw_month * prorate for d in tariff.demand_charges]
            ),
        )

    @property
    def n_demand_charges(self) -> int:
        return int(self.demand_threshold_kw.shape[0])

    def pue(self, ambient_c: np.ndarray) -> np.ndarray:
        """PUE at the given ambient temperatures (piecewise linear, flat outside, as the kernel)."""
        return np.interp(ambient_c, self.pue_temp_c, self.pue_values)


# ------------------------------------------------------------------------------ car block
@dataclass(frozen=True)
class CarBlock:
    """Per-car EV charging decisions for ``soft`` mode (a relaxation, see :mod:`agents.optim.oracle`).

    Car ``c`` may take DC power ``q_{c,j} >= 0`` in the steps ``start_step[c] <= j < end_step[c]``
    of the window (``end_step`` None: to the window end), at most ``cap_kw[c]`` (stall kW, or the
    car's own power cap if lower). A cumulative-energy variable ``y_{c,j}`` (DC kWh delivered up
    to the end of step ``j``) is at most ``energy_max_kwh[c]`` (up to the target SoC), and each
    line of a concave upper envelope of the acceptance curve x power scale caps the power:
    ``q_{c,j} <= icpt + slope * (soc0 + y / battery_kwh)`` with ``y`` taken after the step for
    rising lines and before it for falling ones (the step's mean SoC lies between, and a concave
    envelope of the curve bounds the mean of the curve over the step). Revenue: retail price x
    DC kWh.
    """

    start_step: np.ndarray  # [N] int, first window step the car may charge
    energy_max_kwh: np.ndarray  # [N] DC kWh up to the target SoC
    battery_kwh: np.ndarray  # [N]
    soc0: np.ndarray  # [N] SoC at the window start (or arrival)
    cap_kw: np.ndarray  # [N] stall power cap (or the car's own, if lower)
    curve_slope: np.ndarray  # [N, L] kW per unit SoC
    curve_icpt: np.ndarray  # [N, L] kW
    ev_price_usd_per_kwh: np.ndarray  # [n] retail price per step
    end_step: np.ndarray | None = None  # [N] int, first window step the car is gone (departure)


# ---------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class SiteLPInputs:
    """Exogenous inputs and initial state of one LP window of ``n`` steps."""

    price_usd_per_kwh: np.ndarray  # [n]
    export_price_usd_per_kwh: np.ndarray  # [n]
    carbon_g_per_kwh: np.ndarray  # [n]
    ev_ac_kw: np.ndarray  # [n] fixed EV AC load (all of it in strict mode)
    pue: np.ndarray  # [n]
    inference_demand_frac: np.ndarray  # [n]
    training_arrival_kwh: np.ndarray  # [n]
    demand_active: np.ndarray  # [n, K] bool
    battery_soc_frac: float
    backlog_kwh: float
    peak0_kw: np.ndarray  # [K] peaks already set (the thresholds at the episode start)
    window_pos0: int = 0  # steps of the current demand window already elapsed before step 0
    window_prior_kwh: float = 0.0  # import in those steps
    count_partial_window: bool = False  # price a window cut off by the window end (MPC)
    terminal_value_usd_per_kwh: float = 0.0  # value of stored energy left at the end (MPC)
    shortfall_penalty_usd_per_kwh: float | None = None  # None: the balance must close exactly
    offset_usd: float = 0.0  # constant added to the objective (e.g. EV revenue - penalties)
    cars: CarBlock | None = None

    @property
    def n_steps(self) -> int:
        return int(self.price_usd_per_kwh.shape[0])
