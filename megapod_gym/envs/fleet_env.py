"""The centralized fleet environment: one agent controls every site and the job dispatcher."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from megapod_gym.config.fleet import FleetConfig, load_fleet
from megapod_gym.envs.fleet_interface import GLOBAL_FEATURES, FleetInterface
from megapod_gym.fleet.simulator import SITE_FLEET_FIELDS, FleetSimulator
from megapod_gym.observation import OBS_CLIP
from megapod_gym.scenario.trace import HELD_OUT_SEED_BASE
from megapod_gym.sim import layout as L


class MegapodFleetEnv(gym.Env[np.ndarray, np.ndarray]):
    """## Description

    A fleet of ``K`` Megapod sites (each an EV charging site with a compute container and a
    battery, from its own scenario: size, tariff or real-time market, time zone) sharing one pool
    of deferrable training jobs. Each job has a size (IT kWh at full speed), a deadline, a value
    per kWh of work and a checkpoint size. Every step one agent sets every site's IT fraction and
    battery power (the cars-first safety layer of each site still applies) and the dispatcher's
    job shares: unplaced jobs go where a site is below its share; a ``rebalance`` fraction of the
    work placed above its share (or at a site in an outage) migrates, which costs transfer time
    (checkpoint GB over the inter-site bandwidth) and energy. A job unfinished at its deadline is
    lost with the value of its work. Outages (scheduled or sampled) island a site: no import, no
    export, compute off. See :mod:`megapod_gym.fleet.simulator`.

    ## Action Space

    ``Box(-1, 1, (3K + 1,), float32)``:

    | Index        | Action               | Mapping of a in [-1, 1]                                    |
    |--------------|----------------------|------------------------------------------------------------|
    | 2k           | site k compute_frac  | IT power fraction (a + 1) / 2 (below the cap floor: pause)   |
    | 2k + 1       | site k battery_kw    | a x discharge kW if a >= 0 (+ = discharge), a x charge kW   |
    | 2K + k       | site k job share     | weight (a + 1) / 2 of the pool's active work                |
    | 3K           | rebalance            | (a + 1) / 2 of the misplaced work may migrate this step      |

    Out-of-range values are clipped and counted (``info["action_clipped"]``); NaN raises.

    ## Observation Space

    ``Box(-10, 10, (K x 31 + 6,), float32)``: for each site, the single-site env's 27 scaled
    features (time of day in local time, prices, battery, cars, queue, compute, ...; the
    training backlog is the work placed at the site) and ``outage``, ``placed_work_h``,
    ``in_transit_h``, ``it_share``; then the fleet features ``pool_active_work_h``,
    ``pool_unplaced_work_h``, ``work_due_6h_h``, ``work_due_24h_h``, ``active_jobs``,
    ``fleet_hours_left_h`` (table in :mod:`megapod_gym.envs.fleet_interface`).
    ``observation_names`` lists them.

    ## Rewards

    Fleet profit of the step (USD) x ``reward_scale`` (default 0.01 / K, i.e. scaled like one
    site): the sum of the site ledgers (EV revenue + compute value - energy - demand charges -
    degradation - SLA - waiting - pause costs - carbon) - migration energy cost - the value of jobs
    lost at their deadline. ``info`` carries the per-site ledgers and the fleet KPIs.

    ## Starting State and Episode End

    ``reset(seed=s)`` runs on fleet trace ``s`` (same seed, same day for every policy); without a
    seed the trace seed is drawn below 1,000,000 (seeds from 1,000,000 up are held out). The fleet
    starts at UTC midnight (each site at its local time) and the episode is truncated after the
    sites' episode length.

    ## Arguments

    ``fleet``: preset name (``tri-tz-3site``, ``fleet-20site``), YAML path, mapping or
    :class:`FleetConfig`; ``fleet_overrides``: dotted keys merged on top; ``reward_scale``.
    """

    metadata = {"render_modes": [], "render_fps": 4}

    def __init__(
        self,
        fleet: str | Path | Mapping[str, Any] | FleetConfig | None = None,
        fleet_overrides: Mapping[str, Any] | None = None,
        reward_scale: float | None = None,
    ) -> None:
        self.fleet_config = load_fleet(fleet, fleet_overrides)
        self.fleet_sim = FleetSimulator(self.fleet_config)
        self.interface = FleetInterface(self.fleet_sim)
        K = self.fleet_sim.n_sites
        self.n_sites = K
        self.site_names = [c.name for c in self.fleet_sim.site_configs]
        self.reward_scale = (
            float(reward_scale)
            if reward_scale is not None
            else self.fleet_sim.site_configs[0].reward.scale / K
        )
        iface = self.interface
        n_obs = K * iface.site_obs_size + iface.global_obs_size
        self.observation_space = spaces.Box(-OBS_CLIP, OBS_CLIP, (n_obs,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (3 * K + 1,), np.float32)
        self.observation_names: tuple[str, ...] = tuple(
            f"{name}/{f}" for name in self.site_names for f in iface.site_feature_names
        ) + tuple(GLOBAL_FEATURES)
        self.action_names: tuple[str, ...] = (
            tuple(f"{n}/{a}" for n in self.site_names for a in ("compute_frac", "battery_kw"))
            + tuple(f"{n}/share" for n in self.site_names)
            + ("rebalance",)
        )

    # ----------------------------------------------------------------------------- gym API
    def _obs(self) -> np.ndarray:
        iface = self.interface
        return np.concatenate([iface.site_obs().reshape(-1), iface.global_obs()])

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        trace_seed = seed if seed is not None else int(self.np_random.integers(HELD_OUT_SEED_BASE))
        if options and "trace_seed" in options:
            trace_seed = int(options["trace_seed"])
        self.fleet_sim.reset(seed=trace_seed)
        return self._obs(), {"trace_seed": trace_seed, "site_names": self.site_names}

    def split_action(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(site actions ``[K, 2]``, dispatcher action ``[K + 1]``) of a flat action."""
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        K = self.n_sites
        if a.shape[0] != 3 * K + 1:
            raise ValueError(f"action must have {3 * K + 1} values; got {a.shape[0]}")
        return a[: 2 * K].reshape(K, 2), a[2 * K :]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        site_a, disp_a = self.split_action(action)
        setpoints, clipped_s = self.interface.decode_sites(site_a)
        share, rebalance, clipped_d = self.interface.decode_dispatch(disp_a)
        fs = self.fleet_sim
        fleet_out = fs.step(setpoints, share, rebalance)
        reward = fs.fleet_total_usd * self.reward_scale
        truncated = fs.done
        info = self.step_info(fleet_out)
        info["action_clipped"] = clipped_s + clipped_d
        if truncated:
            info["episode_kpis"] = fs.kpis()
        return self._obs(), float(reward), False, truncated, info

    def step_info(self, fleet_out: np.ndarray) -> dict[str, Any]:
        """Per-site arrays of the step (fleet fields and the site ledgers) and fleet totals."""
        fs = self.fleet_sim
        info: dict[str, Any] = {n: fleet_out[:, i].copy() for i, n in enumerate(SITE_FLEET_FIELDS)}
        out = fs.sim.out
        for name in L.LEDGER_FIELDS + ("grid_import_kw", "compute_kw", "ev_kw", "battery_kw"):
            info[f"site/{name}"] = out[:, L.OUT_INDEX[name]].copy()
        info["fleet_total_usd"] = fs.fleet_total_usd
        info["pool_deadline_loss_usd"] = fs.pool_loss_usd
        info["work_balance"] = fs.work_balance()
        return info
