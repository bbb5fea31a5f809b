"""The PettingZoo fleet env (megapod_gym.envs.fleet_parallel): API test, agents and spaces,
determinism, agreement with the centralized env, episode end and action validation."""

from __future__ import annotations

import importlib
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test  # noqa: E402

from megapod_gym.envs.fleet_env import MegapodFleetEnv  # noqa: E402
from megapod_gym.envs.fleet_parallel import (  # noqa: E402
    DISPATCHER,
    MegapodFleetParallelEnv,
    parallel_env,
)
from megapod_gym.fleet.simulator import FLEET_INDEX  # noqa: E402

FLEET = "tri-tz-3site"
SHORT = {"episode.days": 0.25}  # 72 five-minute steps


def make(**overrides) -> MegapodFleetParallelEnv:
    return MegapodFleetParallelEnv(FLEET, fleet_overrides={**SHORT, **overrides})


def random_actions(env: MegapodFleetParallelEnv, seed: int, n_steps: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            a: rng.uniform(-1.0, 1.0, env.action_space(a).shape).astype(np.float32)
            for a in env.possible_agents
        }
        for _ in range(n_steps)
    ]


def rollout(env: MegapodFleetParallelEnv, seed: int, actions: list[dict]) -> list[tuple]:
    obs, infos = env.reset(seed=seed)
    traj: list[tuple] = [(obs, None, None, None)]
    for act in actions:
        obs, rew, term, trunc, _ = env.step(act)
        traj.append((obs, rew, term, trunc))
        if not env.agents:
            break
    return traj


# ------------------------------------------------------------------------------- API test
def test_parallel_api_test_passes_through_the_episode_end() -> None:
    env = parallel_env(fleet=FLEET, fleet_overrides=SHORT)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(env, num_cycles=env.fleet_sim.n_steps + 10)
    ignorable = (DeprecationWarning, PendingDeprecationWarning, ResourceWarning)
    complaints = [str(w.message) for w in caught if not issubclass(w.category, ignorable)]
    assert not complaints, complaints
    assert env.agents == []


def test_parallel_api_test_on_the_full_day_preset() -> None:
    env = parallel_env(fleet=FLEET)
    parallel_api_test(env, num_cycles=50)


def test_agents_spaces_and_metadata() -> None:
    env = make()
    K = env.n_sites
    assert K == 3
    assert env.metadata["name"] == "megapod_fleet_v0"
    assert env.possible_agents == [f"site_{k}" for k in range(K)] + ["dispatcher"]
    assert env.agents == []  # no live agents before reset
    iface = env.interface
    for a in env.possible_agents:
        assert env.observation_space(a) is env.observation_space(a)
        assert env.action_space(a) is env.action_space(a)
    site_obs = iface.site_obs_size + iface.global_obs_size
    for k in range(K):
        space = env.observation_space(f"site_{k}")
        assert space.shape == (site_obs,) and space.dtype == np.float32
        assert space.low.min() == -10.0 and space.high.max() == 10.0
        act = env.action_space(f"site_{k}")
        assert act.shape == (2,) and act.low.min() == -1.0 and act.high.max() == 1.0
        assert len(env.observation_names(f"site_{k}")) == site_obs
    centralized = MegapodFleetEnv(FLEET, fleet_overrides=SHORT)
    assert env.observation_space(DISPATCHER) == centralized.observation_space
    assert env.action_space(DISPATCHER).shape == (K + 1,)
    assert env.observation_names(DISPATCHER) == centralized.observation_names
    assert env.action_names(DISPATCHER)[-1] == "rebalance"


def test_observations_are_the_shared_interface_features() -> None:
    """A site agent sees its own site row + the global features; the dispatcher sees the
    centralized observation (all site rows + global), which is also ``state()``."""
    env = make()
    obs, infos = env.reset(seed=3)
    iface = env.interface
    n, g = iface.site_obs_size, iface.global_obs_size
    disp = obs[DISPATCHER]
    np.testing.assert_array_equal(disp, env.state())
    for k in range(env.n_sites):
        o = obs[f"site_{k}"]
        assert o.dtype == np.float32
        np.testing.assert_array_equal(o[:n], disp[k * n : (k + 1) * n])
        np.testing.assert_array_equal(o[n:], disp[-g:])
        assert infos[f"site_{k}"]["trace_seed"] == 3
        assert infos[f"site_{k}"]["site_name"] == env.site_names[k]
    assert infos[DISPATCHER]["site_names"] == env.site_names


