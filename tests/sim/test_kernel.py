"""Physics and dispatch of the compiled step (megapod_gym.sim.kernel), checked from outside:
car charging against the acceptance curve, cabinet and stall limits, FIFO queue and balking,
incremental demand charges, battery limits, energy balance and the safety layer."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from megapod_gym.config import ScenarioConfig, load_scenario
from megapod_gym.scenario.arrivals import NO_DEPARTURE_STEP
from megapod_gym.scenario.trace import ExogenousTrace, TraceSampler
from megapod_gym.sim import layout as L
from megapod_gym.sim.kernel import BALKED, CHARGING, DONE, WAITING
from megapod_gym.sim.simulator import SiteSimulator

EPS_KW = 1e-6
EPS_KWH = 1e-6


# ------------------------------------------------------------------------------- helpers
def config(**overrides: Any) -> ScenarioConfig:
    """The default scenario with dotted overrides (``battery__energy_kwh`` -> ``battery.energy_kwh``)."""
    return load_scenario(None, {k.replace("__", "."): v for k, v in overrides.items()})


def curve_id(cfg: ScenarioConfig, name: str) -> int:
    return sorted(cfg.ev.curves).index(name)


def hand_trace(
    cfg: ScenarioConfig,
    cars: list[dict[str, float]],
    seed: int = 0,
    ambient_c: float | None = None,
    inference: float | None = None,
) -> ExogenousTrace:
    """A sampled one-row trace whose cars are replaced by ``cars`` (dicts with arrival_step,
    battery_kwh, arrival_soc, target_soc, patience_min, curve_id, power_scale, departure_step,
    max_kw)."""
    tr = TraceSampler(cfg).sample([seed])
    n = len(cars)
    keys = ("arrival_step", "battery_kwh", "arrival_soc", "target_soc", "patience_min",
            "curve_id", "power_scale", "departure_step", "max_kw")  # fmt: skip
    defaults = {"battery_kwh": 75.0, "arrival_soc": 0.1, "target_soc": 0.8, "patience_min": 1e6,
                "curve_id": curve_id(cfg, "tesla_400v"), "power_scale": 1.0,
                "departure_step": NO_DEPARTURE_STEP, "max_kw": 0.0}  # fmt: skip
    arrays: dict[str, Any] = {}
    for k in keys:
        values = (
            [c.get(k, defaults.get(k)) for c in cars]
            if n
            else [tr.n_steps if k == "arrival_step" else 0]
        )
        dtype = np.int64 if k in ("arrival_step", "curve_id", "departure_step") else np.float64
        arrays["car_" + k] = np.asarray(values, dtype=dtype)[None]
    arrays["n_cars"] = np.array([n], dtype=np.int64)
    if ambient_c is not None:
        arrays["ambient_c"] = np.full_like(tr.ambient_c, ambient_c)
    if inference is not None:
        arrays["inference_demand_frac"] = np.full_like(tr.inference_demand_frac, inference)
    return dataclasses.replace(tr, **arrays)


def curve_table(cfg: ScenarioConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (np.asarray(cfg.ev.curves[n].soc), np.asarray(cfg.ev.curves[n].kw))
        for n in sorted(cfg.ev.curves)
    ]


def curve_max(soc: np.ndarray, kw: np.ndarray, lo: float, hi: float) -> float:
    """Largest acceptance on the SoC interval [lo, hi] of a piecewise-linear curve."""
    pts = [lo, hi] + [s for s in soc if lo < s < hi]
    return float(np.max(np.interp(pts, soc, kw)))


class Recorder:
    """Steps a simulator and checks, site by site, the per-stall and per-car invariants that the
    step outputs alone cannot show; keeps the outputs of every step."""

    def __init__(self, sim: SiteSimulator) -> None:
        self.sim = sim
        self.curves = [curve_table(c) for c in sim.configs]
        self.rows: list[dict[str, np.ndarray]] = []
        self.max_cabinet_use = 0.0

    def step(self, actions: np.ndarray) -> dict[str, np.ndarray]:
        sim = self.sim
        stall_car = sim.stall_car.copy()
        car_soc = sim.car_dyn[:, 0].copy()
        batt_soc = sim.fstate[:, L.FSTATE_INDEX["battery_soc"]].copy()
        sim.step_actions(np.asarray(actions, dtype=np.float64))
        out = {k: v.copy() for k, v in sim.outputs().items()}
        alloc = sim.stall_work[:, L.ST_ALLOC]
        for b, cfg in enumerate(sim.configs):
            ch = cfg.chargers
            delivered = 0.0
            for s in range(ch.n_stalls):
                c = stall_car[b, s]
                if c < 0:
                    continue
                a = alloc[b, s]
                assert a >= 0.0
                assert a <= ch.stall_kw + EPS_KW, f"stall {s}: {a} kW > stall {ch.stall_kw} kW"
                soc0, soc1 = car_soc[b, c], sim.car_dyn[b, 0, c]
                xs, ys = self.curves[b][int(sim.cars[b, L.C_CAR_CURVE_ID, c])]
                accept = curve_max(xs, ys, soc0, soc1) * sim.cars[b, L.C_CAR_POWER_SCALE, c]
                assert a <= accept + EPS_KW, f"car {c}: {a} kW above its acceptance {accept} kW"
                own_cap = sim.cars[b, L.C_CAR_MAX_KW, c]
                if own_cap > 0.0:
                    assert a <= own_cap + EPS_KW, f"car {c}: {a} kW above its cap {own_cap} kW"
                assert soc1 <= sim.cars[b, L.C_CAR_TARGET_SOC, c] + 1e-9
                e = (soc1 - soc0) * sim.cars[b, L.C_CAR_BATTERY_KWH, c]
                assert e == pytest.approx(a * sim.dt_h, abs=1e-9)
                delivered += a
            for lo in range(0, ch.n_stalls, ch.stalls_per_cabinet):
                hi = min(lo + ch.stalls_per_cabinet, ch.n_stalls)
                used = sum(alloc[b, s] for s in range(lo, hi) if stall_car[b, s] >= 0)
                assert used <= ch.cabinet_kw + EPS_KW, f"cabinet {lo}: {used} > {ch.cabinet_kw}"
                self.max_cabinet_use = max(self.max_cabinet_use, used / ch.cabinet_kw)
            # car energy = DC delivered (a second, independent energy balance at the car side)
            assert delivered == pytest.approx(out["ev_delivered_kw"][b], abs=1e-6)
            # battery energy: internal energy change = charge x eta_c - discharge / eta_d
            bat = cfg.battery
            if bat.energy_kwh > 0:
                d_kwh = (
                    sim.fstate[b, L.FSTATE_INDEX["battery_soc"]] - batt_soc[b]
                ) * bat.energy_kwh
                expect = (
                    out["battery_charge_kw"][b] * bat.charge_efficiency
                    - out["battery_discharge_kw"][b] / bat.discharge_efficiency
                ) * sim.dt_h
                assert d_kwh == pytest.approx(expect, abs=EPS_KWH)
        self.rows.append(out)
        return out

    def series(self, key: str) -> np.ndarray:
        return np.stack([r[key] for r in self.rows])  # [steps, B]


def check_site_balance(out: dict[str, np.ndarray], cfg: ScenarioConfig, b: int = 0) -> None:
    """Power balance from the reported flows (independent of the kernel's own residual)."""
    imp, exp = out["grid_import_kw"][b], out["grid_export_kw"][b]
    supply = imp + out["battery_discharge_kw"][b]
    demand = exp + out["battery_charge_kw"][b] + out["ev_kw"][b] + out["compute_kw"][b]
    demand += out["battery_aux_kw"][b]
    assert abs(supply - demand) * cfg.episode.step_min / 60.0 < EPS_KWH
    assert abs(out["energy_balance_residual_kwh"][b]) < EPS_KWH
    assert out["ev_kw"][b] == pytest.approx(out["ev_delivered_kw"][b] + out["charger_loss_kw"][b])
    assert out["compute_kw"][b] == pytest.approx(out["it_kw"][b] + out["cooling_kw"][b])
    assert imp * exp == 0.0  # never both
    assert out["grid_import_kw"][b] <= cfg.grid.import_limit_kw + EPS_KW
    assert out["grid_export_kw"][b] <= cfg.grid.export_limit_kw + EPS_KW
    ledger = sum(
        sign * out[k][b]
        for k, sign in (
            ("ev_revenue_usd", 1), ("compute_value_usd", 1), ("energy_cost_usd", -1),
            ("export_revenue_usd", 1), ("demand_charge_usd", -1),
            ("battery_degradation_usd", -1), ("sla_penalty_usd", -1), ("wait_penalty_usd", -1),
            ("balk_penalty_usd", -1), ("pause_resume_cost_usd", -1), ("carbon_cost_usd", -1),
        )
    )  # fmt: skip
    assert out["total_usd"][b] == pytest.approx(ledger, abs=1e-9)


# ------------------------------------------------------------------------------ one car
def single_stall_config(step_min: int = 1) -> ScenarioConfig:
    return config(
        chargers__n_stalls=1,
        chargers__stall_kw=250.0,
        chargers__cabinet_kw=1000.0,
        battery__energy_kwh=0.0,
        episode__step_min=step_min,
        episode__days=0.25,
    )


@pytest.mark.parametrize("step_min", [1, 5])
def test_single_tesla_car_charges_10_to_80_percent_in_20_to_30_min(step_min: int) -> None:
    """sources §2b: a 75 kWh Model 3/Y on a 250 kW V3 stall goes 10 -> 80 % in ~22 min (27-28 min
    measured including handshake)."""
    cfg = single_stall_config(step_min)
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, [dict(arrival_step=0, battery_kwh=75.0, arrival_soc=0.10,
                                    target_soc=0.80)]))  # fmt: skip
    rec = Recorder(sim)
    assert sim.car_status[0, 0] == CHARGING
    minutes = 0
    while sim.kpis()["cars_served"][0] < 1:
        out = rec.step(np.array([[0.0, 0.0, np.inf]]))  # compute at standby
        minutes += step_min
        assert out["paused"][0] == 1.0
        assert minutes <= 60, "car never finished"
    assert 20 <= minutes <= 30
    delivered_kwh = rec.series("ev_delivered_kw").sum() * sim.dt_h
    assert delivered_kwh == pytest.approx(0.70 * 75.0, abs=1e-6)
    assert rec.series("ev_delivered_kw").max() <= 250.0 + EPS_KW
    assert sim.car_status[0, 0] == DONE and sim.stall_car[0, 0] == -1
    if step_min == 1:  # 1-min resolution: within ~1.5 min of the exact integral (21.8 min)
        assert abs(minutes - 21.8) <= 1.5
        # and the power follows the curve: ~250 kW flat at 10-25 %, then tapering
        p = rec.series("ev_delivered_kw")[:, 0]
        assert p[0] == pytest.approx(250.0) and p[-2] < 150.0
        assert np.all(np.diff(p[3:-1]) <= 1e-9)


