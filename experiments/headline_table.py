"""README's headline table: every training config's experiments table side by side, per scenario.

Reads the committed ``experiments/results_learning*_<date>.csv`` files named on the command line
(one per training config) and prints one Markdown row per scenario: the best rule (fixed or
tuned), MPC, each config's validation-selected agent (mean ± 95 % CI over training seeds)
and the best config's gap to MPC.

    python experiments/headline_table.py experiments/results_learning_2026-12-02.csv \\
        experiments/results_learning_dagger_2026-12-02.csv
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from agents.evaluation.score import format_pm, mean_ci

RULES = ("tou-arbitrage", "price-threshold", "peak-shaving", "tuned-rule")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tables", nargs="+", type=Path)
    args = ap.parse_args()
    rows: dict[str, dict[str, list[dict[str, str]]]] = defaultdict(lambda: defaultdict(list))
    configs: list[str] = []
    for table in args.tables:
        with table.open() as fh:
            for r in csv.DictReader(fh):
                rows[r["scenario"]][r["config"]].append(r)
                if r["config"] not in configs:
                    configs.append(r["config"])
    head = ["scenario", "best rule", "MPC", *[f"{c} (best on validation)" for c in configs]]
    head.append("best agent gap to MPC")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scenario, by_config in rows.items():
        first = next(iter(by_config.values()))[0]
        best_rule = max(float(first[f"score_{r}"]) for r in RULES)
        mpc = float(first["score_mpc"])
        cells = [scenario, f"{best_rule:.1f}", f"{mpc:.1f}"]
        for c in configs:
            scores = [float(r["score_trained_best"]) for r in by_config.get(c, [])]
            cells.append(format_pm(*mean_ci(np.array(scores))) if scores else "not run")
        means = [
            np.mean([float(r["score_trained_best"]) for r in by_config[c]])
            for c in configs
            if by_config.get(c)
        ]
        cells.append(f"{max(means) - mpc:+.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
