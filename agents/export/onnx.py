"""``megapod export``: a trained run -> ONNX policy + JSON sidecar (+ optional TorchScript).

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

RecurrentPPO is refused: its action depends on an LSTM state carried between steps, while the
exported controller is a stateless map from measurements to setpoints.

The sidecar ``policy.json`` (see :func:`build_sidecar`) describes the features, the actions, the
site figures the dispatch safety layer needs, versions, the training run and the ONNX file's
SHA-256; :class:`megapod_gym.runtime.PolicyController` checks it on load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from agents.policies.trained import (
    ObsNormalizer,
    actor_obs,
    algo_of_model,
    load_vecnormalize,
    resolve_model_path,
)
from megapod_gym.config import ScenarioConfig, load_scenario
from megapod_gym.envs.site_env import make_decoder, make_encoder
from megapod_gym.observation import OBS_CLIP
from megapod_gym.runtime.controller import (
    FORMAT,
    FORMAT_VERSION,
    INPUT_NAME,
    OUTPUT_NAME,
    SITE_KEYS,
    PolicyController,
    seal_sidecar,
    sidecar_path,
    torchscript_path,
)

if TYPE_CHECKING:
    from agents.policies.base import PolicyContext

Exporter = Literal["auto", "torchscript", "dynamo"]
EXPORTABLE_ALGOS = ("ppo", "a2c", "sac", "td3")
PARITY_TOL = 1e-5


class ExportError(ValueError):
    """The run cannot be exported (unsupported algorithm or policy, mismatched files, a graph
    that fails its checks)."""


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


# ------------------------------------------------------------------------------ sidecar
def site_figures(config: ScenarioConfig) -> dict[str, Any]:
    """Every site figure the controller runtime's safety layer and action decoder need (plus a
    few descriptive ones), from a scenario config. Battery powers are 0 without a battery."""
    ep, grid, ch, bat, comp = (
        config.episode,
        config.grid,
        config.chargers,
        config.battery,
        config.compute,
    )
    has_batt = bat.energy_kwh > 0
    site = {
        "import_limit_kw": grid.import_limit_kw,
        "export_limit_kw": grid.export_limit_kw,
        "demand_window_min": grid.demand_window_min,
        "step_min": ep.step_min,
        "dt_h": ep.dt_h,
        "ev_priority": config.ev_priority,
        "n_stalls": ch.n_stalls,
        "stall_kw": ch.stall_kw,
        "stalls_per_cabinet": ch.stalls_per_cabinet,
        "cabinet_kw": ch.cabinet_kw,
        "charger_efficiency": ch.efficiency,
        "ev_capacity_kw": make_decoder(config).ev_capacity_kw,
        "it_kw": comp.it_kw,
        "cap_floor_frac": comp.cap_floor_frac,
        "standby_frac": comp.standby_frac,
        "pue_curve": {"temp_c": list(comp.pue.temp_c), "pue": list(comp.pue.pue)},
        "battery_energy_kwh": bat.energy_kwh,
        "battery_charge_kw": bat.charge_kw if has_batt else 0.0,
        "battery_discharge_kw": bat.discharge_kw if has_batt else 0.0,
        "battery_charge_efficiency": bat.charge_efficiency,
        "battery_discharge_efficiency": bat.discharge_efficiency,
        "battery_soc_min": bat.soc_min,
        "battery_soc_max": bat.soc_max,
        "battery_aux_kw": bat.aux_kw,
    }
    missing = set(SITE_KEYS) - set(site)
    if missing:  # the runtime's required keys and this table must stay in step
        raise ExportError(f"site figures lack {sorted(missing)}")
    return site


def _versions(exporter: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    pkgs = [
        "megapod-gym",
        "numpy",
        "torch",
        "stable-baselines3",
        "gymnasium",
        "onnx",
        "onnxruntime",
    ]
    if exporter == "dynamo":
        pkgs.append("onnxscript")
    for pkg in pkgs:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def build_sidecar(
    config: ScenarioConfig,
    algo: str,
    onnx_sha256: str,
    onnx_file: str,
    n_actions: int,
    *,
    exporter: str = "unknown",
    exporter_kind: str = "torchscript",
    opset: int | None = None,
    normalizer: ObsNormalizer | None = None,
    action_transform: str = "clip",
    actor_description: str = "",
    training_run: Mapping[str, Any] | None = None,
    torchscript: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The sidecar document (format :data:`~megapod_gym.runtime.FORMAT_VERSION`)."""
    encoder, decoder = make_encoder(config), make_decoder(config)
    if decoder.size != n_actions:
        raise ExportError(
            f"the policy has {n_actions} actions but the scenario's site takes {decoder.size} "
            f"({list(decoder.names)}, ev_priority {config.ev_priority!r})"
        )
    mapping = {
        "compute_frac": "(a + 1) / 2 = IT power fraction in [0, 1]; below cap_floor_frac the "
        "cluster pauses at standby_frac",
        "battery_kw": "a * battery_discharge_kw if a >= 0 (discharge), a * battery_charge_kw if "
        "a < 0 (charge)",
        "ev_cap_kw": "(a + 1) / 2 * ev_capacity_kw = cap on the chargers' total AC power (soft mode)",
    }
    norm = None
    if normalizer is not None:
        norm = {
            "mean": normalizer.mean.tolist(),
            "var": normalizer.var.tolist(),
            "epsilon": normalizer.epsilon,
            "clip_obs": normalizer.clip_obs,
        }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "algorithm": algo,
        "scenario": config.name,
        "onnx": {
            "file": onnx_file,
            "sha256": onnx_sha256,
            "opset": opset,
            "exporter": exporter,
            "input": {"name": INPUT_NAME, "shape": ["batch", encoder.size], "dtype": "float32"},
            "output": {"name": OUTPUT_NAME, "shape": ["batch", decoder.size], "dtype": "float32"},
        },
        "torchscript": dict(torchscript) if torchscript else None,
        "graph": {
            "input": "observation as the environment emits it: clip((measurement - center) / "
            f"scale, -{OBS_CLIP}, {OBS_CLIP}) per feature (observation.features), float32",
            "normalization": "z = clip((float64(obs) - mean) / sqrt(var + epsilon), -clip_obs, "
            "clip_obs) -> float32, with the training run's VecNormalize statistics"
            if norm
            else "none (the run did not normalize observations)",
            "normalization_statistics": norm,
            "actor": actor_description,
            "action_transform": "low + (a + 1) / 2 * (high - low) (SB3 unscale_action)"
            if action_transform == "unscale"
            else "clip(a, low, high)",
            "policy_low": [-1.0] * decoder.size,
            "policy_high": [1.0] * decoder.size,
            "equivalent_to": "model.predict(normalize(obs), deterministic=True)",
        },
        "observation": {
            "encoder_site": dict(encoder.site),
            "clip": OBS_CLIP,
            "formula": "obs_i = clip((measurement_i - center_i) / scale_i, -clip, clip)",
            "features": encoder.describe(),
        },
        "action": {
            "names": list(decoder.names),
            "units": list(decoder.units),
            "low": decoder.low.tolist(),
            "high": decoder.high.tolist(),
            "policy_range": [-1.0, 1.0],
            "mapping": {n: mapping[n] for n in decoder.names},
            "sign_convention": "battery_kw > 0 discharges the battery into the site, < 0 charges it",
        },
        "site": site_figures(config),
        "training_run": dict(training_run or {}),
        "versions": _versions(exporter_kind),
    }


