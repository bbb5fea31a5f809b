"""Fuzzing the scenario config: every malformed value is either refused by validation with a short
message naming the field, or gives an environment whose observations, rewards and info are finite.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from megapod_gym.config import ConfigError, load_scenario
from megapod_gym.envs.site_env import MegapodSiteEnv
from megapod_gym.scenario.replay import ReplayError

BAD_VALUES: tuple[Any, ...] = (
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    10**400,
    1e12,
    -1.0,
    0,
    True,
    "0.5",
    None,
    [],
    [math.nan],
    {"x": 1},
)


def leaves(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted paths of every scalar or list leaf of a dumped config."""
    out: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            out += leaves(v, f"{prefix}{k}.")
    else:
        out.append((prefix[:-1], data))
    return out


def cases(n: int, seed: int = 0) -> list[tuple[str, Any]]:
    base = load_scenario("urban-12stall-bev").model_dump(mode="python")
    paths = [p for p, v in leaves(base) if p not in ("name", "description")]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(paths), n), rng.integers(0, len(BAD_VALUES), n)
    return [(paths[i], BAD_VALUES[j]) for i, j in zip(*picks)]


def finite_info(info: dict[str, Any]) -> bool:
    for v in info.values():
        if isinstance(v, (float, np.floating)) and not math.isfinite(v):
            return False
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.isfinite(v).all():
            return False
    return True


@pytest.mark.slow
def test_malformed_values_are_refused_or_harmless() -> None:
    refused = accepted = 0
    for path, value in cases(1000):
        try:
            config = load_scenario("urban-12stall-bev", {path: value, "episode.days": 0.25})
        except ConfigError as exc:
            refused += 1
            msg = str(exc)
            assert path.split(".")[0] in msg or "<root>" in msg, (path, value, msg)
            assert len(msg) < 1500, (path, value, len(msg))
            continue
        try:
            env = MegapodSiteEnv(config)
        except ReplayError as exc:  # a replay file that does not exist: named, refused
            refused += 1
            assert str(value) in str(exc)
            continue
        accepted += 1
        obs, info = env.reset(seed=1)
        rng = np.random.default_rng(0)
        assert np.isfinite(obs).all(), (path, value)
        for _ in range(72):
            obs, reward, term, trunc, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
            assert np.isfinite(obs).all() and math.isfinite(reward), (path, value)
            assert finite_info(info), (path, value)
            if term or trunc:
                break
    assert refused > 0 and accepted > 0
