"""Training configuration: one YAML per algorithm, in the shape of the RL Zoo's hyperparameter files.

Zoo keys (``n_envs``, ``n_timesteps``, ``policy``, ``normalize``, ``policy_kwargs``) and the
algorithm's own hyperparameters (``learning_rate``, ``n_steps``, ``batch_size``, ``gamma``, …) sit
at the top level, next to this project's keys (``algo``, ``scenario``, ``config_overrides``,
``seed``, ``vec_env``, ``eval``, ``checkpoint_freq``). Unknown keys and hyperparameters the
algorithm does not take are errors naming the key. ``learning_rate: lin_3e-4`` is a linear
schedule from 3e-4 to 0, as in the Zoo.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from agents.evaluation.rollout import MAX_DEMO_DAYS, TRAIN_SEED_LIMIT
from megapod_gym.config import DEFAULT_SCENARIO
from megapod_gym.config.loading import format_validation_error
from megapod_gym.config.yaml_reader import YamlConfigError, read_config_yaml

ALGOS: dict[str, tuple[str, str]] = {
    "ppo": ("stable_baselines3", "PPO"),
    "a2c": ("stable_baselines3", "A2C"),
    "sac": ("stable_baselines3", "SAC"),
    "td3": ("stable_baselines3", "TD3"),
    "recurrent_ppo": ("sb3_contrib", "RecurrentPPO"),
}
ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu", "gelu", "silu")


class TrainConfigError(ValueError):
    """A training config is invalid; the message names the key."""


def algo_class(algo: str) -> type:
    import importlib

    module, name = ALGOS[algo]
    return getattr(importlib.import_module(module), name)


class EvalSettings(BaseModel):
    """Evaluation, always on held-out seeds (>= 1,000,000).

    During training the model is scored every ``freq`` env steps on ``n_episodes`` *validation*
    days (seeds from 1,500,000) and the best one is kept in ``best/``; the final comparison runs
    the validation-selected and the final model on ``test_episodes`` *test* days (seeds from
    1,000,000), which selection never saw.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    freq: int = Field(10_000, ge=1)  # total env steps between evaluations
    n_episodes: int = Field(5, ge=1, le=200)  # validation days per evaluation
    test_episodes: int = Field(30, ge=1, le=1000)  # test days of the final comparison
    days: float = Field(1.0, gt=0.0, le=31.0)
    with_oracle: bool = True  # solve the hindsight optimum once so the normalized score is logged


class ArsSettings(BaseModel):
    """Augmented random search with common random numbers (see
    :mod:`agents.training.policy_search`).

    Each of ``iterations`` iterations plays 2 x ``directions`` perturbed parameter vectors
    (parameter noise ``noise_std``) on the same ``days`` training days and steps by ``step_size``
    along the ``top`` best directions (None: all); every ``select_every`` iterations the
    parameters are scored on the selection days and the best ones (the start included) are kept.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    iterations: int = Field(40, ge=1, le=10_000)
    directions: int = Field(16, ge=1, le=1024)
    top: int | None = Field(8, ge=1, le=1024)
    days: int = Field(48, ge=1, le=1024)
    noise_std: float = Field(0.01, gt=0.0, le=1.0)
    step_size: float = Field(0.004, gt=0.0, le=1.0)
    select_every: int = Field(5, ge=1, le=10_000)

    @model_validator(mode="after")
    def _top_fits(self) -> ArsSettings:
        if self.top is not None and self.top > self.directions:
            raise ValueError(
                f"search.top must be <= search.directions ({self.directions}) (got {self.top})"
            )
        return self


class SearchSettings(ArsSettings):
    """Policy search on the cloned actor after cloning and DAgger (:class:`ArsSettings`) on the
    actor's output layer (``layers: head``) or every actor parameter (``actor``)."""

    layers: Literal["head", "actor"] = "head"


