"""Asymmetric actor-critic: a critic that also sees privileged features, an actor that never does.

The value of stored energy or of a throttled hour depends on what the rest of the day brings
(prices, cars); a critic that sees it from the realized trace gives lower-variance advantages,
while the actor — the part that is evaluated, exported and run on a site — still acts on the
observation alone. During training the native SB3 vec env appends :data:`PRIVILEGED_NAMES` after
the env's observation features; :class:`AsymmetricActorCriticPolicy` feeds only the first
``n_actor_features`` to the actor network. At evaluation and export time the model gets the plain
observation (:func:`actor_obs`): nothing downstream of training ever reads privileged data.

| feature | meaning | scale |
|---|---|---|
| `priv_price_rest_mean` | mean realized import price over the rest of the episode | $/kWh |
| `priv_price_rest_max` | highest realized import price over the rest of the episode | $/kWh |
| `priv_price_rest_min` | lowest realized import price over the rest of the episode | $/kWh |
| `priv_hours_to_price_max` | hours until that highest price | h / 24 |
| `priv_ev_energy_rest` | energy the cars still to arrive will request | MWh |
| `priv_stored_energy` | energy in the battery | MWh |
| `priv_peak_frac` | demand-charge peak set so far this episode / import limit | – |
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import MlpExtractor

from megapod_gym.sim import layout as L

PRIVILEGED_NAMES: tuple[str, ...] = (
    "priv_price_rest_mean",
    "priv_price_rest_max",
    "priv_price_rest_min",
    "priv_hours_to_price_max",
    "priv_ev_energy_rest",
    "priv_stored_energy",
    "priv_peak_frac",
)
N_PRIVILEGED = len(PRIVILEGED_NAMES)


def privileged_features(sim: Any) -> np.ndarray:
    """``[B, N_PRIVILEGED]`` float32 from a :class:`~megapod_gym.sim.simulator.SiteSimulator`'s
    realized trace and state at its current step (zeros for sites whose episode has ended)."""
    B, T = sim.batch_size, sim.n_steps
    t = np.minimum(sim.t.astype(np.int64), T)
    rest = np.arange(T)[None, :] >= t[:, None]  # [B, T]
    any_rest = rest.any(axis=1)
    price = sim.series[:, L.SERIES_INDEX["price_usd_per_kwh"], :T]
    n_rest = np.maximum(rest.sum(axis=1), 1)
    mean = np.where(rest, price, 0.0).sum(axis=1) / n_rest
    pmax_masked = np.where(rest, price, -np.inf)
    pmax = np.where(any_rest, pmax_masked.max(axis=1), 0.0)
    pmin = np.where(any_rest, np.where(rest, price, np.inf).min(axis=1), 0.0)
    hours_to_max = np.where(any_rest, (pmax_masked.argmax(axis=1) - t) * sim.dt_h, 0.0) / 24.0
    cars = sim.cars
    arrival = cars[:, L.CAR_INDEX["car_arrival_step"]]
    need_kwh = cars[:, L.CAR_INDEX["car_battery_kwh"]] * np.maximum(
        cars[:, L.CAR_INDEX["car_target_soc"]] - cars[:, L.CAR_INDEX["car_arrival_soc"]], 0.0
    )
    ev_rest_mwh = np.where((arrival >= t[:, None]) & (arrival < T), need_kwh, 0.0).sum(axis=1)
    scal = sim.params.scalars
    stored_mwh = sim.fstate[:, L.F_BATTERY_SOC] * scal[:, L.P_BATTERY_ENERGY_KWH] / 1000.0
    peak = sim.peak_kw.max(axis=1) if sim.peak_kw.shape[1] else np.zeros(B)
    peak_frac = peak / np.maximum(scal[:, L.P_IMPORT_LIMIT_KW], 1.0)
    out = np.stack(
        [mean, pmax, pmin, hours_to_max, ev_rest_mwh / 1000.0, stored_mwh, peak_frac], axis=1
    )
    out[~any_rest] = 0.0
    return np.clip(np.nan_to_num(out, posinf=10.0, neginf=-10.0), -10.0, 10.0).astype(np.float32)


class AsymmetricMlpExtractor(MlpExtractor):
    """MlpExtractor whose policy network reads only the first ``n_actor_features``."""

    def __init__(
        self,
        feature_dim: int,
        net_arch: Any,
        activation_fn: Any,
        device: Any,
        n_actor_features: int,
    ) -> None:
        super().__init__(feature_dim, net_arch, activation_fn, device)
        self.n_actor_features = n_actor_features
        self.policy_net = MlpExtractor(n_actor_features, net_arch, activation_fn, device).policy_net

    def forward_actor(self, features: Any) -> Any:
        return self.policy_net(features[..., : self.n_actor_features])


class AsymmetricActorCriticPolicy(ActorCriticPolicy):
    """SB3 ``ActorCriticPolicy`` (PPO/A2C) with a critic over all features and an actor over the
    first ``n_actor_features`` (the env's observation)."""

    def __init__(self, *args: Any, n_actor_features: int, **kwargs: Any) -> None:
        self.n_actor_features = n_actor_features
        super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = AsymmetricMlpExtractor(
            self.features_dim,
            self.net_arch,
            self.activation_fn,
            self.device,
            self.n_actor_features,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data["n_actor_features"] = self.n_actor_features
        return data