def _run_root(model_path: Path) -> Path:
    for folder in (model_path.parent, model_path.parent.parent):
        if (folder / "config.yaml").is_file():
            return folder
    return model_path.parent


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- the export
def export_policy(
    run_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    force: bool = False,
    torchscript: bool = False,
    exporter: Exporter = "auto",
) -> Path:
    """Export a trained run's policy to ONNX (+ sidecar JSON, + TorchScript if asked).

    Parameters
    ----------
    run_dir
        A run folder written by ``megapod train`` (its ``best/`` model is preferred, then
        ``final/``), a ``best``/``final`` folder, or a ``model.zip`` inside a run folder.
    out_path
        The ONNX file to write, ending in ``.onnx``; the sidecar is written beside it with the
        suffix ``.json`` (and the TorchScript file with ``.pt``).
    force
        Replace existing output files (and remove a ``.pt`` left by an earlier export when
        ``torchscript`` is false); otherwise an existing file is an error.
    torchscript
        Also write a TorchScript module (``.pt``) of the same graph, for PyTorch consumers.
    exporter
        ``"auto"`` (default) uses torch's TorchScript-based ONNX exporter when this torch still
        has it (fast, no extra dependency) and the dynamo exporter otherwise; ``"dynamo"``
        forces ``torch.export`` (needs ``onnxscript``); ``"torchscript"`` forces the former.

    Returns
    -------
    Path
        The ONNX file.

    Raises
    ------
    ExportError
        RecurrentPPO or another unsupported policy, a model whose spaces do not match the run's
        scenario, or a graph that fails the checker or the parity check.
    FileExistsError
        An output file exists and ``force`` is false.
    """
    import torch

    out = Path(out_path)
    if out.suffix != ".onnx":
        raise ExportError(f"--out must name a .onnx file (got {str(out)!r})")
    if exporter not in ("auto", "torchscript", "dynamo"):
        raise ExportError(f"exporter must be 'auto', 'torchscript' or 'dynamo' (got {exporter!r})")
    targets = [out, sidecar_path(out)] + ([torchscript_path(out)] if torchscript else [])
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(existing)} already exist(s); pass --force to replace")

    model_path, norm_path = resolve_model_path(run_dir)
    algo = algo_of_model(model_path)
    if algo == "recurrent_ppo":
        raise ExportError(
            "RecurrentPPO cannot be exported: its action depends on an LSTM hidden state carried "
            "from step to step, and the exported controller is a stateless map from measurements "
            f"to setpoints. Export a feed-forward policy ({', '.join(EXPORTABLE_ALGOS)})."
        )
    if algo not in EXPORTABLE_ALGOS:
        raise ExportError(f"cannot export algorithm {algo!r}; supported: {EXPORTABLE_ALGOS}")
    root = _run_root(model_path)
    scenario_file = root / "scenario.yaml"
    if not scenario_file.is_file():
        raise ExportError(f"{root}: no scenario.yaml (the run's resolved scenario) to export with")
    config = load_scenario(scenario_file)
    encoder, decoder = make_encoder(config), make_decoder(config)

    from agents.training.config import algo_class

    model = algo_class(algo).load(model_path, device="cpu")
    # a model trained with privileged critic features has a larger observation space, but its
    # actor reads only the env's features: the export takes exactly those
    n_actor = int(
        getattr(getattr(model.policy, "mlp_extractor", None), "n_actor_features", 0)
        or model.observation_space.shape[0]
    )
    if n_actor != encoder.size or tuple(model.action_space.shape) != (decoder.size,):
        raise ExportError(
            f"{model_path}: model spaces {model.observation_space.shape} -> "
            f"{model.action_space.shape} do not match the run's scenario ({encoder.size} features "
            f"-> {decoder.size} actions)"
        )
    normalizer = ObsNormalizer.from_vecnormalize(load_vecnormalize(norm_path))
    module = build_export_module(model, algo, normalizer)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        kind = exporter
        if exporter == "auto":
            kind = "torchscript"
            try:
                used, opset = _export_onnx(module, encoder.size, tmp, "torchscript")
            except Exception as first:  # e.g. a torch without the TorchScript-based exporter
                kind = "dynamo"
                try:
                    used, opset = _export_onnx(module, encoder.size, tmp, "dynamo")
                except Exception as second:
                    raise ExportError(
                        f"ONNX export failed with the TorchScript-based exporter ({first}) and "
                        f"with the dynamo exporter ({second})"
                    ) from second
        else:
            used, opset = _export_onnx(module, encoder.size, tmp, exporter)
        _check_onnx(tmp, encoder.size, decoder.size)
        parity = _check_parity(tmp, model, normalizer, encoder.size)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)

    ts_info = None
    stale = torchscript_path(out)
    if not torchscript and force and stale.exists():  # a .pt of the replaced export
        stale.unlink()
    if torchscript:
        ts_path = torchscript_path(out)
        ts_tmp = ts_path.with_name(f".{ts_path.name}.{os.getpid()}.tmp")
        try:
            with _quiet(), torch.no_grad():
                traced = torch.jit.trace(module, torch.zeros(2, encoder.size), check_trace=False)
                traced.save(str(ts_tmp))
            os.replace(ts_tmp, ts_path)
        finally:
            ts_tmp.unlink(missing_ok=True)
        ts_info = {"file": ts_path.name, "sha256": _sha256(ts_path), "input": "same as onnx"}

    meta_file = root / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    training_run = {
        "run_id": root.name,
        "git_revision": meta.get("git_revision", "unknown"),
        "model": str(model_path.relative_to(root))
        if model_path.is_relative_to(root)
        else str(model_path),
        "timesteps": int(model.num_timesteps),
        "seed": meta.get("seed"),
        "training_versions": meta.get("versions", {}),
    }
    sidecar = build_sidecar(
        config,
        algo,
        _sha256(out),
        out.name,
        decoder.size,
        exporter=used,
        exporter_kind=kind,
        opset=opset,
        normalizer=normalizer,
        action_transform="unscale" if module.squash else "clip",
        actor_description=module.description,
        training_run=training_run,
        torchscript=ts_info,
    )
    sidecar["export_check"] = {"max_abs_error_vs_model_predict": parity, "tolerance": PARITY_TOL}
    seal_sidecar(sidecar, out.read_bytes())
    side = sidecar_path(out)
    side_tmp = side.with_name(f".{side.name}.{os.getpid()}.tmp")
    side_tmp.write_text(json.dumps(sidecar, indent=2, allow_nan=False) + "\n")
    os.replace(side_tmp, side)
    return out


class OnnxPolicy:
    """An exported ``policy.onnx`` behind the :class:`~agents.policy.Policy` interface, so the
    exported network runs through the same evaluation code as everything else (``run_policy``,
    benchmarks): observations in, actions in [-1, 1] out; the environment decodes and dispatches.

    ``reset`` refuses a site whose observation or action layout differs from the export's.
    """

    def __init__(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        self.controller = PolicyController.load(path)
        self.name = name or f"{Path(path).stem} (onnx)"

    def reset(self, context: PolicyContext) -> None:
        enc, dec = context.encoder, context.decoder
        c = self.controller
        if enc.describe() != c.encoder.describe() or dec.names != c.action_names:
            raise ValueError(
                f"{c.path} was exported for another site layout (features {c.encoder.site}, "
                f"actions {list(c.action_names)}) than this scenario's ({enc.site}, "
                f"{list(dec.names)})"
            )

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.controller.act(obs)
