"""The sidecar ``policy.json`` that ``megapod export`` writes beside ``policy.onnx``.

:func:`build_sidecar` describes the features, the actions, the site figures the dispatch safety
layer needs (:func:`site_figures`), versions, the training run and the ONNX file's SHA-256, in
the format of :mod:`megapod_gym.runtime.sidecar` (documented in ``docs/policy-sidecar.md``);
:class:`megapod_gym.runtime.PolicyController` checks it on load.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping
from typing import Any

from agents.export.errors import ExportError
from agents.policies.trained import ObsNormalizer
from megapod_gym.config import ScenarioConfig
from megapod_gym.envs.site_env import make_decoder, make_encoder
from megapod_gym.observation import OBS_CLIP
from megapod_gym.runtime.sidecar import FORMAT, FORMAT_VERSION, INPUT_NAME, OUTPUT_NAME, SITE_KEYS


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
