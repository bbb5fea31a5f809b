"""Controller runtime for exported policies: raw site measurements -> feasible setpoints.

Needs NumPy and onnxruntime only (no torch, stable-baselines3, gymnasium, pydantic, yaml or numba):
a site controller loads ``policy.onnx`` + its sidecar ``policy.json`` written by
``megapod export`` and calls :meth:`PolicyController.decide` every control step.

>>> from megapod_gym.runtime import PolicyController
>>> controller = PolicyController.load("policy.onnx")  # doctest: +SKIP
>>> controller.decide(measurements)["battery_kw"]  # doctest: +SKIP
"""

from __future__ import annotations

from megapod_gym.runtime.controller import (
    MEASUREMENT_RANGES,
    SETPOINT_KEYS,
    InfeasibleSetpointError,
    MeasurementError,
    PolicyController,
)
from megapod_gym.runtime.sidecar import (
    FORMAT,
    FORMAT_VERSION,
    INPUT_NAME,
    OUTPUT_NAME,
    SITE_KEYS,
    PolicyFileError,
    integrity_digest,
    seal_sidecar,
    sidecar_path,
    torchscript_path,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "INPUT_NAME",
    "MEASUREMENT_RANGES",
    "OUTPUT_NAME",
    "SETPOINT_KEYS",
    "SITE_KEYS",
    "InfeasibleSetpointError",
    "MeasurementError",
    "PolicyController",
    "PolicyFileError",
    "integrity_digest",
    "seal_sidecar",
    "sidecar_path",
    "torchscript_path",
]
