"""The trained fleet policy: global-greedy with a battery policy shared by every site."""

from __future__ import annotations

import numpy as np
import pytest

from agents.evaluation.fleet import fleet_for_eval, run_fleet_policy
from agents.evaluation.rollout import eval_seeds
from agents.policies.fleet_battery import (
    N_OUTPUTS,
    LearnedBatteryGlobalGreedy,
    is_learned_battery_run,
    load_learned_battery,
    n_inputs,
    save_learned_battery,
)
from agents.policies.fleet_rules import FleetPolicyContext, GlobalGreedy
from megapod_gym.envs.fleet_env import MegapodFleetEnv


def _reset(policy, env: MegapodFleetEnv, seed: int = 3) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    policy.reset(FleetPolicyContext(env, env.fleet_sim.trace))
    return obs


def _n_in(env: MegapodFleetEnv) -> int:
    return n_inputs(env.interface.site_obs_size, env.interface.global_obs_size)


def test_zero_weights_are_global_greedy_step_for_step() -> None:
    cfg = fleet_for_eval("tri-tz-3site", 0.25)
    env_a, env_b = MegapodFleetEnv(cfg), MegapodFleetEnv(cfg)
    gg, res = GlobalGreedy(), LearnedBatteryGlobalGreedy()
    obs_a, obs_b = _reset(gg, env_a), _reset(res, env_b)
    for _ in range(env_a.fleet_sim.n_steps):
        a, b = gg.act(obs_a[None]), res.act(obs_b[None])
        np.testing.assert_array_equal(a, b)
        obs_a, _, _, done, _ = env_a.step(a[0])
        obs_b, _, _, _, _ = env_b.step(b[0])
        if done:
            break
    seeds = eval_seeds(2)
    p_gg = [r["profit_usd"] for r in run_fleet_policy(GlobalGreedy(), cfg, seeds)]
    p_res = [r["profit_usd"] for r in run_fleet_policy(LearnedBatteryGlobalGreedy(), cfg, seeds)]
    assert p_gg == p_res


def test_one_weight_set_serves_fleets_of_any_size_and_drives_only_the_batteries() -> None:
    env3 = MegapodFleetEnv(fleet_for_eval("tri-tz-3site", 0.25))
    env20 = MegapodFleetEnv(fleet_for_eval("fleet-20site", 0.25))
    assert _n_in(env3) == _n_in(env20)
    w = np.zeros((_n_in(env3), N_OUTPUTS))
    price = env3.interface.site_feature_names.index("price_usd_per_kwh")
    w[price, 0], w[-1, 0] = 2.0, -0.1  # dearer power: discharge
    for env in (env3, env20):
        base, learned = GlobalGreedy(), LearnedBatteryGlobalGreedy(w)
        obs = _reset(base, env)
        learned.reset(FleetPolicyContext(env, env.fleet_sim.trace))
        a, b = base.act(obs[None])[0], learned.act(obs[None])[0]
        K = env.n_sites
        site_a, site_b = a[: 2 * K].reshape(K, 2), b[: 2 * K].reshape(K, 2)
        np.testing.assert_array_equal(site_a[:, 1], 0.0)  # global-greedy: batteries idle
        scaled_price = obs[: K * env.interface.site_obs_size].reshape(K, -1)[:, price]
        np.testing.assert_allclose(site_b[:, 1], np.tanh(2.0 * scaled_price - 0.1), rtol=1e-6)
        np.testing.assert_array_equal(site_a[:, 0], site_b[:, 0])  # compute unchanged
        np.testing.assert_array_equal(a[2 * K :], b[2 * K :])  # dispatch unchanged
        assert env.action_space.contains(b.astype(np.float32))


def test_bad_weights_are_refused_with_the_expected_shape() -> None:
    env = MegapodFleetEnv(fleet_for_eval("tri-tz-3site", 0.25))
    with pytest.raises(ValueError, match=r"shape \(38, 1\)"):
        _reset(LearnedBatteryGlobalGreedy(np.zeros((10, 1))), env)
    with pytest.raises(ValueError, match="NaN"):
        LearnedBatteryGlobalGreedy(np.full((38, 1), np.nan))


def test_saved_weights_load_back(tmp_path) -> None:
    w = np.random.default_rng(0).normal(size=(38, 1))
    save_learned_battery(w, "tri-tz-3site", tmp_path / "run", seed=1)
    assert is_learned_battery_run(tmp_path / "run") and not is_learned_battery_run(tmp_path)
    np.testing.assert_array_equal(load_learned_battery(tmp_path / "run").weights, w)
    with pytest.raises(FileNotFoundError, match="fleet_policy.npz"):
        load_learned_battery(tmp_path)
