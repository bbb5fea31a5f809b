"""The README's picture: one test day of greedy, the best rule, MPC and a trained agent side by side.

python experiments/day_profile_figure.py experiments/runs/ppo-dagger-urban-12stall-bev-s0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.evaluation.benchmark import policy_run
from agents.evaluation.plots import plot_day_profiles
from agents.evaluation.rollout import eval_seeds
from agents.policies.registry import make_policy
from agents.policies.trained import load_trained_policy
from megapod_gym.config import load_scenario

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="a training run folder (its best/ model is used)")
    ap.add_argument("--rules", nargs="+", default=["greedy", "tou-arbitrage", "mpc"])
    ap.add_argument("--out", type=Path, default=HERE.parent / "docs/img/urban-day-profiles.png")
    args = ap.parse_args()
    config = load_scenario(args.run / "scenario.yaml")
    seeds = eval_seeds(1)  # the first test day
    runs = [policy_run(make_policy(name), config, seeds, name) for name in args.rules]
    name = f"{args.run.name} (best)"
    runs.append(policy_run(load_trained_policy(args.run / "best"), config, seeds, name))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(plot_day_profiles(runs, config.episode.step_min / 60, args.out, config.name))
    for r in runs:
        print(f"{r.policy:28s} profit ${r.rows[0]['profit_usd']:,.0f}")


if __name__ == "__main__":
    main()
