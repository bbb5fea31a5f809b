"""Where an autoreset of many sites spends its time: trace sampling (split into the per-seed random
draws and the batch assembly where the sampler has them) and loading the traces into the simulator,
per site, next to the step time of one day, in CPU seconds of this process (robust to other load).

    python experiments/profile_reset.py [--sites 1024]          # prints a Markdown table

Run it from another checkout (``PYTHONPATH=<checkout> python experiments/profile_reset.py``) to
compare revisions; the draw/assembly split is shown where the sampler has ``_draw``/``_assemble``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from megapod_gym.config import load_scenario
from megapod_gym.scenario.trace import TraceSampler
from megapod_gym.sim.simulator import SiteSimulator


def cpu_per_site(fn, n_sites: int, repeats: int = 3) -> float:
    """Best of ``repeats`` CPU-time runs of ``fn(k)``, in microseconds per site."""
    best = float("inf")
    for k in range(repeats):
        t0 = time.process_time()
        fn(k)
        best = min(best, time.process_time() - t0)
    return best / n_sites * 1e6


def profile(name: str, n: int) -> str:
    """One Markdown row for scenario ``name`` at ``n`` sites."""
    cfg = load_scenario(name)
    sampler = TraceSampler(cfg)
    sampler.sample(range(4 * n))  # warm: compile, build the per-day parts
    seeds = [range((k + 5) * n, (k + 6) * n) for k in range(3)]
    sample = cpu_per_site(lambda k: sampler.sample(seeds[k]), n)
    draws = assembly = float("nan")
    if hasattr(sampler, "_draw") and hasattr(sampler, "_assemble"):
        rows: dict[int, list] = {}
        draws = cpu_per_site(
            lambda k: rows.__setitem__(k, [sampler._draw(s, None) for s in seeds[k]]), n
        )
        assembly = cpu_per_site(lambda k: sampler._assemble(rows[k]), n)
    trace = sampler.sample(seeds[0])
    sim = SiteSimulator(cfg, batch_size=n)
    sim.reset(trace)
    reset = cpu_per_site(lambda k: sim.reset(trace), n)
    act = np.zeros((n, 3))
    act[:, 0] = 1.0
    sim.step_actions(act)  # warm: compile the step
    sim.reset(trace)
    steps = 50
    day = cpu_per_site(lambda k: [sim.step_actions(act) for _ in range(steps)], n, 1)
    day *= cfg.episode.n_steps / steps
    total = sample + reset
    return (
        f"| {name} | {sample:.0f} | {draws:.0f} | {assembly:.0f} | {reset:.0f} | {total:.0f} | "
        f"{day:.0f} | {100 * total / day:.0f} % |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sites", type=int, default=1024)
    ap.add_argument("--scenarios", nargs="+", default=["urban-12stall-bev", "caiso-rt-spring"])
    args = ap.parse_args()
    print(
        "| scenario | sample us/site | of which draws | of which assembly | sim.reset us/site "
        "| reset total us/site | one day of steps us/site | reset / day |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.scenarios:
        print(profile(name, args.sites))


if __name__ == "__main__":
    main()