def test_power_scale_is_capped_by_the_stall() -> None:
    """A Cybertruck-like car (curve x 1.3) on a 250 kW stall never draws more than 250 kW."""
    cfg = single_stall_config(1)
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, [dict(arrival_step=0, battery_kwh=123.0, arrival_soc=0.1,
                                    target_soc=0.9, power_scale=1.3)]))  # fmt: skip
    rec = Recorder(sim)
    for _ in range(40):
        rec.step(np.array([[0.0, 0.0, np.inf]]))
    p = rec.series("ev_delivered_kw")[:, 0]
    assert p.max() == pytest.approx(250.0)  # binds
    assert p.max() <= 250.0 + EPS_KW


# ------------------------------------------------------------------------------ cabinets
def test_cabinet_limit_is_shared_and_respected() -> None:
    cfg = config(
        chargers__n_stalls=8, chargers__stalls_per_cabinet=4, chargers__cabinet_kw=400.0,
        chargers__stall_kw=250.0, battery__energy_kwh=0.0, grid__import_limit_kw=5000.0,
    )  # fmt: skip
    cars = [dict(arrival_step=0, arrival_soc=0.1 + 0.01 * i, target_soc=0.9) for i in range(7)]
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, cars))
    rec = Recorder(sim)
    out = rec.step(np.array([[0.0, 0.0, np.inf]]))
    alloc = sim.stall_work[0, L.ST_ALLOC]
    # cabinet 0 (4 cars): 400 kW shared equally; cabinet 1 (3 cars): 400 / 3 each
    np.testing.assert_allclose(alloc[:4], 100.0)
    np.testing.assert_allclose(alloc[4:7], 400.0 / 3)
    assert out["ev_delivered_kw"][0] == pytest.approx(800.0)
    for _ in range(60):
        rec.step(np.array([[0.0, 0.0, np.inf]]))
    assert rec.max_cabinet_use == pytest.approx(1.0)


