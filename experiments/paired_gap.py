"""Is a trained agent's lead or lag against MPC real? Paired bootstrap over the test days.

Reads the per-day profits of a ``learning_table.py`` run (``<runs>/<config>-<scenario>-test/
episodes.csv``: every policy on the same test days) and reports, per training seed, the
validation-selected agent's normalized-score difference to MPC with a 95 % percentile bootstrap CI
(days resampled, the same days for agent, MPC, greedy and the optimum) and on how many days the
agent earned more than MPC.

With ``--breakdown`` it also splits each seed's profit difference to MPC by ledger term (USD per
day, mean over the test days with a 95 % t interval over days; positive = the agent earned more
or paid less): where the agent loses or gains against MPC.

    python experiments/paired_gap.py --config ppo-search --scenarios urban-12stall-bev caiso-rt-spring
    python experiments/paired_gap.py --config ppo-search-long --scenarios demand-charge-heavy --breakdown
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from agents.evaluation.benchmark import episode_profits
from agents.evaluation.score import mean_ci, paired_gap
from megapod_gym.sim.layout import LEDGER_FIELDS

HERE = Path(__file__).resolve().parent


TERMS = tuple(t for t in LEDGER_FIELDS if t != "total_usd")
REVENUES = ("ev_revenue_usd", "compute_value_usd", "export_revenue_usd")


def ledger_terms(episodes_csv: Path) -> dict[str, dict[int, dict[str, float]]]:
    """Every ledger term (USD, costs as positive amounts) and the profit per policy and trace seed
    from a benchmark's ``episodes.csv`` (the hindsight optimum has no ledger and is left out)."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    with episodes_csv.open() as fh:
        for r in csv.DictReader(fh):
            if r.get("ev_revenue_usd"):
                out.setdefault(r["policy"], {})[int(r["seed"])] = {
                    t: float(r[t]) for t in (*TERMS, "profit_usd")
                }
    return out


def breakdown_lines(
    terms: dict[str, dict[int, dict[str, float]]], scenario: str, seeds: list[int]
) -> list[str]:
    """Markdown rows: per seed, the agent's advantage over MPC per ledger term in USD/day (more
    revenue, or less cost; mean ± 95 % CI over days) and in profit; terms that are zero for both
    on every day are left out."""
    days = sorted(terms["mpc"])
    agents = [f"seed {s} best" for s in seeds]
    used = [t for t in TERMS if any(terms[p][d][t] != 0.0 for p in ("mpc", *agents) for d in days)]
    lines = [
        "| scenario | training seed | "
        + " | ".join(t.removesuffix("_usd") for t in (*used, "profit_usd"))
        + " |",
        "|---|---:|" + "---:|" * (len(used) + 1),
    ]
    for seed, name in zip(seeds, agents):
        cells = []
        for t in (*used, "profit_usd"):
            sign = -1.0 if t not in (*REVENUES, "profit_usd") else 1.0
            diff = [sign * (terms[name][d][t] - terms["mpc"][d][t]) for d in days]
            mean, half = mean_ci(np.array(diff))
            cells.append(f"{mean:+.1f} ± {half:.1f}")
        lines.append(f"| {scenario} | {seed} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=HERE / "runs")
    ap.add_argument("--config", default="ppo-search")
    ap.add_argument("--scenarios", nargs="+", required=True)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--breakdown", action="store_true", help="also agent − MPC per ledger term")
    args = ap.parse_args()
    lines = [
        f"# Trained agent against MPC, paired over the test days ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `python experiments/paired_gap.py --config {args.config} --scenarios "
        f"{' '.join(args.scenarios)}"
        + (" --breakdown" if args.breakdown else "")
        + (f" --out experiments/{args.out.name}" if args.out else "")
        + "` (after `experiments/learning_table.py`).  ",
        "Normalized-score difference agent − MPC on the table's test days, 95 % percentile "
        "bootstrap CI over days (2,000 resamples, paired: the same days for every policy).",
        "",
        "| scenario | training seed | agent − MPC | 95 % CI | days agent earned more than MPC |",
        "|---|---:|---:|---|---:|",
    ]
    rng = np.random.default_rng(0)
    breakdown: list[str] = []
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
        if args.breakdown:
            terms = ledger_terms(args.runs / f"{args.config}-{scenario}-test" / "episodes.csv")
            breakdown += ["", *breakdown_lines(terms, scenario, seeds)]
    if breakdown:
        lines += [
            "",
            "The agent's advantage over MPC by ledger term, USD per test day (mean ± 95 % CI "
            "over days): revenue terms agent − MPC, cost terms MPC − agent, so a positive cell is "
            "where the agent did better and the cells add up to the profit column.",
            *breakdown,
        ]
    out = args.out or HERE / f"results_paired_gap_{args.config}_{time.strftime('%Y-%m-%d')}"
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
