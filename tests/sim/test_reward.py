"""The reward composer: default weights reproduce the pre-composer reward exactly (returns computed
by the code before it, committed here), and a weight changes exactly its term's share."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import megapod_gym  # noqa: F401 - registers the ids
from megapod_gym.config import ConfigError, load_scenario
from megapod_gym.sim import layout as L
from megapod_gym.sim.reward import LEDGER_SIGNS, RewardComposer

# episode returns of a fixed action sequence, computed with the reward code before the composer
# (reward = total_usd x scale) at commit 30b2788
BEFORE = {
    ("urban-12stall-bev", 0): 206.32889142709254,
    ("urban-12stall-bev", 7): 212.2103727496765,
    ("ercot-rt-summer", 0): 217.7864701968665,
    ("ercot-rt-summer", 7): 239.4927864841018,
}


def _episode(scenario: str, seed: int, overrides: dict | None = None) -> tuple[float, list[dict]]:
    env = gym.make(
        "megapod_gym/MegapodSite-v0", scenario=scenario, config_overrides=overrides or {}
    )
    env.reset(seed=seed)
    total, infos, k = 0.0, [], 0
    while True:
        action = np.array([np.sin(k / 10), np.cos(k / 7)], dtype=np.float32)
        _, r, terminated, truncated, info = env.step(action)
        total += r
        infos.append(info)
        k += 1
        if terminated or truncated:
            return total, infos


@pytest.mark.parametrize("key", sorted(BEFORE))
def test_default_reward_is_unchanged(key: tuple[str, int]) -> None:
    total, _ = _episode(*key)
    assert total == BEFORE[key]  # exact: the default path is the ledger total x scale


def test_a_weight_changes_only_its_term() -> None:
    base, infos = _episode("urban-12stall-bev", 0)
    weighted, _ = _episode("urban-12stall-bev", 0, {"reward.weights": {"energy_cost_usd": 2.0}})
    energy = sum(i["energy_cost_usd"] for i in infos)
    assert weighted == pytest.approx(base - 0.01 * energy, rel=1e-9)


def test_signed_terms_sum_to_the_total() -> None:
    rng = np.random.default_rng(0)
    out = rng.normal(size=(5, L.N_OUT))
    out[:, L.O_TOTAL_USD] = sum(s * out[:, L.OUT_INDEX[k]] for k, s in LEDGER_SIGNS.items())
    explicit = RewardComposer(0.01, {"energy_cost_usd": 1.0 + 1e-12})  # forces the weighted sum
    np.testing.assert_allclose(explicit(out), RewardComposer(0.01)(out), rtol=1e-9)


@pytest.mark.parametrize(
    "weights, match",
    [({"nope_usd": 1.0}, "unknown ledger terms"), ({"wait_penalty_usd": float("nan")}, "weights")],
)
def test_bad_weights_are_refused(weights: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_scenario(None, {"reward.weights": weights})
