"""A trained fleet policy: ``global-greedy`` with a learned battery policy, one set of weights
shared by every site (:mod:`agents.training.fleet_search` trains it).

Each site ``k`` reads its own 31 scaled features and the 6 fleet features of the centralized
observation, ``x_k = [site_k, global, 1]`` (38 values), and one linear map shared by all sites
sets its battery action ``a_k = tanh(x_k w)`` (+ = discharge, - = charge, as the env's action).
IT fractions, job shares and the rebalance fraction stay global-greedy's: global-greedy leaves
every battery idle, so the battery is the lever it does not pull.

Why not a residual on compute and shares as well: measured on 16 training days of
``tri-tz-3site`` (``experiments/fleet_levers.py``), lowering global-greedy's compute action by 0.02
costs ~$24k a day (where global-greedy sits at the cap floor, any cut pauses compute), and share
corrections move the fleet's profit by more noise than signal, while a battery that charges below
the day's mean price and discharges above it gains a steady ~$0.9k a day
(``experiments/results_fleet_levers_2026-12-05.md``).

The same weights serve any number of sites (``tri-tz-3site`` and ``fleet-20site`` alike; a site's
features carry its own scale), and ``w = 0`` is exactly global-greedy, so training starts from the
best fleet rule and its selection step can always keep it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from agents.policies.fleet_rules import FleetPolicyContext, GlobalGreedy

N_OUTPUTS = 1  # the battery action
POLICY_FILE = "fleet_policy.npz"


class GlobalGreedyWithBattery(GlobalGreedy):
    """``global-greedy``'s IT fractions, job shares and rebalance fraction, with every site's
    battery action from :meth:`battery_action` (idle here, i.e. exactly global-greedy).
    Subclasses set the battery: a shared linear map (:class:`LearnedBatteryGlobalGreedy`) or a
    trained SB3 model (:class:`ModelBatteryGlobalGreedy`)."""

    name = "global-greedy-with-battery"

    def battery_action(self, obs: np.ndarray) -> np.ndarray:
        """``[K]`` battery actions in [-1, 1] for one observation (+ = discharge)."""
        return np.zeros(self.K)

    def with_battery(self, obs: np.ndarray, battery: np.ndarray) -> np.ndarray:
        """global-greedy's ``[1, 3K + 1]`` action for ``obs`` with the battery actions ``[K]``
        (clipped to [-1, 1]) in place of its idle batteries."""
        frac, weight = self.plan(obs)
        action = self.action(frac, weight, self.rebalance)
        battery = np.asarray(battery, dtype=np.float64).reshape(-1)
        if battery.shape != (self.K,):
            raise ValueError(f"expected {self.K} battery actions, got {battery.shape[0]}")
        if not np.isfinite(battery).all():
            raise ValueError("battery actions contain NaN or infinite values")
        action[0, 1 : 2 * self.K : 2] = np.clip(battery, -1.0, 1.0)
        return action

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.with_battery(obs, self.battery_action(obs))


class LearnedBatteryGlobalGreedy(GlobalGreedyWithBattery):
    """``global-greedy`` plus a battery policy shared by every site (see the module docstring)."""

    name = "global-greedy-learned-battery"

    def __init__(self, weights: np.ndarray | None = None, name: str | None = None) -> None:
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        if self.weights is not None and not np.isfinite(self.weights).all():
            raise ValueError("battery weights contain NaN or infinite values")
        if name is not None:
            self.name = name

    def reset(self, context: FleetPolicyContext) -> None:
        super().reset(context)
        self.n_site_features = self.iface.site_obs_size
        n_in = n_inputs(self.iface.site_obs_size, self.iface.global_obs_size)
        if self.weights is None:
            self.weights = np.zeros((n_in, N_OUTPUTS))
        if self.weights.shape != (n_in, N_OUTPUTS):
            raise ValueError(
                f"battery weights must have shape ({n_in}, {N_OUTPUTS}) for this fleet's "
                f"observation; got {self.weights.shape}"
            )

    def inputs(self, obs: np.ndarray) -> np.ndarray:
        """``[K, n_inputs]``: each site's features, the fleet features and a bias."""
        flat = np.asarray(obs, dtype=np.float64).reshape(-1)
        n_site = self.K * self.n_site_features
        site = flat[:n_site].reshape(self.K, self.n_site_features)
        glob = np.broadcast_to(flat[n_site:], (self.K, flat.shape[0] - n_site))
        return np.concatenate([site, glob, np.ones((self.K, 1))], axis=1)

    def battery_action(self, obs: np.ndarray) -> np.ndarray:
        """``[K]`` battery actions in [-1, 1] for one observation."""
        assert self.weights is not None, "reset the policy first"
        return np.tanh(self.inputs(obs) @ self.weights)[:, 0]


class ModelBatteryGlobalGreedy(GlobalGreedyWithBattery):
    """``global-greedy`` with the battery actions of a model trained on the fleet env's battery
    actions (``fleet_action: battery`` in a training config, e.g. ``configs/train/ppo-fleet.yaml``):
    ``battery`` is a :class:`~agents.policies.trained.TrainedPolicy` mapping the centralized
    observation ``[1, F]`` to ``[1, K]`` battery actions."""

    name = "global-greedy-model-battery"

    def __init__(self, battery: Any, name: str | None = None) -> None:
        self.battery = battery
        if name is not None:
            self.name = name

    def reset(self, context: FleetPolicyContext) -> None:
        super().reset(context)
        self.battery.reset(context)

    def battery_action(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(self.battery.act(np.asarray(obs).reshape(1, -1)), dtype=np.float64)[0]


def n_inputs(site_obs_size: int, global_obs_size: int) -> int:
    """Inputs of the shared battery policy: a site's features, the fleet features and a bias."""
    return site_obs_size + global_obs_size + 1


def save_learned_battery(weights: np.ndarray, fleet: str, out: str | Path, **meta: object) -> Path:
    """Write ``fleet_policy.npz`` (weights and what they were trained on) into folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / POLICY_FILE
    np.savez(path, weights=np.asarray(weights, dtype=np.float64), fleet=fleet,
             meta=json.dumps(meta))  # fmt: skip
    return path


def is_learned_battery_run(path: str | Path) -> bool:
    """True for a run folder holding a trained fleet battery policy or the ``.npz`` itself."""
    p = Path(path)
    return (p / POLICY_FILE).is_file() or (p.is_file() and p.name == POLICY_FILE)


def load_learned_battery(path: str | Path, name: str | None = None) -> LearnedBatteryGlobalGreedy:
    """The trained fleet policy of a run folder (or its ``fleet_policy.npz``)."""
    p = Path(path)
    file = p / POLICY_FILE if p.is_dir() else p
    if not file.is_file():
        raise FileNotFoundError(f"no {POLICY_FILE} in {p}")
    with np.load(file) as data:
        weights = data["weights"]
    return LearnedBatteryGlobalGreedy(weights, name=name)
