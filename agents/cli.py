"""The ``megapod`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports training code only when a command needs it
    from agents.training.config import TrainConfig


def _cmd_simulate(args: argparse.Namespace) -> int:
    from agents.evaluation.simulate import simulate

    print(simulate(args.scenario, args.policy, args.days, seed=args.seed, plot=args.plot))
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from agents.evaluation.benchmark import (
        DEFAULT_POLICIES,
        markdown_table,
        run_benchmark,
        write_outputs,
    )
    from megapod_gym.config import load_scenario, scenario_names
    from megapod_gym.config.fleet import is_fleet

    scenarios = args.scenarios or scenario_names()
    fleets = [s for s in scenarios if is_fleet(s)]
    if fleets:
        if len(fleets) < len(scenarios):
            raise ValueError(
                "benchmark fleets and single-site scenarios in separate runs (got fleets "
                f"{fleets} and scenarios {[s for s in scenarios if s not in fleets]})"
            )
        return _benchmark_fleets(fleets, args)
    policies = args.policies or list(DEFAULT_POLICIES)
    from agents.policies.registry import make_policy

    for p in policies:
        if p != "hindsight-optimum":
            make_policy(p)  # fail fast with the list of valid names
    result = run_benchmark(
        scenarios, policies, n_episodes=args.episodes, days=args.days, jobs=args.jobs
    )
    dt_h = load_scenario(scenarios[0]).episode.dt_h
    paths = write_outputs(result, args.out, dt_h)
    print(markdown_table(result.summary()))
    print(
        f"\nwritten to {Path(args.out).resolve()}: {', '.join(sorted(p.name for p in paths.values()))}"
    )
    return 0


def _benchmark_fleets(fleets: list[str], args: argparse.Namespace) -> int:
    """``megapod benchmark`` on fleets: fleet baselines, trained fleet agents (run folders given
    as policies) and the fleet hindsight LP."""
    from tqdm.auto import tqdm

    from agents.evaluation.fleet import fleet_markdown, run_fleet_benchmark, write_fleet_outputs
    from agents.policies.fleet_battery import is_learned_battery_run, load_learned_battery
    from agents.policies.fleet_rules import FLEET_BASELINES
    from agents.policies.trained import load_trained_policy

    names = [p for p in (args.policies or FLEET_BASELINES) if p != "hindsight-optimum"]
    baselines = [p for p in names if p in FLEET_BASELINES]
    extra = []
    for p in names:
        if p in FLEET_BASELINES:
            continue
        if not Path(p).exists():
            raise ValueError(
                f"unknown fleet policy {p!r}: not a fleet policy name "
                f"({', '.join(FLEET_BASELINES)}) and no such run folder or model file"
            )
        policy = load_learned_battery(p) if is_learned_battery_run(p) else load_trained_policy(p)
        extra.append((f"{policy.name} ({Path(p).name})", policy))
    benches = []
    with tqdm(total=len(fleets) * (len(baselines) + len(extra) + 1), desc="fleet benchmark") as bar:
        for fleet in fleets:
            benches.append(
                run_fleet_benchmark(
                    fleet,
                    baselines,
                    n_episodes=args.episodes,
                    days=args.days,
                    extra=extra,
                    progress=lambda name, f=fleet: (
                        bar.set_postfix_str(f"{f}: {name}"),
                        bar.update(1),
                    ),
                )
            )
    paths = write_fleet_outputs(benches, args.out)
    print(fleet_markdown(benches))
    print(
        f"\nwritten to {Path(args.out).resolve()}: {', '.join(sorted(p.name for p in paths.values()))}"
    )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    args.scenarios = [args.scenario]
    args.policies = [args.policy]
    return _cmd_benchmark(args)


DEFAULT_TRAIN_CONFIG = "configs/train/ppo.yaml"


def _cmd_train(args: argparse.Namespace) -> int:
    from agents.training.config import load_train_config
    from agents.training.train import train

    out = Path(args.out) if args.out else None
    if args.resume:
        if out is None:
            raise ValueError("--resume needs --out RUN_DIR")
        cfg = load_train_config(out / "config.yaml", {"n_timesteps": args.total_timesteps})
        resume_conflicts(cfg, args)
    else:
        overrides = {
            "scenario": args.scenario,
            "seed": args.seed,
            "n_timesteps": args.total_timesteps,
        }
        cfg = load_train_config(args.config or DEFAULT_TRAIN_CONFIG, overrides)
        out = out or default_run_folder(args.config or DEFAULT_TRAIN_CONFIG, cfg)
    metrics = train(cfg, out, resume=args.resume, reset_normalization=args.reset_normalization)
    print((out / "summary.txt").read_text())
    return 0 if metrics else 1


def default_run_folder(config_path: str, cfg: TrainConfig) -> Path:
    """``runs/<config>-<scenario>-s<seed>-<YYYYmmdd-HHMMSS>``: what ran, and when; never an
    existing folder."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{Path(config_path).stem}-{Path(cfg.scenario).stem}-s{cfg.seed}-{stamp}"


