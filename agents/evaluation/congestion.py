"""Queueing KPIs of a scenario under the cars-first greedy rule: how busy the stalls are, how long
cars wait, how many leave unserved, the longest line (the calibration of congested scenarios)."""

from __future__ import annotations

import numpy as np

from agents.evaluation.rollout import eval_seeds, run_policy
from agents.policies.registry import make_policy
from megapod_gym.config import ScenarioConfig
from megapod_gym.sim import layout as L


def greedy_congestion(config: ScenarioConfig, days: int) -> dict[str, float]:
    """Mean over ``days`` held-out days (greedy rule): ``utilization`` (time-average share of
    stalls occupied), ``mean_wait_min`` (per arriving car), ``balk_rate`` (share of arrivals that
    left unserved), ``max_queue`` (cars waiting at the worst step of the first day)."""
    run = run_policy(make_policy("greedy"), config, eval_seeds(days), record_history=True)
    rows = run.rows
    assert run.history is not None
    return {
        "utilization": float(np.mean([r["stall_utilization"] for r in rows])),
        "mean_wait_min": float(np.mean([r["mean_wait_min"] for r in rows])),
        "balk_rate": float(np.mean([r["balk_rate"] for r in rows])),
        "max_queue": float(run.history[:, L.OUT_INDEX["wait_min"]].max()) / config.episode.step_min,
    }