def test_stall_curve_and_cabinet_limits_over_a_busy_day() -> None:
    cfg = config(
        ev__arrivals_per_day=250.0, grid__import_limit_kw=2500.0, chargers__cabinet_kw=600.0
    )
    sim = SiteSimulator(cfg, batch_size=2)
    sim.reset(TraceSampler(cfg).sample([1, 2]))
    rec = Recorder(sim)
    rng = np.random.default_rng(0)
    while not sim.done.any():
        a = np.column_stack([rng.uniform(0, 1, 2), rng.uniform(-2500, 2500, 2), np.full(2, np.inf)])
        out = rec.step(a)
        for b in range(2):
            check_site_balance(out, cfg, b)
    assert rec.series("ev_delivered_kw").max() > 1000.0  # the day was busy
    assert rec.max_cabinet_use > 0.9


# ------------------------------------------------------------------------- queue / balking
def test_fifo_order_and_balking_after_patience() -> None:
    cfg = config(chargers__n_stalls=1, battery__energy_kwh=0.0)
    cars = [
        dict(arrival_step=0, patience_min=1e6),  # 0: takes the stall
        dict(arrival_step=0, patience_min=1e6),  # 1: first in the queue
        dict(arrival_step=1, patience_min=10.0),  # 2: gives up when its wait reaches 10 min
        dict(arrival_step=1, patience_min=1e6),  # 3: waits behind 1
    ]
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, cars))
    assert list(sim.car_status[0, :4]) == [CHARGING, WAITING, 0, 0]
    act = np.array([[0.0, 0.0, np.inf]])
    out = sim.step_actions(act)
    assert out[0, L.O_WAIT_MIN] == 5.0  # car 1 waited one step
    assert list(sim.car_status[0, :4]) == [CHARGING, WAITING, WAITING, WAITING]
    assert sim.measurements()["queue_length"][0] == 3
    assert sim.measurements()["longest_wait_min"][0] == 5.0
    balked_at = None
    order = [0]
    for t in range(1, 40):
        out = sim.step_actions(act).copy()
        o = dict(zip(L.OUT_FIELDS, out[0]))
        if o["cars_balked"]:
            assert balked_at is None
            balked_at = t
            assert o["balk_penalty_usd"] == cfg.ev.balk_penalty_usd
        c = sim.stall_car[0, 0]
        if c >= 0 and c != order[-1]:
            order.append(int(c))
    # car 2 waited 5, then 10 min = its patience: balks on its second waiting step (t = 2)
    assert balked_at == 2
    assert sim.car_status[0, 2] == BALKED
    assert order[:3] == [0, 1, 3], "cars did not take the stall in arrival order"
    k = sim.kpis()
    assert k["cars_balked"][0] == 1 and k["cars_arrived"][0] == 4


