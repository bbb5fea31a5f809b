"""The ``megapod`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from megapod_gym.config import ConfigError


def _cmd_simulate(args: argparse.Namespace) -> int:
    from agents.simulate import simulate

    print(simulate(args.scenario, args.policy, args.days, seed=args.seed, plot=args.plot))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from agents.evaluation import EVAL_SEED_BASE
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"megapod {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
