"""Evaluate policies on fleets: the fleet counterpart of :mod:`agents.evaluation.rollout` and
:mod:`agents.evaluation.benchmark`.

The fleet's normalized score: 0 = ``independent-greedy`` (every site cars-first greedy, no job
migration), 100 = the fleet hindsight LP (:mod:`agents.optim.fleet_lp`; a relaxation with free
migration, so an upper bound that no controller may reach). Evaluation seeds start at 1,000,000
as for single sites.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.benchmark import write_csv
from agents.evaluation.rollout import eval_seeds
from agents.evaluation.score import (
    bootstrap_ci,
    format_pm,
    format_with_ci,
    mean_ci,
    normalized_score,
    pct_of_optimum,
)
from agents.policies.base import Policy
from agents.policies.fleet_rules import FLEET_BASELINES, FleetPolicyContext
from megapod_gym.config.fleet import FleetConfig, load_fleet
from megapod_gym.envs.fleet_env import MegapodFleetEnv

FLEET_ZERO = "independent-greedy"
FLEET_KPIS: tuple[str, ...] = (
    "jobs_arrived",
    "jobs_completed",
    "jobs_lost",
    "jobs_on_time_frac",
    "migrations",
    "migration_usd",
    "deadline_loss_usd",
    "useful_work_kwh",
    "energy_per_useful_work",
    "carbon_kg",
    "grid_import_kwh",
    "cars_served",
    "cars_balked",
)


def fleet_for_eval(fleet: str | Path | FleetConfig, days: float | None = None) -> FleetConfig:
    """The fleet with the evaluation episode length (``days``) applied to every site."""
    cfg = load_fleet(fleet)
    if days is None:
        return cfg
    return load_fleet(cfg, {"episode": {**cfg.episode, "days": days}})


def run_fleet_policy(
    policy: Policy,
    fleet: FleetConfig,
    seeds: Sequence[int],
    env: MegapodFleetEnv | None = None,
) -> list[dict[str, Any]]:
    """One full episode of ``policy`` on the centralized fleet env per seed; a summary row each
    (profit, per-site profit, fleet KPIs). ``env``: an env of ``fleet`` to reuse."""
    env = env if env is not None else MegapodFleetEnv(fleet)
    rows = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        assert env.fleet_sim.trace is not None
        policy.reset(FleetPolicyContext(env, env.fleet_sim.trace))  # type: ignore[arg-type]
        site_net = np.zeros(env.n_sites)
        clipped = 0
        t0 = time.perf_counter()
        while True:
            action = np.asarray(policy.act(obs[None]), dtype=np.float32).reshape(-1)
            obs, _, _, truncated, info = env.step(action)
            site_net += info["net_usd"]
            clipped += int(info["action_clipped"] > 0)
            if truncated:
                break
        kpis = info["episode_kpis"]
        row: dict[str, Any] = {
            "seed": int(seed),
            "profit_usd": kpis["fleet_total_usd"],
            **{k: kpis[k] for k in FLEET_KPIS},
            "action_clipped_steps": clipped,
            "seconds": time.perf_counter() - t0,
        }
        for name, v in zip(env.site_names, site_net.tolist()):
            row[f"site/{name}/profit_usd"] = v
        rows.append(row)
    return rows


def fleet_optimum(fleet: FleetConfig, seeds: Sequence[int]) -> np.ndarray:
    """The fleet hindsight LP's profit on each seed's trace."""
    from agents.optim.fleet_lp import solve_fleet_hindsight
    from megapod_gym.fleet.simulator import FleetSimulator

    fs = FleetSimulator(fleet)
    return np.array(
        [solve_fleet_hindsight(fs, fs.sampler.sample(int(s))).objective_usd for s in seeds]
    )


@dataclass
class FleetBenchmark:
    """Episode rows of every policy on one fleet, and the optimum."""

    fleet: str
    seeds: list[int]
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    optimum_usd: np.ndarray | None = None
    optimum_seconds: float = 0.0

    def profit(self, name: str) -> np.ndarray:
        return np.array([r["profit_usd"] for r in self.rows[name]])

    def summary(self) -> list[dict[str, Any]]:
        """One row per policy: mean profit ± CI, normalized score (bootstrap CI), % of optimum,
        mean KPIs."""
        zero = self.profit(FLEET_ZERO) if FLEET_ZERO in self.rows else None
        out = []
        names = list(self.rows) + (["hindsight-optimum"] if self.optimum_usd is not None else [])
        for name in names:
            p = self.optimum_usd if name == "hindsight-optimum" else self.profit(name)
            assert p is not None
            mean, half = mean_ci(p)
            row: dict[str, Any] = {"fleet": self.fleet, "policy": name, "profit_usd": mean,
                                   "profit_ci_usd": half}  # fmt: skip
            if zero is not None and self.optimum_usd is not None:
                row["normalized_score"] = normalized_score(p, zero, self.optimum_usd)
                lo, hi = bootstrap_ci(p, zero, self.optimum_usd)
                row["score_ci_low"], row["score_ci_high"] = lo, hi
                row["pct_of_optimum"] = pct_of_optimum(p, self.optimum_usd)
            if name in self.rows:
                for k in FLEET_KPIS:
                    row[k] = float(np.mean([r[k] for r in self.rows[name]]))
            out.append(row)
        return out


def run_fleet_benchmark(
    fleet: str | Path | FleetConfig,
    policies: Sequence[str] = tuple(FLEET_BASELINES),
    n_episodes: int = 3,
    days: float | None = None,
    with_optimum: bool = True,
    extra: Sequence[tuple[str, Policy]] = (),
    progress: Callable[[str], None] | None = None,
) -> FleetBenchmark:
    """Run the fleet baselines (and ``extra`` policies) on ``n_episodes`` held-out days and
    solve the hindsight LP on the same traces; ``progress(name)`` is called as each finishes."""
    cfg = fleet_for_eval(fleet, days)
    seeds = eval_seeds(n_episodes)
    bench = FleetBenchmark(cfg.name, seeds)
    todo: list[tuple[str, Policy]] = [(n, FLEET_BASELINES[n]()) for n in policies]
    todo += list(extra)
    for name, policy in todo:
        bench.rows[name] = run_fleet_policy(policy, cfg, seeds)
        if progress:
            progress(name)
    if with_optimum:
        t0 = time.perf_counter()
        bench.optimum_usd = fleet_optimum(cfg, seeds)
        bench.optimum_seconds = time.perf_counter() - t0
        if progress:
            progress("hindsight-optimum")
    return bench


def fleet_markdown(benches: Sequence[FleetBenchmark]) -> str:
    """The benchmark table (Markdown)."""
    lines = [
        "| fleet | policy | normalized score (95 % CI) | % of optimum | profit, USD/episode | "
        "jobs on time | jobs lost | migrations | energy / useful work | carbon, t |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in benches:
        for r in b.summary():
            score = (
                format_with_ci(r["normalized_score"], r["score_ci_low"], r["score_ci_high"])
                if "normalized_score" in r
                else "—"
            )
            pct = f"{r['pct_of_optimum']:.1f}" if "pct_of_optimum" in r else "—"
            if "jobs_on_time_frac" in r:
                kp = (
                    f"{100 * r['jobs_on_time_frac']:.0f} % | {r['jobs_lost']:.1f} | "
                    f"{r['migrations']:.0f} | {r['energy_per_useful_work']:.2f} | "
                    f"{r['carbon_kg'] / 1000:.1f}"
                )
            else:
                kp = "— | — | — | — | —"
            lines.append(
                f"| {r['fleet']} | {r['policy']} | {score} | {pct} | "
                f"{format_pm(r['profit_usd'], r['profit_ci_usd'], ',.0f')} | {kp} |"
            )
    return "\n".join(lines)


def write_fleet_outputs(benches: Sequence[FleetBenchmark], out: str | Path) -> dict[str, Path]:
    """``benchmark.md``, ``summary.csv`` and ``episodes.csv`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table": out / "benchmark.md",
        "summary": out / "summary.csv",
        "episodes": out / "episodes.csv",
    }
    seeds_note = ", ".join(f"{b.fleet}: seeds {b.seeds[0]}..{b.seeds[-1]}" for b in benches)
    paths["table"].write_text(
        "# Fleet benchmark\n\n"
        "Normalized score: 0 = independent-greedy (each site cars-first greedy, no migration), "
        "100 = the fleet hindsight LP (free migration: an upper bound).\n"
        f"Held-out traces ({seeds_note}).\n\n" + fleet_markdown(benches) + "\n"
    )
    summary = [r for b in benches for r in b.summary()]
    write_csv(summary, paths["summary"])
    episodes = [
        {"fleet": b.fleet, "policy": name, **row}
        for b in benches
        for name, rows in b.rows.items()
        for row in rows
    ]
    for b in benches:
        if b.optimum_usd is not None:
            episodes += [
                {"fleet": b.fleet, "policy": "hindsight-optimum", "seed": s, "profit_usd": float(v)}
                for s, v in zip(b.seeds, b.optimum_usd)
            ]
    write_csv(episodes, paths["episodes"])
    return paths
