"""Fixtures of the training tests: short episodes keep SB3 runs to seconds."""

from __future__ import annotations

import pytest

from megapod_gym.config import ScenarioConfig, load_scenario

QUARTER_DAY = {"episode.days": 0.25}


@pytest.fixture(scope="session")
def config() -> ScenarioConfig:
    """The default site on quarter-day episodes."""
    return load_scenario("urban-12stall-bev", QUARTER_DAY)
