"""Run-folder files shared by training, its callbacks and sweeps: checkpoints and saved models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agents.policies.trained import NORM_FILE, ObsNormalizer, TrainedPolicy

CKPT_RE = re.compile(r"model_(\d+)_steps\.zip$")


def latest_checkpoint(folder: Path) -> tuple[int, Path] | None:
    found = [
        (int(m.group(1)), p)
        for p in folder.glob("model_*_steps.zip")
        if (m := CKPT_RE.search(p.name))
    ]
    return max(found) if found else None


def save_model(model: Any, folder: Path) -> None:
    """model.zip + vecnormalize.pkl into ``folder``."""
    from stable_baselines3.common.vec_env import VecNormalize

    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.zip")
    env = model.get_env()
    if isinstance(env, VecNormalize):
        env.save(str(folder / NORM_FILE))


def current_policy(model: Any, name: str = "trained") -> TrainedPolicy:
    """The model as a Policy, with a frozen copy of the training normalization statistics."""
    from stable_baselines3.common.vec_env import VecNormalize

    env = model.get_env()
    return TrainedPolicy(
        model, ObsNormalizer.from_vecnormalize(env) if isinstance(env, VecNormalize) else None, name
    )
