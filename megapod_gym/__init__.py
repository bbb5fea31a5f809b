"""megapod-gym: a Gymnasium environment of an EV fast-charging site hosting AI compute and a battery.

``import megapod_gym`` registers ``megapod_gym/MegapodSite-v0`` (and the soft-priority variant
``megapod_gym/MegapodSiteSoft-v0``, and the centralized fleet env ``megapod_gym/MegapodFleet-v0``)
when gymnasium is installed. Configuration helpers load on first
use, so the NumPy-only modules (``observation``, ``action``) import without pydantic or gymnasium.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ConfigError": "megapod_gym.config",
    "ScenarioConfig": "megapod_gym.config",
    "load_scenario": "megapod_gym.config",
    "scenario_names": "megapod_gym.config",
}
ENV_ID = "megapod_gym/MegapodSite-v0"
SOFT_ENV_ID = "megapod_gym/MegapodSiteSoft-v0"
FLEET_ENV_ID = "megapod_gym/MegapodFleet-v0"
__all__ = ["ENV_ID", "FLEET_ENV_ID", "SOFT_ENV_ID", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'megapod_gym' has no attribute {name!r}")


try:
    import gymnasium  # noqa: F401
except ImportError:  # the NumPy-only parts (e.g. an exported controller) work without it
    pass
else:
    from megapod_gym.registration import register_envs

    register_envs()