# ---------------------------------------------------------------------------- determinism
def test_same_seed_same_rollout() -> None:
    env_a, env_b = make(), make()
    actions = random_actions(env_a, seed=11, n_steps=env_a.fleet_sim.n_steps)
    traj_a = rollout(env_a, 5, actions)
    traj_b = rollout(env_b, 5, actions)
    traj_c = rollout(env_a, 5, actions)  # the same env again after an episode
    assert len(traj_a) == env_a.fleet_sim.n_steps + 1
    for x, y, z in zip(traj_a, traj_b, traj_c):
        for agent in x[0]:
            np.testing.assert_array_equal(x[0][agent], y[0][agent])
            np.testing.assert_array_equal(x[0][agent], z[0][agent])
        assert x[1:] == y[1:] == z[1:]
    other = rollout(make(), 6, actions)
    assert not np.array_equal(other[1][0][DISPATCHER], traj_a[1][0][DISPATCHER])


def test_unseeded_reset_draws_a_trace_seed_below_the_held_out_range() -> None:
    env = make()
    seeds = {env.reset()[1][DISPATCHER]["trace_seed"] for _ in range(5)}
    assert all(0 <= s < 1_000_000 for s in seeds)
    assert len(seeds) > 1
    # a seeded reset fixes the stream of later unseeded resets
    env.reset(seed=1)
    first = [env.reset()[1][DISPATCHER]["trace_seed"] for _ in range(3)]
    env.reset(seed=1)
    assert [env.reset()[1][DISPATCHER]["trace_seed"] for _ in range(3)] == first
    _, infos = env.reset(options={"trace_seed": 42})
    assert infos[DISPATCHER]["trace_seed"] == 42


