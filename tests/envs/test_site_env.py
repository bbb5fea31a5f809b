"""The single-site Gymnasium environment (megapod_gym.envs.site_env): checkers, registration,
determinism, pickling, reset options, action handling, episode end and rendering."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import megapod_gym
from megapod_gym import ENV_ID, SOFT_ENV_ID
from megapod_gym.config import DEFAULT_SCENARIO, load_scenario, scenario_names
from megapod_gym.envs.site_env import MegapodSiteEnv, make_encoder
from megapod_gym.observation import CARBON_FEATURES, ObservationEncoder, carbon_measurements
from megapod_gym.registration import register_envs
from megapod_gym.scenario.trace import TraceSampler
from megapod_gym.sim import layout as L

MODES = ["strict", "soft"]


def make(scenario: str | None = None, mode: str = "strict", **kw) -> MegapodSiteEnv:
    return MegapodSiteEnv(scenario, config_overrides={"ev_priority": mode}, **kw)


def rollout(env: gym.Env, seed: int, actions: np.ndarray):
    obs, info = env.reset(seed=seed)
    traj = [(obs, None, False, False, info)]
    for a in actions:
        traj.append(env.step(a))
        if traj[-1][2] or traj[-1][3]:
            break
    return traj


def assert_same_transition(x, y) -> None:
    assert np.array_equal(x[0], y[0])
    assert x[1] == y[1] and x[2] == y[2] and x[3] == y[3]
    assert x[4] == y[4]


# ------------------------------------------------------------------------------- checkers
@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", scenario_names())
def test_gymnasium_and_sb3_checkers_pass(name: str, mode: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(ENV_ID, scenario=name, config_overrides={"ev_priority": mode})
        # with a spec the checker also re-makes the env in every render mode; rendering is
        # scenario-independent (and slow on matplotlib), so it is checked on the default only
        gym_check_env(env.unwrapped, skip_render_check=name != DEFAULT_SCENARIO)
        sb3_check_env(make(name, mode), warn=True)
    ignorable = (DeprecationWarning, PendingDeprecationWarning, ResourceWarning)
    complaints = [str(w.message) for w in caught if not issubclass(w.category, ignorable)]
    assert not complaints, complaints
    assert env.unwrapped.config.name == name
    assert env.action_space.shape == ((3,) if mode == "soft" else (2,))


# --------------------------------------------------------------------------- registration
@pytest.mark.slow
def test_make_in_a_fresh_process_without_importing_the_package(tmp_path) -> None:
    """``gym.make("megapod_gym:megapod_gym/MegapodSite-v0")`` imports and registers the package in
    a fresh interpreter, from an unrelated working directory (the default scenario is embedded);
    the plain ids then work too. (Gymnasium 1.x loads no plugin entry points, so the plain id
    alone needs ``import megapod_gym`` first.)"""
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'megapod_gym' not in sys.modules\n"
        "env = gym.make('megapod_gym:megapod_gym/MegapodSite-v0')\n"
        "obs, _ = env.reset(seed=0)\n"
        "obs, r, term, trunc, info = env.step(env.action_space.sample())\n"
        "print(type(env.unwrapped).__name__, env.unwrapped.config.name, obs.shape[0], term, trunc)\n"
        "env2 = gym.make('megapod_gym/MegapodSite-v0')\n"
        "env3 = gym.make('megapod_gym/MegapodSiteSoft-v0')\n"
        "print(env2.action_space.shape, env3.action_space.shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"MegapodSiteEnv {DEFAULT_SCENARIO} {len(L.MEAS_FIELDS)} False False"
    assert lines[1] == "(2,) (3,)"


def test_registration_is_idempotent() -> None:
    spec = gym.spec(ENV_ID)
    soft = gym.spec(SOFT_ENV_ID)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        register_envs()
        register_envs()
        importlib.reload(importlib.import_module("megapod_gym.registration")).register_envs()
    assert not [str(w.message) for w in caught if "already" in str(w.message).lower() or
                "overrid" in str(w.message).lower()]  # fmt: skip
    assert gym.spec(ENV_ID) is spec and gym.spec(SOFT_ENV_ID) is soft
    assert sum(1 for k in gym.registry if k.startswith("megapod_gym/")) >= 2
    assert spec.entry_point == "megapod_gym.envs.site_env:MegapodSiteEnv"
    assert spec.vector_entry_point == "megapod_gym.envs.vector_env:MegapodVectorEnv"
    assert soft.kwargs == {"config_overrides": {"ev_priority": "soft"}}


def test_make_passes_kwargs_and_soft_variant() -> None:
    env = gym.make(ENV_ID, scenario="highway-64stall")
    assert env.unwrapped.config.chargers.n_stalls == 64
    soft = gym.make(SOFT_ENV_ID)
    assert soft.unwrapped.config.ev_priority == "soft"
    assert soft.unwrapped.action_names == ("compute_frac", "battery_kw", "ev_cap_kw")
    again = gym.make(env.spec)  # spec round trip
    assert again.unwrapped.config == env.unwrapped.config


def test_invalid_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="render_mode"):
        MegapodSiteEnv(render_mode="human")
    with pytest.raises(megapod_gym.ConfigError, match="unknown scenario"):
        MegapodSiteEnv("no-such-scenario")
    with pytest.raises(megapod_gym.ConfigError, match="battery.soc_min"):
        MegapodSiteEnv(config_overrides={"battery.soc_min": 3.0})


# ---------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("mode", MODES)
def test_same_seed_and_actions_give_identical_episodes(mode: str) -> None:
    rng = np.random.default_rng(0)
    n = 3 if mode == "soft" else 2
    actions = rng.uniform(-1.2, 1.2, (288, n)).astype(np.float32)
    a = rollout(make("caiso-rt-spring", mode), 42, actions)
    b = rollout(make("caiso-rt-spring", mode), 42, actions)
    assert len(a) == len(b) == 289
    for x, y in zip(a, b):
        assert_same_transition(x, y)
    # the same env reset with the same seed replays identically too
    env = make("caiso-rt-spring", mode)
    rollout(env, 1, actions[:10])
    c = rollout(env, 42, actions)
    for x, y in zip(a, c):
        assert_same_transition(x, y)
    # a different seed differs
    d = rollout(make("caiso-rt-spring", mode), 43, actions)
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, d))


def test_any_non_negative_seed_is_accepted() -> None:
    env = make()
    a, _ = env.reset(seed=2**64 + 5)
    b, _ = make().reset(seed=2**64 + 5)
    assert np.array_equal(a, b)


def test_unseeded_resets_draw_new_days_reproducibly() -> None:
    env = make()
    env.reset(seed=5)
    first = env.trace.seeds[0]
    env.reset()
    second = env.trace.seeds[0]
    env.reset()
    third = env.trace.seeds[0]
    assert first == 5 and len({first, second, third}) == 3
    other = make()
    other.reset(seed=5)
    other.reset()
    assert other.trace.seeds[0] == second  # the seed fixes the whole sequence of days


def test_info_has_the_same_keys_every_step() -> None:
    env = make("demand-charge-heavy", "soft")
    obs, info = env.reset(seed=0)
    keys = set(info)
    assert set(L.OUT_FIELDS) <= keys
    assert {"action_clipped", "cars_arrived", "cars_served", "cars_balked", "wait_min_total",
            "mean_wait_min", "step"} <= keys  # fmt: skip
    assert info["step"] == 0
    for t in range(288):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert set(info) == keys, f"step {t}"
        assert info["step"] == t + 1
        assert all(isinstance(v, (int, float)) for v in info.values())
        assert r == pytest.approx(info["total_usd"] * env.unwrapped.reward_scale)


# ------------------------------------------------------------------------------- pickling
@pytest.mark.parametrize("wrapped", [False, True])
def test_pickled_mid_episode_env_continues_identically(wrapped: bool) -> None:
    env = gym.make(ENV_ID, scenario="ercot-rt-summer") if wrapped else make("ercot-rt-summer")
    env.reset(seed=9)
    rng = np.random.default_rng(1)
    for _ in range(100):
        env.step(rng.uniform(-1, 1, 2).astype(np.float32))
    twin = pickle.loads(pickle.dumps(env))
    actions = rng.uniform(-1, 1, (188, 2)).astype(np.float32)
    for a in actions:
        x, y = env.step(a), twin.step(a)
        assert_same_transition(x, y)
    assert x[3] and y[3]  # both reached the end together
    # the copies share no state
    twin.reset(seed=0)
    assert env.unwrapped.sim.t[0] == 288


# --------------------------------------------------------------------------- reset options
def test_reset_options_trace_and_trace_seed() -> None:
    env = make()
    obs_seed, info_seed = env.reset(seed=7)
    obs_ts, info_ts = env.reset(seed=123, options={"trace_seed": 7})
    assert np.array_equal(obs_seed, obs_ts) and info_seed == info_ts
    assert env.trace.seeds[0] == 7
    trace = TraceSampler(env.config).sample([7])
    obs_tr, info_tr = env.reset(options={"trace": trace})
    assert np.array_equal(obs_seed, obs_tr) and info_seed == info_tr
    assert env.trace is trace
    # and the episodes then match step by step
    a = np.array([0.4, -0.3], np.float32)
    env2 = make()
    env2.reset(seed=7)
    for _ in range(30):
        assert_same_transition(env.step(a), env2.step(a))


def test_reset_with_a_row_of_a_batch_trace() -> None:
    env = make()
    batch = TraceSampler(env.config).sample([3, 4, 5])
    obs, _ = env.reset(options={"trace": batch.site(1)})
    ref, _ = make().reset(seed=4)
    assert np.array_equal(obs, ref)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"bogus": 1}, "unknown reset options"),
        ({"trace_seed": 1, "horizon": 3}, "unknown reset options"),
        ({"trace": "not a trace"}, "ExogenousTrace"),
        ({"trace": None}, "ExogenousTrace"),
    ],
)
def test_bad_reset_options_raise(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make().reset(seed=0, options=options)


def test_multi_row_trace_is_rejected() -> None:
    env = make()
    with pytest.raises(ValueError, match="one row"):
        env.reset(options={"trace": TraceSampler(env.config).sample([1, 2])})


# ---------------------------------------------------------------------------------- actions
@pytest.mark.parametrize(
    "action",
    [[np.nan, 0.0], [0.0, np.nan], [np.inf, 0.0], [0.0, -np.inf]],
    ids=["nan0", "nan1", "inf0", "-inf1"],
)
def test_non_finite_action_raises(action: list[float]) -> None:
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        env.step(np.array(action, dtype=np.float32))
    assert env.sim.t[0] == 0  # nothing happened
    env.step(np.zeros(2, np.float32))
    assert env.sim.t[0] == 1


def test_wrong_action_shape_raises() -> None:
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))


@pytest.mark.parametrize("mode", MODES)
def test_out_of_range_action_is_clipped_and_counted(mode: str) -> None:
    n = 3 if mode == "soft" else 2
    big = np.array([5.0, -3.0, 1.5][:n], np.float32)
    clipped = np.clip(big, -1, 1)
    a, b = make(None, mode), make(None, mode)
    a.reset(seed=3)
    b.reset(seed=3)
    for _ in range(150):  # into the afternoon: cars, battery and compute all active
        xa, xb = a.step(big), b.step(clipped)
        assert xa[4]["action_clipped"] == n
        assert xb[4]["action_clipped"] == 0
        assert np.array_equal(xa[0], xb[0]) and xa[1] == xb[1]
    just_inside = np.array([1.0, -1.0, 0.0][:n], np.float32)
    assert a.step(just_inside)[4]["action_clipped"] == 0
    assert a.step(np.array([1.0000001, 0.0, 0.0][:n]))[4]["action_clipped"] == 1


def test_action_mapping_follows_the_documented_convention() -> None:
    env = make(None, "soft")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.0, 0.5, 1.0], np.float32))
    assert info["compute_frac_requested"] == pytest.approx(0.5)
    assert info["battery_kw_requested"] == pytest.approx(0.5 * env.config.battery.discharge_kw)
    _, _, _, _, info = env.step(np.array([-1.0, -0.25, 1.0], np.float32))
    assert info["compute_frac_requested"] == 0.0
    assert info["battery_kw_requested"] == pytest.approx(-0.25 * env.config.battery.charge_kw)
    assert info["paused"] == 1.0


# ----------------------------------------------------------------------------- episode end
@pytest.mark.parametrize("name", ["urban-12stall-bev", "highway-64stall"])
def test_truncation_exactly_at_288_steps_never_termination(name: str) -> None:
    env = gym.make(ENV_ID, scenario=name)
    env.reset(seed=0)
    for t in range(288):
        obs, r, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated
        assert truncated == (t == 287), t
    assert env.observation_space.contains(obs)
    with pytest.raises(RuntimeError):
        env.unwrapped.step(np.zeros(2, np.float32))
    env.reset()
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    assert not terminated and not truncated


def test_episode_length_follows_config() -> None:
    env = MegapodSiteEnv(config_overrides={"episode.days": 0.5, "episode.step_min": 15})
    env.reset(seed=0)
    truncs = [env.step(np.zeros(2, np.float32))[3] for _ in range(48)]
    assert truncs == [False] * 47 + [True]


def test_step_before_reset_raises() -> None:
    with pytest.raises(RuntimeError, match="reset"):
        make().step(np.zeros(2, np.float32))


# ---------------------------------------------------------------------------- observation
def test_observation_names_and_encoder() -> None:
    env = make()
    obs, _ = env.reset(seed=0)
    assert len(env.observation_names) == env.observation_space.shape[0] == obs.shape[0]
    assert tuple(env.encoder.names) == tuple(L.MEAS_FIELDS)
    assert ObservationEncoder(1500.0, 12, 1927.0).names == tuple(L.MEAS_FIELDS)
    assert env.observation_space.dtype == np.float32
    assert env.action_space.dtype == np.float32
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    for _ in range(100):
        obs, *_ = env.step(env.action_space.sample())
    raw = env.sim.measurements()
    for name in env.observation_names:
        assert env.encoder.decode(obs, name) == pytest.approx(raw[name][0], rel=1e-5, abs=1e-5)


def test_observation_describes_the_site() -> None:
    env = make()
    obs, _ = env.reset(seed=0)
    dec = env.encoder.decode
    assert dec(obs, "battery_soc_frac") == pytest.approx(env.config.battery.initial_soc)
    assert dec(obs, "time_of_day_cos") == pytest.approx(1.0)
    for _ in range(12 * 17):  # to 17:00, the evening rush
        obs, _, _, _, info = env.step(np.array([1.0, 0.0], np.float32))
    assert dec(obs, "battery_soc_frac") == pytest.approx(info["battery_soc_frac"], abs=1e-6)
    assert dec(obs, "price_usd_per_kwh") == pytest.approx(0.41)  # PG&E BEV-2-S peak 16-21 h
    assert dec(obs, "stalls_occupied_frac") * 12 == pytest.approx(
        round(dec(obs, "stalls_occupied_frac") * 12)
    )


def test_carbon_features_only_when_carbon_is_priced() -> None:
    """No shipped preset prices carbon, so none gets carbon features; a carbon price appends
    intensity now and its 1 h / 4 h forecast means (from the trace, exact), in single and vector
    envs alike."""
    carbon_names = tuple(f.name for f in CARBON_FEATURES)
    for name in scenario_names():
        config = load_scenario(name)
        assert config.tariff.carbon_price_usd_per_tonne == 0.0, name
        assert make_encoder(config).names == tuple(L.MEAS_FIELDS), name
    overrides = {"tariff.carbon_price_usd_per_tonne": 80.0, "episode.days": 0.25}
    env = MegapodSiteEnv(config_overrides=overrides)
    assert env.observation_names == tuple(L.MEAS_FIELDS) + carbon_names
    assert env.observation_space.shape == (len(L.MEAS_FIELDS) + 3,)
    assert env.encoder.site["carbon_priced"] is True
    assert "carbon_priced" not in make().encoder.site
    obs, _ = env.reset(seed=3)
    gym_check_env(MegapodSiteEnv(config_overrides=overrides), skip_render_check=True)
    carbon = env.trace.carbon_g_per_kwh[0]
    T = carbon.shape[0]
    venv = gym.make_vec(
        ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", config_overrides=overrides
    )
    vobs, _ = venv.reset(seed=3)
    np.testing.assert_array_equal(vobs[0], obs)
    for t in range(T):
        ahead = carbon[np.minimum(np.arange(t + 1, t + 49), T - 1)]
        assert env.encoder.decode(obs, "carbon_g_per_kwh") == pytest.approx(carbon[t])
        assert env.encoder.decode(obs, "carbon_next_1h_mean_g_per_kwh") == pytest.approx(
            ahead[:12].mean()
        )
        assert env.encoder.decode(obs, "carbon_next_4h_mean_g_per_kwh") == pytest.approx(
            ahead.mean()
        )
        action = np.array([1.0, 0.0], np.float32)
        obs, *_ = env.step(action)
        vobs, *_ = venv.step(np.stack([action, action]))
        np.testing.assert_array_equal(vobs[0], obs)
    # after the last step the measurement repeats the last step's value, like the kernel's
    assert env.encoder.decode(obs, "carbon_g_per_kwh") == pytest.approx(carbon[-1])


def test_carbon_measurements_hold_the_last_step_past_the_episode() -> None:
    carbon = np.array([[100.0, 200.0, 300.0, 400.0], [0.0, 0.0, 0.0, 800.0]])
    out = carbon_measurements(carbon, np.array([1, 3]), steps_h=1)  # 4 h = 4 steps
    np.testing.assert_allclose(out[0], [200.0, 300.0, (300 + 400 * 3) / 4])
    np.testing.assert_allclose(out[1], [800.0, 800.0, 800.0])


# ---------------------------------------------------------------------------------- render
@pytest.mark.slow
def test_render_rgb_array() -> None:
    env = gym.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    frame0 = env.render()
    assert isinstance(frame0, np.ndarray) and frame0.ndim == 3 and frame0.shape[2] == 3
    assert frame0.dtype == np.uint8
    for _ in range(100):
        env.step(env.action_space.sample())
    frame = env.render()
    assert frame.shape == frame0.shape and frame.dtype == np.uint8
    assert frame.shape[0] > 100 and frame.shape[1] > 100
    assert not np.array_equal(frame, frame0)  # the episode so far is drawn
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 10


def test_render_ansi_and_none() -> None:
    env = make(render_mode="ansi")
    env.reset(seed=0)
    for _ in range(200):
        env.step(np.array([1.0, 0.0], np.float32))
    line = env.render()
    assert isinstance(line, str) and "\n" not in line
    assert "16:40" in line and "kW" in line
    quiet = make()
    quiet.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert quiet.render() is None


def test_history_matches_the_infos() -> None:
    env = make()
    env.reset(seed=2)
    imports = []
    for _ in range(50):
        imports.append(env.step(env.action_space.sample())[4]["grid_import_kw"])
    hist = env.history
    assert set(hist) == set(L.OUT_FIELDS)
    np.testing.assert_array_equal(hist["grid_import_kw"], imports)
