"""Per-car arrays for ``ReplayData.cars_on`` (:mod:`megapod_gym.scenario.replay_data`; file
formats and units: :mod:`megapod_gym.scenario.replay`): the fleet's per-model arrays (cached per
config object), recorded values filled with drawn ones, and the numba kernel turning charging
minutes into the SoC reached."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from megapod_gym.config.schema import EVConfig
from megapod_gym.sim.curves import charge_for_minutes, curve_tables

# Car-side power cap used to turn a session duration into energy (V3 stall peak, sources §1).
DURATION_POWER_CAP_KW: float = 250.0


def _fill(recorded: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Recorded values where known (not NaN), drawn ones elsewhere."""
    return np.where(np.isnan(recorded), drawn, recorded).astype(np.float64)


@dataclass(frozen=True)
class _FleetArrays:
    """Per-vehicle-model arrays of an :class:`EVConfig`, and its curves on one common SoC grid."""

    share: np.ndarray  # normalised shares
    battery_kwh: np.ndarray
    curve_id: np.ndarray  # int64 index into sorted(ev.curves)
    power_scale: np.ndarray
    curves: np.ndarray  # [n_curves, 2, P] acceptance-curve tables (megapod_gym.sim.curves)


_FLEET_CACHE: dict[int, tuple[EVConfig, _FleetArrays]] = {}


def _fleet_arrays(ev: EVConfig) -> _FleetArrays:
    """Arrays derived from ``ev`` (cached per config object; configs are immutable)."""
    hit = _FLEET_CACHE.get(id(ev))
    if hit is not None and hit[0] is ev:
        return hit[1]
    shares = np.array([v.share for v in ev.fleet], dtype=np.float64)
    names = sorted(ev.curves)
    arrays = _FleetArrays(
        share=shares / shares.sum(),
        battery_kwh=np.array([v.battery_kwh for v in ev.fleet], dtype=np.float64),
        curve_id=np.array([names.index(v.curve) for v in ev.fleet], dtype=np.int64),
        power_scale=np.array([v.power_scale for v in ev.fleet], dtype=np.float64),
        curves=curve_tables(ev),
    )
    if len(_FLEET_CACHE) > 64:
        _FLEET_CACHE.clear()
    _FLEET_CACHE[id(ev)] = (ev, arrays)  # the reference keeps id(ev) from being reused
    return arrays


@njit(cache=True)
def _soc_after_minutes(
    soc0: np.ndarray,
    duration_min: np.ndarray,
    battery_kwh: np.ndarray,
    curve_id: np.ndarray,
    power_scale: np.ndarray,
    curves: np.ndarray,
    cap_kw: np.ndarray,
) -> np.ndarray:
    """SoC each car reaches charging ``duration_min`` from ``soc0`` at its acceptance-curve limit
    (``cap_kw`` per car), capped at 1: :func:`megapod_gym.sim.curves.charge_for_minutes`."""
    out = np.empty(soc0.shape[0])
    for k in range(soc0.shape[0]):
        out[k] = charge_for_minutes(
            soc0[k], 1.0, battery_kwh[k], curves[curve_id[k]], power_scale[k], cap_kw[k],
            duration_min[k],
        )[1]  # fmt: skip
    return out


def _warm_up_duration_kernel() -> None:
    """Compile (or load from numba's cache) :func:`_soc_after_minutes` for the types used."""
    one = np.ones(1)
    _soc_after_minutes(
        one * 0.5,
        one,
        one * 75.0,
        np.zeros(1, dtype=np.int64),
        one,
        np.array([[[0.0, 1.0], [1.0, 1.0]]]),
        one * 250.0,
    )