class PretrainSettings(BaseModel):
    """Behaviour cloning from an expert before RL (see :mod:`agents.training.demonstrations`).

    The expert (``auto``: MPC or the tuned rule, whichever clone earns more on selection days;
    see :mod:`agents.training.pretrain`) runs on
    ``n_days`` training days, ``noisy_frac`` of them with its actions perturbed by Gaussian noise
    ``noise_std`` (labels stay clean); the actor is fitted by MSE; then the first
    ``critic_warmup_steps`` env steps of RL train the critic with the actor frozen.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    expert: str = "auto"
    n_days: int = Field(128, ge=1, le=3000)
    noisy_frac: float = Field(0.5, ge=0.0, le=1.0)
    noise_std: float = Field(0.15, ge=0.0, le=1.0)
    epochs: int = Field(30, ge=1, le=10_000)
    batch_size: int = Field(256, ge=1, le=1_000_000)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    # DAgger after cloning: rounds in which the clone drives fresh training days and the teacher
    # labels the states it visits (agents/training/pretrain.py); 0 = plain cloning
    dagger_rounds: int = Field(0, ge=0, le=20)
    dagger_days: int = Field(64, ge=1, le=1000)
    # epochs of each round's refit (it continues from the current weights); None: ``epochs``
    dagger_epochs: int | None = Field(None, ge=1, le=10_000)
    critic_warmup_steps: int = Field(50_000, ge=0)
    # learning rate while the actor is frozen (only the critic learns then); None: the run's own
    critic_warmup_lr: float | None = Field(3e-4, gt=0.0, le=1.0)
    # policy search on the clone after DAgger (agents/training/policy_search.py); None: none
    search: SearchSettings | None = None
    # sac / td3: fine-tune with TD3+BC's actor loss, imitation of the teacher's demonstrations
    # plus bc_alpha x the normalized Q term (agents/training/bc_regularized.py); None: plain
    bc_alpha: float | None = Field(None, gt=0.0, le=1000.0)

    @field_validator("expert")
    @classmethod
    def _expert(cls, v: str) -> str:
        from agents.policies.rules import BASELINES

        allowed = [
            "auto",
            "mpc",
            "hindsight-mpc",
            "tuned-rule",
            *[n for n in BASELINES if n != "random"],
        ]
        if v not in allowed:
            raise ValueError(f"expert must be one of {allowed} (got {v!r})")
        return v

    @model_validator(mode="after")
    def _days_fit(self) -> PretrainSettings:
        used = self.n_days + self.dagger_rounds * self.dagger_days
        if used > MAX_DEMO_DAYS:
            raise ValueError(
                f"n_days + dagger_rounds x dagger_days must be <= {MAX_DEMO_DAYS} training days "
                f"(got {used})"
            )
        return self


class TrainConfig(BaseModel):
    """A validated training run configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=False)
    algo: Literal["ppo", "a2c", "sac", "td3", "recurrent_ppo"]
    scenario: str = DEFAULT_SCENARIO
    config_overrides: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(0, ge=0, lt=TRAIN_SEED_LIMIT)
    n_timesteps: int = Field(100_000, ge=1, le=10**10)
    n_envs: int = Field(8, ge=1, le=4096)
    vec_env: Literal["native", "subproc", "dummy"] = "native"
    policy: str = "MlpPolicy"
    normalize: bool | dict[str, Any] = True
    policy_kwargs: dict[str, Any] = Field(default_factory=dict)
    hyperparams: dict[str, Any] = Field(default_factory=dict)
    eval: EvalSettings = EvalSettings()
    # Behaviour cloning from an expert before RL (None: train from scratch).
    pretrain: PretrainSettings | None = None
    # How the env's last step of an episode reaches the algorithm: "truncate" bootstraps the
    # critic's value of the final state (a time limit); "terminate" ends the return there, which
    # is how the score counts it (energy left in the battery at the end earns nothing).
    day_end: Literal["truncate", "terminate"] = "truncate"
    # PPO/A2C: the critic also sees privileged features of the realized day (never the actor,
    # never evaluation or export; see agents/training/asymmetric.py). Needs vec_env: native.
    privileged_critic: bool = False
    # Fleets only: "full" = the fleet env's whole action (compute, battery, job share per site and
    # the rebalance fraction); "battery" = the sites' battery actions only, global-greedy driving
    # compute and dispatch (agents/training/fleet_battery_env.py).
    fleet_action: Literal["full", "battery"] = "full"
    checkpoint_freq: int = Field(50_000, ge=1)  # total env steps between checkpoints
    device: str = "cpu"
    # Small MLPs on few cores run far faster single-threaded (measured here: a 16x27 @ 27x64
    # linear layer takes ~60 us with 1 torch thread and ~1 ms with 2).
    torch_threads: int = Field(1, ge=1, le=256)

    @field_validator("n_timesteps", mode="before")
    @classmethod
    def _float_ok(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("must be a number, not a boolean")
        if isinstance(v, str) and _SCI_NUMBER.match(v.strip()):
            v = float(v)  # "1e6": PyYAML reads YAML 1.1 scientific notation as a string
        if isinstance(v, float) and math.isfinite(v) and v == int(v):
            return int(v)
        return v

    @field_validator("seed", "n_envs", "checkpoint_freq", "torch_threads", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("must be an integer, not a boolean")
        return v

    @field_validator("hyperparams")
    @classmethod
    def _hyperparam_ranges(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key, value in v.items():
            check_hyperparameter(key, value)
        return v

    @field_validator("normalize")
    @classmethod
    def _normalize(cls, v: bool | dict[str, Any]) -> bool | dict[str, Any]:
        allowed = {"norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon"}
        if isinstance(v, dict) and set(v) - allowed:
            raise ValueError(
                f"unknown VecNormalize keys {sorted(set(v) - allowed)}; allowed: {sorted(allowed)}"
            )
        return v

    @field_validator("policy_kwargs")
    @classmethod
    def _activation(cls, v: dict[str, Any]) -> dict[str, Any]:
        act = v.get("activation_fn")
        if act is not None and act not in ACTIVATIONS:
            raise ValueError(f"activation_fn must be one of {ACTIVATIONS} (got {act!r})")
        return v

    @model_validator(mode="after")
    def _pretrain_and_day_end(self) -> TrainConfig:
        if self.pretrain is not None:
            norm_obs = (
                self.normalize.get("norm_obs", True)
                if isinstance(self.normalize, dict)
                else self.normalize
            )
            if norm_obs:
                raise ValueError(
                    "pretrain needs normalize.norm_obs: false (observations are already scaled by "
                    "the env's encoder; statistics of expert data would differ from the RL data's)"
                )
            if self.pretrain.search is not None and self.algo not in ("ppo", "a2c"):
                raise ValueError(f"pretrain.search supports algo ppo and a2c (got {self.algo!r})")
            if self.pretrain.bc_alpha is not None and self.algo not in ("sac", "td3"):
                raise ValueError(f"pretrain.bc_alpha supports algo sac and td3 (got {self.algo!r})")
        if self.privileged_critic and (self.algo not in ("ppo", "a2c") or self.vec_env != "native"):
            raise ValueError("privileged_critic needs algo ppo or a2c and vec_env: native")
        if self.day_end == "terminate" and self.vec_env != "native":
            raise ValueError("day_end: terminate is supported with vec_env: native only")
        if self.fleet_action == "battery":
            from megapod_gym.config.fleet import is_fleet

            if not is_fleet(self.scenario):
                raise ValueError(
                    f"fleet_action: battery needs a fleet scenario (got {self.scenario!r})"
                )
        return self

    def model_class(self) -> type:
        """The algorithm's class: SB3's, or its TD3+BC variant with ``pretrain.bc_alpha``."""
        if self.pretrain is not None and self.pretrain.bc_alpha is not None:
            from agents.training.bc_regularized import BC_REGULARIZED

            return BC_REGULARIZED[self.algo]
        return algo_class(self.algo)

    def algo_kwargs(self, action_dim: int = 1) -> dict[str, Any]:
        """Hyperparameters as the algorithm takes them (schedules, activations and the action noise
        resolved; ``action_dim``: the env's action size, for the noise's shape)."""
        kw = dict(self.hyperparams)
        if "action_noise" in kw:  # sigma of independent Gaussian noise on every action dimension
            import numpy as np
            from stable_baselines3.common.noise import NormalActionNoise

            sigma = kw["action_noise"]
            if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
                raise TrainConfigError(
                    f"action_noise: must be a number in [0, 1], the noise's standard deviation "
                    f"(got {sigma!r})"
                )
            kw["action_noise"] = NormalActionNoise(
                np.zeros(action_dim), np.full(action_dim, float(sigma))
            )
        for key in ("learning_rate", "clip_range"):
            if isinstance(kw.get(key), str):
                kw[key] = linear_schedule(kw[key], key)
        p = self.pretrain
        if p is not None and p.critic_warmup_steps > 0 and p.critic_warmup_lr is not None:
            kw["learning_rate"] = WarmupSchedule(
                1.0 - p.critic_warmup_steps / self.n_timesteps,
                p.critic_warmup_lr,
                kw.get("learning_rate", 3e-4),
            )
        pk = dict(self.policy_kwargs)
        if "activation_fn" in pk:
            import torch.nn as nn

            pk["activation_fn"] = {
                "tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU,
            }[pk["activation_fn"]]  # fmt: skip
        if self.privileged_critic:
            from megapod_gym.config import load_scenario
            from megapod_gym.envs.site_env import make_encoder

            pk["n_actor_features"] = make_encoder(
                load_scenario(self.scenario, self.config_overrides)
            ).size
        if pk:
            kw["policy_kwargs"] = pk
        return kw


_SCI_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")

# Ranges of the hyperparameters whose bad values SB3 would accept silently (and train on with a
# negative learning rate or a discount above 1): (low, high, low inclusive, integer).
HYPERPARAM_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.0, 1.0, False, False),
    "gamma": (0.0, 1.0, True, False),
    "gae_lambda": (0.0, 1.0, True, False),
    "clip_range": (0.0, 10.0, False, False),
    "target_kl": (0.0, 10.0, False, False),
    "ent_coef": (0.0, 10.0, True, False),
    "vf_coef": (0.0, 100.0, True, False),
    "max_grad_norm": (0.0, 1e6, False, False),
    "tau": (0.0, 1.0, False, False),
    "n_steps": (1, 1e7, True, True),
    "batch_size": (1, 1e7, True, True),
    "n_epochs": (1, 1e4, True, True),
    "buffer_size": (1, 1e9, True, True),
    "learning_starts": (0, 1e10, True, True),
    "gradient_steps": (-1, 1e6, True, True),
    "policy_delay": (1, 1e4, True, True),
    "action_noise": (0.0, 1.0, True, False),  # SAC/TD3: std of Gaussian exploration noise
}


def check_hyperparameter(key: str, value: Any) -> None:
    """Refuse a non-finite, boolean or out-of-range value of a known hyperparameter (schedules like
    ``lin_3e-4`` and SAC's ``ent_coef: auto`` are checked where they are resolved)."""
    if isinstance(value, bool):
        if key in HYPERPARAM_RANGES:
            raise ValueError(f"{key}: must be a number, not a boolean")
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key}: must be finite (got {value})")
    if key not in HYPERPARAM_RANGES or not isinstance(value, (int, float)):
        return
    low, high, low_inclusive, integer = HYPERPARAM_RANGES[key]
    if integer and value != int(value):
        raise ValueError(f"{key}: must be an integer (got {value})")
    ok = (value >= low if low_inclusive else value > low) and value <= high
    if not ok:
        bracket = "[" if low_inclusive else "("
        raise ValueError(f"{key}: {value!r} is outside {bracket}{low:g}, {high:g}]")


