"""Run any policy on fixed traces and summarize episodes: the evaluation code every result uses.

Held-out test seeds start at :data:`EVAL_SEED_BASE` (1,000,000), validation seeds (for model
selection during training) at :data:`VALIDATION_SEED_BASE` (1,500,000). Training runs seed their
environments below :data:`TRAIN_SEED_LIMIT` (10,000) and every unseeded reset draws its trace seed
below 1,000,000, so training never sees an evaluation day. ``env.reset(seed=s)`` runs on trace
``s``, so every policy evaluated with the same seeds sees identical days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agents.policies.base import Policy, PolicyContext
from megapod_gym.config import ScenarioConfig
from megapod_gym.envs.vector_env import MegapodVectorEnv
from megapod_gym.scenario.trace import HELD_OUT_SEED_BASE
from megapod_gym.sim import layout as L
from megapod_gym.sim.figures import site_figures

EVAL_SEED_BASE = HELD_OUT_SEED_BASE  # test days: reported results
VALIDATION_SEED_BASE = HELD_OUT_SEED_BASE + 500_000  # validation days: model selection
TRAIN_SEED_LIMIT = 10_000
# training days set aside for demonstrations (agents/training/demonstrations.py, DAgger rounds
# included) and for choosing the teacher to clone (agents/training/pretrain.py)
DEMO_SEED_BASE = 5_000
SELECT_SEED_BASE = 8_000
MAX_DEMO_DAYS = SELECT_SEED_BASE - DEMO_SEED_BASE
N_SELECT_DAYS = 32  # selection days: the teacher choice and the policy search's selection


def selection_seeds(n_days: int = N_SELECT_DAYS) -> list[int]:
    """The training days set aside for selection inside a run (disjoint from demonstrations,
    validation and test days)."""
    return [SELECT_SEED_BASE + i for i in range(n_days)]


def eval_seeds(n_episodes: int, base: int = EVAL_SEED_BASE) -> list[int]:
    """The first ``n_episodes`` held-out evaluation seeds."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1 (got {n_episodes})")
    return [base + i for i in range(n_episodes)]


def validation_seeds(n_episodes: int) -> list[int]:
    """The first ``n_episodes`` validation seeds (held out from training, disjoint from the test
    seeds of :func:`eval_seeds` for up to 500,000 episodes): checkpoint selection uses these so
    that reported test scores are never the ones a model was picked on."""
    return eval_seeds(n_episodes, VALIDATION_SEED_BASE)


@dataclass
class EpisodeRun:
    """Per-episode results of one policy on a batch of traces."""

    rows: list[dict[str, float | int | str]]  # one summary per episode (see summarize)
    history: np.ndarray | None  # [T, N_OUT] step outputs of the first episode, if recorded
    price_usd_per_kwh: np.ndarray | None  # [T + H] price of the first episode


def summarize(
    totals: np.ndarray,
    peak_import_kw: np.ndarray,
    kpis: dict[str, np.ndarray],
    config: ScenarioConfig,
    dt_h: float,
) -> list[dict[str, float]]:
    """Episode summaries from per-step output sums ``[B, N_OUT]`` (kW columns summed over steps)."""
    rows = []
    usable_kwh = site_figures(config).battery_usable_kwh
    for b in range(totals.shape[0]):
        s = dict(zip(L.OUT_FIELDS, totals[b].tolist()))
        row: dict[str, float] = {"profit_usd": s["total_usd"]}
        for term in L.LEDGER_FIELDS:
            if term != "total_usd":
                row[term] = s[term]
        row.update(
            cars_arrived=float(kpis["cars_arrived"][b]),
            cars_served=float(kpis["cars_served"][b]),
            cars_balked=float(kpis["cars_balked"][b]),
            mean_wait_min=float(kpis["mean_wait_min"][b]),
            peak_import_kw=float(peak_import_kw[b]),
            grid_import_kwh=s["grid_import_kw"] * dt_h,
            ev_kwh=s["ev_delivered_kw"] * dt_h,
            compute_kwh=s["compute_kw"] * dt_h,
            it_kwh=s["it_kw"] * dt_h,
            training_work_kwh=s["training_work_kwh"],
            inference_unmet_kwh=s["inference_unmet_kwh"],
            battery_cycles=s["battery_discharge_kw"] * dt_h / usable_kwh if usable_kwh > 0 else 0.0,
            compute_paused_steps=s["paused"],
            action_clipped_steps=0.0,
        )
        rows.append(row)
    return rows


def run_policy(
    policy: Policy,
    config: ScenarioConfig,
    seeds: Sequence[int],
    record_history: bool = False,
) -> EpisodeRun:
    """Run ``policy`` for one full episode on each seed's trace (all seeds in one batch).

    Returns per-episode summaries (profit, every ledger term, KPIs) in seed order.
    """
    seeds = [int(s) for s in seeds]
    venv = MegapodVectorEnv(num_envs=len(seeds), scenario=config, info_keys=())
    obs, _ = venv.reset(seed=seeds)
    trace = venv.sampler.sample(seeds)
    policy.reset(PolicyContext(venv.config, trace, venv.encoder, venv.decoder))
    T = venv.sim.n_steps
    totals = np.zeros((len(seeds), L.N_OUT))
    peak = np.zeros(len(seeds))
    clipped = np.zeros(len(seeds))
    history = np.zeros((T, L.N_OUT)) if record_history else None
    occupied = np.zeros(len(seeds))  # sum over steps of the share of stalls with a car
    i_occupied = L.MEAS_INDEX["stalls_occupied_frac"]
    for t in range(T):
        occupied += venv.sim.meas[:, i_occupied]
        actions = np.asarray(policy.act(obs), dtype=np.float32)
        obs, _, _, _, info = venv.step(actions)
        out = venv.sim.out
        totals += out
        np.maximum(peak, out[:, L.O_GRID_IMPORT_KW], out=peak)
        clipped += info["action_clipped"] > 0
        if history is not None:
            history[t] = out[0]
    rows = summarize(totals, peak, venv.sim.kpis(), venv.config, venv.sim.dt_h)
    dates = [str(d) for d in trace.start_date]
    for row, seed, c, occ, date in zip(
        rows, seeds, clipped.tolist(), (occupied / T).tolist(), dates
    ):
        row["seed"] = seed
        row["action_clipped_steps"] = c
        row["stall_utilization"] = occ  # time-average share of stalls occupied
        row["start_date"] = date  # the local date of step 0 (for replayed data: the recorded day)
        arrived = row["cars_arrived"]
        row["balk_rate"] = row["cars_balked"] / arrived if arrived > 0 else 0.0
    return EpisodeRun(rows, history, trace.price_usd_per_kwh[0] if record_history else None)
