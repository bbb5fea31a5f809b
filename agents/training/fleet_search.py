"""Training a fleet policy: augmented random search on the battery policy that
:class:`agents.policies.fleet_battery.LearnedBatteryGlobalGreedy` adds to ``global-greedy``.

Why not PPO: on the centralized fleet env PPO scored below ``global-greedy`` on both presets
(−2.1 / −39.8 against 8.4 / 37.8; ``experiments/results_fleet_2026-11-27.md``). Here the policy
*is* global-greedy at the start (the battery weights are zero), one linear map is shared by every
site, and the search is the one that lifts the single-site clones (:func:`agents.training.policy_search.ars_search`): each iteration plays
2 x ``directions`` perturbed weight sets on the same ``days`` training fleet days (seeds below
5,000), so the day-to-day noise cancels in their differences; every ``select_every`` iterations
the weights play the 32 selection days (seeds from 8,000) and the best, the zero weights
included, is kept. Test days (seeds from 1,000,000) are never played during training.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from agents.evaluation.fleet import fleet_for_eval, run_fleet_policy
from agents.policies.fleet_battery import (
    N_OUTPUTS,
    LearnedBatteryGlobalGreedy,
    n_inputs,
    save_learned_battery,
)
from agents.training.config import ArsSettings
from agents.training.policy_search import ars_search
from megapod_gym.config.fleet import FleetConfig
from megapod_gym.envs.fleet_env import MegapodFleetEnv

SEARCH_FILE = "search.json"


class FleetSearchSettings(ArsSettings):
    """:class:`~agents.training.config.ArsSettings` with defaults measured on ``tri-tz-3site``
    and ``n_jobs`` worker processes playing the episodes (1: in this process)."""

    iterations: int = Field(40, ge=1, le=10_000)
    directions: int = Field(8, ge=1, le=1024)
    top: int | None = Field(4, ge=1, le=1024)
    days: int = Field(8, ge=1, le=1024)
    noise_std: float = Field(0.1, gt=0.0, le=1.0)
    step_size: float = Field(0.05, gt=0.0, le=1.0)
    select_every: int = Field(5, ge=1, le=10_000)
    n_jobs: int = Field(1, ge=1, le=64)


_ENVS: dict[str, MegapodFleetEnv] = {}


def _env(fleet: FleetConfig) -> MegapodFleetEnv:
    """This process's env of ``fleet`` (built once per process)."""
    key = fleet.model_dump_json()
    if key not in _ENVS:
        _ENVS[key] = MegapodFleetEnv(fleet)
    return _ENVS[key]


def battery_day_profits(fleet: FleetConfig, thetas: np.ndarray, days: Sequence[int]) -> np.ndarray:
    """``[len(thetas), len(days)]`` fleet profit (USD) of each flat weight vector on each day."""
    env = _env(fleet)
    n_in = n_inputs(env.interface.site_obs_size, env.interface.global_obs_size)
    out = np.empty((len(thetas), len(days)))
    for i, theta in enumerate(np.asarray(thetas, dtype=np.float64)):
        policy = LearnedBatteryGlobalGreedy(theta.reshape(n_in, N_OUTPUTS))
        rows = run_fleet_policy(policy, fleet, days, env=env)
        out[i] = [r["profit_usd"] for r in rows]
    return out


def train_fleet_battery(
    fleet: str | Path | FleetConfig,
    settings: FleetSearchSettings,
    out: str | Path,
    seed: int = 0,
    progress: bool = True,
    days: float = 1.0,
) -> dict[str, Any]:
    """Search the battery policy's weights on episodes of ``days`` (1: the evaluation's length) of
    ``fleet``; write ``fleet_policy.npz`` and ``search.json`` (settings, selection curve, times)
    into ``out``; return the latter."""
    cfg = fleet_for_eval(fleet, days)
    env = _env(cfg)
    n_in = n_inputs(env.interface.site_obs_size, env.interface.global_obs_size)
    t0 = time.time()
    pool = ProcessPoolExecutor(settings.n_jobs) if settings.n_jobs > 1 else None
    try:

        def day_profits_of(thetas: np.ndarray, seeds: list[int]) -> np.ndarray:
            if pool is None:
                return battery_day_profits(cfg, thetas, seeds)
            chunks = np.array_split(np.arange(len(thetas)), min(settings.n_jobs, len(thetas)))
            parts = pool.map(
                battery_day_profits, [cfg] * len(chunks), [thetas[c] for c in chunks],
                [seeds] * len(chunks),
            )  # fmt: skip
            return np.concatenate(list(parts))

        info = ars_search(
            np.zeros(n_in * N_OUTPUTS),
            day_profits_of,
            settings,
            np.random.default_rng([seed, 0xF1EE7]),
            progress,
            desc=f"fleet search {cfg.name}",
        )
    finally:
        if pool is not None:
            pool.shutdown()
    weights = info.pop("theta").reshape(n_in, N_OUTPUTS)
    record = {
        "fleet": cfg.name,
        "seed": seed,
        "episode_days": days,
        "settings": settings.model_dump(),
        **info,
        "train_seconds": time.time() - t0,
    }
    save_learned_battery(weights, cfg.name, out, seed=seed)
    (Path(out) / SEARCH_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record
