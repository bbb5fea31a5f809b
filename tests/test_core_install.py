"""The core install (no extras) in a fresh venv: no torch, yet the env, a rule baseline, MPC and
the controller runtime with an exported ONNX policy all work, and a command that needs an extra
says which one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import importlib.util, json, sys
import numpy as np
assert importlib.util.find_spec("torch") is None, "torch must not be in the core install"
assert importlib.util.find_spec("stable_baselines3") is None
import gymnasium as gym
import megapod_gym
from agents.evaluation.rollout import run_policy
from agents.policies.registry import make_policy
from megapod_gym.config import load_scenario
from megapod_gym.runtime import PolicyController

env = gym.make("megapod_gym/MegapodSite-v0")
obs, info = env.reset(seed=0)
obs, reward, *_ = env.step(env.action_space.sample())
cfg = load_scenario(None, {"episode.days": 0.25})
greedy = run_policy(make_policy("greedy"), cfg, [1_000_000]).rows[0]["profit_usd"]
mpc = run_policy(make_policy("mpc"), cfg, [1_000_000]).rows[0]["profit_usd"]
controller = PolicyController.load(sys.argv[1])
env.reset(seed=1)
setpoints = controller.decide({k: float(v[0]) for k, v in env.unwrapped.sim.measurements().items()})
print(json.dumps({"greedy": greedy, "mpc": mpc, "battery_kw": float(setpoints["battery_kw"])}))
"""


def _write_policy(path: Path) -> Path:
    spec = importlib.util.spec_from_file_location(
        "controller_tests", REPO / "tests" / "runtime" / "test_controller.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from megapod_gym.config import load_scenario

    return module.write_policy(path, load_scenario(None))


def _site_packages_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


def test_core_install_without_torch(tmp_path: Path) -> None:
    pytest.importorskip("onnx")  # to write the test policy in this (full) environment
    policy = _write_policy(tmp_path / "policy.onnx")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
        check=True,
        timeout=900,
    )
    out = subprocess.run(
        [str(py), "-c", SCRIPT, str(policy)], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    assert result["mpc"] >= result["greedy"] - 1.0
    # a command that needs the `train` extra names it
    cli = subprocess.run(
        [
            str(env_dir / "bin" / "megapod"),
            "train",
            "--config",
            str(REPO / "configs/train/ppo.yaml"),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 2
    assert "megapod-gym[train]" in cli.stderr
    site = next((env_dir / "lib").glob("python*/site-packages"))
    print(f"core install: {_site_packages_mb(site):.0f} MiB in {site}", file=sys.stderr)
