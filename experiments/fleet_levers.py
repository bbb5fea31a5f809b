"""Which of global-greedy's levers is worth learning on a fleet? Hand-set changes to its compute,
job shares and batteries, each played on the same training days as global-greedy itself.

Why it exists: a random search over a shared linear correction of all three levers gained nothing
on test days; this measures the profit each lever moves, and how noisy that is, on common days.
Each change is a function of a site's scaled features (the centralized observation's):

* ``compute``: ``b`` added to global-greedy's compute action (a = 2 x IT fraction - 1);
* ``share``: global-greedy's job-share weight x exp(``c`` x scaled price);
* ``battery``: battery action tanh(``k`` x (scaled price - scaled next-24-h mean price)).

    python experiments/fleet_levers.py --out experiments/results_fleet_levers_2026-12-05
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from agents.evaluation.fleet import fleet_for_eval, run_fleet_policy
from agents.policies.fleet_rules import GlobalGreedy
from megapod_gym.envs.fleet_env import MegapodFleetEnv


class ChangedGlobalGreedy(GlobalGreedy):
    """Global-greedy with one hand-set change (see the module docstring)."""

    def __init__(self, compute: float = 0.0, share: float = 0.0, battery: float = 0.0) -> None:
        self.compute, self.share, self.battery = compute, share, battery

    def scaled(self, obs: np.ndarray, name: str) -> np.ndarray:
        site = np.asarray(obs).reshape(-1)[: self.K * self.iface.site_obs_size]
        return site.reshape(self.K, -1)[:, self.iface.site_feature_names.index(name)]

    def act(self, obs: np.ndarray) -> np.ndarray:
        frac, weight = self.plan(obs)
        price = self.scaled(obs, "price_usd_per_kwh")
        mean_24h = self.scaled(obs, "price_next_24h_mean_usd_per_kwh")
        action = self.action(frac, weight * np.exp(self.share * price), self.rebalance)
        sites = action[0, : 2 * self.K].reshape(self.K, 2)
        sites[:, 0] = np.clip(sites[:, 0] + self.compute, -1.0, 1.0)
        sites[:, 1] = np.tanh(self.battery * (price - mean_24h))
        return action


CHANGES: dict[str, dict[str, float]] = {
    "global-greedy": {},
    "compute -0.02": {"compute": -0.02},
    "compute +0.1": {"compute": 0.1},
    "compute +1 (always full)": {"compute": 1.0},
    "share c = -0.5 (less work where dearer)": {"share": -0.5},
    "share c = +0.5": {"share": 0.5},
    "battery k = 1.5": {"battery": 1.5},
    "battery k = 3": {"battery": 3.0},
    "battery k = 10": {"battery": 10.0},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fleets", nargs="+", default=["tri-tz-3site"])
    ap.add_argument("--days", type=int, default=16, help="training days (seeds 100, 101, ...)")
    ap.add_argument("--out", type=Path, required=True, help="result file stem")
    args = ap.parse_args()
    seeds = list(range(100, 100 + args.days))
    lines = [
        f"# Global-greedy's levers on fleets ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `python experiments/fleet_levers.py --fleets {' '.join(args.fleets)} --days "
        f"{args.days} --out experiments/{args.out.name}`  ",
        f"Fleet profit per day (USD) on {args.days} training days (seeds {seeds[0]}..{seeds[-1]}, "
        "1-day episodes); the difference to global-greedy is paired (same days), ± the 95 % "
        "half-width over days.",
        "",
        "| fleet | change | profit, USD/day | − global-greedy, USD/day |",
        "|---|---|---:|---:|",
    ]
    for fleet in args.fleets:
        cfg = fleet_for_eval(fleet, 1.0)
        env = MegapodFleetEnv(cfg)
        profit = {
            name: np.array(
                [
                    r["profit_usd"]
                    for r in run_fleet_policy(ChangedGlobalGreedy(**kw), cfg, seeds, env)
                ]
            )
            for name, kw in CHANGES.items()
        }
        base = profit["global-greedy"]
        for name, p in profit.items():
            d = p - base
            half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
            lines.append(f"| {fleet} | {name} | {p.mean():,.0f} | {d.mean():+,.0f} ± {half:,.0f} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
