"""What each lever of the training recipe is worth, read from the runs of ``learning_table.py``.

For every scenario and seed it evaluates the behaviour-cloned model before any RL
(``pretrained/``) and, for a config with ``pretrain.search``, the searched model (``searched/``)
on the same test days as the table (greedy and the optimum taken from the table's
``episodes.csv``), next to the validation-selected and final fine-tuned models, and reads which
teacher ``expert: auto`` chose and what both candidate clones earned on the selection days.

    python experiments/learning_levers.py            # after experiments/learning_table.py
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from agents.evaluation.benchmark import episode_profits
from agents.evaluation.rollout import run_policy
from agents.evaluation.score import mean_ci, normalized_score
from agents.policies.trained import load_trained_policy
from megapod_gym.config import load_scenario

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=HERE / "runs")
    ap.add_argument("--config", default="ppo-bc")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    for test_dir in sorted(args.runs.glob(f"{args.config}-*-test")):
        scenario = test_dir.name[len(args.config) + 1 : -len("-test")]
        profit = episode_profits(test_dir / "episodes.csv")
        seeds = sorted(profit["greedy"])
        greedy = np.array([profit["greedy"][s] for s in seeds])
        optimum = np.array([profit["hindsight-optimum"][s] for s in seeds])

        def score(name: str, profit=profit, seeds=seeds, greedy=greedy, optimum=optimum) -> float:
            return normalized_score(np.array([profit[name][s] for s in seeds]), greedy, optimum)

        for run in sorted(args.runs.glob(f"{args.config}-{scenario}-s*")):
            seed = int(run.name.rsplit("-s", 1)[1])
            config = load_scenario(run / "scenario.yaml")
            clone = run_policy(load_trained_policy(run / "pretrained"), config, seeds).rows
            searched = (
                run_policy(load_trained_policy(run / "searched"), config, seeds).rows
                if (run / "searched").is_dir()
                else None
            )
            pre = json.loads((run / "pretrain.json").read_text())
            rows.append(
                {
                    "scenario": scenario,
                    "seed": seed,
                    "teacher": pre["expert"],
                    **{
                        f"clone_selection_profit_usd_{k}": v.get("clone_selection_profit_usd")
                        for k, v in pre["candidates"].items()
                    },
                    "score_mpc": score("mpc"),
                    "score_tuned_rule": score("tuned-rule"),
                    "score_clone": normalized_score(
                        np.array([r["profit_usd"] for r in clone]), greedy, optimum
                    ),
                    **(
                        {
                            "score_searched": normalized_score(
                                np.array([r["profit_usd"] for r in searched]), greedy, optimum
                            )
                        }
                        if searched is not None
                        else {}
                    ),
                    "score_finetuned_best": score(f"seed {seed} best"),
                    "score_finetuned_final": score(f"seed {seed} final"),
                }
            )
    stem = args.out or HERE / f"results_learning_levers_{time.strftime('%Y-%m-%d')}"
    with stem.with_suffix(".csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)

    def fmt(v: list[float]) -> str:
        m, h = mean_ci(np.asarray(v))
        return f"{m:.1f}" if not np.isfinite(h) else f"{m:.1f} ± {h:.1f}"

    lines = [
        f"# What each lever is worth ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `python experiments/learning_levers.py --config {args.config}"
        + (f" --out {args.out}" if args.out else "")
        + "` (after `experiments/learning_table.py`).  ",
        "Normalized score on the table's test days; mean ± 95 % CI over training seeds. *clone* = "
        "behaviour cloning of the chosen teacher only (no RL); *searched* = the clone after the "
        "policy search (configs with `pretrain.search`); *fine-tuned* = after PPO "
        "(validation-selected / final).",
        "",
    ]
    search = any("score_searched" in r for r in rows)
    cols = ["scenario", "teacher", "tuned rule", "MPC", "clone"]
    cols += ["searched", "search gain over the clone"] if search else []
    cols += ["fine-tuned (best on validation)", "fine-tuned (final)"]
    cols += ["gain over the clone (search + PPO)" if search else "RL gain over the clone"]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        rs = [r for r in rows if r["scenario"] == scenario]
        gain = [r["score_finetuned_best"] - r["score_clone"] for r in rs]
        cells = [
            scenario,
            "/".join(dict.fromkeys(r["teacher"] for r in rs)),
            f"{rs[0]['score_tuned_rule']:.1f}",
            f"{rs[0]['score_mpc']:.1f}",
            fmt([r["score_clone"] for r in rs]),
        ]
        if search:
            cells += [
                fmt([r.get("score_searched", np.nan) for r in rs]),
                fmt([r.get("score_searched", np.nan) - r["score_clone"] for r in rs]),
            ]
        cells += [
            fmt([r["score_finetuned_best"] for r in rs]),
            fmt([r["score_finetuned_final"] for r in rs]),
            fmt(gain),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