def resume_conflicts(saved: TrainConfig, args: argparse.Namespace) -> None:
    """``--resume`` continues the run folder's own config: a ``--config``, ``--scenario`` or
    ``--seed`` that says otherwise is an error naming the conflict (never silently ignored)."""
    from agents.training.config import load_train_config

    conflicts = []
    if args.scenario is not None and args.scenario != saved.scenario:
        conflicts.append(f"--scenario {args.scenario} (the run trains {saved.scenario})")
    if args.seed is not None and args.seed != saved.seed:
        conflicts.append(f"--seed {args.seed} (the run's seed is {saved.seed})")
    if args.config is not None:
        given = load_train_config(
            args.config, {"scenario": saved.scenario, "seed": saved.seed}
        ).model_dump(exclude={"n_timesteps"})
        if given != saved.model_dump(exclude={"n_timesteps"}):
            conflicts.append(f"--config {args.config} (differs from the run's config.yaml)")
    if conflicts:
        raise ValueError(
            "--resume continues the run's saved config; conflicting: " + "; ".join(conflicts)
        )


def _cmd_fleet_search(args: argparse.Namespace) -> int:
    from agents.policies.fleet_battery import POLICY_FILE
    from agents.training.fleet_search import FleetSearchSettings, train_fleet_battery

    fields = {"iterations": args.iterations, "n_jobs": args.n_jobs}
    settings = FleetSearchSettings(**{k: v for k, v in fields.items() if v is not None})
    out = Path(args.out or f"runs/fleet-search-{Path(args.fleet).stem}-s{args.seed}")
    if (out / POLICY_FILE).exists():
        raise ValueError(f"{out} already holds a trained fleet policy: choose another --out")
    record = train_fleet_battery(args.fleet, settings, out, seed=args.seed)
    print(
        f"{record['fleet']}: selection-day profit {record['selection_profit_usd_before']:,.0f} "
        f"(global-greedy) -> {record['selection_profit_usd_after']:,.0f} USD/day at iteration "
        f"{record['selected_iteration']}, {record['train_seconds'] / 60:.1f} min\n"
        f"written to {out.resolve()}; score it on test days with: megapod benchmark "
        f"--scenarios {record['fleet']} --policies independent-greedy global-greedy {out}"
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from agents.training.demo import run_demo

    print(run_demo(Path(args.out), total_timesteps=args.total_timesteps, force=args.force))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from agents.evaluation.compare import compare_runs

    print(compare_runs([Path(r) for r in args.runs], Path(args.out)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from agents.evaluation.rollout import EVAL_SEED_BASE
    from megapod_gym.config import DEFAULT_SCENARIO

    parser = argparse.ArgumentParser(
        prog="megapod", description="megapod-gym: EV charging site + AI compute + battery"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="run a policy on a scenario and print a daily summary")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO, help="scenario name or YAML path")
    p.add_argument(
        "--policy", default="greedy", help="policy name (see 'megapod benchmark --help')"
    )
    p.add_argument("--days", type=float, default=7.0, help="days to simulate")
    p.add_argument("--seed", type=int, default=EVAL_SEED_BASE, help="trace seed")
    p.add_argument("--plot", default=None, help="write the dispatch plot to this PNG")
    p.set_defaults(func=_cmd_simulate)

    def add_eval_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--episodes",
            type=int,
            default=5,
            help="held-out evaluation episodes (seeds from 1,000,000)",
        )
        p.add_argument("--days", type=float, default=1.0, help="days per episode")
        p.add_argument(
            "--jobs", type=int, default=None, help="worker processes (default: CPU count)"
        )

    p = sub.add_parser(
        "evaluate", help="one policy vs greedy and the hindsight optimum on held-out traces"
    )
    p.add_argument("--policy", required=True, help="policy name or trained run folder / model path")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO)
    p.add_argument("--out", default="runs/evaluate", help="output folder")
    add_eval_args(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "benchmark",
        help="every policy x scenario on the same held-out traces -> CSV, Markdown, plots",
    )
    p.add_argument(
        "--scenarios",
        nargs="+",
        default=None,
        help="scenario names or paths (default: all presets), or fleet names/paths "
        "(configs/fleets/*.yaml: tri-tz-3site, fleet-20site)",
    )
    p.add_argument(
        "--policies",
        nargs="+",
        default=None,
        help="policy names or run folders (default: every baseline, MPC and oracle-replay; for "
        "fleets: independent-greedy, global-greedy)",
    )
    p.add_argument("--out", default="runs/benchmark", help="output folder")
    add_eval_args(p)
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("train", help="train an SB3 agent from a YAML config")
    p.add_argument(
        "--config",
        default=None,
        help=f"training YAML (configs/train/*.yaml; default {DEFAULT_TRAIN_CONFIG})",
    )
    p.add_argument("--scenario", default=None, help="override the config's scenario")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed (< 10,000)")
    p.add_argument("--total-timesteps", type=int, default=None, help="override n_timesteps")
    p.add_argument(
        "--out",
        default=None,
        help="run folder (default runs/ALGO-SCENARIO-seedN; never overwritten)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    p.add_argument(
        "--reset-normalization",
        action="store_true",
        help="with --resume: accept fresh normalization statistics when a checkpoint's are missing",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "fleet-search",
        help="train a fleet policy: random search on a battery policy added to global-greedy (one "
        "linear map shared by every site); scored with megapod benchmark",
    )
    p.add_argument("--fleet", default="tri-tz-3site", help="fleet name or YAML path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=None, help="search iterations (default 40)")
    p.add_argument("--n-jobs", type=int, default=None, help="worker processes (default 1)")
    p.add_argument("--out", default=None, help="run folder (default runs/fleet-search-FLEET-sN)")
    p.set_defaults(func=_cmd_fleet_search)

    p = sub.add_parser(
        "demo",
        help="the main job (~9 min on 2 cores): clone MPC (with DAgger), improve the clone by "
        "policy search, fine-tune briefly with PPO, compare with every rule, MPC and the optimum "
        "on 30 test days and print the paired gap to MPC (measured: above every rule, and above "
        "MPC by 0.55 points, paired 95 %% CI +0.04 to +1.15)",
    )
    p.add_argument("--out", default="runs/demo")
    p.add_argument(
        "--total-timesteps",
        type=int,
        default=None,
        help="PPO env steps (default: 100,000)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing runs/demo")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "compare", help="learning curves and final metrics of training runs (Markdown + PNG)"
    )
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--out", default="runs/compare", help="output folder")
    p.set_defaults(func=_cmd_compare)

    from agents.export.cli import add_commands as add_export_commands

    add_export_commands(sub)
    from agents.sweeps.cli import add_commands as add_sweep_commands

    add_sweep_commands(sub)
    return parser


# top-level module of an optional dependency -> the extra that installs it
EXTRA_OF_MODULE = {
    "torch": "train",
    "stable_baselines3": "train",
    "sb3_contrib": "train",
    "tensorboard": "train",
    "onnx": "export",
    "onnxscript": "export",
    "rl_zoo3": "zoo",
    "ray": "ray",
    "pettingzoo": "multiagent",
}


def missing_extra_message(command: str, exc: ModuleNotFoundError) -> str | None:
    """One line naming the extra to install when ``exc`` is a missing optional dependency."""
    root = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(root)
    if extra is None:
        return None
    return (
        f"megapod {command}: error: needs {root!r}, which the core install leaves out; "
        f"install the extra: pip install 'megapod-gym[{extra}]'"
    )


def main(argv: Sequence[str] | None = None) -> int:
    # Small policy networks run much faster on one torch thread on few-core machines.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, FileExistsError) as exc:  # ConfigError is a ValueError
        print(f"megapod {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        message = missing_extra_message(args.command, exc)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
