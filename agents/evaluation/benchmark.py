"""``megapod evaluate`` / ``megapod benchmark``: every policy on the same held-out traces.

Outputs in a run folder: ``episodes.csv`` (one row per scenario x policy x episode: profit, every
ledger term, KPIs, normalized score), ``summary.csv`` and ``benchmark.md`` (mean ± 95 % CI of the
normalized score — 0 = cars-first greedy, 100 = hindsight optimum — and of profit, % of the
optimum, KPIs), ``profit_breakdown_<scenario>.png`` and ``dispatch_<scenario>_<policy>.png``.
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents.evaluation.rollout import eval_seeds, run_policy
from agents.evaluation.score import (
    bootstrap_ci,
    format_pm,
    format_with_ci,
    mean_ci,
    normalized_score,
    pct_of_optimum,
)
from agents.policies.base import Policy
from megapod_gym.config import ScenarioConfig, load_scenario
from megapod_gym.scenario.trace import TraceSampler
from megapod_gym.sim import layout as L

GREEDY = "greedy"
OPTIMUM = "hindsight-optimum"
DEFAULT_POLICIES: tuple[str, ...] = (
    "greedy",
    "always-max-compute",
    "tou-arbitrage",
    "price-threshold",
    "peak-shaving",
    "random",
    "mpc",
    "oracle-replay",
)
KPI_COLUMNS: tuple[str, ...] = (
    "cars_served",
    "cars_balked",
    "balk_rate",
    "stall_utilization",
    "mean_wait_min",
    "peak_import_kw",
    "compute_kwh",
    "battery_cycles",
)


@dataclass
class PolicyRun:
    """Episodes of one policy on one scenario (plus its first episode's dispatch, for plots)."""

    scenario: str
    policy: str
    rows: list[dict[str, Any]]
    history: np.ndarray | None = None
    price_usd_per_kwh: np.ndarray | None = None
    seconds: float = 0.0


@dataclass
class BenchmarkResult:
    runs: list[PolicyRun] = field(default_factory=list)

    def episodes(self) -> list[dict[str, Any]]:
        """Per-episode rows with the normalized score of each episode added."""
        out = []
        by_key = {(r.scenario, r.policy): r for r in self.runs}
        for run in self.runs:
            greedy = by_key.get((run.scenario, GREEDY))
            optimum = by_key.get((run.scenario, OPTIMUM))
            for i, row in enumerate(run.rows):
                row = {"scenario": run.scenario, "policy": run.policy, **row}
                if greedy and optimum:
                    g, o = greedy.rows[i]["profit_usd"], optimum.rows[i]["profit_usd"]
                    row["normalized_score"] = normalized_score(row["profit_usd"], g, o)
                    row["pct_of_optimum"] = pct_of_optimum(row["profit_usd"], o)
                out.append(row)
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One row per scenario x policy: aggregate normalized score with bootstrap CI, profit mean
        ± CI, % of the optimum and mean KPIs."""
        rows = []
        by_key = {(r.scenario, r.policy): r for r in self.runs}
        for run in self.runs:
            profit = np.array([r["profit_usd"] for r in run.rows])
            row: dict[str, Any] = {
                "scenario": run.scenario,
                "policy": run.policy,
                "episodes": len(run.rows),
            }
            greedy, optimum = (
                by_key.get((run.scenario, GREEDY)),
                by_key.get((run.scenario, OPTIMUM)),
            )
            if greedy and optimum:
                g = np.array([r["profit_usd"] for r in greedy.rows])
                o = np.array([r["profit_usd"] for r in optimum.rows])
                row["normalized_score"] = normalized_score(profit, g, o)
                row["normalized_score_ci_low"], row["normalized_score_ci_high"] = bootstrap_ci(
                    profit, g, o
                )
                row["pct_of_optimum"] = pct_of_optimum(profit, o)
            row["profit_usd"], row["profit_usd_ci"] = mean_ci(profit)
            for k in KPI_COLUMNS:
                values = np.array([r.get(k, np.nan) for r in run.rows], dtype=float)
                row[k] = float(np.mean(values)) if np.isfinite(values).any() else float("nan")
            row["seconds"] = run.seconds
            rows.append(row)
        return rows


def _run_one(
    scenario: str | ScenarioConfig, policy_name: str, seeds: Sequence[int], days: float
) -> PolicyRun:
    """One policy (or the hindsight optimum) on one scenario's traces. Top-level so it pickles."""
    from agents.policies.registry import make_policy

    config = load_scenario(scenario, {"episode.days": days})
    t0 = time.perf_counter()
    if policy_name == OPTIMUM:
        from agents.optim.oracle import solve_hindsight

        trace = TraceSampler(config).sample(seeds)
        rows = []
        for i, seed in enumerate(seeds):
            sol = solve_hindsight(config, trace.site(i))
            rows.append(
                {
                    "seed": seed,
                    "profit_usd": float(sol.objective_usd),
                    "solve_seconds": float(sol.total_time_s),
                }
            )
        return PolicyRun(config.name, OPTIMUM, rows, seconds=time.perf_counter() - t0)
    return policy_run(make_policy(policy_name), config, seeds, policy_name)


def policy_run(
    policy: Policy, config: ScenarioConfig, seeds: Sequence[int], name: str
) -> PolicyRun:
    """``policy`` on ``seeds`` as a benchmark entry named ``name`` (first episode recorded)."""
    t0 = time.perf_counter()
    run = run_policy(policy, config, seeds, record_history=True)
    return PolicyRun(
        config.name,
        name,
        run.rows,
        run.history,
        run.price_usd_per_kwh,
        time.perf_counter() - t0,
    )


def run_benchmark(
    scenarios: Sequence[str],
    policies: Sequence[str],
    n_episodes: int = 5,
    days: float = 1.0,
    jobs: int | None = None,
    extra: Sequence[tuple[str, Callable[[ScenarioConfig, Sequence[int]], PolicyRun]]] = (),
    show_progress: bool = True,
) -> BenchmarkResult:
    """Run ``policies`` (+ greedy and the hindsight optimum, always) on ``n_episodes`` held-out
    traces of each scenario. ``jobs`` worker processes (default: CPU count) share the work."""
    seeds = eval_seeds(n_episodes)
    for s in scenarios:
        load_scenario(s)  # fail fast with the list of valid names
    names = list(dict.fromkeys([GREEDY, *policies, OPTIMUM]))
    tasks = [(s, p) for s in scenarios for p in names]
    jobs = jobs or os.cpu_count() or 1
    result = BenchmarkResult()
    bar = tqdm(
        total=len(tasks) + len(extra) * len(scenarios),
        desc="benchmark",
        disable=not show_progress,
        unit="run",
    )
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_run_one, s, p, seeds, days) for s, p in tasks]
            for fut in futures:
                result.runs.append(fut.result())
                bar.update()
    else:
        for s, p in tasks:
            result.runs.append(_run_one(s, p, seeds, days))
            bar.update()
    for s in scenarios:
        config = load_scenario(s, {"episode.days": days})
        for _, fn in extra:
            result.runs.append(fn(config, seeds))
            bar.update()
    bar.close()
    return result


