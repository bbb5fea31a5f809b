"""Observation encoding and action decoding of a fleet, shared by the centralized Gymnasium env
and the PettingZoo env (one definition, two interfaces over the same :class:`FleetSimulator`).

Per-site observation (``SITE_OBS_SIZE`` float32): the single-site env's 27 features of that site
(scaled by that site's figures; ``training_backlog_h`` = work placed there now) followed by:

| feature          | unit | scaling              | meaning                                        |
|------------------|------|----------------------|------------------------------------------------|
| outage           | -    | 0 / 1                | the site is islanded this step                  |
| placed_work_h    | h    | / 24                 | work placed at the site / its IT kW             |
| in_transit_h     | h    | / 24                 | of which still migrating                        |
| it_share         | -    | x K                  | site IT kW / fleet IT kW, times K (1 = average) |

Global fleet observation (``GLOBAL_OBS_SIZE``): active work, unplaced work, work due within 6 h
and within 24 h (each in hours of fleet IT capacity, / 24), active jobs / 100, hours left / 24.

Site action (2 values in [-1, 1]) as the single-site env in ``strict`` mode: IT fraction (a+1)/2,
battery a x discharge (a >= 0) or charge (a < 0) kW. Dispatcher action (K + 1 values):
share_k = (a_k + 1) / 2 (weights, normalized over the sites not in an outage; all zero keeps the
jobs where they are), rebalance = (a_K + 1) / 2.
"""

from __future__ import annotations

import numpy as np

from megapod_gym.action import nonfinite_rows_message
from megapod_gym.envs.site_env import make_decoder, make_encoder, site_measurements
from megapod_gym.fleet.simulator import FleetSimulator
from megapod_gym.observation import OBS_CLIP
from megapod_gym.sim import layout as L

FLEET_SITE_FEATURES: tuple[str, ...] = ("outage", "placed_work_h", "in_transit_h", "it_share")
GLOBAL_FEATURES: tuple[str, ...] = (
    "pool_active_work_h",
    "pool_unplaced_work_h",
    "work_due_6h_h",
    "work_due_24h_h",
    "active_jobs",
    "fleet_hours_left_h",
)
SITE_ACTION_NAMES: tuple[str, ...] = ("compute_frac", "battery_kw")