def test_waiting_is_charged_per_car_minute() -> None:
    cfg = config(chargers__n_stalls=1, battery__energy_kwh=0.0)
    cars = [dict(arrival_step=0)] + [dict(arrival_step=0) for _ in range(3)]
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, cars))
    out = dict(zip(L.OUT_FIELDS, sim.step(0.0, 0.0)[0]))
    assert out["wait_min"] == 15.0
    assert out["wait_penalty_usd"] == pytest.approx(15.0 * cfg.ev.wait_cost_usd_per_min)


# ------------------------------------------------------------------------- sessions with dwell
STANDBY = np.array([[0.0, 0.0, np.inf]])  # compute at standby, battery idle


def dwell_run(cars: list[dict[str, float]], n_steps: int, n_stalls: int = 1) -> tuple:
    """Step a 5-min, one-stall (default) site with ``cars`` for ``n_steps`` at standby, checking
    the per-car invariants and the site balance at every step; returns the simulator, its
    recorder, the stall's car and the occupancy measurement before each step."""
    cfg = config(
        chargers__n_stalls=n_stalls, chargers__stall_kw=250.0, chargers__cabinet_kw=1000.0,
        battery__energy_kwh=0.0, episode__days=0.5,
    )  # fmt: skip
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, cars))
    rec = Recorder(sim)
    in_stall, occupied = [], []
    for _ in range(n_steps):
        in_stall.append(int(sim.stall_car[0, 0]))
        occupied.append(float(sim.measurements()["stalls_occupied_frac"][0]))
        check_site_balance(rec.step(STANDBY), cfg)
    return sim, rec, np.array(in_stall), np.array(occupied)


def test_level2_session_gets_its_energy_at_its_power_and_stays_until_departure() -> None:
    """A 3-h, 7.2 kW AC session asking for 15 kWh: charges at 7.2 kW, gets exactly 15 kWh, then
    stays parked in its stall (drawing nothing) and leaves at its departure step."""
    arrive, depart = 12, 12 + 36  # 01:00 -> 04:00
    car = dict(arrival_step=arrive, departure_step=depart, max_kw=7.2, battery_kwh=75.0,
               arrival_soc=0.2, target_soc=0.2 + 15.0 / 75.0)  # fmt: skip
    sim, rec, in_stall, occupied = dwell_run([car], 60)
    p = rec.series("ev_delivered_kw")[:, 0]
    assert p.max() == pytest.approx(7.2)  # the car's cap binds, not the 250 kW stall
    assert np.all(p[:arrive] == 0.0)
    delivered = p.sum() * sim.dt_h
    assert delivered == pytest.approx(15.0, abs=1e-9)  # all it asked for, never more
    done_at = arrive + int(np.ceil(15.0 / 7.2 * 12))  # 26 steps of charging
    assert np.all(p[done_at:] == 0.0)
    assert np.all(in_stall[arrive:depart] == 0) and np.all(in_stall[depart:] == -1)
    assert np.all(occupied[done_at:depart] == 1.0)  # parked after charging: the stall is taken
    served = rec.series("cars_served")[:, 0]
    np.testing.assert_array_equal(np.flatnonzero(served), [depart - 1])  # leaves at step 48
    assert sim.car_status[0, 0] == DONE
    assert sim.kpis()["cars_balked"][0] == 0


