"""A trained fleet policy against the fleet rules on test days: global-greedy with a learned battery policy
(``megapod fleet-search``, :mod:`agents.training.fleet_search`), several training seeds per fleet.

With ``--config`` (a fleet training config, e.g. ``configs/train/ppo-fleet.yaml``) the policy is
instead trained by ``megapod train`` with that config (fleet and seed overridden) and played from
the run's validation-selected model.

Trains each (fleet, seed) unless its run folder already holds the trained policy, then plays
independent-greedy (the score's 0), global-greedy and every trained seed on the same test days
(seeds from 1,000,000, never played in training or selection) and solves the fleet hindsight LP on
them (the score's 100). Reports each seed's normalized score, its paired difference to
global-greedy with a 95 % bootstrap CI over the days, and the training time.

    python experiments/fleet_search.py --fleets tri-tz-3site --out experiments/results_fleet_search_tri_2026-12-05
    python experiments/fleet_search.py --fleets tri-tz-3site --config configs/train/ppo-fleet.yaml \
        --out experiments/results_fleet_ppo_tri-tz-3site_2026-12-05
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from agents.evaluation.benchmark import write_csv
from agents.evaluation.fleet import fleet_markdown, run_fleet_benchmark, write_fleet_outputs
from agents.evaluation.score import format_pm, mean_ci, paired_gap
from agents.policies.fleet_battery import POLICY_FILE, load_learned_battery
from agents.training.fleet_search import SEARCH_FILE, FleetSearchSettings, train_fleet_battery

HERE = Path(__file__).resolve().parent


def train_with_config(config: Path, fleet: str, seed: int, folder: Path) -> tuple[object, dict]:
    """``megapod train`` with a fleet training config (unless ``folder`` holds a finished run);
    returns the validation-selected policy and a record with ``selected_iteration`` (the
    selected model's env step) and ``train_seconds`` (pretraining + RL)."""
    from agents.policies.trained import load_trained_policy
    from agents.training.config import load_train_config
    from agents.training.train import train

    if not (folder / "metrics.json").is_file():
        cfg = load_train_config(config, {"scenario": fleet, "seed": seed})
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        metrics = train(cfg, folder, progress=False, final_benchmark=False)
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    metrics = json.loads((folder / "metrics.json").read_text())
    record = {
        "selected_iteration": metrics.get("step", ""),
        "train_seconds": metrics["train_seconds"],
    }
    return load_trained_policy(folder / "best", name=f"seed {seed}"), record


PER_SEED_HEADER = [
    "| fleet | training seed | score | − global-greedy | 95 % CI | days above global-greedy "
    "| selected | training, min |",
    "|---|---:|---:|---:|---|---:|---:|---:|",
]


def run_fleet(
    fleet: str,
    seeds: list[int],
    test_days: int,
    runs: Path,
    config: Path | None,
    settings: FleetSearchSettings,
    rng: np.random.Generator,
) -> tuple[dict, list[str], str]:
    """Train every seed of ``fleet`` (``megapod train --config config``, or ``megapod
    fleet-search`` with ``settings`` when ``config`` is None; a run folder that holds the trained
    policy is reused), then play independent-greedy, global-greedy and every seed on the test days.

    Returns the fleet's summary row (the CSV row ``headline_table.py --fleets`` reads), its
    per-seed Markdown rows (see :data:`PER_SEED_HEADER`) and the benchmark's Markdown table."""
    records, extra = {}, []
    prefix = f"{config.stem}-" if config else ""
    for seed in seeds:
        folder = runs / f"{prefix}{fleet}-s{seed}"
        if config is not None:
            trained, records[seed] = train_with_config(config, fleet, seed, folder)
        else:
            if not (folder / POLICY_FILE).exists():
                train_fleet_battery(fleet, settings, folder, seed=seed)
            records[seed] = json.loads((folder / SEARCH_FILE).read_text())
            trained = load_learned_battery(folder)
        extra.append((f"seed {seed}", trained))
    bench = run_fleet_benchmark(
        fleet, ["independent-greedy", "global-greedy"], test_days, 1.0, extra=extra
    )
    write_fleet_outputs([bench], runs / f"{prefix}{fleet}-test")
    scores = {r["policy"]: r["normalized_score"] for r in bench.summary()}
    zero, opt = bench.profit("independent-greedy"), bench.optimum_usd
    gg = bench.profit("global-greedy")
    trained_scores, per_seed = [], []
    for seed in seeds:
        p = bench.profit(f"seed {seed}")
        gap, low, high = paired_gap(p, gg, zero, opt, rng=rng)
        trained_scores.append(scores[f"seed {seed}"])
        rec = records[seed]
        per_seed.append(
            f"| {fleet} | {seed} | {scores[f'seed {seed}']:.1f} | {gap:+.2f} | "
            f"{low:+.2f} to {high:+.2f} | {int((p > gg).sum())} / {len(gg)} | "
            f"{rec['selected_iteration']} | {rec['train_seconds'] / 60:.1f} |"
        )
    mean, half = mean_ci(np.array(trained_scores))
    summary = {
        "fleet": fleet,
        "policy": config.stem if config else "fleet-search",
        "test_days": test_days,
        "independent_greedy": 0.0,
        "global_greedy": scores["global-greedy"],
        "trained_mean": mean,
        "trained_ci": half,
        "trained_minus_global_greedy": mean - scores["global-greedy"],
        "seeds": len(seeds),
        "train_minutes_mean": float(np.mean([r["train_seconds"] for r in records.values()]) / 60),
    }
    return summary, per_seed, fleet_markdown([bench])


def summary_lines(summary: list[dict]) -> list[str]:
    """One Markdown row per fleet: the rules, the trained policy over seeds and its gap."""
    lines = [
        "| fleet | independent-greedy | global-greedy | trained (mean ± 95 % CI over "
        "seeds) | trained − global-greedy | training, min per seed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        lines.append(
            f"| {s['fleet']} | 0.0 | {s['global_greedy']:.1f} | "
            f"{format_pm(s['trained_mean'], s['trained_ci'], '.1f')} | "
            f"{s['trained_minus_global_greedy']:+.1f} | {s['train_minutes_mean']:.1f} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fleets", nargs="+", default=["tri-tz-3site", "fleet-20site"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--test-days", type=int, default=30)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--runs", type=Path, default=HERE / "runs" / "fleet-search")
    ap.add_argument("--config", type=Path, default=None, help="train with this config instead")
    ap.add_argument("--out", type=Path, required=True, help="result file stem")
    args = ap.parse_args()
    settings = FleetSearchSettings(iterations=args.iterations, n_jobs=args.n_jobs)
    command = (
        f"python experiments/fleet_search.py --fleets {' '.join(args.fleets)} --seeds "
        f"{' '.join(map(str, args.seeds))} "
        + (f"--config {args.config} " if args.config else f"--iterations {args.iterations} ")
        + f"--test-days {args.test_days} --out experiments/{args.out.name}"
    )
    trained_by = (
        f"`megapod train --config {args.config}` (the model selected on validation days; "
        "*selected* = its env step)"
        if args.config
        else "`megapod fleet-search` settings "
        f"{settings.model_dump()} (*selected* = the search iteration kept)"
    )
    policy = (
        "trained by"
        if args.config
        else "`global-greedy-learned-battery` (agents/policies/fleet_battery.py) trained by"
    )
    lines = [
        f"# Trained fleet policy against the fleet rules ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `{command}`  ",
        f"Policy: {policy} {trained_by}.  ",
        f"Normalized score on {args.test_days} test days per fleet (0 = independent-greedy, 100 = "
        "the fleet hindsight LP with free migration, an upper bound). Paired difference to "
        "global-greedy: the same days for every policy, 95 % percentile bootstrap CI over days "
        "(2,000 resamples).",
        "",
    ]
    summary: list[dict] = []
    per_seed = list(PER_SEED_HEADER)
    tables = []
    rng = np.random.default_rng(0)
    for fleet in args.fleets:
        row, seed_lines, table = run_fleet(
            fleet, args.seeds, args.test_days, args.runs, args.config, settings, rng
        )
        summary.append(row)
        per_seed += seed_lines
        tables.append(table)
    lines += summary_lines(summary)
    lines += ["", "Per training seed:", "", *per_seed, "", "Every policy on the test days:", ""]
    lines += [t + "\n" for t in tables]
    args.out.with_suffix(".md").write_text("\n".join(lines))
    write_csv(summary, args.out.with_suffix(".csv"))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
