"""Environment throughput on this machine, resets included, with Gymnasium's CartPole-v1 measured in
the same run as the reference for the machine's speed.

    python experiments/bench_throughput.py                 # full table (~5-8 min on 2 cores)
    python experiments/bench_throughput.py --quick         # shorter runs, for a smoke test
    python experiments/bench_throughput.py --out experiments/results_throughput_<date>

Every loop draws random actions and resets finished episodes, as training does:

* single env: Gymnasium's ``benchmark_step`` (``gym.make``, ``action_space.sample()``, reset at the
  episode's end) for CartPole-v1 and megapod; env creation with Gymnasium's ``benchmark_init``;
* native vector env: ``MegapodVectorEnv`` stepped over two full days (so every sub-env autoresets
  once) against CartPole's own vector env (``vector_entry_point``, autoreset) at the same N;
* the autoreset share: the extra time of the step that starts new days for all N sub-envs, as a
  share of the time of the day's steps;
* scaling: N = 64 ... 8,192 sites on 1 and 2 numba threads;
* warm start: seconds from ``import`` to the first step in a fresh process, with an empty numba
  cache (a fresh install) and with the cache filled;
* PPO training throughput (``megapod train``'s code path), native vector env vs SubprocVecEnv.

Targets (tracker issue on throughput): single env >= 0.5 x CartPole-v1; native vector env at
N = 1,024 >= 1,000,000 env-steps/s including autoresets and >= 0.12 x CartPole's vector env;
autoreset <= 10 % of the step time; env creation >= 1,000 per second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium.utils.performance import benchmark_init, benchmark_step  # noqa: E402

import megapod_gym  # noqa: E402,F401
from megapod_gym.envs.vector_env import MegapodVectorEnv  # noqa: E402

ENV_ID = "megapod_gym/MegapodSite-v0"
DAY_STEPS = 288


def vector_rate(venv: gym.vector.VectorEnv, steps: int, seed: int = 0) -> tuple[float, np.ndarray]:
    """(env-steps per second over ``steps`` steps with autoresets, the wall time of each step)."""
    rng = np.random.default_rng(seed)
    space = venv.single_action_space
    n = venv.num_envs
    if isinstance(space, gym.spaces.Box):
        actions = rng.uniform(space.low, space.high, (16, n, *space.shape)).astype(space.dtype)
    else:
        actions = rng.integers(0, space.n, (16, n))
    venv.reset(seed=seed)
    times = np.empty(steps)
    t_start = time.perf_counter()
    for i in range(steps):
        t0 = time.perf_counter()
        venv.step(actions[i % 16])
        times[i] = time.perf_counter() - t0
    return steps * n / (time.perf_counter() - t_start), times


def autoreset_share(n: int, threads: int) -> tuple[float, float]:
    """(seconds the autoreset adds to the step that starts new days, that as a share of the time of
    one day's steps) for N sub-envs whose days all end together (fixed-length episodes)."""
    numba.set_num_threads(threads)
    venv = MegapodVectorEnv(num_envs=n)
    _, times = vector_rate(venv, 2 * DAY_STEPS + 2)
    reset_steps = [DAY_STEPS, 2 * DAY_STEPS + 1]  # NEXT_STEP mode: the step after the last
    regular = np.delete(times, reset_steps)
    extra = float(np.mean(times[reset_steps]) - np.median(regular))
    return extra, extra / float(np.median(regular) * DAY_STEPS)


def first_step_seconds(cache_dir: str | None) -> float:
    """Seconds from a fresh interpreter's ``import`` to the first env step (subprocess)."""
    code = (
        "import time; t = time.perf_counter()\n"
        "import gymnasium as gym, megapod_gym\n"
        f"e = gym.make('{ENV_ID}'); e.reset(seed=0); e.step(e.action_space.sample())\n"
        "print(time.perf_counter() - t)\n"
    )
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def ppo_throughput(vec_env: str, n_envs: int, steps: int) -> float:
    from agents.training.config import algo_class, parse_train_config
    from agents.training.train import make_train_env

    cfg = parse_train_config(
        {
            "algo": "ppo",
            "n_envs": n_envs,
            "vec_env": vec_env,
            "n_steps": DAY_STEPS,
            "batch_size": 2304,
            "n_epochs": 5,
            "policy_kwargs": {"net_arch": [64, 64]},
        },
        "bench",
    )
    env = make_train_env(cfg)
    model = algo_class("ppo")("MlpPolicy", env, device="cpu", seed=0, **cfg.algo_kwargs())
    model.learn(n_envs * DAY_STEPS)  # warm-up (compilation, process start)
    t0 = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (numbers are noisier)")
    parser.add_argument("--out", type=Path, default=None, help="write <out>.md (dated result)")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 5.0
    import torch

    torch.set_num_threads(1)
    max_threads = numba.config.NUMBA_NUM_THREADS
    rows: list[tuple[str, str, str]] = []

    def add(name: str, value: str, note: str = "") -> None:
        rows.append((name, value, note))
        print(f"{name}: {value} {note}", file=sys.stderr)

    # --- single env
    benchmark_step(gym.make(ENV_ID), 0.5, seed=0)  # warm-up: load or compile the kernels
    cart = benchmark_step(gym.make("CartPole-v1"), seconds, seed=0)
    mega = benchmark_step(gym.make(ENV_ID), seconds, seed=0)
    add("CartPole-v1 single env, benchmark_step", f"{cart:,.0f} steps/s", "reference")
    add(
        "megapod single env, benchmark_step",
        f"{mega:,.0f} steps/s",
        f"{mega / cart:.2f} x CartPole (target >= 0.5)",
    )
    cart_init = benchmark_init(lambda: gym.make("CartPole-v1"), seconds, seed=0)
    mega_init = benchmark_init(lambda: gym.make(ENV_ID), seconds, seed=0)
    add("CartPole-v1 env creation, benchmark_init", f"{cart_init:,.0f} envs/s", "reference")
    add(
        "megapod env creation (default scenario), benchmark_init",
        f"{mega_init:,.0f} envs/s",
        f"{mega_init / cart_init:.2f} x CartPole (target >= 1,000/s)",
    )

    # --- native vector env at N = 1024, resets included
    numba.set_num_threads(max_threads)
    day2 = 2 * DAY_STEPS + 2
    cart_vec, _ = vector_rate(
        gym.make_vec("CartPole-v1", num_envs=1024, vectorization_mode="vector_entry_point"),
        day2 if not args.quick else DAY_STEPS,
    )
    add("CartPole-v1 vector env N=1024 (autoreset)", f"{cart_vec:,.0f} env-steps/s", "reference")
    for threads in sorted({1, max_threads}):
        numba.set_num_threads(threads)
        rate, _ = vector_rate(MegapodVectorEnv(num_envs=1024), day2)
        add(
            f"megapod native vector env N=1024, {threads} thread(s), 2 days with autoreset",
            f"{rate:,.0f} env-steps/s",
            f"{rate / cart_vec:.3f} x CartPole (target >= 1,000,000/s and >= 0.12)",
        )
        extra, share = autoreset_share(1024, threads)
        add(
            f"autoreset of 1,024 sub-envs, {threads} thread(s)",
            f"{extra * 1e3:.0f} ms",
            f"{100 * share:.0f} % of a day's step time (target <= 10 %)",
        )

    # --- scaling
    scaling: list[tuple[int, int, float]] = []
    for n in (64, 256, 1024, 4096, 8192):
        for threads in sorted({1, max_threads}):
            numba.set_num_threads(threads)
            steps = DAY_STEPS + 2 if (args.quick or n >= 4096) else day2
            rate, _ = vector_rate(MegapodVectorEnv(num_envs=n, info_keys=()), steps)
            scaling.append((n, threads, rate))
            print(f"N={n} threads={threads}: {rate:,.0f}", file=sys.stderr)
    numba.set_num_threads(max_threads)

    # --- warm start
    with tempfile.TemporaryDirectory() as empty:
        cold = first_step_seconds(empty)
    warm = first_step_seconds(None)
    add("first step in a fresh process, empty numba cache", f"{cold:.1f} s", "a fresh install")
    add("first step in a fresh process, cached kernels", f"{warm:.1f} s", "every later run")

    # --- training
    ppo_steps = 16 * DAY_STEPS * (1 if args.quick else 8)
    native = ppo_throughput("native", 16, ppo_steps)
    subproc = ppo_throughput("subproc", 16, ppo_steps)
    add("PPO training, native vector env (16 sites)", f"{native:,.0f} env-steps/s",
        f"{native / subproc:.1f} x SubprocVecEnv")  # fmt: skip
    add("PPO training, SubprocVecEnv (16 sites)", f"{subproc:,.0f} env-steps/s", "reference")

    lines = [
        "| measurement | value | note |",
        "|---|---:|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "Native vector env scaling (``info_keys=()``, random actions, autoresets included; "
        "env-steps/s):",
        "",
        "| N | " + " | ".join(f"{t} thread(s)" for t in sorted({1, max_threads})) + " |",
        "|---:|" + "---:|" * len({1, max_threads}),
    ]
    for n in sorted({n for n, _, _ in scaling}):
        cells = [f"{r:,.0f}" for m, _, r in scaling if m == n]
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.out is not None:
        cpu = os.cpu_count()
        head = (
            f"# Environment throughput ({dt.date.today().isoformat()})\n\n"
            f"Command: `python experiments/bench_throughput.py"
            f"{' --quick' if args.quick else ''} --out {args.out}`  \n"
            f"Machine: {cpu} CPU cores, Python {sys.version.split()[0]}, numba "
            f"{numba.__version__}, gymnasium {gym.__version__}. Ratios compare runs of the same "
            "session on the same machine.\n\n"
        )
        args.out.with_suffix(".md").write_text(head + table + "\n")


if __name__ == "__main__":
    main()
