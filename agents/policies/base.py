"""The one interface every acting thing implements: baselines, the oracle, MPC, SB3 models and
exported controllers all run through the same evaluation code.

A policy sees batched observations ``[B, F]`` (one row per site) and returns actions ``[B, n]`` in
[-1, 1], exactly what the environment takes. ``reset(context)`` is called at the start of every
batch of episodes with what a policy may know beforehand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from megapod_gym.action import ActionDecoder
from megapod_gym.config import ScenarioConfig
from megapod_gym.envs.site_env import make_decoder, make_encoder
from megapod_gym.observation import ObservationEncoder
from megapod_gym.scenario.trace import ExogenousTrace


@dataclass(frozen=True)
class PolicyContext:
    """What a policy is told at reset.

    ``trace`` holds the episodes' exogenous inputs (one row per site). Causal policies must only
    read forecast fields from it (``price_forecast_usd_per_kwh``, ``arrival_rate_per_h``,
    calendar fields); only the hindsight oracle reads the realized inputs.
    """

    config: ScenarioConfig
    trace: ExogenousTrace
    encoder: ObservationEncoder
    decoder: ActionDecoder

    @property
    def batch_size(self) -> int:
        return self.trace.batch_size

    @staticmethod
    def for_trace(config: ScenarioConfig, trace: ExogenousTrace) -> PolicyContext:
        return PolicyContext(config, trace, make_encoder(config), make_decoder(config))


@runtime_checkable
class Policy(Protocol):
    """Anything that maps observations to actions."""

    name: str

    def reset(self, context: PolicyContext) -> None:
        """Start a batch of episodes (one per trace row)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions ``[B, n]`` in [-1, 1] for observations ``[B, F]``."""
