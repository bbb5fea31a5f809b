"""Fixtures shared across the test packages (each built once per session: configs are frozen,
samplers hold no state between calls)."""

from __future__ import annotations

import pytest

from megapod_gym.config import ScenarioConfig, load_scenario
from megapod_gym.scenario.trace import TraceSampler


@pytest.fixture(scope="session")
def default_config() -> ScenarioConfig:
    """The default scenario (urban-12stall-bev), one full day."""
    return load_scenario()


@pytest.fixture(scope="session")
def default_sampler(default_config: ScenarioConfig) -> TraceSampler:
    """Trace sampler of the default scenario."""
    return TraceSampler(default_config)
