"""Rule-based baselines. Each reads observation features by name, so it runs through exactly the
same interface as trained models and exported controllers.

All rules share one piece of arithmetic: the IT fraction that fills a given grid power budget,
``(budget - cars - battery aux + battery discharge) / (IT kW x PUE)``, capped at 1. In ``strict``
mode the site's safety layer would cut compute for the cars anyway; the rules request it
explicitly so their intent is visible in the logs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from agents.policies.base import PolicyContext


class RulePolicy:
    """Base of the rule-based baselines: decodes named features, encodes setpoints."""

    name = "rule"

    def __init__(self) -> None:
        self.ctx: PolicyContext | None = None

    def reset(self, context: PolicyContext) -> None:
        self.ctx = context
        cfg = context.config
        self.it_kw = cfg.compute.it_kw
        self.floor = cfg.compute.cap_floor_frac
        self.limit_kw = cfg.grid.import_limit_kw
        has_batt = cfg.battery.energy_kwh > 0
        self.charge_kw = cfg.battery.charge_kw if has_batt else 0.0
        self.discharge_kw = cfg.battery.discharge_kw if has_batt else 0.0
        self.aux_kw = cfg.battery.aux_kw if has_batt else 0.0
        self.soc_min, self.soc_max = cfg.battery.soc_min, cfg.battery.soc_max
        self.ev_capacity_kw = context.decoder.ev_capacity_kw

    def f(self, obs: np.ndarray, name: str) -> np.ndarray:
        """Raw value of observation feature ``name`` for every row."""
        assert self.ctx is not None, "call reset() first"
        return self.ctx.encoder.decode(obs, name)

    def fill_frac(
        self, obs: np.ndarray, budget_kw: np.ndarray | float, battery_kw: np.ndarray | float = 0.0
    ) -> np.ndarray:
        """IT fraction that uses ``budget_kw`` of grid import after the cars (and what the battery
        adds), capped at 1."""
        spare = (
            budget_kw - self.f(obs, "ev_requested_kw") - self.aux_kw + np.maximum(battery_kw, 0.0)
        )
        return np.clip(spare / (self.it_kw * self.f(obs, "pue")), 0.0, 1.0)

    def setpoints(
        self,
        compute_frac: np.ndarray,
        battery_kw: np.ndarray | float = 0.0,
        ev_cap_kw: np.ndarray | float = np.inf,
    ) -> np.ndarray:
        """Encode setpoints into actions in [-1, 1]."""
        assert self.ctx is not None
        n = np.shape(compute_frac)[0]
        s = np.empty((n, 3))
        s[:, 0] = compute_frac
        s[:, 1] = battery_kw
        s[:, 2] = ev_cap_kw
        return self.ctx.decoder.encode(s).astype(np.float32)

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class CarsFirstGreedy(RulePolicy):
    """**cars-first greedy** (the normalized score's 0): serve every car at the power it can take,
    fill the remaining grid headroom with compute, leave the battery idle. In soft mode the EV cap
    is the stall capacity (cars never capped by the controller)."""

    name = "greedy"

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.setpoints(self.fill_frac(obs, self.limit_kw), 0.0, self.ev_capacity_kw)


class AlwaysMaxCompute(RulePolicy):
    """**always-max compute**: request full IT power at every step, battery idle. In strict mode
    the safety layer still protects the cars (so it equals greedy up to pause decisions); in soft
    mode the cars only get what the grid has left after compute, which shows what ignoring the
    cars' peaks costs in wait and balk penalties and lost sales."""

    name = "always-max-compute"

    def act(self, obs: np.ndarray) -> np.ndarray:
        n = obs.shape[0]
        spare = self.limit_kw - self.it_kw * self.f(obs, "pue") - self.aux_kw
        return self.setpoints(np.ones(n), 0.0, np.maximum(spare, 0.0))


class TouArbitrage(RulePolicy):
    """**time-of-use battery arbitrage**: charge the battery (from grid headroom that compute
    leaves) while the price is at least ``spread`` below the next-24-h forecast mean, discharge
    at full power while it is ``spread`` above it; compute greedy on what the grid plus the
    battery can supply."""

    name = "tou-arbitrage"

    def __init__(self, spread: float = 0.10) -> None:
        super().__init__()
        self.spread = spread

    def act(self, obs: np.ndarray) -> np.ndarray:
        price = self.f(obs, "price_usd_per_kwh")
        mean24 = self.f(obs, "price_next_24h_mean_usd_per_kwh")
        cheap = price <= mean24 - self.spread * np.abs(mean24)
        dear = price >= mean24 + self.spread * np.abs(mean24)
        battery = np.where(dear, self.discharge_kw, 0.0)
        frac = self.fill_frac(obs, self.limit_kw, battery)
        spare = (
            self.limit_kw
            - self.f(obs, "ev_requested_kw")
            - self.aux_kw
            - frac * self.it_kw * self.f(obs, "pue")
        )
        battery = np.where(cheap, -np.clip(spare, 0.0, self.charge_kw), battery)
        return self.setpoints(frac, battery, self.ev_capacity_kw)


class PriceThreshold(RulePolicy):
    """**price threshold**: run compute at the IT fraction whose marginal value equals the energy
    price (throughput ~ x^b, so x* = (b v / (p PUE))^(1/(1-b)), limited to the grid headroom) and
    pause when even the best fraction earns less than it costs; the battery charges from spare
    headroom while the price is below ``low`` x the 24-h forecast mean and discharges at full
    power while it is above ``high`` x that mean."""

    name = "price-threshold"

    def __init__(self, low: float = 0.8, high: float = 1.2) -> None:
        super().__init__()
        self.low, self.high = low, high

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        c = context.config.compute
        self.value = c.training_value_usd_per_kwh
        self.beta = c.training_exponent

    def act(self, obs: np.ndarray) -> np.ndarray:
        price = self.f(obs, "price_usd_per_kwh")
        pue = self.f(obs, "pue")
        mean24 = self.f(obs, "price_next_24h_mean_usd_per_kwh")
        site_price = np.maximum(price * pue, 1e-9)
        best = np.clip(
            (self.beta * self.value / site_price) ** (1.0 / (1.0 - self.beta)), self.floor, 1.0
        )
        earns = self.value * best**self.beta - price * pue * best > 0.0
        battery = np.where(price > self.high * mean24, self.discharge_kw, 0.0)
        frac = np.minimum(np.where(earns, best, 0.0), self.fill_frac(obs, self.limit_kw, battery))
        spare = (
            self.limit_kw - self.f(obs, "ev_requested_kw") - self.aux_kw - frac * self.it_kw * pue
        )
        battery = np.where(price < self.low * mean24, -np.clip(spare, 0.0, self.charge_kw), battery)
        return self.setpoints(frac, battery, self.ev_capacity_kw)


class PeakShaving(RulePolicy):
    """**demand-charge peak shaving**: hold grid import under ``target_kw`` (default: the highest
    demand-charge threshold, or 90 % of the import limit without one). Compute fills up to the
    target; when the cars alone push import above it the battery discharges the excess; below it
    the battery recharges from the spare headroom under the target."""

    name = "peak-shaving"

    def __init__(self, target_kw: float | None = None) -> None:
        super().__init__()
        self.target_kw = target_kw

    def reset(self, context: PolicyContext) -> None:
        super().reset(context)
        thresholds = [
            d.threshold_kw for d in context.config.tariff.demand_charges if d.threshold_kw > 0
        ]
        self.target = self.target_kw or (max(thresholds) if thresholds else 0.9 * self.limit_kw)

    def act(self, obs: np.ndarray) -> np.ndarray:
        pue = self.f(obs, "pue")
        ev = self.f(obs, "ev_requested_kw")
        frac = self.fill_frac(obs, self.target)
        load = (
            ev
            + self.aux_kw
            + np.maximum(frac, self.ctx.config.compute.standby_frac) * self.it_kw * pue
        )
        over = load - self.target
        battery = np.where(
            over > 0.0, np.minimum(over, self.discharge_kw), -np.minimum(-over, self.charge_kw)
        )
        return self.setpoints(frac, battery, self.ev_capacity_kw)


class RandomPolicy:
    """**random**: uniform actions in [-1, 1] (seeded), for reference."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.n_actions = 2

    def reset(self, context: PolicyContext) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.n_actions = context.decoder.size

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, (obs.shape[0], self.n_actions)).astype(np.float32)


BASELINES: dict[str, Callable[[], object]] = {
    CarsFirstGreedy.name: CarsFirstGreedy,
    AlwaysMaxCompute.name: AlwaysMaxCompute,
    TouArbitrage.name: TouArbitrage,
    PriceThreshold.name: PriceThreshold,
    PeakShaving.name: PeakShaving,
    RandomPolicy.name: RandomPolicy,
}
