"""Trained stable-baselines3 models as :class:`~agents.policy.Policy` objects.

A run folder written by ``megapod train`` holds ``best/`` and ``final/`` (each ``model.zip`` +
``vecnormalize.pkl``). Observation normalization is applied here with the saved statistics —
the same formula and clipping as ``VecNormalize`` during training — and actions are
``model.predict(obs, deterministic=True)``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.policies.base import PolicyContext

if TYPE_CHECKING:
    from agents.policies.fleet_battery import ModelBatteryGlobalGreedy

MODEL_FILE = "model.zip"
NORM_FILE = "vecnormalize.pkl"


class ObsNormalizer:
    """Frozen copy of VecNormalize's observation statistics: clip((x - mean) / sqrt(var + eps))."""

    def __init__(self, mean: np.ndarray, var: np.ndarray, clip_obs: float, epsilon: float) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).copy()
        self.var = np.asarray(var, dtype=np.float64).copy()
        self.clip_obs = float(clip_obs)
        self.epsilon = float(epsilon)

    @staticmethod
    def from_vecnormalize(vn: Any) -> ObsNormalizer | None:
        if vn is None or not getattr(vn, "norm_obs", False):
            return None
        return ObsNormalizer(vn.obs_rms.mean, vn.obs_rms.var, vn.clip_obs, vn.epsilon)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        z = (np.asarray(obs, dtype=np.float64) - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(z, -self.clip_obs, self.clip_obs).astype(np.float32)


def actor_obs(model: Any, obs: np.ndarray) -> np.ndarray:
    """``obs`` zero-padded to the model's observation size when the model was trained with
    privileged critic features appended (:mod:`agents.training.asymmetric`): its actor reads only
    the leading env features, so the padding never changes an action."""
    n = int(model.observation_space.shape[0])
    obs = np.asarray(obs, dtype=np.float32)
    if obs.shape[-1] >= n:
        return obs
    pad = np.zeros(obs.shape[:-1] + (n - obs.shape[-1],), dtype=np.float32)
    return np.concatenate([obs, pad], axis=-1)


class TrainedPolicy:
    """A stable-baselines3 model (any algorithm, incl. RecurrentPPO) behind the Policy interface."""

    def __init__(self, model: Any, normalizer: ObsNormalizer | None, name: str = "trained") -> None:
        self.model = model
        self.normalizer = normalizer
        self.name = name
        self.recurrent = type(model).__name__ == "RecurrentPPO"
        self._state: Any = None
        self._starts: np.ndarray | None = None

    def reset(self, context: PolicyContext) -> None:
        self._state = None
        self._starts = np.ones(context.batch_size, dtype=bool)

    def act(self, obs: np.ndarray) -> np.ndarray:
        x = (
            self.normalizer(obs)
            if self.normalizer is not None
            else np.asarray(obs, dtype=np.float32)
        )
        x = actor_obs(self.model, x)
        if self.recurrent:
            starts = self._starts if self._starts is not None else np.ones(x.shape[0], dtype=bool)
            action, self._state = self.model.predict(
                x, state=self._state, episode_start=starts, deterministic=True
            )
            self._starts = np.zeros(x.shape[0], dtype=bool)
            return action
        action, _ = self.model.predict(x, deterministic=True)
        return action


def load_vecnormalize(path: Path) -> Any:
    """The pickled VecNormalize object (without its env), or None if the file is absent."""
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        return pickle.load(fh)  # noqa: S301 - our own run files


def resolve_model_path(path: str | Path) -> tuple[Path, Path]:
    """(model.zip, vecnormalize.pkl) for a run folder (best model preferred), a ``best``/``final``
    folder or a model file."""
    p = Path(path)
    if p.is_dir():
        for sub in (p / "best", p / "final", p):
            if (sub / MODEL_FILE).is_file():
                return sub / MODEL_FILE, sub / NORM_FILE
        raise FileNotFoundError(f"{p}: no {MODEL_FILE} in best/, final/ or the folder itself")
    if p.is_file():
        return p, p.with_name(NORM_FILE)
    raise FileNotFoundError(f"{p}: no such run folder or model file")


def run_config_of_model(model_path: Path) -> dict[str, Any]:
    """The training config (``config.yaml``) of the run a saved model belongs to: beside it or
    one folder up."""
    import yaml

    for folder in (model_path.parent, model_path.parent.parent):
        cfg = folder / "config.yaml"
        if cfg.is_file():
            return dict(yaml.safe_load(cfg.read_text()))
    raise FileNotFoundError(
        f"cannot find the training config of {model_path}: no config.yaml beside it or one "
        "folder up"
    )


def algo_of_model(model_path: Path) -> str:
    """The algorithm a saved model belongs to, read from the run's config.yaml."""
    return str(run_config_of_model(model_path)["algo"])


def load_trained_policy(
    path: str | Path, name: str | None = None
) -> TrainedPolicy | ModelBatteryGlobalGreedy:
    """Load a trained model (+ normalization statistics) from a run folder or model file: a
    :class:`TrainedPolicy`, or for a fleet run trained with ``fleet_action: battery`` the model
    inside :class:`~agents.policies.fleet_battery.ModelBatteryGlobalGreedy` (global-greedy with
    the model's battery actions)."""
    from agents.training.config import algo_class

    model_path, norm_path = resolve_model_path(path)
    run_config = run_config_of_model(model_path)
    model = algo_class(str(run_config["algo"])).load(model_path, device="cpu")
    policy = TrainedPolicy(
        model,
        ObsNormalizer.from_vecnormalize(load_vecnormalize(norm_path)),
        name or Path(path).name,
    )
    if run_config.get("fleet_action", "full") == "battery":
        from agents.policies.fleet_battery import ModelBatteryGlobalGreedy

        return ModelBatteryGlobalGreedy(policy, name=policy.name)
    return policy