def test_session_asking_more_than_its_dwell_allows_leaves_at_departure_with_less() -> None:
    arrive, depart = 0, 36  # 3 h at 7.2 kW: 21.6 kWh of the 40 kWh asked for
    car = dict(arrival_step=arrive, departure_step=depart, max_kw=7.2, battery_kwh=75.0,
               arrival_soc=0.2, target_soc=0.2 + 40.0 / 75.0)  # fmt: skip
    sim, rec, in_stall, _ = dwell_run([car], 48)
    delivered = rec.series("ev_delivered_kw")[:, 0].sum() * sim.dt_h
    assert delivered == pytest.approx(7.2 * 3.0, abs=1e-9)
    assert sim.car_dyn[0, 0, 0] == pytest.approx(0.2 + 21.6 / 75.0)
    assert sim.car_dyn[0, 0, 0] < car["target_soc"]
    np.testing.assert_array_equal(np.flatnonzero(rec.series("cars_served")[:, 0]), [depart - 1])
    assert np.all(in_stall[:depart] == 0) and np.all(in_stall[depart:] == -1)
    assert sim.car_status[0, 0] == DONE


def test_dc_session_with_a_departure_keeps_its_taper() -> None:
    """A DC car with a departure charges exactly like the same car without one (acceptance-curve
    taper, stall limit), then waits parked until its departure instead of leaving at its target."""
    car = dict(arrival_step=2, battery_kwh=75.0, arrival_soc=0.1, target_soc=0.8)
    sim0, rec0, in_stall0, _ = dwell_run([car], 40)
    sim1, rec1, in_stall1, _ = dwell_run([dict(car, departure_step=30)], 40)
    p0, p1 = rec0.series("ev_delivered_kw")[:, 0], rec1.series("ev_delivered_kw")[:, 0]
    np.testing.assert_array_equal(p0, p1)
    charging = p0[p0 > 0]
    assert charging[0] > 240.0 and charging[-1] < 150.0  # flat near the stall, then the taper
    assert np.all(np.diff(charging) <= 1e-9)
    assert p0.sum() * sim0.dt_h == pytest.approx(0.7 * 75.0, abs=1e-6)
    left0 = int(np.flatnonzero(rec0.series("cars_served")[:, 0])[0])
    assert left0 < 29  # without a departure the car left at its target SoC ...
    assert np.all(in_stall0[left0 + 1 :] == -1)
    np.testing.assert_array_equal(np.flatnonzero(rec1.series("cars_served")[:, 0]), [29])
    assert np.all(in_stall1[2:30] == 0)  # ... with one it holds the stall until step 30


def test_power_cap_without_departure_leaves_at_target() -> None:
    car = dict(arrival_step=0, battery_kwh=75.0, arrival_soc=0.1, target_soc=0.5, max_kw=50.0)
    sim, rec, _, _ = dwell_run([car], 48)
    p = rec.series("ev_delivered_kw")[:, 0]
    assert p.max() == pytest.approx(50.0)
    assert p.sum() * sim.dt_h == pytest.approx(0.4 * 75.0, abs=1e-6)
    left = np.flatnonzero(rec.series("cars_served")[:, 0])
    np.testing.assert_array_equal(left, [int(np.ceil(0.4 * 75.0 / 50.0 * 12)) - 1])


def test_car_still_queued_at_its_departure_leaves_as_balked() -> None:
    cfg_cars = [
        dict(arrival_step=0, battery_kwh=150.0, arrival_soc=0.1, target_soc=0.9),  # ~1 h
        dict(arrival_step=0, departure_step=3, patience_min=1e6),  # queued until it must go
    ]
    sim, rec, in_stall, _ = dwell_run(cfg_cars, 6)
    balked = rec.series("cars_balked")[:, 0]
    np.testing.assert_array_equal(np.flatnonzero(balked), [2])  # gone at the start of step 3
    pen = rec.series("balk_penalty_usd")[:, 0]
    assert pen[2] == pytest.approx(sim.configs[0].ev.balk_penalty_usd) and pen.sum() == pen[2]
    assert rec.series("wait_min")[:, 0].tolist() == [5.0, 5.0, 5.0, 0.0, 0.0, 0.0]
    assert sim.car_status[0, 1] == BALKED and np.all(in_stall == 0)
    k = sim.kpis()
    assert k["cars_balked"][0] == 1 and k["cars_served"][0] == 0 and k["cars_arrived"][0] == 2
    assert sim.measurements()["queue_length"][0] == 0


