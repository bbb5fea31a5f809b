"""The centralized fleet Gymnasium env (megapod_gym.envs.fleet_env): checkers, registration,
determinism per seed, observation bounds and unseeded resets."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from megapod_gym import FLEET_ENV_ID
from megapod_gym.envs.fleet_env import MegapodFleetEnv

FLEET = "tri-tz-3site"
SHORT = {"episode.days": 0.25}  # 72 five-minute steps
IGNORABLE = (DeprecationWarning, PendingDeprecationWarning, ResourceWarning)


def rollout(env: gym.Env, seed: int, actions: np.ndarray) -> list[tuple]:
    obs, info = env.reset(seed=seed)
    traj: list[tuple] = [(obs, None, False, False)]
    for a in actions:
        obs, rew, term, trunc, _ = env.step(a)
        traj.append((obs, rew, term, trunc))
        if term or trunc:
            break
    return traj


# ------------------------------------------------------------------------------- checkers
def test_gymnasium_and_sb3_checkers_pass() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(FLEET_ENV_ID, fleet=FLEET, fleet_overrides=SHORT)
        gym_check_env(env.unwrapped)
        sb3_check_env(MegapodFleetEnv(FLEET, fleet_overrides=SHORT), warn=True)
    complaints = [str(w.message) for w in caught if not issubclass(w.category, IGNORABLE)]
    assert not complaints, complaints


def test_gym_make_the_registered_id() -> None:
    env = gym.make(FLEET_ENV_ID, fleet=FLEET)
    base = env.unwrapped
    assert isinstance(base, MegapodFleetEnv)
    assert base.fleet_config.name == FLEET
    K = base.n_sites
    assert K == 3
    assert env.action_space.shape == (3 * K + 1,)
    assert env.observation_space.shape == (K * 31 + 6,)
    assert len(base.observation_names) == env.observation_space.shape[0]
    assert len(base.action_names) == env.action_space.shape[0]
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["trace_seed"] == 0 and info["site_names"] == base.site_names
    env.close()


# ---------------------------------------------------------------------------- determinism
def test_same_seed_and_actions_give_identical_rollouts() -> None:
    env_a = MegapodFleetEnv(FLEET, fleet_overrides=SHORT)
    env_b = MegapodFleetEnv(FLEET, fleet_overrides=SHORT)
    n = env_a.fleet_sim.n_steps
    actions = np.random.default_rng(4).uniform(-1, 1, (n, env_a.action_space.shape[0]))
    actions = actions.astype(np.float32)
    a = rollout(env_a, 9, actions)
    b = rollout(env_b, 9, actions)
    c = rollout(env_a, 9, actions)  # the same env re-used after an episode
    assert len(a) == n + 1 and a[-1][3] is True
    for x, y, z in zip(a, b, c):
        assert np.array_equal(x[0], y[0]) and np.array_equal(x[0], z[0])
        assert x[1:] == y[1:] == z[1:]
    d = rollout(env_b, 10, actions)
    assert not np.array_equal(d[1][0], a[1][0])


# ----------------------------------------------------------------------- observation bounds
@pytest.mark.parametrize("seed", [0, 1])
def test_observations_finite_and_inside_the_box_over_an_episode(seed: int) -> None:
    env = MegapodFleetEnv(FLEET)
    space = env.observation_space
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    steps = 0
    while True:
        assert obs.dtype == np.float32 and obs.shape == space.shape
        assert np.isfinite(obs).all()
        assert space.contains(obs)
        obs, rew, term, trunc, info = env.step(env.action_space.sample())
        assert np.isfinite(rew)
        assert not term
        steps += 1
        if trunc:
            break
    assert np.isfinite(obs).all() and space.contains(obs)
    assert steps == env.fleet_sim.n_steps
    assert "episode_kpis" in info


def test_unseeded_reset_draws_a_trace_seed_below_one_million() -> None:
    env = MegapodFleetEnv(FLEET, fleet_overrides=SHORT)
    seeds = [env.reset()[1]["trace_seed"] for _ in range(5)]
    assert all(0 <= s < 1_000_000 for s in seeds)
    assert len(set(seeds)) > 1
    env.reset(seed=3)
    follow = [env.reset()[1]["trace_seed"] for _ in range(3)]
    env.reset(seed=3)
    assert [env.reset()[1]["trace_seed"] for _ in range(3)] == follow
