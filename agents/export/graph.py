"""The exported graph: a trained SB3 policy as one ``torch.nn.Module``, its ONNX file, and the
checks every export passes.

The graph maps the **raw observation** the environment emits (``obs``, float32 ``[batch, 27]``,
already scaled by the shared :class:`~megapod_gym.observation.ObservationEncoder`) to the **final
action** (``action``, float32 ``[batch, n]`` in [-1, 1]) exactly as the training stack acts::

    z = clip((float64(obs) - mean) / sqrt(var + eps), -clip_obs, clip_obs) -> float32
                                   (the run's saved VecNormalize statistics; skipped without them)
    PPO / A2C:  a = clip(action_net(mlp_actor(features(z))), low, high)   (Gaussian mean)
    SAC:        a = low + (tanh(mu(latent_pi(features(z)))) + 1) / 2 * (high - low)
    TD3:        a = low + (mu(features(z)) + 1) / 2 * (high - low)           (mu ends in tanh)

which is ``model.predict(normalize(obs), deterministic=True)``; ``low``/``high`` are the model's
action-space bounds ([-1, 1] here, so the SAC/TD3 unscaling is the identity). PPO with gSDE and
``squash_output`` takes the tanh + unscale branch, as SB3 does. Every export is checked: the
ONNX checker, a dynamic batch axis, and onnxruntime against ``model.predict`` at batch 1 and 5.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from agents.export.errors import ExportError
from agents.policies.trained import ObsNormalizer, actor_obs
from megapod_gym.runtime.sidecar import INPUT_NAME, OUTPUT_NAME

PARITY_TOL = 1e-5


# ------------------------------------------------------------------------------- the graph
def _actor_module(model: Any, algo: str) -> tuple[Any, bool, str]:
    """(module: normalized obs -> action before bounds, squash_output, description)."""
    import torch
    from stable_baselines3.common.distributions import (
        DiagGaussianDistribution,
        StateDependentNoiseDistribution,
    )

    policy = model.policy
    policy.set_training_mode(False)

    if algo in ("ppo", "a2c"):
        dist = policy.action_dist
        tanh = isinstance(dist, StateDependentNoiseDistribution) and dist.bijector is not None
        if not isinstance(dist, (DiagGaussianDistribution, StateDependentNoiseDistribution)):
            raise ExportError(
                f"{algo}: cannot export a policy with a {type(dist).__name__} action distribution "
                "(only Gaussian policies over a Box action space)"
            )

        class ActorCriticActor(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.features = policy.pi_features_extractor
                self.mlp = policy.mlp_extractor
                self.action_net = policy.action_net

            def forward(self, z: torch.Tensor) -> torch.Tensor:
                mean = self.action_net(self.mlp.forward_actor(self.features(z)))
                return torch.tanh(mean) if tanh else mean

        desc = "Gaussian mean" + (" (tanh-squashed, gSDE)" if tanh else "")
        return ActorCriticActor(), bool(policy.squash_output), desc

    actor = policy.actor
    if algo == "sac":

        class SACActor(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.features = actor.features_extractor
                self.latent_pi = actor.latent_pi
                self.mu = actor.mu

            def forward(self, z: torch.Tensor) -> torch.Tensor:
                return torch.tanh(self.mu(self.latent_pi(self.features(z))))

        return SACActor(), bool(policy.squash_output), "tanh(mean) of the squashed Gaussian"

    if algo == "td3":

        class TD3Actor(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.features = actor.features_extractor
                self.mu = actor.mu

            def forward(self, z: torch.Tensor) -> torch.Tensor:
                return self.mu(self.features(z))

        return TD3Actor(), bool(policy.squash_output), "deterministic actor (ends in tanh)"
    raise ExportError(f"unsupported algorithm {algo!r}")


def build_export_module(model: Any, algo: str, normalizer: ObsNormalizer | None) -> Any:
    """The ``torch.nn.Module`` that is exported: raw observation -> final action (see module doc)."""
    import torch
    from gymnasium import spaces

    if not isinstance(model.action_space, spaces.Box):
        raise ExportError(f"only Box action spaces can be exported (got {model.action_space})")
    actor, squash, description = _actor_module(model, algo)
    low = np.asarray(model.action_space.low, dtype=np.float32)
    high = np.asarray(model.action_space.high, dtype=np.float32)

    class ExportedPolicy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.actor = actor
            self.normalize = normalizer is not None
            if normalizer is not None:
                std = np.sqrt(normalizer.var + normalizer.epsilon)
                self.register_buffer(
                    "obs_mean", torch.as_tensor(normalizer.mean, dtype=torch.float64)
                )
                self.register_buffer("obs_std", torch.as_tensor(std, dtype=torch.float64))
                self.clip_obs = float(normalizer.clip_obs)
            self.register_buffer("act_low", torch.as_tensor(low))
            self.register_buffer("act_high", torch.as_tensor(high))
            self.register_buffer("act_half_range", torch.as_tensor(0.5 * (high - low)))
            self.squash = squash
            self.description = description

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            z = obs
            if self.normalize:
                z64 = (obs.to(torch.float64) - self.obs_mean) / self.obs_std
                z = torch.clamp(z64, -self.clip_obs, self.clip_obs).to(torch.float32)
            a = self.actor(z)
            if self.squash:  # SB3 unscale_action: low + 0.5 * (a + 1) * (high - low)
                return self.act_low + (a + 1.0) * self.act_half_range
            return torch.minimum(torch.maximum(a, self.act_low), self.act_high)

    return ExportedPolicy().eval()


# ----------------------------------------------------------------------------- exporters
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' warnings and log lines (deprecations, torchvision notices)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def _opset(exporter: str) -> int:
    """The newest opset both the installed onnx and the chosen torch exporter support."""
    import onnx
    from torch.onnx import _constants

    if exporter == "torchscript":
        torch_max = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 17)
    else:
        torch_max = getattr(_constants, "ONNX_MAX_OPSET", 18)
    return int(min(onnx.defs.onnx_opset_version(), torch_max))


def _export_onnx(module: Any, n_obs: int, path: Path, exporter: str) -> tuple[str, int]:
    """Write the ONNX file with a dynamic batch axis; return (exporter used, opset)."""
    import torch

    example = (torch.zeros(2, n_obs, dtype=torch.float32),)
    if exporter == "torchscript":
        opset = _opset("torchscript")
        with _quiet():
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=opset,
            )
        return "torch.onnx TorchScript-based exporter (dynamo=False)", opset
    opset = _opset("dynamo")
    with _quiet():
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            verbose=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=opset,
        )
        program.save(str(path))
    return "torch.onnx dynamo exporter (torch.export)", opset


def _check_onnx(path: Path, n_obs: int, n_act: int) -> None:
    import onnx

    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph fails onnx.checker: {exc}") from None
    for label, values, n in (
        ("input", model.graph.input, n_obs),
        ("output", model.graph.output, n_act),
    ):
        if len(values) != 1:
            raise ExportError(f"the exported graph has {len(values)} {label}s (expected 1)")
        dims = values[0].type.tensor_type.shape.dim
        if len(dims) != 2 or not dims[0].dim_param or dims[1].dim_value != n:
            shape = [d.dim_param or d.dim_value for d in dims]
            raise ExportError(
                f"the exported graph's {label} has shape {shape}; expected [batch, {n}] with a "
                "dynamic batch axis"
            )


def _check_parity(path: Path, model: Any, normalizer: ObsNormalizer | None, n_obs: int) -> float:
    """Max |onnxruntime - model.predict| on random observations at batch 1 and 5."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch in (1, 5):
        obs = rng.uniform(-2.0, 2.0, (batch, n_obs)).astype(np.float32)
        got = session.run(None, {INPUT_NAME: obs})[0]
        x = normalizer(obs) if normalizer is not None else obs
        ref, _ = model.predict(actor_obs(model, x), deterministic=True)
        worst = max(worst, float(np.max(np.abs(got - ref))))
    if not worst <= PARITY_TOL:
        raise ExportError(
            f"the exported graph differs from model.predict by {worst:.3g} (> {PARITY_TOL})"
        )
    return worst
