"""Evaluation runner and the normalized score."""

from __future__ import annotations

import numpy as np
import pytest

from agents.evaluation.rollout import EVAL_SEED_BASE, TRAIN_SEED_LIMIT, eval_seeds, run_policy
from agents.evaluation.score import bootstrap_ci, mean_ci, normalized_score
from agents.policies.base import PolicyContext
from agents.policies.rules import CarsFirstGreedy
from megapod_gym.config import load_scenario
from megapod_gym.envs.site_env import MegapodSiteEnv


def test_normalized_score_anchors() -> None:
    g = np.array([100.0, 200.0])
    o = np.array([110.0, 220.0])
    assert normalized_score(g, g, o) == 0.0
    assert normalized_score(o, g, o) == 100.0
    assert normalized_score(np.array([105.0, 210.0]), g, o) == pytest.approx(50.0)
    # aggregated before dividing: a quiet day (optimum == greedy) does not blow up
    assert normalized_score(
        np.array([105.0, 200.0]), np.array([100.0, 200.0]), np.array([110.0, 200.0])
    ) == pytest.approx(50.0)
    assert np.isnan(normalized_score(g, g, g))


def test_bootstrap_ci_brackets_the_score() -> None:
    rng = np.random.default_rng(0)
    g = rng.uniform(100, 200, 20)
    o = g + rng.uniform(5, 15, 20)
    p = g + 0.6 * (o - g) + rng.normal(0, 1, 20)
    lo, hi = bootstrap_ci(p, g, o)
    assert lo < normalized_score(p, g, o) < hi


def test_mean_ci() -> None:
    m, h = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert m == 2.0 and h == pytest.approx(4.303 * 1.0 / np.sqrt(3))


def test_eval_seeds_are_held_out() -> None:
    seeds = eval_seeds(5)
    assert seeds[0] == EVAL_SEED_BASE and min(seeds) >= TRAIN_SEED_LIMIT
    with pytest.raises(ValueError):
        eval_seeds(0)


def test_run_policy_matches_a_manual_env_loop() -> None:
    cfg = load_scenario(None, {"episode.days": 0.5})
    seeds = [EVAL_SEED_BASE, EVAL_SEED_BASE + 1]
    rows = run_policy(CarsFirstGreedy(), cfg, seeds).rows
    for seed, row in zip(seeds, rows):
        env = MegapodSiteEnv(cfg)
        obs, _ = env.reset(seed=seed)
        policy = CarsFirstGreedy()
        policy.reset(PolicyContext.for_trace(cfg, env.trace))
        profit, done = 0.0, False
        while not done:
            obs, _, term, trunc, info = env.step(policy.act(obs[None])[0])
            profit += info["total_usd"]
            done = term or trunc
        assert row["seed"] == seed
        assert row["profit_usd"] == pytest.approx(profit, rel=1e-12)
        assert row["cars_served"] == info["cars_served"]