# ------------------------------------------------------------------------- demand charges
def test_demand_charge_increments_only_on_a_new_peak_above_threshold() -> None:
    cfg = config(
        battery__energy_kwh=0.0,
        tariff__demand_charges=[{"name": "d", "usd_per_kw_month": 30.0, "threshold_kw": 500.0}],
        tariff__billing_days=30.0,
    )
    rate = 30.0 * 1.0 / 30.0  # $/kW prorated to a 1-day episode
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, [], ambient_c=10.0))  # PUE 1.10 all day
    pue = 1.10
    # IT fraction per 5-min step, 3 steps per 15-min window
    plan = [
        (0.30, 0.30, 0.30),  # 396 kW: below the threshold -> nothing
        (0.60, 0.60, 0.60),  # 792 kW: new peak, 292 kW above 500
        (0.60, 0.60, 0.60),  # same peak -> nothing
        (0.50, 0.50, 0.50),  # lower -> nothing
        (1.00, 0.30, 0.35),  # avg 0.55 -> 726 kW < 792 -> nothing (one step above!)
        (0.90, 0.90, 0.90),  # 1188 kW: +396
        (0.95, 0.95, 0.95),  # 1254 kW: +66
    ]
    expected_peak = 500.0
    for w, fracs in enumerate(plan):
        imports = []
        for k, frac in enumerate(fracs):
            o = dict(zip(L.OUT_FIELDS, sim.step(frac, 0.0)[0]))
            imports.append(o["grid_import_kw"])
            assert o["grid_import_kw"] == pytest.approx(1200.0 * frac * pue)
            if k < 2:
                assert o["demand_charge_usd"] == 0.0, f"charged inside window {w}"
        avg = float(np.mean(imports))
        increase = max(avg - expected_peak, 0.0)
        assert o["demand_charge_usd"] == pytest.approx(rate * increase, abs=1e-9), f"window {w}"
        expected_peak = max(expected_peak, avg)
        assert o["peak_demand_kw"] == pytest.approx(expected_peak)
    assert expected_peak == pytest.approx(1254.0)


def test_demand_charges_match_a_reference_over_a_random_day() -> None:
    """demand-charge-heavy: a facility charge all day and an on-peak charge (16-21 h weekdays);
    the per-step charge equals an independent re-computation from the reported imports."""
    cfg = load_scenario("demand-charge-heavy")
    seeds = [0, 1, 2, 3]
    sim = SiteSimulator(cfg, batch_size=len(seeds))
    trace = TraceSampler(cfg).sample(seeds)
    sim.reset(trace)
    rng = np.random.default_rng(7)
    imports, charges = [], []
    while not sim.done.any():
        a = np.column_stack([rng.uniform(0, 1, 4), rng.uniform(-2000, 2000, 4), np.full(4, np.inf)])
        out = sim.step_actions(a)
        imports.append(out[:, L.O_GRID_IMPORT_KW].copy())
        charges.append(out[:, L.O_DEMAND_CHARGE_USD].copy())
    imports_a, charges_a = np.array(imports), np.array(charges)  # [T, B]
    w = cfg.grid.demand_window_min // cfg.episode.step_min
    prorate = cfg.episode.days / cfg.tariff.billing_days
    for b in range(len(seeds)):
        peaks = [d.threshold_kw for d in cfg.tariff.demand_charges]
        expected = np.zeros(sim.n_steps)
        for end in range(w - 1, sim.n_steps, w):
            avg = imports_a[end - w + 1 : end + 1, b].mean()
            for k, d in enumerate(cfg.tariff.demand_charges):
                if trace.demand_active[b, end - w + 1, k] and avg > peaks[k]:
                    expected[end] += d.usd_per_kw_month * prorate * (avg - peaks[k])
                    peaks[k] = avg
        np.testing.assert_allclose(charges_a[:, b], expected, rtol=1e-9, atol=1e-9)
        assert expected.sum() > 0
    assert trace.demand_active[:, :, 1].any()  # some weekday evening was simulated
    assert not trace.demand_active[:, :, 1].all()