class FleetInterface:
    """Encodes a :class:`FleetSimulator`'s state and decodes actions into its step arguments."""

    def __init__(self, fleet_sim: FleetSimulator) -> None:
        self.fs = fleet_sim
        K = fleet_sim.n_sites
        encoders = [make_encoder(c) for c in fleet_sim.site_configs]
        carbon = {e.carbon_priced for e in encoders}
        if len(carbon) > 1:
            raise ValueError(
                "fleet sites must all price carbon or none (tariff.carbon_price_usd_per_tonne > 0 "
                "adds carbon features to a site's observation)"
            )
        self._carbon_priced = carbon.pop()
        self.site_feature_names: tuple[str, ...] = encoders[0].names + FLEET_SITE_FEATURES
        self.site_obs_size = len(self.site_feature_names)
        self.global_obs_size = len(GLOBAL_FEATURES)
        self._center = np.stack([e.center for e in encoders])  # [K, 27]
        self._inv_scale = 1.0 / np.stack([e.scale for e in encoders])
        decoders = [make_decoder(c) for c in fleet_sim.site_configs]
        self._charge_kw = np.array([d.charge_kw for d in decoders])
        self._discharge_kw = np.array([d.discharge_kw for d in decoders])
        self._it_share = fleet_sim.it_kw / fleet_sim.it_kw.sum() * K
        self._fleet_it_kw = float(fleet_sim.it_kw.sum())
        self._setpoints = np.zeros((K, 3))
        self._setpoints[:, 2] = np.inf

    # ------------------------------------------------------------------------- observation
    def site_obs(self) -> np.ndarray:
        """``[K, site_obs_size]`` float32 observations of every site."""
        fs = self.fs
        meas = site_measurements(fs.sim, self._carbon_priced).copy()
        placed, moving, _ = fs.placed_kwh()
        meas[:, L.M_TRAINING_BACKLOG_H] = placed / fs.it_kw
        obs = np.empty((fs.n_sites, self.site_obs_size))
        n = meas.shape[1]
        obs[:, :n] = (meas - self._center) * self._inv_scale
        obs[:, n] = fs.outage_now()
        obs[:, n + 1] = placed / fs.it_kw / 24.0
        obs[:, n + 2] = moving / fs.it_kw / 24.0
        obs[:, n + 3] = self._it_share
        return np.clip(obs, -OBS_CLIP, OBS_CLIP).astype(np.float32)

    def global_obs(self) -> np.ndarray:
        """``[global_obs_size]`` float32 fleet-wide features."""
        fs = self.fs
        cap = self._fleet_it_kw * 24.0
        a = fs.job_summary()  # due_a / due_b: within 6 h / 24 h
        g = np.array(
            [
                a["left_kwh"] / cap,
                a["unplaced_kwh"] / cap,
                a["due_a_kwh"] / cap,
                a["due_b_kwh"] / cap,
                a["active_jobs"] / 100.0,
                max(fs.n_steps - fs.t, 0) * fs.dt_h / 24.0,
            ]
        )
        return np.clip(g, -OBS_CLIP, OBS_CLIP).astype(np.float32)

    def site_feature(self, flat_obs: np.ndarray, name: str) -> np.ndarray:
        """Raw value of site feature ``name`` at every site ``[K]`` from a centralized
        observation (exact unless it was clipped; the 4 fleet features are returned in the
        table's units: 0/1 and hours)."""
        K = self.fs.n_sites
        site = np.asarray(flat_obs, dtype=np.float64)[: K * self.site_obs_size]
        site = site.reshape(K, self.site_obs_size)
        i = self.site_feature_names.index(name)
        n = self._center.shape[1]
        if i < n:
            return site[:, i] / self._inv_scale[:, i] + self._center[:, i]
        if name in ("placed_work_h", "in_transit_h"):
            return site[:, i] * 24.0
        if name == "it_share":
            return site[:, i] / K
        return site[:, i]

    # ------------------------------------------------------------------------------ action
    def decode_sites(self, site_actions: np.ndarray) -> tuple[np.ndarray, int]:
        """``[K, 2]`` actions in [-1, 1] -> (setpoints ``[K, 3]``, number of clipped entries)."""
        a = np.asarray(site_actions, dtype=np.float64)
        if a.shape != (self.fs.n_sites, 2):
            raise ValueError(f"site actions must have shape ({self.fs.n_sites}, 2); got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(nonfinite_rows_message("site actions", a, "site"))
        clipped = int((np.abs(a) > 1.0).sum())
        a = np.clip(a, -1.0, 1.0)
        sp = self._setpoints
        sp[:, 0] = (a[:, 0] + 1.0) * 0.5
        sp[:, 1] = np.where(a[:, 1] >= 0.0, a[:, 1] * self._discharge_kw, a[:, 1] * self._charge_kw)
        return sp, clipped

    def decode_dispatch(self, dispatcher_action: np.ndarray) -> tuple[np.ndarray, float, int]:
        """``[K + 1]`` actions in [-1, 1] -> (shares ``[K]``, rebalance, clipped entries)."""
        a = np.asarray(dispatcher_action, dtype=np.float64).reshape(-1)
        if a.shape[0] != self.fs.n_sites + 1:
            raise ValueError(
                f"dispatcher action must have {self.fs.n_sites + 1} values; got {a.shape[0]}"
            )
        if not np.isfinite(a).all():
            raise ValueError(f"dispatcher action contains NaN or infinite values: {a.tolist()}")
        clipped = int((np.abs(a) > 1.0).sum())
        a = np.clip(a, -1.0, 1.0)
        return (a[:-1] + 1.0) * 0.5, float((a[-1] + 1.0) * 0.5), clipped

    def encode_sites(self, setpoints: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`decode_sites` for in-range setpoints ``[K, >=2]`` -> ``[K, 2]``."""
        s = np.asarray(setpoints, dtype=np.float64)
        a = np.empty((self.fs.n_sites, 2))
        a[:, 0] = 2.0 * s[:, 0] - 1.0
        a[:, 1] = np.where(
            s[:, 1] >= 0.0,
            s[:, 1] / np.maximum(self._discharge_kw, 1e-9),
            s[:, 1] / np.maximum(self._charge_kw, 1e-9),
        )
        return np.clip(a, -1.0, 1.0)

    def encode_dispatch(self, share: np.ndarray, rebalance: float) -> np.ndarray:
        """Inverse of :meth:`decode_dispatch`: shares are rescaled so the largest is 1."""
        share = np.asarray(share, dtype=np.float64)
        top = share.max() if share.size and share.max() > 0 else 1.0
        return np.clip(np.append(2.0 * share / top - 1.0, 2.0 * rebalance - 1.0), -1.0, 1.0)
