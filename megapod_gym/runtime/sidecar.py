"""The exported-policy file format: ``policy.onnx`` + its sidecar ``policy.json``.

What ``megapod export`` writes and :meth:`~megapod_gym.runtime.PolicyController.load` checks: the
format name and versions, the graph's input/output names, the site figures the safety layer needs
(:data:`SITE_KEYS`) and every other required sidecar key, the integrity digest over the sidecar
and the ONNX bytes, the file names beside ``policy.onnx``, and the checks of a sidecar against this
package's observation encoder, action decoder and the loaded graph. The format is documented in
``docs/policy-sidecar.md``. Besides the encoder and decoder it checks against, it needs only the
standard library.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from megapod_gym.action import ActionDecoder
from megapod_gym.observation import ObservationEncoder

FORMAT = "megapod-policy"
FORMAT_VERSION = 2
# version 1 (before 2026-12): no "integrity" digest; still loaded, with a warning
SUPPORTED_VERSIONS: tuple[int, ...] = (1, 2)
INPUT_NAME = "obs"
OUTPUT_NAME = "action"

# Site figures the safety layer (and the action decoder) needs; all in the sidecar's "site".
SITE_KEYS: tuple[str, ...] = (
    "import_limit_kw",
    "export_limit_kw",
    "step_min",
    "dt_h",
    "ev_priority",
    "n_stalls",
    "stall_kw",
    "charger_efficiency",
    "ev_capacity_kw",
    "it_kw",
    "cap_floor_frac",
    "standby_frac",
    "battery_energy_kwh",
    "battery_charge_kw",
    "battery_discharge_kw",
    "battery_charge_efficiency",
    "battery_discharge_efficiency",
    "battery_soc_min",
    "battery_soc_max",
    "battery_aux_kw",
)
_REQUIRED: tuple[str, ...] = (
    "format",
    "format_version",
    "algorithm",
    "scenario",
    "onnx.sha256",
    "onnx.input.name",
    "onnx.output.name",
    "observation.features",
    "observation.encoder_site.import_limit_kw",
    "observation.encoder_site.n_stalls",
    "observation.encoder_site.battery_power_kw",
    "action.names",
    "action.low",
    "action.high",
    *(f"site.{k}" for k in SITE_KEYS),
)


class PolicyFileError(ValueError):
    """The ONNX file or its sidecar is missing, tampered with, inconsistent or of another format."""


def integrity_digest(sidecar: Mapping[str, Any], onnx_bytes: bytes) -> str:
    """SHA-256 over the ONNX bytes and the canonical JSON (sorted keys, no whitespace) of every
    sidecar field except ``integrity`` itself: editing any figure the controller reads (say
    ``site.import_limit_kw``) or swapping the graph changes it."""
    body = {k: v for k, v in sidecar.items() if k != "integrity"}
    h = hashlib.sha256(onnx_bytes)
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())
    return h.hexdigest()


def seal_sidecar(sidecar: dict[str, Any], onnx_bytes: bytes) -> dict[str, Any]:
    """Set ``sidecar["integrity"]`` (the last step of writing a sidecar); returns the sidecar."""
    sidecar["integrity"] = {
        "sha256": integrity_digest(sidecar, onnx_bytes),
        "covers": "the ONNX file's bytes + the canonical JSON of every other sidecar field",
    }
    return sidecar


def sidecar_path(onnx_path: str | os.PathLike[str]) -> Path:
    """The sidecar of ``policy.onnx``: ``policy.json`` in the same folder."""
    return Path(onnx_path).with_suffix(".json")


def torchscript_path(onnx_path: str | os.PathLike[str]) -> Path:
    """The optional TorchScript twin of ``policy.onnx``: ``policy.pt`` in the same folder."""
    return Path(onnx_path).with_suffix(".pt")


def _lookup(doc: Mapping[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


@dataclass(frozen=True)
class _Site:
    """The site figures of the sidecar, typed (kW, kWh, fractions, hours)."""

    import_limit_kw: float
    export_limit_kw: float
    dt_h: float
    strict: bool
    ev_capacity_kw: float
    it_kw: float
    cap_floor_frac: float
    standby_frac: float
    battery_energy_kwh: float
    battery_charge_kw: float
    battery_discharge_kw: float
    battery_charge_efficiency: float
    battery_discharge_efficiency: float
    battery_soc_min: float
    battery_soc_max: float
    battery_aux_kw: float

    @staticmethod
    def from_sidecar(site: Mapping[str, Any], where: str) -> _Site:
        priority = site["ev_priority"]
        if priority not in ("strict", "soft"):
            raise PolicyFileError(
                f"{where}: site.ev_priority must be 'strict' or 'soft' (got {priority!r})"
            )
        values: dict[str, float] = {}
        for key in SITE_KEYS:
            if key == "ev_priority":
                continue
            x = site[key]
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise PolicyFileError(f"{where}: site.{key} must be a finite number (got {x!r})")
            values[key] = float(x)
        v = values
        checks = {
            "import_limit_kw": v["import_limit_kw"] > 0,
            "export_limit_kw": v["export_limit_kw"] >= 0,
            "dt_h": v["dt_h"] > 0 and math.isclose(v["dt_h"], v["step_min"] / 60.0),
            "it_kw": v["it_kw"] > 0,
            "cap_floor_frac": 0 < v["cap_floor_frac"] < 1,
            "standby_frac": 0 <= v["standby_frac"] <= v["cap_floor_frac"],
            "ev_capacity_kw": v["ev_capacity_kw"] >= 0,
            "battery_energy_kwh": v["battery_energy_kwh"] >= 0,
            "battery_charge_kw": v["battery_charge_kw"] >= 0,
            "battery_discharge_kw": v["battery_discharge_kw"] >= 0,
            "battery_charge_efficiency": 0 < v["battery_charge_efficiency"] <= 1,
            "battery_discharge_efficiency": 0 < v["battery_discharge_efficiency"] <= 1,
            "battery_soc_max": 0 <= v["battery_soc_min"] < v["battery_soc_max"] <= 1,
            "battery_aux_kw": v["battery_aux_kw"] >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise PolicyFileError(f"{where}: site.{key} is out of range ({values[key]!r})")
        figures = {f.name: values[f.name] for f in fields(_Site) if f.name != "strict"}
        return _Site(strict=priority == "strict", **figures)


def _check_features(features: Any, encoder: ObservationEncoder, where: str) -> None:
    """The sidecar's feature table must be the one this package's encoder produces."""
    expected = encoder.describe()
    if not isinstance(features, list) or len(features) != len(expected):
        n = len(features) if isinstance(features, list) else type(features).__name__
        raise PolicyFileError(
            f"{where}: observation.features lists {n} features; this megapod_gym encodes "
            f"{len(expected)} (the policy was exported with an incompatible version)"
        )
    for i, (got, exp) in enumerate(zip(features, expected)):
        if not isinstance(got, Mapping):
            raise PolicyFileError(f"{where}: observation.features[{i}] must be an object")
        for key in ("name", "unit", "center", "scale"):
            if key not in got:
                raise PolicyFileError(
                    f"{where}: missing required key observation.features[{i}].{key}"
                )
        same = (
            got["name"] == exp["name"]
            and got["unit"] == exp["unit"]
            and _close(got["center"], exp["center"])
            and _close(got["scale"], exp["scale"])
        )
        if not same:
            raise PolicyFileError(
                f"{where}: observation.features[{i}] is {got['name']!r} (center {got['center']}, "
                f"scale {got['scale']}, unit {got['unit']!r}) but this megapod_gym's encoder has "
                f"{exp['name']!r} (center {exp['center']}, scale {exp['scale']}, unit "
                f"{exp['unit']!r}) for these site parameters: observation layout mismatch"
            )


def _check_actions(action: Mapping[str, Any], decoder: ActionDecoder, where: str) -> None:
    names = action["names"]
    if list(names) != list(decoder.names):
        raise PolicyFileError(
            f"{where}: action.names {names} do not match the site's actions "
            f"{list(decoder.names)} (ev_priority {'soft' if decoder.soft else 'strict'})"
        )
    for key, ref in (("low", decoder.low), ("high", decoder.high)):
        got = action[key]
        if not isinstance(got, list) or len(got) != len(ref):
            raise PolicyFileError(f"{where}: action.{key} must list {len(ref)} numbers")
        if not all(_close(g, r) for g, r in zip(got, ref.tolist())):
            raise PolicyFileError(
                f"{where}: action.{key} {got} does not match the site figures ({ref.tolist()})"
            )


def _check_graph(
    session: Any, sidecar: Mapping[str, Any], n_obs: int, n_act: int, where: str
) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise PolicyFileError(
            f"{where}: the graph must have one input and one output "
            f"(has {len(inputs)} and {len(outputs)})"
        )
    inp, out = inputs[0], outputs[0]
    names = (sidecar["onnx"]["input"]["name"], sidecar["onnx"]["output"]["name"])
    if (inp.name, out.name) != (INPUT_NAME, OUTPUT_NAME) or names != (INPUT_NAME, OUTPUT_NAME):
        raise PolicyFileError(
            f"{where}: graph input/output must be named {INPUT_NAME!r}/{OUTPUT_NAME!r} (graph has "
            f"{inp.name!r}/{out.name!r}, sidecar says {names[0]!r}/{names[1]!r})"
        )
    if inp.type != "tensor(float)":
        raise PolicyFileError(f"{where}: graph input must be float32 (is {inp.type})")
    for label, shape, n in (("input", inp.shape, n_obs), ("output", out.shape, n_act)):
        if len(shape) != 2 or shape[1] != n:
            raise PolicyFileError(
                f"{where}: graph {label} has shape {shape}; the sidecar describes (batch, {n})"
            )
        if isinstance(shape[0], int):
            raise PolicyFileError(
                f"{where}: graph {label} has a fixed batch size ({shape[0]}); re-export it with a "
                "dynamic batch axis"
            )


def _close(a: Any, b: float) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False
