"""Steps per second of the fleet environments (3, 20 and 100 sites) and of the single-site env,
measured in the same run.

The 100-site fleet is ``fleet-20site`` with every site entry's ``count`` multiplied by 5. Each row
times full episodes of random actions through the centralized Gymnasium env (observation encoding,
action decoding, job dispatch and the site kernel) after a warm-up episode; "site-steps/s" =
fleet steps/s x K.

    python experiments/bench_fleet.py            # 3 episodes per fleet
    python experiments/bench_fleet.py --episodes 1
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _time_env(env, episodes: int, seed: int = 0) -> tuple[float, int]:
    rng = np.random.default_rng(seed)
    shape = env.action_space.shape
    env.reset(seed=seed)
    steps = 0
    t0 = time.perf_counter()
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, shape).astype(np.float32))
            steps += 1
            done = term or trunc
    return time.perf_counter() - t0, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3)
    args = parser.parse_args(argv)

    import gymnasium as gym

    import megapod_gym  # noqa: F401
    from megapod_gym.config.fleet import load_fleet
    from megapod_gym.envs.fleet_env import MegapodFleetEnv

    big = load_fleet("fleet-20site")
    sites = [s.model_copy(update={"count": s.count * 5}) for s in big.sites]
    fleet100 = big.model_copy(update={"name": "fleet-100site", "sites": tuple(sites)})

    rows = []
    single = gym.make("megapod_gym/MegapodSite-v0")
    _time_env(single, 1)
    sec, steps = _time_env(single, args.episodes)
    rows.append(("single site (MegapodSite-v0)", 1, steps / sec, steps / sec))
    for fleet in ("tri-tz-3site", "fleet-20site", fleet100):
        env = MegapodFleetEnv(fleet)
        _time_env(env, 1)  # warm-up (numba compile, caches)
        sec, steps = _time_env(env, args.episodes)
        rows.append((env.fleet_config.name, env.n_sites, steps / sec, steps / sec * env.n_sites))
    print("| env | sites K | fleet steps/s | site-steps/s | site-steps/s vs single env |")
    print("|---|---:|---:|---:|---:|")
    base = rows[0][3]
    for name, k, sps, site_sps in rows:
        print(f"| {name} | {k} | {sps:,.0f} | {site_sps:,.0f} | {site_sps / base:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
