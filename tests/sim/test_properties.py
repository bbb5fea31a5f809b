"""Property tests (hypothesis): random valid sites and random or extreme actions never break the
physical invariants of the simulator or the environment.

Invariants: grid import <= limit, export <= export limit, battery SoC inside its window, no
negative flows or energies, nothing NaN or infinite, the energy balance closes (< 1e-6 kWh), cars
never charge above their acceptance curve, the stall limit or their own power cap, cabinets stay
within their limit; cars with a departure are gone (from stall or queue) at their departure step
and never take more than they asked for.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megapod_gym.config import ScenarioConfig, load_scenario
from megapod_gym.envs.site_env import MegapodSiteEnv
from megapod_gym.scenario.arrivals import NO_DEPARTURE_STEP
from megapod_gym.scenario.trace import TraceSampler
from megapod_gym.sim import layout as L
from megapod_gym.sim.kernel import CHARGING, WAITING
from megapod_gym.sim.simulator import SiteSimulator

EPS_KW = 1e-6
EPS_KWH = 1e-6
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # reproducible in CI; the strategies still cover the space
)

NON_NEGATIVE = (
    "grid_import_kw", "grid_export_kw", "ev_requested_kw", "ev_kw", "ev_delivered_kw",
    "charger_loss_kw", "compute_kw", "it_kw", "cooling_kw", "battery_charge_kw",
    "battery_discharge_kw", "battery_aux_kw", "battery_loss_kw", "ev_revenue_usd",
    "compute_value_usd", "demand_charge_usd", "battery_degradation_usd", "sla_penalty_usd",
    "wait_penalty_usd", "balk_penalty_usd", "pause_resume_cost_usd", "carbon_cost_usd",
    "compute_frac_requested", "compute_frac", "compute_cut_kw", "ev_cut_kw", "battery_limited_kw",
    "battery_override_kw", "paused", "cars_arrived", "cars_served", "cars_balked", "wait_min",
    "training_work_kwh", "inference_served_kwh", "inference_unmet_kwh", "battery_soc_frac",
    "peak_demand_kw",
)  # fmt: skip
SCENARIOS = (
    "urban-12stall-bev", "caiso-rt-spring", "ercot-rt-summer", "demand-charge-heavy",
    "internal-training-lowvalue",
)  # fmt: skip


# ---------------------------------------------------------------------------- strategies
@st.composite
def site_configs(draw: st.DrawFn) -> ScenarioConfig:
    """A valid random site: every knob inside its schema range, import limit above standby."""
    it_kw = draw(st.floats(50.0, 3000.0))
    standby = draw(st.floats(0.0, 0.29))
    has_battery = draw(st.booleans())
    energy = draw(st.floats(10.0, 8000.0)) if has_battery else 0.0
    aux = draw(st.floats(0.0, 10.0))
    pue_max = 1.30
    floor = it_kw * standby * pue_max + (aux if has_battery else 0.0)
    soc_min = draw(st.floats(0.0, 0.6))
    soc_max = draw(st.floats(soc_min + 0.01, 1.0))
    initial = draw(st.floats(soc_min, soc_max))
    stalls = draw(st.integers(1, 16))
    overrides: dict[str, Any] = {
        "ev_priority": draw(st.sampled_from(["strict", "soft"])),
        "episode.days": 0.25,
        "episode.step_min": draw(st.sampled_from([5, 15])),
        "episode.start_day_of_year": [1, 365],
        "grid.import_limit_kw": floor + draw(st.floats(1.0, 4000.0)),
        "grid.export_limit_kw": draw(st.sampled_from([0.0, 50.0, 500.0, 5000.0])),
        "chargers.n_stalls": stalls,
        "chargers.stall_kw": draw(st.floats(20.0, 500.0)),
        "chargers.stalls_per_cabinet": draw(st.integers(1, 8)),
        "chargers.cabinet_kw": draw(st.floats(20.0, 2000.0)),
        "chargers.efficiency": draw(st.floats(0.8, 1.0)),
        "ev.arrivals_per_day": draw(st.floats(0.0, 120.0)) * stalls,
        "ev.hourly_profile": [1.0] * 24,  # short episodes start at midnight: keep cars coming
        "ev.patience_median_min": draw(st.floats(1.0, 30.0)),
        "battery.energy_kwh": energy,
        "battery.charge_kw": draw(st.floats(0.0, 4000.0)),
        "battery.discharge_kw": draw(st.floats(0.0, 4000.0)),
        "battery.charge_efficiency": draw(st.floats(0.5, 1.0)),
        "battery.discharge_efficiency": draw(st.floats(0.5, 1.0)),
        "battery.soc_min": soc_min,
        "battery.soc_max": soc_max,
        "battery.initial_soc": initial,
        "battery.aux_kw": aux,
        "compute.it_kw": it_kw,
        "compute.standby_frac": standby,
        "compute.training_backlog_initial_h": draw(st.sampled_from([0.0, 0.1, 48.0])),
    }
    return load_scenario(draw(st.sampled_from(SCENARIOS)), overrides)


extreme = st.one_of(
    st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.29, 0.2899999, 1e-300, -1e-300, 1e12, -1e12]),
)
setpoint = st.tuples(
    st.one_of(st.floats(-2.0, 3.0), extreme),  # IT fraction
    st.one_of(st.floats(-5000.0, 5000.0), extreme),  # battery kW
    st.one_of(st.just(math.inf), st.just(-math.inf), st.floats(-100.0, 5000.0), extreme),  # EV cap
)


# ------------------------------------------------------------------------------- checks
def _curve_max(xs: np.ndarray, ys: np.ndarray, lo: float, hi: float) -> float:
    pts = [lo, hi] + [x for x in xs if lo < x < hi]
    return float(np.max(np.interp(pts, xs, ys)))


def step_and_check(sim: SiteSimulator, cfg: ScenarioConfig, actions: np.ndarray) -> dict:
    stall_car = sim.stall_car[0].copy()
    car_soc = sim.car_dyn[0, 0].copy()
    batt_soc = float(sim.fstate[0, L.FSTATE_INDEX["battery_soc"]])
    sim.step_actions(actions)
    o = {k: float(v[0]) for k, v in sim.outputs().items()}
    assert all(math.isfinite(v) for v in o.values()), o
    assert np.isfinite(sim.meas).all()
    for k in NON_NEGATIVE:
        assert o[k] >= -1e-9, f"{k} = {o[k]}"
    assert o["grid_import_kw"] <= cfg.grid.import_limit_kw + EPS_KW
    assert o["grid_export_kw"] <= cfg.grid.export_limit_kw + EPS_KW
    assert abs(o["energy_balance_residual_kwh"]) < EPS_KWH
    dt_h = sim.dt_h
    flows = (
        o["grid_import_kw"] - o["grid_export_kw"] + o["battery_discharge_kw"]
        - o["battery_charge_kw"] - o["ev_kw"] - o["compute_kw"] - o["battery_aux_kw"]
    )  # fmt: skip
    assert abs(flows) * dt_h < EPS_KWH
    bat = cfg.battery
    if bat.energy_kwh > 0:
        soc = o["battery_soc_frac"]
        assert bat.soc_min - 1e-9 <= soc <= bat.soc_max + 1e-9
        assert o["battery_charge_kw"] <= bat.charge_kw + EPS_KW
        assert o["battery_discharge_kw"] <= bat.discharge_kw + EPS_KW
        stored = (soc - batt_soc) * bat.energy_kwh
        expect = (
            o["battery_charge_kw"] * bat.charge_efficiency
            - o["battery_discharge_kw"] / bat.discharge_efficiency
        ) * dt_h
        assert abs(stored - expect) < EPS_KWH
    else:
        assert o["battery_charge_kw"] == o["battery_discharge_kw"] == 0.0
    # cars: stall limit, acceptance curve, target SoC, cabinet limit, energy delivered
    ch = cfg.chargers
    names = sorted(cfg.ev.curves)
    alloc = sim.stall_work[0, L.ST_ALLOC]
    delivered = 0.0
    for s in range(ch.n_stalls):
        c = stall_car[s]
        if c < 0:
            continue
        a = alloc[s]
        assert -1e-12 <= a <= ch.stall_kw + EPS_KW
        curve = cfg.ev.curves[names[int(sim.cars[0, L.C_CAR_CURVE_ID, c])]]
        soc1 = sim.car_dyn[0, 0, c]
        accept = _curve_max(np.asarray(curve.soc), np.asarray(curve.kw), car_soc[c], soc1)
        assert a <= accept * sim.cars[0, L.C_CAR_POWER_SCALE, c] + EPS_KW
        if sim.cars[0, L.C_CAR_MAX_KW, c] > 0.0:
            assert a <= sim.cars[0, L.C_CAR_MAX_KW, c] + EPS_KW
        assert soc1 <= sim.cars[0, L.C_CAR_TARGET_SOC, c] + 1e-9
        delivered += a
    for lo in range(0, ch.n_stalls, ch.stalls_per_cabinet):
        used = sum(alloc[s] for s in range(lo, min(lo + ch.stalls_per_cabinet, ch.n_stalls))
                   if stall_car[s] >= 0)  # fmt: skip
        assert used <= ch.cabinet_kw + EPS_KW
    assert abs(delivered - o["ev_delivered_kw"]) < 1e-6
    if cfg.ev_priority == "soft":
        cap = max(float(actions[0, 2]), 0.0)
        assert o["ev_kw"] <= cap + EPS_KW
    else:
        assert o["battery_override_kw"] >= 0.0
    if cfg.ev_priority == "soft":
        assert o["battery_override_kw"] == 0.0
    return o


# -------------------------------------------------------------------------- simulator
@pytest.mark.slow
@SETTINGS
@given(
    cfg=site_configs(),
    plan=st.lists(setpoint, min_size=1, max_size=12),
    seed=st.integers(0, 2**31 - 1),
)
def test_simulator_invariants_hold_for_any_site_and_setpoints(
    cfg: ScenarioConfig, plan: list[tuple[float, float, float]], seed: int
) -> None:
    sim = SiteSimulator(cfg)
    sim.reset(TraceSampler(cfg).sample([seed]))
    t = 0
    while not sim.done[0]:
        step_and_check(sim, cfg, np.array([plan[t % len(plan)]], dtype=np.float64))
        t += 1
    assert t == cfg.episode.n_steps
    k = sim.kpis()
    assert k["cars_served"][0] + k["cars_balked"][0] <= k["cars_arrived"][0]
    assert all(np.isfinite(v).all() and (v >= 0).all() for v in k.values())


@pytest.mark.slow
@SETTINGS
@given(
    cfg=site_configs(),
    plan=st.lists(setpoint, min_size=1, max_size=6),
    seed=st.integers(0, 2**31 - 1),
    dwell_seed=st.integers(0, 2**31 - 1),
)
def test_invariants_hold_with_departures_and_power_caps(
    cfg: ScenarioConfig, plan: list[tuple[float, float, float]], seed: int, dwell_seed: int
) -> None:
    """The sampled cars, most given a departure 1-40 steps after arrival and half a power cap of
    their own (as replayed sessions with dwell): the invariants hold, nobody is present at or
    after its departure, nobody gets more than its target."""
    trace = TraceSampler(cfg).sample([seed])
    n = trace.car_arrival_step.shape[1]
    rng = np.random.default_rng(dwell_seed)
    arrive = trace.car_arrival_step[0]
    departure = np.where(
        rng.random(n) < 0.7, arrive + rng.integers(1, 41, n), NO_DEPARTURE_STEP
    ).astype(np.int64)
    max_kw = np.where(rng.random(n) < 0.5, rng.uniform(1.0, 400.0, n), 0.0)
    trace = dataclasses.replace(trace, car_departure_step=departure[None], car_max_kw=max_kw[None])
    sim = SiteSimulator(cfg)
    sim.reset(trace)
    t = 0
    while not sim.done[0]:
        step_and_check(sim, cfg, np.array([plan[t % len(plan)]], dtype=np.float64))
        t += 1
        status = sim.car_status[0, :n]
        present = (status == WAITING) | (status == CHARGING)
        assert np.all(departure[present] > t), "a car is still there at its departure step"
    arrived = sim.car_status[0, :n] > 0
    soc = sim.car_dyn[0, 0, :n]
    assert np.all(soc[arrived] <= trace.car_target_soc[0, arrived] + 1e-9)
    k = sim.kpis()
    assert k["cars_served"][0] + k["cars_balked"][0] <= k["cars_arrived"][0]


@pytest.mark.slow
@SETTINGS
@given(cfg=site_configs(), seed=st.integers(0, 2**31 - 1))
def test_greedy_compute_with_cars_never_breaks_the_limit(cfg: ScenarioConfig, seed: int) -> None:
    """Full compute requested and the battery asked to charge flat out: the worst case for the
    import limit."""
    sim = SiteSimulator(cfg)
    sim.reset(TraceSampler(cfg).sample([seed]))
    while not sim.done[0]:
        o = step_and_check(sim, cfg, np.array([[1.0, -1e9, math.inf]]))
        if cfg.ev_priority == "strict" and o["ev_cut_kw"] > 1e-6:
            assert o["paused"] == 1.0  # compute went first


# -------------------------------------------------------------------------------- env
@pytest.mark.slow
@SETTINGS
@given(
    cfg=site_configs(),
    actions=st.lists(
        st.lists(
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=3, max_size=3
        ),
        min_size=1,
        max_size=16,
    ),  # fmt: skip
    seed=st.integers(0, 2**31 - 1),
)
def test_env_observations_rewards_and_infos_stay_finite(
    cfg: ScenarioConfig, actions: list[list[float]], seed: int
) -> None:
    env = MegapodSiteEnv(cfg)
    n = env.action_space.shape[0]
    obs, info = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    keys = set(info)
    for t in range(cfg.episode.n_steps):
        a = np.asarray(actions[t % len(actions)][:n])
        obs, reward, terminated, truncated, info = env.step(a)
        assert obs.dtype == np.float32 and env.observation_space.contains(obs)
        assert np.isfinite(obs).all()
        assert isinstance(reward, float) and math.isfinite(reward)
        assert set(info) == keys
        for k, v in info.items():
            assert math.isfinite(v), f"info[{k!r}] = {v}"
        assert info["action_clipped"] == int(np.sum(np.abs(a) > 1.0))
        assert info["grid_import_kw"] <= cfg.grid.import_limit_kw + EPS_KW
        assert info["grid_export_kw"] <= cfg.grid.export_limit_kw + EPS_KW
        assert abs(info["energy_balance_residual_kwh"]) < EPS_KWH
        assert reward == pytest.approx(info["total_usd"] * cfg.reward.scale)
        if cfg.battery.energy_kwh > 0:
            assert (
                cfg.battery.soc_min - 1e-9 <= info["battery_soc_frac"] <= cfg.battery.soc_max + 1e-9
            )
        assert not terminated
        assert truncated == (t == cfg.episode.n_steps - 1)
