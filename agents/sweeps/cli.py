"""``megapod sweep``: a Ray Tune sweep of ``megapod train`` runs (see :mod:`agents.sweeps.sweep`).

Wire it into the main parser with ``add_commands(subparsers)``; ``python -m agents.sweeps.cli
sweep ...`` runs it on its own.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _cmd_sweep(args: argparse.Namespace) -> int:
    from agents.sweeps import sweep

    sweep.require_ray()  # one line naming the install command when Ray is missing
    if not args.config and not args.resume:
        raise sweep.SweepError("--config SWEEP.yaml is required (configs/sweeps/*.yaml)")
    out = Path(args.out) if args.out else None
    spec = sweep.load_sweep(args.config) if args.config else None
    if out is None:
        if spec is None:
            raise sweep.SweepError("--resume needs --out SWEEP_DIR (or --config to derive it)")
        out = Path("runs") / "sweeps" / spec.name
    if not args.resume and out.exists() and any(out.iterdir()):
        raise sweep.SweepError(
            f"sweep folder {out} already exists; pass --resume to continue it or choose another --out"
        )
    if args.resume:
        saved = out / sweep.SPEC_FILE
        if not saved.is_file():
            raise sweep.SweepError(f"cannot resume: {saved} not found (is {out} a sweep folder?)")
        started = sweep.load_sweep(saved)
        if spec is not None and spec.to_dict() != started.to_dict():
            raise sweep.SweepError(
                f"{args.config} differs from the sweep this folder started with ({saved}); "
                "resume without --config, or start a new sweep with another --out"
            )
        spec = started
    address = args.address or os.environ.get("RAY_ADDRESS") or None
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    print(f"sweep {spec.name}: {spec.n_trials} trials on {where} -> {out}", flush=True)
    outcome = sweep.run_sweep(spec, out, storage=args.storage, address=address, resume=args.resume)
    print()
    print(outcome.markdown)
    print()
    print(
        f"tables       {outcome.paths['table']}  {outcome.paths['summary']}  {outcome.paths['trials']}"
    )
    print(f"run folders  {out / 'runs'}/  (megapod compare {out / 'runs'}/*)")
    print(f"tensorboard  tensorboard --logdir {out / 'runs'}")
    print(f"ray tune     {outcome.experiment_path}")
    if outcome.unfinished:
        print(
            f"\n{outcome.unfinished} trial(s) did not finish; continue with: megapod sweep --out {out} --resume",
            file=sys.stderr,
        )
    elif outcome.errors:
        print(
            f"\n{outcome.errors} trial(s) failed (see trials.csv); retry them with: "
            f"megapod sweep --out {out} --resume",
            file=sys.stderr,
        )
    return outcome.exit_code


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sweep`` to the ``megapod`` subcommands."""
    p = subparsers.add_parser(
        "sweep",
        help="a Ray Tune sweep of training runs (algorithms x scenarios x seeds x hyperparameters)",
        description=(
            "Run every trial of a sweep file through the same code as 'megapod train', on this "
            "machine (default) or a Ray cluster, then write an aggregated Markdown + CSV table. "
            'Needs Ray: pip install "megapod-gym[ray]".'
        ),
    )
    p.add_argument("--config", default=None, help="sweep file (configs/sweeps/*.yaml)")
    p.add_argument(
        "--address",
        default=None,
        help="join a Ray cluster: auto, HOST:6379 or ray://HOST:10001 (default: $RAY_ADDRESS, "
        "else start Ray on this machine)",
    )
    p.add_argument(
        "--storage",
        default=None,
        help="where Ray Tune keeps trial checkpoints and experiment state: a path or a URI "
        "(s3://, gs://); on a multi-node cluster it must be shared by every node "
        "(default: OUT/tune)",
    )
    p.add_argument(
        "--out", default=None, help="sweep folder (default runs/sweeps/NAME; never overwritten)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in --out: finished trials are kept, interrupted and failed ones "
        "resume from their last checkpoint",
    )
    p.set_defaults(func=_cmd_sweep)


def main(argv: Sequence[str] | None = None) -> int:
    from megapod_gym.config import ConfigError

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(prog="megapod")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"megapod {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