# -------------------------------------------------------------------------------- battery
def test_battery_respects_soc_window_power_limits_and_efficiencies() -> None:
    cfg = config(
        grid__import_limit_kw=6000.0, grid__export_limit_kw=6000.0, battery__energy_kwh=1000.0,
        battery__charge_kw=700.0, battery__discharge_kw=500.0, battery__charge_efficiency=0.9,
        battery__discharge_efficiency=0.85, battery__soc_min=0.2, battery__soc_max=0.9,
        battery__initial_soc=0.5,
    )  # fmt: skip
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, []))
    rec = Recorder(sim)
    rng = np.random.default_rng(3)
    hit = {"charge_kw": False, "discharge_kw": False, "soc_min": False, "soc_max": False}
    requests = np.concatenate(
        [
            rng.choice([-1e9, -5000.0, -700.0, -300.0, 0.0, 200.0, 500.0, 4000.0, 1e9], 200),
            np.full(40, 1e9),  # run down to soc_min
            np.full(48, -1e9),  # and up to soc_max
        ]
    )
    for req in requests.tolist():
        soc_before = float(sim.fstate[0, L.FSTATE_INDEX["battery_soc"]])
        out = rec.step(np.array([[0.5, req, np.inf]]))
        soc = out["battery_soc_frac"][0]
        assert 0.2 - 1e-12 <= soc <= 0.9 + 1e-12
        assert out["battery_charge_kw"][0] <= 700.0 + EPS_KW
        assert out["battery_discharge_kw"][0] <= 500.0 + EPS_KW
        feasible_dis = min(500.0, (soc_before - 0.2) * 1000.0 * 0.85 / sim.dt_h)
        feasible_chg = min(700.0, (0.9 - soc_before) * 1000.0 / (0.9 * sim.dt_h))
        expect = min(max(req, -feasible_chg), feasible_dis)
        assert out["battery_kw"][0] == pytest.approx(expect, abs=1e-6)
        assert out["battery_limited_kw"][0] == pytest.approx(abs(req - expect), rel=1e-12, abs=1e-6)
        assert out["battery_kw_requested"][0] == req
        hit["charge_kw"] |= abs(out["battery_charge_kw"][0] - 700.0) < 1e-6
        hit["discharge_kw"] |= abs(out["battery_discharge_kw"][0] - 500.0) < 1e-6
        hit["soc_min"] |= abs(soc - 0.2) < 1e-9
        hit["soc_max"] |= abs(soc - 0.9) < 1e-9
        check_site_balance(out, cfg)
    assert all(hit.values()), hit  # every limit was exercised
    loss = rec.series("battery_loss_kw")[:, 0]
    chg, dis = rec.series("battery_charge_kw")[:, 0], rec.series("battery_discharge_kw")[:, 0]
    np.testing.assert_allclose(loss, chg * (1 - 0.9) + dis * (1 / 0.85 - 1), atol=1e-9)


def test_no_battery_means_no_battery_flows() -> None:
    cfg = config(battery__energy_kwh=0.0)
    sim = SiteSimulator(cfg)
    sim.reset(TraceSampler(cfg).sample([0]))
    for req in (-1e6, 1e6, 0.0, 500.0):
        o = dict(zip(L.OUT_FIELDS, sim.step(1.0, req)[0]))
        assert o["battery_kw"] == 0.0 and o["battery_aux_kw"] == 0.0
        assert o["battery_charge_kw"] == o["battery_discharge_kw"] == 0.0
        assert o["battery_limited_kw"] == abs(req)


def test_export_is_capped_at_the_export_limit() -> None:
    cfg = config(grid__export_limit_kw=200.0, battery__initial_soc=0.9)
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, []))
    o = dict(zip(L.OUT_FIELDS, sim.step(0.0, 1927.0)[0]))  # compute at standby ~330-390 kW
    assert o["grid_export_kw"] == pytest.approx(200.0)
    assert o["grid_import_kw"] == 0.0
    assert o["battery_discharge_kw"] == pytest.approx(o["compute_kw"] + o["battery_aux_kw"] + 200.0)
    cfg0 = config(grid__export_limit_kw=0.0, battery__initial_soc=0.9)
    sim = SiteSimulator(cfg0)
    sim.reset(hand_trace(cfg0, []))
    o = dict(zip(L.OUT_FIELDS, sim.step(0.0, 1927.0)[0]))
    assert o["grid_export_kw"] == 0.0


# ------------------------------------------------------------------------- safety layer
def busy(mode: str, **kw: Any) -> ScenarioConfig:
    return config(ev_priority=mode, ev__arrivals_per_day=400.0, **kw)


def dis_max(cfg: ScenarioConfig, soc: float, dt_h: float) -> float:
    b = cfg.battery
    return min(
        b.discharge_kw, max(soc - b.soc_min, 0.0) * b.energy_kwh * b.discharge_efficiency / dt_h
    )


def run_full_compute(cfg: ScenarioConfig, seeds: list[int], battery_kw: float = 0.0):
    sim = SiteSimulator(cfg, batch_size=len(seeds))
    sim.reset(TraceSampler(cfg).sample(seeds))
    rec = Recorder(sim)
    socs = []
    while not sim.done.any():
        socs.append(sim.fstate[:, L.FSTATE_INDEX["battery_soc"]].copy())
        out = rec.step(np.tile([1.0, battery_kw, np.inf], (len(seeds), 1)))
        for b in range(len(seeds)):
            check_site_balance(out, cfg, b)
    return sim, rec, np.array(socs)


@pytest.mark.parametrize("mode", ["strict", "soft"])
def test_grid_limit_holds_with_full_compute_and_many_cars(mode: str) -> None:
    cfg = busy(mode)
    sim, rec, _ = run_full_compute(cfg, [0, 1, 2])
    imp = rec.series("grid_import_kw")
    assert imp.max() <= cfg.grid.import_limit_kw + EPS_KW
    assert (imp > cfg.grid.import_limit_kw - 1.0).mean() > 0.1  # the limit binds often
    assert rec.series("compute_cut_kw").max() > 0


