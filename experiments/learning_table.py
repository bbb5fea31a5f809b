"""The experiments table: trained agents against every rule and MPC, per scenario, over seeds.

For each scenario × training seed, ``megapod train`` runs a training config (default
``configs/train/ppo-bc.yaml``: behaviour cloning from the best expert, then PPO fine-tuning) with
the scenario and seed overridden. Model selection uses validation days; every number in the table
is on ``--test-days`` *test* days (seeds from 1,000,000) that selection never saw. Per scenario the
table shows greedy (0), each rule, MPC, and the trained agent (validation-selected and final
model) as mean ± 95 % CI over the training seeds, the wall-clock time of a run on this machine
(demonstrations + cloning + RL) and the time until the validation score first beat the best rule's.

Writes ``experiments/results_learning_<date>.{md,csv}`` after every finished run, so a partial
table survives an interrupted session. Run folders go to ``--runs`` (not committed).

Seeds trained in separate processes (``--seeds 1`` and ``--seeds 2`` side by side, each with its
own ``--out``) join one table with ``--merge``: the per-seed rows of earlier result CSVs of the
same config and test days are added to this run's. Rules and MPC are deterministic given the
days, so their scores in the merged files must agree (to 0.05 points) with this run's, else the
merge is refused.

Fleet presets (``tri-tz-3site``, ``fleet-20site``) among ``--scenarios`` are trained by
``--fleet-trainer`` (``fleet-search``, the default, or a fleet training config such as
``configs/train/ppo-fleet.yaml``) and played against independent-greedy (their score's 0) and
global-greedy (the best fleet rule; there is no fleet MPC), as ``experiments/fleet_search.py``
does. Their rows go to a second table in the Markdown and to ``<out>_fleets.csv``, the file
``headline_table.py --fleets`` reads.

    python experiments/learning_table.py                       # every site and fleet, 3 seeds
    python experiments/learning_table.py --scenarios urban-12stall-bev --seeds 0 1 2
    python experiments/learning_table.py --scenarios highway-64stall --seeds 2 \
        --merge experiments/results_learning_a.csv experiments/results_learning_b.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import fleet_search  # experiments/fleet_search.py, beside this script
import numpy as np

from agents.evaluation.benchmark import write_csv
from agents.evaluation.compare import read_scalars
from agents.evaluation.score import mean_ci
from agents.training.config import load_train_config
from agents.training.fleet_search import FleetSearchSettings
from agents.training.time_to_beat import time_to_beat
from agents.training.train import train
from megapod_gym.config.fleet import fleet_names
from megapod_gym.config.loading import scenario_names

HERE = Path(__file__).resolve().parent
RULES = ("tou-arbitrage", "price-threshold", "peak-shaving", "tuned-rule")


def _trained_run(folder: Path, name: str):
    from agents.evaluation.benchmark import policy_run
    from agents.policies.trained import load_trained_policy

    def run(config, seeds):
        return policy_run(load_trained_policy(folder, name=name), config, seeds, name)

    return run


def run_scenario(
    config: Path, scenario: str, seeds: list[int], test_days: int, runs: Path
) -> list[dict]:
    """Train every seed (model selection on validation days), then one benchmark on the test days
    with the rules, the tuned rule, MPC, the optimum and every seed's best and final model."""
    from agents.evaluation.benchmark import run_benchmark, write_outputs

    folders = {}
    for seed in seeds:
        cfg = load_train_config(config, {"scenario": scenario, "seed": seed})
        out = runs / f"{config.stem}-{scenario}-s{seed}"
        folders[seed] = out
        if not (out / "metrics.json").is_file():
            if out.exists():
                import shutil

                shutil.rmtree(out)
            t0 = time.time()
            metrics = train(cfg, out, progress=False, final_benchmark=False)
            metrics["run_wall_seconds"] = time.time() - t0
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    extra = []
    for seed, out in folders.items():
        extra.append((f"seed {seed} best", _trained_run(out / "best", f"seed {seed} best")))
        extra.append((f"seed {seed} final", _trained_run(out / "final", f"seed {seed} final")))
    scenario_ref = str(folders[seeds[0]] / "scenario.yaml")
    result = run_benchmark(
        [scenario_ref],
        ["greedy", *RULES, "mpc"],
        n_episodes=test_days,
        extra=extra,
        show_progress=False,
    )
    write_outputs(result, runs / f"{config.stem}-{scenario}-test", 1.0 / 12.0)
    score = {r["policy"]: float(r["normalized_score"]) for r in result.summary()}
    rows = []
    for seed, out in folders.items():
        metrics = json.loads((out / "metrics.json").read_text())
        val = {
            k.split("/")[1]: float(v[1][0])
            for k, v in read_scalars(out).items()
            if k.startswith("baseline/") and k.endswith("/normalized_score")
        }
        best_rule = max((r for r in RULES if r in val), key=val.__getitem__)
        steps, secs = time_to_beat(out, metrics, f"baseline/{best_rule}/normalized_score")
        pre = metrics.get("pretrain", {})
        search = pre.get("search") or {}
        rows.append(
            {
                "scenario": scenario,
                "seed": seed,
                "config": config.stem,
                "test_days": test_days,
                "expert": pre.get("expert", ""),
                **{f"score_{k}": score[k] for k in (*RULES, "mpc")},
                "score_trained_best": score[f"seed {seed} best"],
                "score_trained_final": score[f"seed {seed} final"],
                "best_rule_on_validation": best_rule,
                "run_wall_seconds": metrics["run_wall_seconds"],
                "train_seconds": metrics["train_seconds"],
                "pretrain_seconds": pre.get("demo_seconds", 0.0) + pre.get("bc_seconds", 0.0),
                "search_seconds": search.get("search_seconds", 0.0),
                # the search iteration kept (selection days) of the iterations run: near the
                # end means the selection-day profit was still rising
                "search_selected_iteration": search.get("selected_iteration", float("nan")),
                "search_iterations": (search.get("curve") or [{}])[-1].get("iteration", 0),
                "steps_to_beat_best_rule": steps,
                "seconds_to_beat_best_rule": secs,
            }
        )
    return rows


