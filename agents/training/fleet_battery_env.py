"""The fleet env with ``global-greedy`` driving compute and job dispatch, and the agent driving
only the batteries: what a training config with ``fleet_action: battery`` learns on.

Why: on the full centralized action (``3K + 1`` values: compute, battery and job share per site,
and the rebalance fraction) PPO scored below independent-greedy on both fleet presets
(``experiments/results_fleet_2026-11-27.md``). Lowering global-greedy's compute action pauses
compute where it sits at the cap floor, and share corrections move profit by more noise than
signal; the battery is the lever global-greedy leaves idle
(``experiments/results_fleet_levers_2026-12-05.md``). Here the agent's action is the ``K``
battery actions (``a_k`` in [-1, 1]: ``a_k`` x discharge kW if ``a_k`` >= 0, else ``a_k`` x charge kW),
and an all-zero action is exactly global-greedy, so a policy whose mean starts near 0 starts at
the best fleet rule. The observation is the fleet env's, unchanged. Evaluation and benchmarks
play the trained model through
:class:`~agents.policies.fleet_battery.ModelBatteryGlobalGreedy`, the same composition.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.policies.fleet_battery import GlobalGreedyWithBattery
from agents.policies.fleet_rules import FleetPolicyContext


class GlobalGreedyBatteryEnv(gym.Wrapper):
    """A :class:`~megapod_gym.envs.fleet_env.MegapodFleetEnv` whose action is the ``K`` sites'
    battery actions; IT fractions, job shares and rebalance come from ``global-greedy``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.n_sites = int(env.unwrapped.n_sites)
        self.action_space = spaces.Box(-1.0, 1.0, (self.n_sites,), np.float32)
        self.rule = GlobalGreedyWithBattery()
        self._obs: np.ndarray | None = None

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        fleet_env = self.env.unwrapped
        self.rule.reset(FleetPolicyContext(fleet_env, fleet_env.fleet_sim.trace))
        self._obs = obs
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        full = self.rule.with_battery(self._obs, action)[0]  # refuses NaN and a wrong size
        obs, reward, terminated, truncated, info = self.env.step(full)
        self._obs = obs
        return obs, reward, terminated, truncated, info