def test_strict_mode_cuts_compute_then_discharges_battery_before_cars() -> None:
    cfg = busy("strict", grid__import_limit_kw=800.0)
    sim, rec, socs = run_full_compute(cfg, [0, 1])
    ev_cut = rec.series("ev_cut_kw")
    override = rec.series("battery_override_kw")
    assert override.max() > 0, "the battery never covered the cars"
    assert ev_cut.max() > 0, "the battery never ran out (test too weak)"
    standby = cfg.compute.standby_frac
    for t, b in zip(*np.nonzero(ev_cut > 1e-9)):
        r = rec.rows[t]
        assert r["paused"][b] == 1.0 and r["compute_frac"][b] == pytest.approx(standby)
        assert r["battery_kw"][b] == pytest.approx(dis_max(cfg, socs[t, b], sim.dt_h), abs=1e-6)
    # when compute is cut but cars are whole, the cars got everything they asked for
    whole = (ev_cut <= 1e-9) & (rec.series("ev_requested_kw") > 0)
    np.testing.assert_allclose(
        rec.series("ev_kw")[whole], rec.series("ev_requested_kw")[whole], rtol=1e-9
    )


def test_soft_mode_never_overrides_the_battery() -> None:
    cfg = busy("soft", grid__import_limit_kw=800.0)
    sim, rec, _ = run_full_compute(cfg, [0, 1])
    assert rec.series("battery_override_kw").max() == 0.0
    ev_cut = rec.series("ev_cut_kw")
    assert ev_cut.max() > 0
    # compute goes first in soft mode too (cap = +inf: no cap requested)
    for t, b in zip(*np.nonzero(ev_cut > 1e-9)):
        assert rec.rows[t]["paused"][b] == 1.0


def test_soft_mode_ev_cap_limits_cars_and_strict_ignores_it() -> None:
    for mode in ("soft", "strict"):
        cfg = busy(mode)
        sim = SiteSimulator(cfg)
        sim.reset(TraceSampler(cfg).sample([5]))
        capped = []
        while not sim.done.any():
            o = dict(zip(L.OUT_FIELDS, sim.step(0.0, 0.0, 100.0)[0]))
            capped.append((o["ev_kw"], o["ev_requested_kw"]))
        ev, req = np.array(capped).T
        if mode == "soft":
            assert ev.max() <= 100.0 + EPS_KW and req.max() > 100.0
        else:
            assert ev.max() > 100.0


def test_battery_charging_is_cut_before_compute() -> None:
    cfg = config(battery__initial_soc=0.5)
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, [], ambient_c=10.0))
    o = dict(zip(L.OUT_FIELDS, sim.step(1.0, -1927.0)[0]))  # compute 1320 kW + charge 1927 kW
    assert o["compute_cut_kw"] == 0.0 and o["compute_frac"] == 1.0
    assert o["grid_import_kw"] == pytest.approx(cfg.grid.import_limit_kw)
    assert o["battery_charge_kw"] == pytest.approx(1500.0 - 1320.0 - 1.5)


def test_compute_below_cap_floor_pauses_at_standby_and_costs_pause_resume() -> None:
    cfg = config(battery__energy_kwh=0.0)
    sim = SiteSimulator(cfg)
    sim.reset(hand_trace(cfg, [], ambient_c=10.0, inference=0.1))
    o = dict(zip(L.OUT_FIELDS, sim.step(0.2, 0.0)[0]))  # below the 0.29 floor
    assert o["paused"] == 1.0 and o["compute_frac"] == cfg.compute.standby_frac
    assert o["compute_kw"] == pytest.approx(1200.0 * 0.25 * 1.10)
    assert o["training_work_kwh"] == 0.0 and o["inference_served_kwh"] == 0.0
    assert o["inference_unmet_kwh"] == pytest.approx(0.1 * 1200.0 * sim.dt_h)
    assert o["pause_resume_cost_usd"] > 0  # checkpoint
    o = dict(zip(L.OUT_FIELDS, sim.step(0.2, 0.0)[0]))
    assert o["pause_resume_cost_usd"] == 0.0  # stays paused: no new cost
    o = dict(zip(L.OUT_FIELDS, sim.step(1.0, 0.0)[0]))
    assert o["paused"] == 0.0 and o["pause_resume_cost_usd"] > 0  # resume
    # full speed: inference served first, training gets the rest of the (concave) throughput
    assert o["inference_served_kwh"] == pytest.approx(0.1 * 1200.0 * sim.dt_h)
    assert o["training_work_kwh"] == pytest.approx(0.9 * 1200.0 * sim.dt_h)