def linear_schedule(spec: str, key: str) -> Callable[[float], float]:
    """``"lin_3e-4"`` -> progress_remaining * 3e-4 (RL Zoo convention)."""
    if not spec.startswith("lin_"):
        raise TrainConfigError(
            f"{key}: a string value must be a linear schedule like 'lin_3e-4' (got {spec!r})"
        )
    try:
        start = float(spec[4:])
    except ValueError:
        raise TrainConfigError(f"{key}: cannot read the number in {spec!r}") from None
    if not (math.isfinite(start) and 0.0 < start <= 1.0):
        raise TrainConfigError(f"{key}: the schedule's start must be in (0, 1] (got {spec!r})")
    return LinearSchedule(start)


class LinearSchedule:
    """Picklable linear schedule (SB3 saves schedules with the model)."""

    def __init__(self, start: float) -> None:
        self.start = start

    def __call__(self, progress_remaining: float) -> float:
        # SB3 runs whole rollouts, so the last update can start past the requested steps where
        # progress_remaining < 0: clamp, never a negative learning rate
        return min(max(progress_remaining, 0.0), 1.0) * self.start


class WarmupSchedule:
    """``warm_lr`` while ``progress_remaining > until_progress`` (the critic warm-up, actor frozen),
    then ``after`` (a number or a schedule). Picklable, as SB3 saves schedules with the model."""

    def __init__(self, until_progress: float, warm_lr: float, after: Any) -> None:
        self.until_progress = until_progress
        self.warm_lr = warm_lr
        self.after = after

    def __call__(self, progress_remaining: float) -> float:
        if progress_remaining > self.until_progress:
            return self.warm_lr
        return self.after(progress_remaining) if callable(self.after) else float(self.after)