# ---------------------------------------------------------------- cross-check: centralized
@pytest.mark.parametrize("seed", [0, 7])
def test_dispatcher_reward_equals_the_centralized_reward(seed: int) -> None:
    """The same actions and seed give the same fleet step in both interfaces: the dispatcher's
    reward is the centralized env's reward, its observation the centralized observation, and
    the site rewards are the sites' net_usd x their reward scale."""
    par = make()
    cen = MegapodFleetEnv(FLEET, fleet_overrides=SHORT)
    K = par.n_sites
    actions = random_actions(par, seed=100 + seed, n_steps=par.fleet_sim.n_steps)
    obs_p, _ = par.reset(seed=seed)
    obs_c, _ = cen.reset(seed=seed)
    np.testing.assert_array_equal(obs_p[DISPATCHER], obs_c)
    total_dispatch = 0.0
    for t, act in enumerate(actions):
        flat = np.concatenate(
            [np.concatenate([act[f"site_{k}"] for k in range(K)]), act[DISPATCHER]]
        )
        obs_p, rew_p, term_p, trunc_p, info_p = par.step(act)
        obs_c, rew_c, term_c, trunc_c, info_c = cen.step(flat)
        assert rew_p[DISPATCHER] == pytest.approx(rew_c, rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(obs_p[DISPATCHER], obs_c)
        net = info_c["net_usd"]
        for k in range(K):
            scale = par.fleet_sim.site_configs[k].reward.scale
            assert rew_p[f"site_{k}"] == pytest.approx(net[k] * scale, rel=1e-12, abs=1e-12)
            assert info_p[f"site_{k}"]["net_usd"] == net[k]
        assert info_p[DISPATCHER]["fleet_total_usd"] == info_c["fleet_total_usd"]
        assert all(v is False for v in term_p.values()) and term_c is False
        assert all(v is trunc_c for v in trunc_p.values())
        total_dispatch += rew_p[DISPATCHER]
        if trunc_c:
            assert t == par.fleet_sim.n_steps - 1
            break
    assert par.agents == []
    assert total_dispatch == pytest.approx(
        par.fleet_sim.totals["fleet_total_usd"] * par.reward_scale, rel=1e-9
    )
    assert par.reward_scale == pytest.approx(0.01 / K)


def test_site_rewards_sum_to_the_fleet_total_without_pool_losses() -> None:
    env = make()
    env.reset(seed=2)
    scale = env.fleet_sim.site_configs[0].reward.scale
    act = {a: env.action_space(a).sample() * 0 for a in env.agents}
    _, rew, _, _, infos = env.step(act)
    assert all(c.reward.scale == scale for c in env.fleet_sim.site_configs)
    site_sum = sum(rew[f"site_{k}"] for k in range(env.n_sites)) / scale
    expected = env.fleet_sim.fleet_total_usd + infos[DISPATCHER]["pool_deadline_loss_usd"]
    assert site_sum == pytest.approx(expected, rel=1e-9, abs=1e-9)
    info = infos["site_0"]
    assert info["net_usd"] == pytest.approx(
        info["site/total_usd"] - info["migration_usd"] - info["deadline_loss_usd"]
    )
    assert env.fleet_sim.site_out[0, FLEET_INDEX["net_usd"]] == info["net_usd"]


# ----------------------------------------------------------------------------- episode end
def test_all_agents_truncate_together_and_leave() -> None:
    env = make()
    env.reset(seed=0)
    n = env.fleet_sim.n_steps
    for t in range(n):
        act = {a: env.action_space(a).sample() for a in env.agents}
        _, rew, term, trunc, infos = env.step(act)
        assert set(rew) == set(term) == set(trunc) == set(infos) == set(env.possible_agents)
        assert not any(term.values())
        if t < n - 1:
            assert not any(trunc.values()) and env.agents == env.possible_agents
    assert all(trunc.values())
    assert env.agents == []
    assert "episode_kpis" in infos[DISPATCHER]
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


# ------------------------------------------------------------------------ action errors
def test_missing_agent_action_names_the_agent() -> None:
    env = make()
    env.reset(seed=0)
    act = {a: env.action_space(a).sample() for a in env.agents}
    del act["site_1"]
    with pytest.raises(ValueError, match=r"missing for agent\(s\) site_1;"):
        env.step(act)
    act = {a: env.action_space(a).sample() for a in env.agents}
    del act[DISPATCHER]
    with pytest.raises(ValueError, match=r"missing for agent\(s\) dispatcher;"):
        env.step(act)
    act = {a: env.action_space(a).sample() for a in env.agents}
    act["site_9"] = np.zeros(2, dtype=np.float32)
    with pytest.raises(ValueError, match=r"unknown agent\(s\) site_9;"):
        env.step(act)
    assert env.fleet_sim.t == 0  # nothing was stepped


@pytest.mark.parametrize("agent", ["site_2", DISPATCHER])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_action_raises(agent: str, bad: float) -> None:
    env = make()
    env.reset(seed=0)
    act = {a: np.zeros(env.action_space(a).shape, dtype=np.float32) for a in env.agents}
    act[agent][0] = bad
    with pytest.raises(ValueError, match=f"{agent}.*NaN or infinite"):
        env.step(act)
    assert env.fleet_sim.t == 0


def test_wrong_shape_and_step_before_reset_raise() -> None:
    env = make()
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})
    env.reset(seed=0)
    act = {a: np.zeros(env.action_space(a).shape, dtype=np.float32) for a in env.agents}
    act["site_0"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match="site_0.*shape"):
        env.step(act)


def test_out_of_range_actions_are_clipped_and_counted() -> None:
    env = make()
    env.reset(seed=0)
    act = {a: np.zeros(env.action_space(a).shape, dtype=np.float32) for a in env.agents}
    act["site_0"] = np.array([3.0, -2.0], dtype=np.float32)
    act[DISPATCHER][-1] = 5.0
    _, _, _, _, infos = env.step(act)
    assert infos["site_0"]["action_clipped"] == 2
    assert infos["site_1"]["action_clipped"] == 0
    assert infos[DISPATCHER]["action_clipped"] == 1


def test_missing_pettingzoo_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pettingzoo", None)  # import pettingzoo -> ImportError
    monkeypatch.delitem(sys.modules, "megapod_gym.envs.fleet_parallel")
    with pytest.raises(ImportError, match=r'pip install "megapod-gym\[multiagent\]"'):
        importlib.import_module("megapod_gym.envs.fleet_parallel")
