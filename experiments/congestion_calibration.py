"""Calibration of the congested scenarios: stall utilization, mean wait, balk rate and the longest
line under the cars-first greedy rule on held-out days, for every shipped site scenario and the
highway holiday-peak example, beside the cited anchors (docs/sources.md §2d-§2f).

    python experiments/congestion_calibration.py --days 10 --out experiments/results_congestion_<date>
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from tqdm import tqdm

from agents.evaluation.congestion import greedy_congestion
from megapod_gym.config import load_scenario, scenario_names

HERE = Path(__file__).resolve().parent
HOLIDAY = HERE.parent / "configs/examples/highway-holiday-peak.yaml"
ANCHORS = {
    "urban-busy": "busy urban / corridor sites 20-40 % utilization (§2e)",
    "ercot-busy-summer": "busy urban / corridor sites 20-40 % utilization (§2e)",
    "highway-holiday-peak": "holiday peaks 2-3x arrivals, lines of up to 40 cars, waits > 1 h (§2d)",
}
TYPICAL = "US fast chargers 16-17 % on average, network ~5 sessions per stall a day (§1, §2e)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=10, help="held-out days per scenario")
    ap.add_argument("--out", type=Path, default=None, help="write <out>.md")
    args = ap.parse_args()
    names = [*scenario_names(), str(HOLIDAY)]
    lines = [
        "| scenario | stall utilization % | mean wait min | balk rate % | longest line (cars) "
        "| anchor |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name in tqdm(names, desc="scenarios"):
        config = load_scenario(name)
        k = greedy_congestion(config, args.days)
        lines.append(
            f"| {config.name} | {100 * k['utilization']:.1f} | {k['mean_wait_min']:.2f} | "
            f"{100 * k['balk_rate']:.1f} | {k['max_queue']:.0f} | "
            f"{ANCHORS.get(config.name, TYPICAL)} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out is not None:
        head = (
            f"# Congestion calibration ({dt.date.today().isoformat()})\n\n"
            f"Command: `python experiments/congestion_calibration.py --days {args.days} --out "
            f"{args.out}`  \nCars-first greedy rule on {args.days} held-out days per scenario "
            "(seeds from 1,000,000); the longest line is on the first day.\n\n"
        )
        args.out.with_suffix(".md").write_text(head + table + "\n")


if __name__ == "__main__":
    main()
