"""Fleet baselines on the centralized fleet env, through the same ``Policy`` interface as
everything else (``reset(context)``, ``act(obs [1, F]) -> actions [1, 3K + 1]``).

* ``independent-greedy`` (the fleet score's 0): every site runs the single-site cars-first greedy
  rule (fill the grid headroom after the cars with compute, battery idle); jobs are placed in
  proportion to the sites' IT capacity when they arrive and never migrate.
* ``global-greedy``: a dispatcher that sends work to the sites with the cheapest marginal power
  and free compute headroom (shares = headroom kW x a price discount), lets a tenth of the
  misplaced work (e.g. jobs stranded by an outage) migrate per step, and runs a site's compute only as hard as it has work for
  (cap floor when idle, so local inference is still served).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from megapod_gym.envs.fleet_env import MegapodFleetEnv
from megapod_gym.fleet.trace import FleetTrace


@dataclass(frozen=True)
class FleetPolicyContext:
    """What a fleet policy is told at reset: the env (its interface and site configs) and the
    episode's trace. Causal policies read only forecasts and observations."""

    env: MegapodFleetEnv
    trace: FleetTrace

    @property
    def batch_size(self) -> int:
        return 1


class FleetRulePolicy:
    """Base of the fleet rules: raw per-site features from the centralized observation."""

    name = "fleet-rule"

    def reset(self, context: FleetPolicyContext) -> None:
        self.ctx = context
        env = context.env
        self.iface = env.interface
        cfgs = env.fleet_sim.site_configs
        self.K = env.n_sites
        self.it_kw = np.array([c.compute.it_kw for c in cfgs])
        self.limit_kw = np.array([c.grid.import_limit_kw for c in cfgs])
        self.aux_kw = np.array(
            [c.battery.aux_kw if c.battery.energy_kwh > 0 else 0.0 for c in cfgs]
        )
        self.floor = np.array([c.compute.cap_floor_frac for c in cfgs])
        self.train_exp = np.array([c.compute.training_exponent for c in cfgs])
        self.dt_h = env.fleet_sim.dt_h

    def feature(self, obs: np.ndarray, name: str) -> np.ndarray:
        """Raw value of site feature ``name`` at every site ``[K]``."""
        return self.iface.site_feature(np.asarray(obs).reshape(-1), name)

    def fill_frac(self, obs: np.ndarray) -> np.ndarray:
        """IT fraction that fills each site's import limit after the cars, capped at 1."""
        spare = self.limit_kw - self.feature(obs, "ev_requested_kw") - self.aux_kw
        return np.clip(spare / (self.it_kw * self.feature(obs, "pue")), 0.0, 1.0)

    def action(self, compute_frac: np.ndarray, share: np.ndarray, rebalance: float) -> np.ndarray:
        sp = np.zeros((self.K, 3))
        sp[:, 0] = compute_frac
        a = np.concatenate(
            [
                self.iface.encode_sites(sp).reshape(-1),
                self.iface.encode_dispatch(share, rebalance),
            ]
        )
        return a.astype(np.float32)[None]

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class IndependentGreedy(FleetRulePolicy):
    """Every site cars-first greedy on its own; shares = IT capacity; no migration."""

    name = "independent-greedy"

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.action(self.fill_frac(obs), self.it_kw, 0.0)


class GlobalGreedy(FleetRulePolicy):
    """Work to the cheapest free power; compute only as hard as the site's placed work needs."""

    name = "global-greedy"
    # a site $1/kWh dearer gets e^-1 of the weight: throughput first (a kWh of work is worth
    # $1.76, its energy ~$0.2), then cheap power; measured on tri-tz-3site (3 held-out days):
    # scale 0.05 / 0.2 / 1.0 -> 80.5k / 92.2k / 94.1k USD per day with rebalance 0.1
    price_scale_usd_per_kwh = 1.0
    rebalance = 0.1

    def act(self, obs: np.ndarray) -> np.ndarray:
        frac, weight = self.plan(obs)
        return self.action(frac, weight, self.rebalance)

    def plan(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(IT fraction ``[K]``, share weights ``[K]``) of the rule for one observation."""
        fill = self.fill_frac(obs)
        price = self.feature(obs, "price_usd_per_kwh")
        outage = self.feature(obs, "outage") > 0.5
        headroom_kw = fill * self.it_kw
        weight = headroom_kw * np.exp(-(price - price.min()) / self.price_scale_usd_per_kwh)
        weight[outage] = 0.0
        if weight.sum() <= 0.0:
            weight = np.where(outage, 0.0, self.it_kw)
        # work placed here (h at full IT): run at full fill while it lasts, else the cap floor
        placed_h = self.feature(obs, "training_backlog_h")
        need = np.clip(placed_h / self.dt_h, 0.0, 1.0) ** (1.0 / self.train_exp)
        frac = np.minimum(fill, np.where(placed_h > 1e-6, np.maximum(need, self.floor), self.floor))
        return frac, weight


FLEET_BASELINES: dict[str, type[FleetRulePolicy]] = {
    IndependentGreedy.name: IndependentGreedy,
    GlobalGreedy.name: GlobalGreedy,
}
