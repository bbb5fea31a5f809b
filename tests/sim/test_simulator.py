"""The batch-first simulator's API (megapod_gym.sim.simulator): reset, step, errors, batching,
cloning and the default site's day against the domain facts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from megapod_gym.config import load_scenario
from megapod_gym.scenario.trace import TraceSampler
from megapod_gym.sim import layout as L
from megapod_gym.sim.kernel import WAITING
from megapod_gym.sim.params import build_params
from megapod_gym.sim.simulator import SiteSimulator


@pytest.fixture(scope="module")
def cfg(default_config):
    return default_config


@pytest.fixture()
def sim(cfg) -> SiteSimulator:
    s = SiteSimulator(cfg, batch_size=2)
    s.reset(TraceSampler(cfg).sample([0, 1]))
    return s


def random_actions(rng: np.random.Generator, B: int) -> np.ndarray:
    return np.column_stack([rng.uniform(0, 1, B), rng.uniform(-2000, 2000, B), np.full(B, np.inf)])


# ------------------------------------------------------------------------------ basics
def test_outputs_and_measurements_are_named(sim: SiteSimulator) -> None:
    out = sim.step(1.0, 0.0)
    assert out.shape == (2, len(L.OUT_FIELDS))
    assert list(sim.outputs()) == list(L.OUT_FIELDS)
    assert list(sim.measurements()) == list(L.MEAS_FIELDS)
    assert sim.outputs()["grid_import_kw"].shape == (2,)
    assert np.array_equal(sim.t, [1, 1])
    assert not sim.done.any()


def test_reset_state(cfg, sim: SiteSimulator) -> None:
    m = sim.measurements()
    np.testing.assert_array_equal(m["battery_soc_frac"], cfg.battery.initial_soc)
    np.testing.assert_allclose(m["training_backlog_h"], cfg.compute.training_backlog_initial_h)
    np.testing.assert_array_equal(m["compute_paused"], 0.0)
    np.testing.assert_array_equal(m["time_of_day_cos"], 1.0)  # midnight
    assert np.array_equal(sim.t, [0, 0])
    assert np.array_equal(sim.seeds, [0, 1])


# -------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "setpoints",
    [
        (np.nan, 0.0, np.inf),
        (1.0, np.nan, np.inf),
        (1.0, 0.0, np.nan),
        (np.inf, 0.0, np.inf),
        (1.0, -np.inf, np.inf),
        (1.0, np.inf, 10.0),
    ],
    ids=["nan-compute", "nan-battery", "nan-ev-cap", "inf-compute", "-inf-battery", "inf-battery"],
)
def test_non_finite_setpoints_raise_and_leave_state_untouched(
    sim: SiteSimulator, setpoints: tuple[float, float, float]
) -> None:
    sim.step(1.0, 0.0)
    before = (sim.fstate.copy(), sim.istate.copy(), sim.meas.copy(), sim.car_dyn.copy())
    bad = np.array([[1.0, 0.0, np.inf], list(setpoints)])  # only site 1 is bad
    with pytest.raises(ValueError, match="finite"):
        sim.step_actions(bad)
    after = (sim.fstate, sim.istate, sim.meas, sim.car_dyn)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)  # site 0 did not step either


def test_infinite_ev_cap_is_allowed(sim: SiteSimulator) -> None:
    sim.step(1.0, 0.0, np.inf)
    sim.step(1.0, 0.0, -np.inf)  # no cap can be below zero: it means 0 kW in soft mode
    assert np.array_equal(sim.t, [2, 2])


def test_stepping_past_the_episode_end_raises(cfg) -> None:
    sim = SiteSimulator(cfg)
    trace = TraceSampler(cfg).sample([3])
    sim.reset(trace)
    for _ in range(sim.n_steps):
        sim.step(1.0, 0.0)
    assert sim.done.all() and sim.t[0] == 288
    with pytest.raises(RuntimeError, match="reset"):
        sim.step(1.0, 0.0)
    sim.reset(trace)
    sim.step(1.0, 0.0)
    assert sim.t[0] == 1


def test_reset_validates_the_trace(cfg) -> None:
    sim = SiteSimulator(cfg, batch_size=2)
    sampler = TraceSampler(cfg)
    with pytest.raises(ValueError, match="rows"):
        sim.reset(sampler.sample([0]))
    other = load_scenario(None, {"episode.days": 2})
    with pytest.raises(ValueError, match="length"):
        sim.reset(TraceSampler(other).sample([0, 1]))
    two_charges = load_scenario("demand-charge-heavy")
    with pytest.raises(ValueError, match="demand charges"):
        sim.reset(TraceSampler(two_charges).sample([0, 1]))


def test_batch_needs_a_common_step() -> None:
    a = load_scenario()
    b = load_scenario(None, {"episode.step_min": 15})
    with pytest.raises(ValueError, match="step_min"):
        build_params([a, b])


# ----------------------------------------------------------------------------- batching
def run(sim: SiteSimulator, actions: np.ndarray) -> np.ndarray:
    """Step through ``actions`` [T, B, 3]; return outputs [T, B, F] and keep measurements."""
    outs = []
    for a in actions:
        outs.append(sim.step_actions(a).copy())
    return np.array(outs)


def test_batch_rows_equal_single_site_runs(cfg) -> None:
    seeds = [4, 9, 2]
    rng = np.random.default_rng(0)
    acts = np.stack([random_actions(rng, 3) for _ in range(cfg.episode.n_steps)])
    batch = SiteSimulator(cfg, batch_size=3)
    batch.reset(TraceSampler(cfg).sample(seeds))
    outs = run(batch, acts)
    for i, s in enumerate(seeds):
        one = SiteSimulator(cfg)
        one.reset(TraceSampler(cfg).sample([s]))
        single = run(one, acts[:, i : i + 1])
        np.testing.assert_array_equal(outs[:, i], single[:, 0])
        np.testing.assert_array_equal(batch.meas[i], one.meas[0])


def test_heterogeneous_batch_equals_single_sites() -> None:
    cfgs = [
        load_scenario(),
        load_scenario("highway-64stall", {"tariff.demand_charges": []}),
        load_scenario(None, {"ev_priority": "soft", "battery.energy_kwh": 0.0}),
    ]
    traces = [TraceSampler(c).sample([i]) for i, c in enumerate(cfgs)]
    batch = SiteSimulator(cfgs)
    # the batch's trace needs the same number of demand-charge columns for every row
    k = batch.params.n_demand_charges
    padded = [
        dataclasses.replace(
            t,
            demand_active=np.concatenate(
                [t.demand_active, np.zeros((1, t.n_steps, k - t.demand_active.shape[2]), bool)],
                axis=2,
            ),
        )
        for t in traces
    ]
    from megapod_gym.scenario.trace import ExogenousTrace

    batch.reset(ExogenousTrace.stack(padded))
    rng = np.random.default_rng(1)
    acts = np.stack([random_actions(rng, 3) for _ in range(100)])
    acts[:, 2, 2] = 300.0  # an EV cap for the soft site
    outs = run(batch, acts)
    for i, c in enumerate(cfgs):
        one = SiteSimulator(c)
        one.reset(padded[i] if c.tariff.demand_charges else traces[i])
        np.testing.assert_allclose(outs[:, i], run(one, acts[:, i : i + 1])[:, 0], rtol=0, atol=0)


def test_reset_of_some_sites_leaves_the_others(cfg) -> None:
    sim = SiteSimulator(cfg, batch_size=3)
    sampler = TraceSampler(cfg)
    sim.reset(sampler.sample([0, 1, 2]))
    for _ in range(10):
        sim.step(1.0, 0.0)
    keep = sim.meas[[0, 2]].copy()
    sim.reset(sampler.sample([7]), sites=[1])
    assert list(sim.t) == [10, 0, 10]
    np.testing.assert_array_equal(sim.meas[[0, 2]], keep)
    ref = SiteSimulator(cfg)
    ref.reset(sampler.sample([7]))
    np.testing.assert_array_equal(sim.meas[1], ref.meas[0])


def test_inactive_sites_do_not_step(cfg) -> None:
    sim = SiteSimulator(cfg, batch_size=2)
    sim.reset(TraceSampler(cfg).sample([0, 1]))
    meas1 = sim.meas[1].copy()
    out = sim.step_actions(np.array([[1.0, 0.0, np.inf]] * 2), active=np.array([True, False]))
    assert list(sim.t) == [1, 0]
    assert np.all(out[1] == 0.0)
    np.testing.assert_array_equal(sim.meas[1], meas1)


def test_more_cars_than_the_initial_capacity() -> None:
    cfg = load_scenario("highway-64stall")  # ~400 cars/day > the 64 preallocated
    sim = SiteSimulator(cfg)
    trace = TraceSampler(cfg).sample([0])
    assert trace.n_cars[0] > 64
    sim.reset(trace)
    while not sim.done.any():
        sim.step(1.0, 0.0)
    assert sim.kpis()["cars_arrived"][0] == trace.n_cars[0]


# --------------------------------------------------------------------------------- clone
def test_clone_is_an_independent_copy(cfg) -> None:
    sim = SiteSimulator(cfg, batch_size=2)
    sim.reset(TraceSampler(cfg).sample([0, 1]))
    rng = np.random.default_rng(2)
    for _ in range(100):
        sim.step_actions(random_actions(rng, 2))
    snapshot = {k: v.copy() for k, v in vars(sim).items() if isinstance(v, np.ndarray)}
    twin = sim.clone()
    acts = np.stack([random_actions(rng, 2) for _ in range(50)])
    twin_out = run(twin, acts)
    for k, v in snapshot.items():  # stepping the twin left the original untouched
        np.testing.assert_array_equal(getattr(sim, k), v, err_msg=k)
    assert list(sim.t) == [100, 100] and list(twin.t) == [150, 150]
    np.testing.assert_array_equal(run(sim, acts), twin_out)  # and both evolve identically
    np.testing.assert_array_equal(sim.meas, twin.meas)
    # stepping the original does not move the twin either
    twin_meas = twin.meas.copy()
    sim.step(0.5, 0.0)
    np.testing.assert_array_equal(twin.meas, twin_meas)


# ---------------------------------------------------------------------- sources (§2, §7)
def test_default_site_day_matches_sources(cfg) -> None:
    """Greedy compute (full IT requested, the safety layer serves the cars first), battery idle.

    sources §7: ~70 arrivals/day; sources §2c: 22-36 kWh per DCFC session; sources §2e:
    time-based stall utilization 8-9 % network average, 20-40 % at busy sites.
    """
    seeds = list(range(8))
    sim = SiteSimulator(cfg, batch_size=len(seeds))
    sim.reset(TraceSampler(cfg).sample(seeds))
    occupied = np.zeros(len(seeds))
    energy = np.zeros(len(seeds))
    while not sim.done.any():
        occupied += sim.measurements()["stalls_occupied_frac"]
        out = sim.step(1.0, 0.0)
        energy += out[:, L.O_EV_DELIVERED_KW] * sim.dt_h
    k = sim.kpis()
    still_waiting = (sim.car_status == WAITING).sum(axis=1)
    starts = k["cars_arrived"] - k["cars_balked"] - still_waiting  # sessions that got a stall
    cars_per_day = k["cars_arrived"].mean()
    kwh_per_session = energy.sum() / starts.sum()
    utilization = occupied.mean() / sim.n_steps
    print(
        f"cars/day {cars_per_day:.1f}, kWh/session {kwh_per_session:.1f}, "
        f"utilization {utilization:.1%}, balked {k['cars_balked'].sum():.0f}"
    )
    assert 60.0 <= cars_per_day <= 80.0
    assert 20.0 <= kwh_per_session <= 45.0
    assert 0.05 <= utilization <= 0.40
    assert k["cars_balked"].sum() <= 0.05 * k["cars_arrived"].sum()
    # cars come first: nobody was cut by compute on the default site
    assert k["cars_served"].sum() >= 0.95 * starts.sum()


def test_kpis(cfg) -> None:
    sim = SiteSimulator(cfg, batch_size=1)
    trace = TraceSampler(cfg).sample([0])
    sim.reset(trace)
    wait = 0.0
    while not sim.done.any():
        wait += sim.step(1.0, 0.0)[0, L.O_WAIT_MIN]
    k = sim.kpis()
    assert set(k) == {
        "cars_arrived",
        "cars_served",
        "cars_balked",
        "wait_min_total",
        "mean_wait_min",
    }
    assert k["cars_arrived"][0] == trace.n_cars[0]
    assert k["cars_served"][0] + k["cars_balked"][0] <= k["cars_arrived"][0]
    assert k["wait_min_total"][0] == pytest.approx(wait)
    assert k["mean_wait_min"][0] == pytest.approx(wait / trace.n_cars[0])


def test_threaded_kernel_steps_exactly_like_the_single_threaded_one() -> None:
    """``step_batch_mt`` (large batches, several numba threads) and ``step_batch`` are one body
    compiled twice: a day of random setpoints on a busy scenario gives identical state and
    outputs, whichever thread runs which site."""
    from megapod_gym.sim.kernel import step_batch, step_batch_mt

    cfg = load_scenario("urban-busy")
    trace = TraceSampler(cfg).sample(range(40))
    sims = [SiteSimulator(cfg, batch_size=40) for _ in range(2)]
    for s in sims:
        s.reset(trace)
    rng = np.random.default_rng(0)
    active = np.ones(40, dtype=np.bool_)
    for t in range(cfg.episode.n_steps):
        a = np.stack(
            [rng.uniform(0, 1, 40), rng.uniform(-800, 800, 40), rng.uniform(0, 2000, 40)], axis=1
        )
        active[:] = rng.random(40) < 0.9 if t % 7 == 0 else True
        for s, kernel in zip(sims, (step_batch, step_batch_mt)):
            assert kernel(active, a, *s._kernel_args, s.out, s.meas) == 0
        np.testing.assert_array_equal(sims[0].out, sims[1].out)
        np.testing.assert_array_equal(sims[0].meas, sims[1].meas)
        if (sims[0].t >= cfg.episode.n_steps).any():
            break
    np.testing.assert_array_equal(sims[0].fstate, sims[1].fstate)
    np.testing.assert_array_equal(sims[0].car_dyn, sims[1].car_dyn)


@pytest.mark.slow
def test_first_compile_is_announced_once_and_cached_runs_are_silent(tmp_path) -> None:
    """A fresh install (empty numba cache) says on stderr that it compiles the kernels; the next
    process finds them in the cache and says nothing."""
    import os
    import subprocess
    import sys

    code = (
        "from megapod_gym.config import load_scenario\n"
        "from megapod_gym.scenario.trace import TraceSampler\n"
        "from megapod_gym.sim.simulator import SiteSimulator\n"
        "cfg = load_scenario(); sim = SiteSimulator(cfg); SiteSimulator(cfg)\n"
        "sim.reset(TraceSampler(cfg).sample([0])); sim.step(1.0, 0.0)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[0].stderr.count("compiling the simulation kernels") == 1
    assert "compiling" not in runs[1].stderr
