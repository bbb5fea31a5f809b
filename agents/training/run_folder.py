"""Run-folder files shared by training, its callbacks and sweeps: checkpoints and saved models."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from agents.policies.trained import NORM_FILE, ObsNormalizer, TrainedPolicy

CKPT_RE = re.compile(r"model_(\d+)_steps\.zip$")


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Every complete checkpoint ``(steps, model path)``, newest first. A checkpoint's model file
    is renamed into place last, after its statistics and buffer, so its presence marks a complete
    checkpoint."""
    found = [
        (int(m.group(1)), p)
        for p in folder.glob("model_*_steps.zip")
        if (m := CKPT_RE.search(p.name))
    ]
    return sorted(found, reverse=True)


def latest_checkpoint(folder: Path) -> tuple[int, Path] | None:
    found = checkpoints(folder)
    return found[0] if found else None


def save_atomically(write: Any, path: Path) -> None:
    """``write(tmp)`` to a temporary name beside ``path``, then rename it into place: a reader (or
    a resume after a crash) sees the old file or the complete new one, never a truncated one."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_model(model: Any, folder: Path) -> None:
    """model.zip + vecnormalize.pkl into ``folder``."""
    from stable_baselines3.common.vec_env import VecNormalize

    folder.mkdir(parents=True, exist_ok=True)
    env = model.get_env()
    if isinstance(env, VecNormalize):
        save_atomically(lambda p: env.save(str(p)), folder / NORM_FILE)
    save_atomically(model.save, folder / "model.zip")


def current_policy(model: Any, name: str = "trained") -> TrainedPolicy:
    """The model as a Policy, with a frozen copy of the training normalization statistics."""
    from stable_baselines3.common.vec_env import VecNormalize

    env = model.get_env()
    return TrainedPolicy(
        model, ObsNormalizer.from_vecnormalize(env) if isinstance(env, VecNormalize) else None, name
    )