REFERENCE_TOLERANCE = 0.05  # normalized-score points


def merge_rows(results: list[dict], paths: list[Path], pending: tuple[str, ...] = ()) -> list[dict]:
    """``results`` plus the per-seed rows of earlier result CSVs ``paths`` (seeds already in
    ``results`` are not added twice). Every merged row must match a scenario of ``results`` with
    the same config and test days, and its rule and MPC scores must agree with that scenario's
    to :data:`REFERENCE_TOLERANCE`; otherwise ``ValueError`` names the file, the row and the field.
    Rows of ``pending`` scenarios (still to run) are left for a later call."""
    ref = {r["scenario"]: r for r in results}
    seen = {(r["scenario"], int(r["seed"])) for r in results}
    merged = list(results)
    for path in paths:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            raise ValueError(f"--merge {path}: no rows")
        for i, row in enumerate(rows):
            where = f"--merge {path} row {i + 1} (scenario {row.get('scenario')}, seed {row.get('seed')})"
            base = ref.get(row["scenario"])
            if base is None and row["scenario"] in pending:
                continue
            if base is None:
                raise ValueError(f"{where}: scenario not in this run's --scenarios {sorted(ref)}")
            for key in ("config", "test_days"):
                if str(row[key]) != str(base[key]):
                    raise ValueError(f"{where}: {key} is {row[key]!r}, this run's is {base[key]!r}")
            for name in (*RULES, "mpc"):
                key = f"score_{name}"
                if abs(float(row[key]) - float(base[key])) > REFERENCE_TOLERANCE:
                    raise ValueError(
                        f"{where}: {key} = {float(row[key]):.3f} differs from this run's "
                        f"{float(base[key]):.3f} by more than {REFERENCE_TOLERANCE} points "
                        "(different days or code)"
                    )
            if (row["scenario"], int(row["seed"])) in seen:
                continue
            seen.add((row["scenario"], int(row["seed"])))
            typed: dict = {}
            for key, value in row.items():
                if key in ("scenario", "config", "expert", "best_rule_on_validation"):
                    typed[key] = value
                elif key in ("seed", "test_days"):
                    typed[key] = int(value)
                else:
                    typed[key] = float(value) if value != "" else float("nan")
            merged.append(typed)
    return sorted(merged, key=lambda r: (list(ref).index(r["scenario"]), r["seed"]))