# ------------------------------------------------------------------------------------ outputs
def _fmt(v: Any, spec: str = ".1f") -> str:
    if isinstance(v, float) and not np.isfinite(v):
        return "–"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def markdown_table(summary: Sequence[dict[str, Any]]) -> str:
    """The benchmark table in Markdown, one block per scenario."""
    lines = []
    for scenario in dict.fromkeys(r["scenario"] for r in summary):
        lines += [
            f"### {scenario}",
            "",
            "| policy | normalized score (95 % CI) | profit $ (± 95 % CI) | % of optimum | cars served | balked | stall utilization % | mean wait min | peak import kW | compute MWh | battery cycles |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in (r for r in summary if r["scenario"] == scenario):
            nan = float("nan")
            score = format_with_ci(
                r.get("normalized_score", nan),
                r.get("normalized_score_ci_low", nan),
                r.get("normalized_score_ci_high", nan),
            )
            if r["policy"] in (GREEDY, OPTIMUM) and np.isfinite(r.get("normalized_score", nan)):
                score = f"{r['normalized_score']:.1f}"  # 0 and 100 by definition
            lines.append(
                f"| {r['policy']} | {score} | {format_pm(r['profit_usd'], r['profit_usd_ci'], ',.0f')} | "
                f"{_fmt(r.get('pct_of_optimum', float('nan')), '.2f')} | {_fmt(r['cars_served'])} | {_fmt(r['cars_balked'])} | "
                f"{_fmt(100 * r['stall_utilization'])} | "
                f"{_fmt(r['mean_wait_min'], '.2f')} | {_fmt(r['peak_import_kw'], ',.0f')} | {_fmt(r['compute_kwh'] / 1000, '.1f')} | "
                f"{_fmt(r['battery_cycles'], '.2f')} |"
            )
        lines.append("")
    lines.append(
        "Normalized score: Σ(policy − greedy) / Σ(optimum − greedy) × 100 over the episodes "
        "(0 = cars-first greedy, 100 = hindsight LP optimum; CI by bootstrap over episodes)."
    )
    return "\n".join(lines)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def episode_profits(episodes_csv: str | Path) -> dict[str, dict[int, float]]:
    """Profit per policy and trace seed from a benchmark's ``episodes.csv``."""
    profit: dict[str, dict[int, float]] = {}
    with Path(episodes_csv).open() as fh:
        for r in csv.DictReader(fh):
            profit.setdefault(r["policy"], {})[int(r["seed"])] = float(r["profit_usd"])
    return profit


def write_outputs(result: BenchmarkResult, out_dir: str | Path, dt_h: float) -> dict[str, Path]:
    """Write the CSVs, the Markdown table and the plots; return their paths."""
    from agents.evaluation.plots import plot_day_profiles, plot_dispatch_day, plot_profit_breakdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "episodes": out / "episodes.csv",
        "summary": out / "summary.csv",
        "table": out / "benchmark.md",
    }
    write_csv(result.episodes(), paths["episodes"])
    summary = result.summary()
    write_csv(summary, paths["summary"])
    paths["table"].write_text(markdown_table(summary) + "\n")
    for scenario in dict.fromkeys(r.scenario for r in result.runs):
        runs = [r for r in result.runs if r.scenario == scenario]
        paths[f"breakdown_{scenario}"] = plot_profit_breakdown(
            runs, out / f"profit_breakdown_{scenario}.png", scenario
        )
        profiles = plot_day_profiles(runs, dt_h, out / f"day_profiles_{scenario}.png", scenario)
        if profiles is not None:
            paths[f"day_profiles_{scenario}"] = profiles
        for r in runs:
            if r.history is not None and r.price_usd_per_kwh is not None:
                history = {name: r.history[:, i] for i, name in enumerate(L.OUT_FIELDS)}
                slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", r.policy).strip("-")
                paths[f"dispatch_{scenario}_{slug}"] = plot_dispatch_day(
                    history,
                    r.price_usd_per_kwh,
                    dt_h,
                    out / f"dispatch_{scenario}_{slug}.png",
                    f"{scenario} — {r.policy}",
                )
    return paths
