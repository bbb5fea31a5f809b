"""Decision latency of the exported-policy controller runtime (onnxruntime, no torch).

    python experiments/bench_controller_latency.py                      # PPO + SAC architectures
    python experiments/bench_controller_latency.py --policy policy.onnx # an existing export
    python experiments/bench_controller_latency.py --quick              # fewer calls

Without ``--policy`` the script builds untrained models with the network sizes of
``configs/train/{ppo,sac}.yaml`` (PPO 128x128 tanh, SAC 256x256 relu; the weights do not change
the latency), exports them with ``agents.export.export_policy`` into a temporary folder and
times them. Rows per policy:

* ``decide(dict)`` — a full decision at batch 1 from a measurement mapping: validation, the
  shared encoder, onnxruntime, the shared decoder and the dispatch safety layer;
* ``decide(list of 64)`` — 64 sites in one call (one graph run, per-site dispatch);
* ``of which the ONNX graph`` — ``controller.act`` (onnxruntime alone) at batch 1 and 64;
* ``SB3 predict (torch)`` — ``normalize + model.predict`` at batch 1, for comparison.

Aim (issue): well under 1 ms per decision at batch 1. Timings are the median of 7 repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def per_call_us(fn: Callable[[], Any], calls: int, repeats: int = 7) -> tuple[float, float]:
    """Median over ``repeats`` of the mean (wall, CPU) time of ``calls`` calls, in microseconds.

    The CPU time of this process is shown too: on a busy machine the wall time also counts
    the time other processes hold the CPU."""
    for _ in range(max(calls // 10, 20)):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            fn()
        wall.append((time.perf_counter() - t0) / calls * 1e6)
        cpu.append((time.process_time() - c0) / calls * 1e6)
    return statistics.median(wall), statistics.median(cpu)


def build_untrained_run(algo: str, folder: Path) -> Path:
    """A run folder (best/model.zip + vecnormalize.pkl, config.yaml, scenario.yaml, meta.json)
    holding an untrained model with the architecture of configs/train/<algo>.yaml."""
    import json

    import torch
    import yaml

    from agents.training.config import algo_class, load_train_config
    from agents.training.train import make_train_env, save_model
    from megapod_gym.config import load_scenario

    torch.set_num_threads(1)
    cfg = load_train_config(REPO / "configs" / "train" / f"{algo}.yaml")
    env = make_train_env(cfg)
    env.reset()
    for _ in range(50):  # a few steps so the normalization statistics are not trivial
        env.step(np.stack([env.action_space.sample() for _ in range(env.num_envs)]))
    kwargs = {
        k: v for k, v in cfg.algo_kwargs().items() if k not in ("buffer_size", "learning_starts")
    }
    if "buffer_size" in cfg.hyperparams:
        kwargs["buffer_size"] = 1000
    model = algo_class(algo)(cfg.policy, env, device="cpu", seed=0, **kwargs)
    run = folder / f"{algo}-untrained"
    save_model(model, run / "best")
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    scenario = load_scenario(cfg.scenario, cfg.config_overrides)
    (run / "scenario.yaml").write_text(yaml.safe_dump(scenario.model_dump(mode="json")))
    (run / "meta.json").write_text(json.dumps({"git_revision": "benchmark", "seed": 0}))
    env.close()
    return run


def sample_measurements(scenario: Any, n: int) -> list[dict[str, float]]:
    """Real measurements along one held-out day of the scenario (cars, prices, SoC vary)."""
    from megapod_gym.envs.site_env import MegapodSiteEnv

    env = MegapodSiteEnv(scenario)
    env.reset(seed=1_000_000)
    rows = []
    rng = np.random.default_rng(0)
    while len(rows) < n:
        rows.append({k: float(v[0]) for k, v in env.sim.measurements().items()})
        _, _, _, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        if trunc:
            env.reset(seed=1_000_001)
    return rows


def bench_policy(
    onnx_path: Path, calls: int, run_dir: Path | None
) -> list[tuple[str, tuple[float, float]]]:
    from megapod_gym.runtime import PolicyController

    controller = PolicyController.load(onnx_path)
    scenario = run_dir / "scenario.yaml" if run_dir else None
    rows = sample_measurements(scenario, 256)
    batch64 = rows[:64]
    it = iter(range(10**12))

    def one() -> None:
        controller.decide(rows[next(it) % len(rows)])

    results = [("decide(dict), batch 1", per_call_us(one, calls))]
    many = max(calls // 64, 20)
    wall, cpu = per_call_us(lambda: controller.decide(batch64), many)
    results.append(("decide(list of 64), per decision", (wall / 64, cpu / 64)))
    encoder = controller.encoder
    obs1 = encoder.encode(encoder.from_mapping(rows[0])[None])
    obs64 = encoder.encode(np.stack([encoder.from_mapping(r) for r in batch64]))
    graph1 = per_call_us(lambda: controller.act(obs1), calls)
    results.append(("  of which the ONNX graph (act), batch 1", graph1))
    wall, cpu = per_call_us(lambda: controller.act(obs64), many)
    results.append(
        ("  of which the ONNX graph (act), batch 64, per decision", (wall / 64, cpu / 64))
    )
    if run_dir is not None:
        from agents.policies.trained import load_trained_policy

        policy = load_trained_policy(run_dir)
        torch_us = per_call_us(lambda: policy.act(obs1), max(calls // 4, 50))
        results.append(("SB3 predict (torch), batch 1, policy only", torch_us))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", type=Path, default=None, help="an exported policy.onnx")
    parser.add_argument("--run", type=Path, default=None, help="its run folder (SB3 comparison)")
    parser.add_argument("--algos", nargs="+", default=["ppo", "sac"], help="architectures to build")
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    args = parser.parse_args()
    calls = 500 if args.quick else 5000

    import onnxruntime

    targets: list[tuple[str, Path, Path | None]] = []
    tmp = tempfile.TemporaryDirectory(prefix="megapod-latency-")
    if args.policy is not None:
        targets.append((args.policy.name, args.policy, args.run))
    else:
        from agents.export.onnx import export_policy

        for algo in args.algos:
            run = build_untrained_run(algo, Path(tmp.name))
            onnx_path = export_policy(run, Path(tmp.name) / f"{algo}.onnx")
            targets.append((f"{algo} (configs/train/{algo}.yaml net)", onnx_path, run))

    load = os.getloadavg()[0]
    print(
        f"onnxruntime {onnxruntime.__version__}, 1 intra-op thread, {os.cpu_count()} CPUs, "
        f"load average {load:.1f}\n"
    )
    print("| policy | measurement | µs per decision (wall) | decisions / s | µs (CPU) |")
    print("|---|---|---:|---:|---:|")
    for label, path, run in targets:
        for name, (wall, cpu) in bench_policy(path, calls, run):
            print(f"| {label} | {name} | {wall:,.1f} | {1e6 / wall:,.0f} | {cpu:,.1f} |")
    tmp.cleanup()


if __name__ == "__main__":
    main()
