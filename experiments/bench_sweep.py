"""Wall time of a local Ray Tune sweep versus the same trials run one after another.

The sweep is ``configs/sweeps/ppo-smoke.yaml`` widened to 4 trials (2 learning rates x 2 seeds) at
``--timesteps`` env steps each. The sequential run trains the very configs the sweep's trials
saved (``OUT/runs/*/config.yaml``) with ``agents.train.train`` in this process, so both columns
do the same work; the difference is Ray's start-up and scheduling cost against running 2 trials
at a time on 2 cores.

    python experiments/bench_sweep.py                    # 4 trials x 16,384 steps
    python experiments/bench_sweep.py --timesteps 256    # the fixed-overhead end
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=16_384, help="env steps per trial")
    parser.add_argument("--keep", default=None, help="keep the sweep folder here")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from agents.sweeps.sweep import parse_sweep, run_sweep
    from agents.training.config import parse_train_config
    from agents.training.train import train

    data = yaml.safe_load((REPO / "configs/sweeps/ppo-smoke.yaml").read_text())
    data["name"] = "bench-sweep"
    data["seeds"] = 2
    data["base"]["n_timesteps"] = args.timesteps
    data["base"]["config"] = str(REPO / data["base"]["config"])
    spec = parse_sweep(data, "bench-sweep")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    out = work / "sweep"

    t0 = time.perf_counter()
    outcome = run_sweep(spec, out, verbose=0)
    sweep_s = time.perf_counter() - t0
    if outcome.exit_code != 0:
        print(f"sweep failed (exit {outcome.exit_code}); see {out}", file=sys.stderr)
        return 1

    configs = sorted((out / "runs").glob("*/config.yaml"))
    t0 = time.perf_counter()
    for i, path in enumerate(configs):
        cfg = parse_train_config(yaml.safe_load(path.read_text()), str(path))
        train(cfg, work / f"sequential-{i}", progress=False, final_benchmark=spec.final_benchmark)
    sequential_s = time.perf_counter() - t0

    print(f"| {len(configs)} PPO trials x {args.timesteps:,} steps | wall time, s |")
    print("|---|---:|")
    print(f"| Ray Tune sweep (local Ray, {os.cpu_count()} CPUs, 1 CPU/trial) | {sweep_s:.1f} |")
    print(f"| same trials one after another (one process) | {sequential_s:.1f} |")
    print(f"| sweep / sequential | {sweep_s / sequential_s:.2f} |")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
