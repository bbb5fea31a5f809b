"""Time ``megapod demo`` end to end as a newcomer runs it, and record what it printed.

The demonstration cache is pointed at an empty temporary folder, so the run pays for its MPC
demonstrations as on a fresh clone (the numba kernels are compiled already if anything ran
before; the first-step compile costs ~5 s, see results_throughput_*). Writes
``experiments/results_demo_<date>.md``: the wall-clock time, the machine's CPU count and the
demo's comparison table (30 test days).

    python experiments/demo_run.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="result file (.md)")
    args = ap.parse_args()
    out = args.out or HERE / f"results_demo_{time.strftime('%Y-%m-%d')}.md"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MEGAPOD_CACHE": str(Path(tmp) / "cache")}
        run = Path(tmp) / "demo"
        t0 = time.time()
        subprocess.run(
            [sys.executable, "-m", "agents.cli", "demo", "--out", str(run)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.time() - t0
        summary = (run / "summary.txt").read_text()
    table = [line for line in summary.splitlines() if line.startswith("|")]
    head = [
        line
        for line in summary.splitlines()
        if line.startswith(("algorithm", "timesteps", "best eval", "beat rules", "vs MPC"))
    ]
    out.write_text(
        "\n".join(
            [
                f"# `megapod demo` end to end ({time.strftime('%Y-%m-%d')})",
                "",
                "Command: `python experiments/demo_run.py"
                + (f" --out {args.out}" if args.out else "")
                + "` (runs `megapod demo` with an empty demonstration cache).  ",
                f"Wall-clock: **{wall / 60:.1f} min** on {os.cpu_count()} CPU cores (demonstrations, "
                "cloning, DAgger, policy search, PPO, the final comparison on 30 test days).",
                "",
                "```text",
                *head,
                "```",
                "",
                *table,
                "",
            ]
        )
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
