"""``megapod simulate``: run one policy on one scenario for some days and print a daily summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents.evaluation.rollout import EVAL_SEED_BASE, run_policy
from agents.policies.registry import make_policy
from megapod_gym.config import ScenarioConfig, load_scenario
from megapod_gym.render import save_episode_plot
from megapod_gym.sim import layout as L

_COLUMNS = (
    ("day", "{:>3}"),
    ("grid MWh", "{:>8.1f}"),
    ("cars MWh", "{:>8.1f}"),
    ("compute MWh", "{:>11.1f}"),
    ("batt out MWh", "{:>12.2f}"),
    ("EV rev $", "{:>9.0f}"),
    ("compute $", "{:>10.0f}"),
    ("energy $", "{:>9.0f}"),
    ("demand $", "{:>9.0f}"),
    ("other $", "{:>8.0f}"),
    ("profit $", "{:>9.0f}"),
    ("served", "{:>6.0f}"),
    ("balked", "{:>6.0f}"),
    ("wait min", "{:>8.1f}"),
    ("peak kW", "{:>8.0f}"),
)


def daily_table(
    history: np.ndarray, dt_h: float, steps_per_day: int
) -> tuple[list[str], list[list[float]]]:
    """Per-day rows from step outputs ``[T, N_OUT]``: energy by use, ledger breakdown, KPIs."""
    rows = []
    o = L.OUT_INDEX
    for d in range(int(np.ceil(history.shape[0] / steps_per_day))):
        h = history[d * steps_per_day : (d + 1) * steps_per_day]
        s = h.sum(axis=0)
        main = (
            s[o["ev_revenue_usd"]]
            + s[o["compute_value_usd"]]
            - s[o["energy_cost_usd"]]
            - s[o["demand_charge_usd"]]
        )
        served = s[o["cars_served"]]
        waits = s[o["wait_min"]]
        arrived = max(s[o["cars_arrived"]], 1.0)
        rows.append(
            [
                d + 1,
                s[o["grid_import_kw"]] * dt_h / 1000,
                s[o["ev_kw"]] * dt_h / 1000,
                s[o["compute_kw"]] * dt_h / 1000,
                s[o["battery_discharge_kw"]] * dt_h / 1000,
                s[o["ev_revenue_usd"]],
                s[o["compute_value_usd"]],
                s[o["energy_cost_usd"]],
                s[o["demand_charge_usd"]],
                s[o["total_usd"]] - main,
                s[o["total_usd"]],
                served,
                s[o["cars_balked"]],
                waits / arrived,
                h[:, o["grid_import_kw"]].max(),
            ]
        )
    return [c for c, _ in _COLUMNS], rows


def format_table(header: list[str], rows: list[list[float]]) -> str:
    widths = [max(len(h), len(f.format(0))) for h, (_, f) in zip(header, _COLUMNS)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    for r in rows:
        lines.append("  ".join(f.format(v).rjust(w) for v, (_, f), w in zip(r, _COLUMNS, widths)))
    return "\n".join(lines)


def simulate(
    scenario: str | ScenarioConfig,
    policy_name: str,
    days: float,
    seed: int = EVAL_SEED_BASE,
    plot: str | None = None,
) -> str:
    """Run ``policy_name`` for ``days`` on ``scenario`` (trace ``seed``); return the printed report."""
    config = load_scenario(scenario, {"episode.days": days})
    policy = make_policy(policy_name)
    run = run_policy(policy, config, [seed], record_history=True)
    assert run.history is not None and run.price_usd_per_kwh is not None
    steps_per_day = int(round(1440 / config.episode.step_min))
    header, rows = daily_table(run.history, config.episode.dt_h, steps_per_day)
    total = run.rows[0]
    lines = [
        f"scenario {config.name} | policy {policy_name} | {days:g} day(s) from trace seed {seed}",
        format_table(header, rows),
        (
            f"total profit ${total['profit_usd']:,.0f} | cars served {total['cars_served']:.0f}, "
            f"balked {total['cars_balked']:.0f}, mean wait {total['mean_wait_min']:.1f} min | "
            f"peak import {total['peak_import_kw']:,.0f} kW of {config.grid.import_limit_kw:,.0f} kW"
        ),
        "'other $' = export revenue - degradation - SLA - wait - balk - pause/resume - carbon",
    ]
    if plot:
        history = {name: run.history[:, i] for i, name in enumerate(L.OUT_FIELDS)}
        path = save_episode_plot(
            history,
            run.price_usd_per_kwh,
            config.episode.dt_h,
            Path(plot),
            title=f"{config.name} - {policy_name}",
        )
        lines.append(f"plot written to {path}")
    return "\n".join(lines)
