"""Flatten scenario configs into the per-site parameter arrays the compiled kernel reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from megapod_gym.config.schema import ScenarioConfig
from megapod_gym.sim.curves import table
from megapod_gym.sim.layout import N_PARAMS, PARAM_INDEX


@dataclass(frozen=True)
class SiteParams:
    """Parameters of ``B`` sites (rows may differ: a fleet is a batch of heterogeneous sites).

    Interpolation tables hold x values in row 0 and y values in row 1; shorter tables are padded
    with x beyond the last real point (``last + 1, last + 2, ...``) and y repeated, so the kernel's
    interpolation needs no point count.
    """

    scalars: np.ndarray  # [B, N_PARAMS] float64, columns named by layout.PARAM_FIELDS
    curves: np.ndarray  # [B, C, 2, P] acceptance curves: SoC row, kW row (curve ids = sorted names)
    pue: np.ndarray  # [B, 2, Q] ambient deg C row, PUE row
    demand: np.ndarray  # [B, 3, K] threshold kW, $/kW-month, $/kW prorated to the episode
    max_stalls: int

    @property
    def batch_size(self) -> int:
        return int(self.scalars.shape[0])

    @property
    def n_demand_charges(self) -> int:
        return int(self.demand.shape[2])

    def value(self, name: str) -> np.ndarray:
        """Column ``name`` of the scalar parameters, shape [B]."""
        return self.scalars[:, PARAM_INDEX[name]]


def _scalar_row(cfg: ScenarioConfig) -> np.ndarray:
    ep, grid, ch, ev, bat, comp = (
        cfg.episode,
        cfg.grid,
        cfg.chargers,
        cfg.ev,
        cfg.battery,
        cfg.compute,
    )
    values = {
        "dt_h": ep.dt_h,
        "step_min": ep.step_min,
        "n_steps": ep.n_steps,
        "import_limit_kw": grid.import_limit_kw,
        "export_limit_kw": grid.export_limit_kw,
        "window_steps": grid.demand_window_min // ep.step_min,
        "n_stalls": ch.n_stalls,
        "stall_kw": ch.stall_kw,
        "stalls_per_cabinet": ch.stalls_per_cabinet,
        "cabinet_kw": ch.cabinet_kw,
        "charger_efficiency": ch.efficiency,
        "wait_cost_usd_per_min": ev.wait_cost_usd_per_min,
        "balk_penalty_usd": ev.balk_penalty_usd,
        "battery_energy_kwh": bat.energy_kwh,
        "battery_charge_kw": bat.charge_kw if bat.energy_kwh > 0 else 0.0,
        "battery_discharge_kw": bat.discharge_kw if bat.energy_kwh > 0 else 0.0,
        "battery_charge_efficiency": bat.charge_efficiency,
        "battery_discharge_efficiency": bat.discharge_efficiency,
        "battery_soc_min": bat.soc_min,
        "battery_soc_max": bat.soc_max,
        "battery_degradation_usd_per_kwh": bat.degradation_usd_per_kwh,
        "battery_aux_kw": bat.aux_kw,
        "it_kw": comp.it_kw,
        "training_exponent": comp.training_exponent,
        "inference_exponent": comp.inference_exponent,
        "cap_floor_frac": comp.cap_floor_frac,
        "standby_frac": comp.standby_frac,
        "training_value_usd_per_kwh": comp.training_value_usd_per_kwh,
        "inference_value_usd_per_kwh": comp.inference_value_usd_per_kwh,
        "sla_penalty_usd_per_kwh": comp.sla_penalty_usd_per_kwh,
        "checkpoint_min": comp.checkpoint_min,
        "resume_min": comp.resume_min,
        "training_backlog_max_kwh": comp.training_backlog_max_h * comp.it_kw,
        "carbon_price_usd_per_g": cfg.tariff.carbon_price_usd_per_tonne / 1e6,
        "soft_ev_priority": 1.0 if cfg.ev_priority == "soft" else 0.0,
    }
    row = np.zeros(N_PARAMS)
    for name, v in values.items():
        row[PARAM_INDEX[name]] = v
    return row


def build_params(
    configs: ScenarioConfig | Sequence[ScenarioConfig], batch_size: int = 1
) -> SiteParams:
    """Parameters for a batch: one config repeated ``batch_size`` times, or one config per site.

    All configs of a batch must share the time step and episode length (they step in lockstep).
    """
    cfgs = [configs] * batch_size if isinstance(configs, ScenarioConfig) else list(configs)
    if not cfgs:
        raise ValueError("need at least one config")
    steps = {(c.episode.step_min, c.episode.n_steps) for c in cfgs}
    if len(steps) != 1:
        raise ValueError(
            f"all sites of a batch must share episode.step_min and length; got {sorted(steps)}"
        )
    B = len(cfgs)
    curve_names = [sorted(c.ev.curves) for c in cfgs]
    C = max(len(n) for n in curve_names)
    P = max(len(cv.soc) for c in cfgs for cv in c.ev.curves.values())
    Q = max(len(c.compute.pue.temp_c) for c in cfgs)
    K = max(len(c.tariff.demand_charges) for c in cfgs)
    curves = np.zeros((B, C, 2, P))
    pue = np.zeros((B, 2, Q))
    demand = np.zeros((B, 3, K))
    for b, cfg in enumerate(cfgs):
        for ci, name in enumerate(curve_names[b]):
            curves[b, ci] = table(cfg.ev.curves[name].soc, cfg.ev.curves[name].kw, P)
        pue[b] = table(cfg.compute.pue.temp_c, cfg.compute.pue.pue, Q)
        prorate = cfg.episode.days / cfg.tariff.billing_days
        for k, d in enumerate(cfg.tariff.demand_charges):
            demand[b, :, k] = (d.threshold_kw, d.usd_per_kw_month, d.usd_per_kw_month * prorate)
    return SiteParams(
        scalars=np.stack([_scalar_row(c) for c in cfgs]),
        curves=curves,
        pue=pue,
        demand=demand,
        max_stalls=max(c.chargers.n_stalls for c in cfgs),
    )
