"""Scenario configuration: typed schema, YAML presets, composition and overrides."""

from megapod_gym.config.loading import (
    DEFAULT_SCENARIO,
    ConfigError,
    load_scenario,
    preset_root,
    scenario_names,
)
from megapod_gym.config.schema import ScenarioConfig

__all__ = [
    "DEFAULT_SCENARIO",
    "ConfigError",
    "ScenarioConfig",
    "load_scenario",
    "preset_root",
    "scenario_names",
]
