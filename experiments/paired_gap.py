"""Is a trained agent's lead or lag against MPC real? Paired bootstrap over the test days.

Reads the per-day profits of a ``learning_table.py`` run (``<runs>/<config>-<scenario>-test/
episodes.csv``: every policy on the same test days) and reports, per training seed, the
validation-selected agent's normalized-score difference to MPC with a 95 % percentile bootstrap CI
(days resampled, the same days for agent, MPC, greedy and the optimum) and on how many days the
agent earned more than MPC.

    python experiments/paired_gap.py --config ppo-search --scenarios urban-12stall-bev caiso-rt-spring
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from agents.evaluation.benchmark import episode_profits
from agents.evaluation.score import paired_gap

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=HERE / "runs")
    ap.add_argument("--config", default="ppo-search")
    ap.add_argument("--scenarios", nargs="+", required=True)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lines = [
        f"# Trained agent against MPC, paired over the test days ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `python experiments/paired_gap.py --config {args.config} --scenarios "
        f"{' '.join(args.scenarios)}"
        + (f" --out experiments/{args.out.name}" if args.out else "")
        + "` (after `experiments/learning_table.py`).  ",
        "Normalized-score difference agent − MPC on the table's test days, 95 % percentile "
        "bootstrap CI over days (2,000 resamples, paired: the same days for every policy).",
        "",
        "| scenario | training seed | agent − MPC | 95 % CI | days agent earned more than MPC |",
        "|---|---:|---:|---|---:|",
    ]
    rng = np.random.default_rng(0)
    for scenario in args.scenarios:
        profit = episode_profits(args.runs / f"{args.config}-{scenario}-test" / "episodes.csv")
        days = sorted(profit["greedy"])

        def of(name: str, days: list[int] = days, profit=profit) -> np.ndarray:
            return np.array([profit[name][d] for d in days])

        greedy, optimum, mpc = of("greedy"), of("hindsight-optimum"), of("mpc")
        seeds = sorted(int(n.split()[1]) for n in profit if n.endswith(" best"))
        for seed in seeds:
            agent = of(f"seed {seed} best")

            gap, low, high = paired_gap(agent, mpc, greedy, optimum, rng=rng)
            lines.append(
                f"| {scenario} | {seed} | {gap:+.2f} | {low:+.2f} to {high:+.2f} | "
                f"{int((agent > mpc).sum())} / {len(days)} |"
            )
    out = args.out or HERE / f"results_paired_gap_{args.config}_{time.strftime('%Y-%m-%d')}"
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
