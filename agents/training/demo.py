"""``megapod demo``: the README's main job on the embedded default scenario.

Clones MPC from demonstrations on training days (with DAgger rounds), improves the clone by policy
search with common random numbers, fine-tunes it with PPO, then benchmarks the validation-selected
and the final model against every rule-based baseline, MPC, the oracle replay and the hindsight
optimum on 30 held-out test days, and writes the table, plots and TensorBoard logs into the run
folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from agents.training.config import parse_train_config
from agents.training.train import train

# The recommended recipe (same as configs/train/ppo-search-long.yaml; a test keeps them equal):
# behaviour cloning of MPC on 128 training days with two DAgger rounds, 120 iterations of policy
# search on the actor's output layer, then a short PPO fine-tuning with gamma = lambda = 1, the
# day's end as termination, a small trust region and a privileged critic. Its time on an idle
# 2-core machine is in experiments/results_demo_search-long_<date>.md (python
# experiments/demo_run.py).
DEMO_TIMESTEPS = 100_000
DEMO_CONFIG = {
    "algo": "ppo",
    "scenario": "urban-12stall-bev",
    "seed": 0,
    "n_envs": 8,
    "vec_env": "native",
    "day_end": "terminate",
    "privileged_critic": True,
    "policy": "MlpPolicy",
    "normalize": {"norm_obs": False, "norm_reward": True},
    "n_steps": 288,
    "batch_size": 1152,
    "n_epochs": 10,
    "gamma": 1.0,
    "gae_lambda": 1.0,
    "learning_rate": 1e-05,
    "clip_range": 0.05,
    "target_kl": 0.015,
    "ent_coef": 0.0,
    "policy_kwargs": {"net_arch": [256, 256], "activation_fn": "tanh", "log_std_init": -2.0},
    "pretrain": {
        "expert": "mpc",
        "n_days": 128,
        "noisy_frac": 0.5,
        "noise_std": 0.15,
        "epochs": 100,
        "dagger_rounds": 2,
        "dagger_days": 64,
        "dagger_epochs": 30,
        "critic_warmup_steps": 50000,
        "search": {
            "layers": "head",
            "iterations": 120,
            "directions": 16,
            "top": 8,
            "days": 64,
            "noise_std": 0.01,
            "step_size": 0.004,
            "select_every": 5,
        },
    },
    "eval": {"freq": 50000, "n_episodes": 30, "test_episodes": 30, "days": 1},
    "checkpoint_freq": 100000,
}


def run_demo(out: Path, total_timesteps: int | None = None, force: bool = False) -> str:
    """Train, compare, and return the one-screen summary (also written to ``out/summary.txt``)."""
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(
                f"{out} exists; pass --force to replace it or --out to choose another folder"
            )
        shutil.rmtree(out)
    cfg = parse_train_config(
        {**DEMO_CONFIG, "n_timesteps": total_timesteps or DEMO_TIMESTEPS}, "demo config"
    )
    train(cfg, out)
    return (out / "summary.txt").read_text()
