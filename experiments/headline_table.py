"""README's headline table: every training config's experiments table side by side, per scenario.

Reads the committed ``experiments/results_learning*_<date>.csv`` files named on the command line
(rows of the same scenario and config join, so seeds trained into separate files pool) and prints
one Markdown row per scenario: the best rule (fixed or tuned), MPC, each config's
validation-selected agent (mean ± 95 % CI over training seeds; "(n = k)" below 3 seeds), with
``--final`` also each config's final model, and the best config's gap to MPC (marked "(n = k)"
when that config has fewer than 3 seeds). Files whose rule or
MPC scores for a scenario disagree (other test days or code) are refused.

``--fleets`` adds the fleets' table from ``experiments/fleet_search.py`` result CSVs: per fleet and
training method (``fleet-search``, or the training config's name), independent-greedy (the fleet
score's 0), global-greedy (the best fleet rule), the trained fleet policy (mean ± 95 % CI over
training seeds) and its gap to global-greedy. There is no fleet MPC.

    python experiments/headline_table.py experiments/results_learning_2026-12-02.csv \\
        experiments/results_learning_dagger_2026-12-02.csv \\
        --fleets experiments/results_fleet_search_tri-tz-3site_2026-12-05.csv
"""

from __future__ import annotations

import argparse
import csv
import shlex
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from agents.evaluation.score import format_pm, mean_ci

RULES = ("tou-arbitrage", "price-threshold", "peak-shaving", "tuned-rule")
TOLERANCE = 0.05  # normalized-score points between tables' rule and MPC scores


def fleet_lines(tables: list[Path]) -> list[str]:
    """The fleets' Markdown table from ``fleet_search.py`` result CSVs (one row per fleet)."""
    lines = [
        "| fleet | independent-greedy | global-greedy (best fleet rule) | trained by | trained "
        "fleet policy | gap to best rule | seeds |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for table in tables:
        with table.open() as fh:
            for r in csv.DictReader(fh):
                mean, half, rule = (
                    float(r["trained_mean"]),
                    float(r["trained_ci"]),
                    float(r["global_greedy"]),
                )
                lines.append(
                    f"| {r['fleet']} | {float(r['independent_greedy']):.1f} | {rule:.1f} | "
                    f"{r.get('policy') or 'fleet-search'} | {format_pm(mean, half)} | "
                    f"{mean - rule:+.1f} | {r['seeds']} |"
                )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tables", nargs="+", type=Path)
    ap.add_argument("--final", action="store_true", help="also each config's final model")
    ap.add_argument("--out", type=Path, default=None, help="also write the table to OUT.md")
    ap.add_argument("--title", default="Trained agents against the rules and MPC")
    ap.add_argument(
        "--fleets", nargs="+", type=Path, default=[], help="fleet_search.py result CSVs"
    )
    args = ap.parse_args()
    rows: dict[str, dict[str, list[dict[str, str]]]] = defaultdict(lambda: defaultdict(list))
    configs: list[str] = []
    for table in args.tables:
        with table.open() as fh:
            for r in csv.DictReader(fh):
                for other in (x for xs in rows[r["scenario"]].values() for x in xs[:1]):
                    for key in (*(f"score_{n}" for n in RULES), "score_mpc"):
                        if abs(float(r[key]) - float(other[key])) > TOLERANCE:
                            ap.error(
                                f"{table}: {r['scenario']} {key} = {float(r[key]):.2f}, another "
                                f"table has {float(other[key]):.2f} (different test days or code)"
                            )
                rows[r["scenario"]][r["config"]].append(r)
                if r["config"] not in configs:
                    configs.append(r["config"])
    head = ["scenario", "best rule", "MPC"]
    for c in configs:
        head += [f"{c} (best on validation)", *([f"{c} (final)"] if args.final else [])]
    head.append("best agent gap to MPC")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scenario, by_config in rows.items():
        first = next(iter(by_config.values()))[0]
        best_rule = max(float(first[f"score_{r}"]) for r in RULES)
        mpc = float(first["score_mpc"])
        cells = [scenario, f"{best_rule:.1f}", f"{mpc:.1f}"]
        for c in configs:
            for key in ("score_trained_best", *(["score_trained_final"] if args.final else [])):
                scores = [float(r[key]) for r in by_config.get(c, [])]
                cell = format_pm(*mean_ci(np.array(scores))) if scores else "not run"
                short = 1 < len(scores) < 3  # one seed: format_pm already says n = 1
                cells.append(cell + (f" (n = {len(scores)})" if short else ""))
        means = {
            c: np.mean([float(r["score_trained_best"]) for r in by_config[c]])
            for c in configs
            if by_config.get(c)
        }
        best = max(means, key=means.__getitem__)
        n_best = len(by_config[best])
        cells.append(f"{means[best] - mpc:+.1f}" + (f" (n = {n_best})" if n_best < 3 else ""))
        lines.append("| " + " | ".join(cells) + " |")
    if args.fleets:
        lines += [
            "",
            "Fleets (0 = independent-greedy, 100 = the fleet hindsight LP; no fleet MPC):",
            "",
            *fleet_lines(args.fleets),
        ]
    print("\n".join(lines))
    if args.out is not None:
        shown = " ".join(str(t) for t in args.tables)
        command = (
            f"python experiments/headline_table.py {shown}"
            + (" --final" if args.final else "")
            + (" --fleets " + " ".join(str(t) for t in args.fleets) if args.fleets else "")
            + f" --out {args.out} --title {shlex.quote(args.title)}"
        )
        header = [
            f"# {args.title} ({time.strftime('%Y-%m-%d')})",
            "",
            f"Command: `{command}`  ",
            "Normalized score on the held-out test days of the tables read (0 = cars-first "
            "greedy, 100 = hindsight LP optimum); trained agents: mean ± 95 % CI over training "
            "seeds, the model selected on validation days (and, with --final, the last model).",
            "",
        ]
        args.out.with_suffix(".md").write_text("\n".join(header + lines) + "\n")


if __name__ == "__main__":
    main()
