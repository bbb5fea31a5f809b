"""The native batched vector environment (megapod_gym.envs.vector_env): equivalence with single
envs across episode boundaries, NEXT_STEP autoreset, ``make_vec`` and the info format."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from megapod_gym import ENV_ID, SOFT_ENV_ID
from megapod_gym.envs.site_env import MegapodSiteEnv
from megapod_gym.envs.vector_env import MegapodVectorEnv
from megapod_gym.sim import layout as L

SHORT = {"episode.days": 0.25}  # 72 steps: cross episode boundaries quickly


def single_envs(n: int, mode: str) -> list[MegapodSiteEnv]:
    return [MegapodSiteEnv(config_overrides={**SHORT, "ev_priority": mode}) for _ in range(n)]


@pytest.mark.parametrize("mode", ["strict", "soft"])
def test_sub_envs_equal_single_envs_across_episode_boundaries(mode: str) -> None:
    """Sub-env i == MegapodSiteEnv reset with seed s + i, then reset without a seed after each
    truncation (NEXT_STEP: the step after the last one resets and ignores its action)."""
    n, seed = 3, 100
    venv = MegapodVectorEnv(n, config_overrides={**SHORT, "ev_priority": mode})
    singles = single_envs(n, mode)
    obs, info = venv.reset(seed=seed)
    s_obs, s_info = zip(*[e.reset(seed=seed + i) for i, e in enumerate(singles)])
    np.testing.assert_array_equal(obs, np.stack(s_obs))
    for i in range(n):
        for k, v in s_info[i].items():
            assert info[k][i] == v, (k, i)
    rng = np.random.default_rng(0)
    T = venv.sim.n_steps
    pending_reset = [False] * n
    boundaries = 0
    for t in range(2 * T + 5):  # two full episodes and the start of a third
        actions = rng.uniform(-1.3, 1.3, venv.action_space.shape).astype(np.float32)
        obs, rew, term, trunc, info = venv.step(actions)
        for i, env in enumerate(singles):
            if pending_reset[i]:
                o, inf = env.reset()
                r, te, tr = 0.0, False, False
                pending_reset[i] = False
                boundaries += 1
            else:
                o, r, te, tr, inf = env.step(actions[i])
                pending_reset[i] = tr
            np.testing.assert_array_equal(obs[i], o, err_msg=f"t={t} i={i}")
            assert rew[i] == r and term[i] == te and trunc[i] == tr, (t, i)
            for k, v in inf.items():
                assert info[k][i] == v, (t, i, k)
    assert boundaries == 2 * n


def test_autoreset_metadata_and_next_step_behaviour() -> None:
    assert MegapodVectorEnv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    venv = MegapodVectorEnv(2, config_overrides=SHORT)
    venv.reset(seed=0)
    zeros = np.zeros(venv.action_space.shape, np.float32)
    for t in range(72):
        obs, rew, term, trunc, info = venv.step(zeros)
        assert not term.any()
        assert trunc.all() == (t == 71) and trunc.any() == (t == 71)
    assert list(venv.sim.t) == [72, 72]
    # the next step resets: action ignored, reward 0, flags false, observation of a new episode
    obs, rew, term, trunc, info = venv.step(np.full(venv.action_space.shape, 0.9, np.float32))
    assert list(venv.sim.t) == [0, 0]
    np.testing.assert_array_equal(rew, 0.0)
    assert not term.any() and not trunc.any()
    np.testing.assert_array_equal(info["grid_import_kw"], 0.0)
    np.testing.assert_array_equal(info["action_clipped"], 0)
    np.testing.assert_array_equal(info["step"], 0)
    assert venv.encoder.decode(obs, "time_of_day_cos") == pytest.approx(1.0)  # midnight again
    obs, rew, term, trunc, info = venv.step(zeros)
    assert list(venv.sim.t) == [1, 1] and np.all(rew != 0.0)


def test_reset_with_none_seed_continues_each_sub_envs_stream() -> None:
    """``seed=[None, 6]``: sub-env 1 restarts on seed 6; sub-env 0 draws its next day from the
    stream its earlier seed (5) started, as ``MegapodSiteEnv.reset()`` would."""
    venv = MegapodVectorEnv(2, config_overrides=SHORT)
    venv.reset(seed=[5, 9])
    obs, _ = venv.reset(seed=[None, 6])
    ref0 = MegapodSiteEnv(config_overrides=SHORT)
    ref0.reset(seed=5)
    o0, _ = ref0.reset()
    o1, _ = MegapodSiteEnv(config_overrides=SHORT).reset(seed=6)
    np.testing.assert_array_equal(obs[0], o0)
    np.testing.assert_array_equal(obs[1], o1)
    assert venv.sim.seeds[0] == ref0.trace.seeds[0] != 5


def test_reset_seed_forms() -> None:
    venv = MegapodVectorEnv(3)
    a, _ = venv.reset(seed=10)
    b, _ = venv.reset(seed=[10, 11, 12])
    np.testing.assert_array_equal(a, b)
    assert list(venv.sim.seeds) == [10, 11, 12]
    with pytest.raises(ValueError, match="3 envs"):
        venv.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="options"):
        venv.reset(seed=0, options={"trace_seed": 1})


def test_errors() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        MegapodVectorEnv(0)
    with pytest.raises(ValueError, match="render"):
        MegapodVectorEnv(2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="info_keys"):
        MegapodVectorEnv(2, info_keys=["no_such_key"])
    venv = MegapodVectorEnv(2)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros((2, 2), np.float32))
    venv.reset(seed=0)
    bad = np.zeros((2, 2), np.float32)
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        venv.step(bad)
    assert list(venv.sim.t) == [0, 0]
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((3, 2), np.float32))


def test_make_vec_returns_the_native_vector_env() -> None:
    venv = gym.make_vec(ENV_ID, num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(venv, MegapodVectorEnv)
    assert venv.num_envs == 4
    obs, info = venv.reset(seed=0)
    assert obs.shape == (4, len(L.MEAS_FIELDS)) and obs.dtype == np.float32
    assert venv.observation_space.contains(obs)
    assert venv.single_action_space.shape == (2,)
    assert venv.action_space.shape == (4, 2)
    soft = gym.make_vec(
        SOFT_ENV_ID, num_envs=2, vectorization_mode="vector_entry_point",
        scenario="caiso-rt-spring",
    )  # fmt: skip
    assert isinstance(soft, MegapodVectorEnv)
    assert soft.single_action_space.shape == (3,)
    assert soft.config.name == "caiso-rt-spring" and soft.config.ev_priority == "soft"


def test_infos_are_dicts_of_arrays_with_masks() -> None:
    venv = MegapodVectorEnv(3)
    _, info0 = venv.reset(seed=1)
    _, _, _, _, info = venv.step(venv.action_space.sample())
    assert set(info) == set(info0)
    keys = [k for k in info if not k.startswith("_")]
    assert set(L.OUT_FIELDS) <= set(keys)
    assert {"action_clipped", "cars_arrived", "mean_wait_min", "step"} <= set(keys)
    for k in keys:
        assert isinstance(info[k], np.ndarray) and info[k].shape == (3,), k
        mask = info["_" + k]
        assert mask.dtype == np.bool_ and mask.shape == (3,) and mask.all(), k
    assert len(info) == 2 * len(keys)


def test_info_keys_subset() -> None:
    venv = MegapodVectorEnv(2, info_keys=["grid_import_kw", "total_usd"])
    venv.reset(seed=0)
    _, rew, _, _, info = venv.step(venv.action_space.sample())
    assert "ev_kw" not in info and "grid_import_kw" in info
    np.testing.assert_allclose(rew, info["total_usd"] * venv.reward_scale)


def test_vector_env_observations_stay_in_space_with_extreme_actions() -> None:
    venv = MegapodVectorEnv(4, scenario="ercot-rt-summer", config_overrides=SHORT)
    venv.reset(seed=3)
    rng = np.random.default_rng(5)
    for _ in range(80):
        a = rng.choice([-1e6, -1.0, 0.0, 1.0, 1e6], size=venv.action_space.shape).astype(np.float32)
        obs, rew, term, trunc, info = venv.step(a)
        assert venv.observation_space.contains(obs)
        assert np.isfinite(rew).all()
        assert np.all(info["grid_import_kw"] <= venv.config.grid.import_limit_kw + 1e-6)
        active = info["step"] > 0
        np.testing.assert_array_equal(
            info["action_clipped"][active], (np.abs(a) > 1).sum(axis=1)[active]
        )


def test_nan_action_error_names_the_env_indices_not_the_batch() -> None:
    from megapod_gym.envs.vector_env import MegapodVectorEnv

    venv = MegapodVectorEnv(num_envs=256, info_keys=())
    venv.reset(seed=0)
    action = np.zeros((256, 2), np.float32)
    action[[3, 200], 1] = np.nan
    with pytest.raises(ValueError) as err:
        venv.step(action)
    msg = str(err.value)
    assert "env(s) [3, 200]" in msg and len(msg) < 200
    action[:, 0] = np.inf
    with pytest.raises(ValueError, match=r"env\(s\) \[0, 1, 2, 3, 4, \.\.\. \(256 in all\)\]"):
        venv.step(action)
    venv.close()