def fmt(values: list[float]) -> str:
    m, h = mean_ci(np.asarray(values))
    return f"{m:.1f}" if not np.isfinite(h) else f"{m:.1f} ± {h:.1f}"


def write(results: list[dict], stem: Path, command: str, fleets: FleetRows | None = None) -> None:
    """The site table (``stem.md``, ``stem.csv``), and with ``fleets`` the fleet table below it
    (and ``<stem>_fleets.csv``)."""
    if results:
        write_csv(results, stem.with_suffix(".csv"))
    algo = results[0]["config"] if results else ""
    lines = [
        f"# Experiments table ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `{command}`  ",
        "Gaps: mean best-on-validation score minus the best rule's (fixed or tuned) and MPC's. "
        "Normalized score on held-out **test** days (0 = cars-first greedy, 100 = hindsight LP "
        "optimum); trained agents: mean ± 95 % CI over training seeds; model selection on "
        "separate validation days. Rules and MPC are deterministic given the days, so they have "
        "one value. Times are wall-clock on this 2-core CPU machine per run.",
        "",
        f"| scenario | tou-arbitrage | price-threshold | peak-shaving | tuned rule | MPC | {algo} best-on-validation | {algo} final | gap to best rule | gap to MPC | seeds | expert | run time s | time to beat best rule s | beats every rule and MPC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    if not results:
        lines = lines[:3]  # fleets only: no site table
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        rs = [r for r in results if r["scenario"] == scenario]
        refs = {n: rs[0].get(f"score_{n}", float("nan")) for n in (*RULES, "mpc")}
        best_val = [r["score_trained_best"] for r in rs]
        beats = min(best_val) > max(refs.values())
        mean_beats = float(np.mean(best_val)) > max(refs.values())
        ttb = [r["seconds_to_beat_best_rule"] for r in rs]
        lines.append(
            f"| {scenario} | {refs['tou-arbitrage']:.1f} | {refs['price-threshold']:.1f} | "
            f"{refs['peak-shaving']:.1f} | {refs['tuned-rule']:.1f} | {refs['mpc']:.1f} | {fmt(best_val)} | "
            f"{fmt([r['score_trained_final'] for r in rs])} | "
            f"{np.mean(best_val) - max(refs[n] for n in RULES):+.1f} | "
            f"{np.mean(best_val) - refs['mpc']:+.1f} | {len(rs)} | "
            f"{'/'.join(dict.fromkeys(r['expert'] for r in rs))} | "
            f"{np.mean([r['run_wall_seconds'] for r in rs]):.0f} | "
            f"{'never' if np.isnan(ttb).all() else f'{np.nanmean(ttb):.0f} ({np.sum(~np.isnan(ttb))}/{len(ttb)} seeds)'} | "
            f"{'yes, every seed' if beats else ('on average' if mean_beats else 'no')} |"
        )
    if fleets is not None and fleets.summary:
        lines += fleets.markdown()
        write_csv(fleets.summary, stem.with_name(stem.name + "_fleets.csv"))
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


@dataclass
class FleetRows:
    """The fleets' part of the table: the trainer's name, the summary rows (one per fleet, the
    ``_fleets.csv`` rows), the per-seed rows and each fleet's benchmark table."""

    trainer: str
    summary: list[dict] = field(default_factory=list)
    per_seed: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)

    def markdown(self) -> list[str]:
        return [
            "",
            f"Fleets, trained by {self.trainer} (0 = independent-greedy, 100 = the fleet "
            "hindsight LP with free migration; global-greedy is the best fleet rule; there is no "
            "fleet MPC; paired difference to global-greedy with a 95 % bootstrap CI over days):",
            "",
            *fleet_search.summary_lines(self.summary),
            "",
            *fleet_search.PER_SEED_HEADER,
            *self.per_seed,
            "",
            *(t + "\n" for t in self.tables),
        ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=HERE.parent / "configs/train/ppo-bc.yaml")
    ap.add_argument("--scenarios", nargs="+", default=None, help="default: every site scenario")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--test-days", type=int, default=30)
    ap.add_argument("--runs", type=Path, default=HERE / "runs")
    ap.add_argument("--out", type=Path, default=None, help="result file stem")
    ap.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=[],
        help="result CSVs of other seeds of the same config and test days to join to the table",
    )
    ap.add_argument(
        "--fleet-trainer",
        default="fleet-search",
        help="fleets: 'fleet-search' (megapod fleet-search) or a fleet training config",
    )
    ap.add_argument(
        "--fleet-iterations",
        type=int,
        default=None,
        help="fleet-search iterations (default: megapod fleet-search's)",
    )
    args = ap.parse_args()
    fleet_presets = set(fleet_names())
    everything = [*scenario_names(), *fleet_names()]
    for name in args.scenarios or []:
        if name not in everything:
            ap.error(f"--scenarios: unknown scenario {name!r}; choose from {everything}")
    chosen = args.scenarios or everything
    scenarios = [s for s in chosen if s not in fleet_presets]
    fleets = [s for s in chosen if s in fleet_presets]
    fleet_config = None if args.fleet_trainer == "fleet-search" else Path(args.fleet_trainer)
    if fleet_config is not None and not fleet_config.is_file():
        ap.error(f"--fleet-trainer: {fleet_config} is neither 'fleet-search' nor a config file")
    stem = args.out or HERE / f"results_learning_{time.strftime('%Y-%m-%d')}"
    cfg_path = args.config.resolve()
    shown = cfg_path.relative_to(HERE.parent) if cfg_path.is_relative_to(HERE.parent) else cfg_path
    command = (
        f"python experiments/learning_table.py --scenarios {' '.join(chosen)} "
        f"--seeds {' '.join(map(str, args.seeds))} --test-days {args.test_days}"
        + (f" --config {shown}" if scenarios else "")
        + (f" --out {args.out}" if args.out else "")
        + (f" --merge {' '.join(map(str, args.merge))}" if args.merge else "")
        + (f" --fleet-trainer {args.fleet_trainer}" if fleets and fleet_config else "")
        + (
            f" --fleet-iterations {args.fleet_iterations}"
            if fleets and not fleet_config and args.fleet_iterations is not None
            else ""
        )
    )
    for path in args.merge:  # fail before hours of training, not after
        if not path.is_file():
            ap.error(f"--merge {path}: no such file")
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("scenario") not in scenarios or row.get("config") != args.config.stem:
                    ap.error(
                        f"--merge {path}: row (scenario {row.get('scenario')}, config "
                        f"{row.get('config')}) is not one of --scenarios {scenarios} with "
                        f"config {args.config.stem}"
                    )
    results: list[dict] = []
    table: list[dict] = []
    for i, scenario in enumerate(scenarios):
        results += run_scenario(args.config, scenario, args.seeds, args.test_days, args.runs)
        table = (
            merge_rows(results, args.merge, tuple(scenarios[i + 1 :])) if args.merge else results
        )
        write(table, stem, command)
        print(f"{scenario}: done ({time.strftime('%H:%M:%S')})", flush=True)
    rows = FleetRows(f"`{args.fleet_trainer}`")
    settings = (
        FleetSearchSettings()
        if args.fleet_iterations is None
        else FleetSearchSettings(iterations=args.fleet_iterations)
    )
    rng = np.random.default_rng(0)
    for fleet in fleets:
        summary, per_seed, bench_table = fleet_search.run_fleet(
            fleet, args.seeds, args.test_days, args.runs / "fleets", fleet_config, settings, rng
        )
        rows.summary.append(summary)
        rows.per_seed += per_seed
        rows.tables.append(bench_table)
        write(table, stem, command, rows)
        print(f"{fleet}: done ({time.strftime('%H:%M:%S')})", flush=True)


if __name__ == "__main__":
    main()
