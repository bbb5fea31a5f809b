"""Environment throughput on this machine, with Gymnasium's CartPole-v1 measured in the same run as
the reference for the machine's speed.

    python experiments/bench_throughput.py            # full table (~3-5 min)
    python experiments/bench_throughput.py --quick    # fewer steps, for a smoke test

Rows: the single env through ``gym.make`` (random actions, resets included), Gymnasium's
SyncVectorEnv / AsyncVectorEnv of it at N = 8, the native vector env at N = 1, 64, 1024, 4096, and
PPO training throughput (``megapod train``'s code path) with the native vector env vs
SubprocVecEnv. Targets from the issue: single env >= 20,000 steps/s and >= 15 % of CartPole's single
env; native vector env >= 1,000,000 env-steps/s and >= 8 % of CartPole's vector env at N = 1024.
Random actions are drawn before timing for every env alike, so the sampler's cost is not counted.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import megapod_gym  # noqa: E402,F401
from megapod_gym.envs.vector_env import MegapodVectorEnv  # noqa: E402

ENV_ID = "megapod_gym/MegapodSite-v0"


def time_single(env: gym.Env, steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    space = env.action_space
    actions = (
        rng.uniform(space.low, space.high, (steps, *space.shape)).astype(space.dtype)
        if isinstance(space, gym.spaces.Box)
        else rng.integers(0, space.n, steps)
    )
    env.reset(seed=seed)
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t0)


def time_vector(venv: gym.vector.VectorEnv, steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    space = venv.action_space
    if isinstance(space, gym.spaces.Box):
        actions = rng.uniform(space.low, space.high, (min(steps, 64), *space.shape)).astype(
            space.dtype
        )
    else:
        actions = rng.integers(0, 2, (min(steps, 64), venv.num_envs))
    venv.reset(seed=seed)
    t0 = time.perf_counter()
    for i in range(steps):
        venv.step(actions[i % len(actions)])
    return steps * venv.num_envs / (time.perf_counter() - t0)


def memory_per_site(n: int) -> float:
    venv = MegapodVectorEnv(num_envs=n, info_keys=())
    venv.reset(seed=0)
    sim = venv.sim
    total = sum(v.nbytes for v in vars(sim).values() if isinstance(v, np.ndarray))
    total += sum(v.nbytes for v in vars(sim.params).values() if isinstance(v, np.ndarray))
    return total / n


def ppo_throughput(vec_env: str, n_envs: int, steps: int) -> float:
    from agents.training.config import algo_class, parse_train_config
    from agents.training.train import make_train_env

    cfg = parse_train_config(
        {
            "algo": "ppo",
            "n_envs": n_envs,
            "vec_env": vec_env,
            "n_steps": 288,
            "batch_size": 2304,
            "n_epochs": 5,
            "policy_kwargs": {"net_arch": [64, 64]},
        },
        "bench",
    )
    env = make_train_env(cfg)
    model = algo_class("ppo")("MlpPolicy", env, device="cpu", seed=0, **cfg.algo_kwargs())
    model.learn(n_envs * 288)  # warm-up (compilation, process start)
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="short runs (smoke test; numbers are noisier)"
    )
    args = parser.parse_args()
    k = 0.1 if args.quick else 1.0
    import torch

    torch.set_num_threads(1)

    rows: list[tuple[str, float, str]] = []
    # warm-up: compile / load the kernels
    time_single(gym.make(ENV_ID), 300)
    cart_single = time_single(gym.make("CartPole-v1"), int(20_000 * k))
    mega_single = time_single(gym.make(ENV_ID), int(20_000 * k))
    rows.append(("CartPole-v1 single env (gym.make)", cart_single, "reference"))
    rows.append(
        (
            "megapod single env (gym.make)",
            mega_single,
            f"{100 * mega_single / cart_single:.0f} % of CartPole; target >= 20,000/s and >= 15 %",
        )
    )
    for mode, cls in (("sync", gym.vector.SyncVectorEnv), ("async", gym.vector.AsyncVectorEnv)):
        venv = cls([lambda: gym.make(ENV_ID) for _ in range(8)])
        rate = time_vector(venv, int(1500 * k))
        venv.close()
        rows.append(
            (
                f"megapod {mode.capitalize()}VectorEnv N=8",
                rate,
                f"{100 * rate / cart_single:.0f} % of CartPole single",
            )
        )
    cart_vec = time_vector(
        gym.make_vec("CartPole-v1", num_envs=1024, vectorization_mode="vector_entry_point"),
        int(2000 * k),
    )
    rows.append(("CartPole-v1 native vector env N=1024", cart_vec, "reference"))
    for n in (1, 64, 1024, 4096):
        venv = MegapodVectorEnv(num_envs=n)
        steps = max(int((20_000 if n == 1 else 300_000 / n + 50) * k), 20)
        rate = time_vector(venv, steps)
        note = f"{100 * rate / cart_vec:.1f} % of CartPole N=1024"
        if n == 1024:
            note += "; target >= 1,000,000/s and >= 8 %"
        rows.append((f"megapod native vector env N={n}", rate, note))
        venv_lean = MegapodVectorEnv(num_envs=n, info_keys=())
        rate = time_vector(venv_lean, steps)
        rows.append(
            (
                f"megapod native vector env N={n}, info_keys=()",
                rate,
                f"{100 * rate / cart_vec:.1f} % of CartPole N=1024",
            )
        )
    ppo_steps = int(16 * 288 * (8 if not args.quick else 1))
    native = ppo_throughput("native", 16, ppo_steps)
    subproc = ppo_throughput("subproc", 16, ppo_steps)
    rows.append(
        (
            "PPO training, native vector env (16 sites)",
            native,
            f"{native / subproc:.1f}x SubprocVecEnv",
        )
    )
    rows.append(("PPO training, SubprocVecEnv (16 sites)", subproc, "reference"))

    print("| measurement | env-steps/s | note |\n|---|---:|---|")
    for name, rate, note in rows:
        print(f"| {name} | {rate:,.0f} | {note} |")
    print(f"\nmemory per site (native vector env, N=4096): {memory_per_site(4096) / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
