"""Site figures derived from a validated scenario config, defined once.

Every consumer that needs a derived figure of the site — the env's observation encoder and action
decoder, the rule baselines, MPC and the LPs, evaluation summaries, the ONNX export's sidecar and
through it the controller runtime — reads it from :func:`site_figures`, so a figure cannot drift
between them (the chargers' AC capacity once did: stall-based in the env, cabinet-limited in MPC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from megapod_gym.config.schema import ScenarioConfig


@dataclass(frozen=True)
class SiteFigures:
    """Derived figures of one site (battery powers and energies are 0 without a battery)."""

    import_limit_kw: float
    n_cabinets: int
    ev_capacity_kw: float  # the chargers' total AC draw at full output (stall and cabinet limits)
    battery_charge_kw: float
    battery_discharge_kw: float
    battery_power_kw: float  # max(charge, discharge): the observation's battery scale
    battery_usable_kwh: float  # energy between the SoC window's limits

    @property
    def has_battery(self) -> bool:
        return self.battery_usable_kwh > 0.0


def site_figures(config: ScenarioConfig) -> SiteFigures:
    """The derived figures of ``config``'s site."""
    ch, bat = config.chargers, config.battery
    n_cabinets = math.ceil(ch.n_stalls / ch.stalls_per_cabinet)
    dc_kw = min(ch.n_stalls * ch.stall_kw, n_cabinets * ch.cabinet_kw)
    has_batt = bat.energy_kwh > 0
    charge_kw = bat.charge_kw if has_batt else 0.0
    discharge_kw = bat.discharge_kw if has_batt else 0.0
    return SiteFigures(
        import_limit_kw=config.grid.import_limit_kw,
        n_cabinets=n_cabinets,
        ev_capacity_kw=dc_kw / ch.efficiency,
        battery_charge_kw=charge_kw,
        battery_discharge_kw=discharge_kw,
        battery_power_kw=max(charge_kw, discharge_kw),
        battery_usable_kwh=bat.energy_kwh * (bat.soc_max - bat.soc_min) if has_batt else 0.0,
    )