_OWN_KEYS = set(TrainConfig.model_fields) - {"hyperparams"}


def parse_train_config(data: Mapping[str, Any], source: str = "mapping") -> TrainConfig:
    """Validate a flat Zoo-style mapping: own keys + the algorithm's hyperparameters."""
    data = dict(data)
    nested = data.pop("hyperparams", None)  # a resolved config.yaml nests them; flatten
    if nested is not None:
        if not isinstance(nested, Mapping):
            raise TrainConfigError(f"{source}: hyperparams must be a mapping")
        clash = sorted(set(nested) & set(data))
        if clash:
            raise TrainConfigError(
                f"{source}: {clash} given both at the top level and under hyperparams"
            )
        data.update(nested)
    algo = data.get("algo")
    if algo not in ALGOS:
        raise TrainConfigError(f"{source}: algo must be one of {sorted(ALGOS)} (got {algo!r})")
    accepted = set(inspect.signature(algo_class(algo).__init__).parameters) - {
        "self",
        "policy",
        "env",
        "seed",
        "device",
        "policy_kwargs",
        "_init_setup_model",
        "verbose",
        "tensorboard_log",
    }
    hyper = {k: data.pop(k) for k in list(data) if k not in _OWN_KEYS}
    unknown = sorted(set(hyper) - accepted)
    if unknown:
        raise TrainConfigError(
            f"{source}: unknown key(s) {unknown} for algo {algo!r}; project keys: {sorted(_OWN_KEYS)}; "
            f"{algo} hyperparameters: {sorted(accepted)}"
        )
    try:
        cfg = TrainConfig.model_validate({**data, "hyperparams": hyper})
    except ValidationError as exc:
        raise TrainConfigError(
            format_validation_error(exc, source, what="training config")
        ) from None
    cfg.algo_kwargs()  # resolve schedules now so bad values fail before training
    return cfg


def load_train_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a training YAML (safe loading) and apply command-line overrides."""
    path = Path(path)
    if not path.is_file():
        raise TrainConfigError(f"training config {str(path)!r} does not exist")
    try:
        data = read_config_yaml(path) or {}
    except YamlConfigError as exc:
        raise TrainConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise TrainConfigError(f"{path}: top level must be a mapping")
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return parse_train_config(data, str(path))
