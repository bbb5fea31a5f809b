"""The fleet core (megapod_gym.config.fleet, megapod_gym.fleet): config errors, trace
determinism and time zones, invariants under random dispatch (hypothesis), outages, migration
and deadline losses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megapod_gym.config.fleet import fleet_names, fleet_site_configs, load_fleet
from megapod_gym.config.loading import ConfigError
from megapod_gym.envs.fleet_interface import FleetInterface
from megapod_gym.fleet import jobs as J
from megapod_gym.fleet.simulator import FLEET_INDEX, FleetSimulator
from megapod_gym.fleet.trace import FleetTrace, FleetTraceSampler, JobTrace
from megapod_gym.sim import layout as L

FLEET = "tri-tz-3site"
SHORT = {"episode.days": 0.25}  # 72 five-minute steps
QUIET = {**SHORT, "outages.rate_per_site_day": 0.0}  # no sampled outages
EPS_KWH = 1e-6
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # reproducible in CI
)


def fleet_sim(**overrides) -> FleetSimulator:
    """A small fleet: tri-tz-3site cut to 6 h, with dotted ``overrides`` on top."""
    return FleetSimulator(load_fleet(FLEET, {**SHORT, **overrides}))


def full_compute(fs: FleetSimulator, compute_frac: float = 1.0) -> np.ndarray:
    sp = np.zeros((fs.n_sites, 3))
    sp[:, 0] = compute_frac
    sp[:, 2] = np.inf
    return sp


def assert_step_invariants(fs: FleetSimulator, f: np.ndarray) -> None:
    """Invariants of every fleet step (see the FleetSimulator docstring)."""
    out = fs.sim.out
    assert np.isfinite(out).all() and np.isfinite(f).all()
    bal = fs.work_balance()
    lhs, rhs = bal["arrived_kwh"], bal["done_kwh"] + bal["left_kwh"] + bal["lost_kwh"]
    assert abs(lhs - rhs) <= 1e-6 * max(lhs, 1.0), bal
    assert np.abs(out[:, L.O_ENERGY_BALANCE_RESIDUAL_KWH]).max() < EPS_KWH
    outage = f[:, FLEET_INDEX["outage"]] > 0.5
    limit = np.where(outage, 0.0, fs._limits[:, 0])
    export_limit = np.where(outage, 0.0, fs._limits[:, 1])
    assert (out[:, L.O_GRID_IMPORT_KW] <= limit + 1e-6 * np.maximum(limit, 1.0)).all()
    assert (out[:, L.O_GRID_EXPORT_KW] <= export_limit + 1e-6).all()
    assert (out[outage, L.O_COMPUTE_KW] == 0.0).all()
    assert (out[outage, L.O_TRAINING_WORK_KWH] == 0.0).all()
    net = f[:, FLEET_INDEX["net_usd"]]
    np.testing.assert_allclose(
        net,
        f[:, FLEET_INDEX["site_total_usd"]]
        - f[:, FLEET_INDEX["migration_usd"]]
        - f[:, FLEET_INDEX["deadline_loss_usd"]],
        rtol=1e-12,
        atol=1e-9,
    )
    assert fs.fleet_total_usd == pytest.approx(net.sum() - fs.pool_loss_usd, rel=1e-12, abs=1e-9)
    assert (fs.transit >= 0).all()
    assert (fs.left_kwh >= 0.0).all() and (fs.done_kwh >= 0.0).all()
    placed = (fs.status == J.ACTIVE) & (fs.site >= 0)
    assert (fs.site[placed] < fs.n_sites).all()
    # a job in transit does no work: done work came only from runnable jobs
    np.testing.assert_allclose(
        f[:, FLEET_INDEX["work_done_kwh"]], out[:, L.O_TRAINING_WORK_KWH], rtol=0, atol=0
    )


# --------------------------------------------------------------------------- config errors
def test_bad_utc_offset_names_the_field() -> None:
    bad = {"name": "bad", "sites": [{"scenario": "caiso-rt-spring", "utc_offset_h": 20}]}
    with pytest.raises(ConfigError, match=r"sites\.0\.utc_offset_h"):
        load_fleet(bad)
    with pytest.raises(ConfigError, match=r"sites\.0\.utc_offset_h"):
        load_fleet({"name": "bad", "sites": [{"scenario": "caiso-rt-spring", "utc_offset_h": -13}]})


def test_scheduled_outage_at_a_missing_site_names_the_field() -> None:
    outage = [{"site": 3, "start_h": 1, "duration_h": 2}]
    with pytest.raises(ConfigError, match=r"outages\.scheduled\.0\.site must be < 3"):
        load_fleet(FLEET, {"outages.scheduled": outage})
    load_fleet(FLEET, {"outages.scheduled": [{**outage[0], "site": 2}]})  # in range: fine


def test_unknown_fleet_lists_the_valid_names() -> None:
    names = fleet_names()
    assert {"tri-tz-3site", "fleet-20site"} <= set(names)
    with pytest.raises(ConfigError, match="unknown fleet 'no-such-fleet'") as err:
        load_fleet("no-such-fleet")
    for name in names:
        assert name in str(err.value)


def test_sites_with_different_episode_steps_are_rejected() -> None:
    fleet = load_fleet(
        {
            "name": "mixed-steps",
            "sites": [
                {"scenario": "caiso-rt-spring"},
                {"scenario": "urban-12stall-bev", "overrides": {"episode.step_min": 15}},
            ],
        }
    )
    with pytest.raises(ConfigError, match=r"site 1 .*step_min=15.*step_min=5"):
        fleet_site_configs(fleet)
    with pytest.raises(ConfigError, match="step_min"):
        FleetSimulator(fleet)


# ---------------------------------------------------------------------------------- traces
def _assert_traces_equal(a: FleetTrace, b: FleetTrace) -> None:
    assert a.seed == b.seed and a.start_date_utc == b.start_date_utc
    for f in dataclasses.fields(a.sites):
        x, y = getattr(a.sites, f.name), getattr(b.sites, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name
    for f in dataclasses.fields(a.jobs):
        np.testing.assert_array_equal(getattr(a.jobs, f.name), getattr(b.jobs, f.name))
    np.testing.assert_array_equal(a.outage, b.outage)


def test_same_seed_same_fleet_trace() -> None:
    fleet = load_fleet(FLEET, SHORT)
    s1, s2 = FleetTraceSampler(fleet), FleetTraceSampler(fleet)
    a, b = s1.sample(17), s2.sample(17)
    _assert_traces_equal(a, b)
    _assert_traces_equal(a, s1.sample(17))  # sampling is stateless
    c = s1.sample(18)
    assert not np.array_equal(a.sites.price_usd_per_kwh, c.sites.price_usd_per_kwh)
    assert a.jobs.n_jobs > 0
    assert (np.diff(a.jobs.arrival_step) >= 0).all()  # sorted by arrival
    assert (a.jobs.deadline_step > a.jobs.arrival_step).all()
    with pytest.raises(ValueError, match="non-negative"):
        s1.sample(-1)


@pytest.mark.parametrize("seed", [0, 5])
def test_sites_share_the_utc_date_and_start_at_their_local_hour(seed: int) -> None:
    """The fleet starts at UTC midnight: site k starts at local hour ``utc_offset_h mod 24`` on
    the local date of that instant (UTC-8 -> 16:00 of the previous day)."""
    fleet = load_fleet(FLEET, SHORT)
    trace = FleetTraceSampler(fleet).sample(seed)
    offsets = [s.utc_offset_h for s in fleet.sites]
    assert offsets == [-8.0, -6.0, 1.0]
    np.testing.assert_allclose(trace.sites.hour[:, 0], [16.0, 18.0, 1.0])
    utc_midnight = dt.datetime.combine(trace.start_date_utc, dt.time())
    for k, off in enumerate(offsets):
        local_date = trace.sites.start_date[k].astype(dt.date)
        local_start = dt.datetime.combine(local_date, dt.time()) + dt.timedelta(
            hours=float(trace.sites.hour[k, 0])
        )
        assert local_start - dt.timedelta(hours=off) == utc_midnight
    # one step later every site is 5 minutes further on
    np.testing.assert_allclose(trace.sites.hour[:, 1], [16 + 1 / 12, 18 + 1 / 12, 1 + 1 / 12])


# ----------------------------------------------------------------------- random dispatch
_SMALL = fleet_sim(**{"outages.rate_per_site_day": 6.0})  # ~1.5 outages per site in 6 h
_SMALL_IFACE = FleetInterface(_SMALL)


def _actions(rng: np.random.Generator, K: int, mode: str) -> np.ndarray:
    a = rng.uniform(-1.0, 1.0, 3 * K + 1)
    if mode == "extreme":
        a = rng.choice([-1.0, 0.0, 1.0], 3 * K + 1)
    return a


@SETTINGS
@given(
    seed=st.integers(0, 999_999),
    action_seed=st.integers(0, 2**32 - 1),
    mode=st.sampled_from(["uniform", "extreme"]),
    share_mode=st.sampled_from(["action", "one_hot", "zeros", "it_kw"]),
    rebalance_mode=st.sampled_from(["action", "zero", "one"]),
)
def test_invariants_under_random_dispatch(
    seed: int, action_seed: int, mode: str, share_mode: str, rebalance_mode: str
) -> None:
    """Work conservation, energy balance, import limit, outages and finite outputs hold at every
    step of an episode under random site setpoints, shares and rebalance fractions."""
    fs, iface = _SMALL, _SMALL_IFACE
    K = fs.n_sites
    rng = np.random.default_rng(action_seed)
    fs.reset(seed=seed)
    while not fs.done:
        a = _actions(rng, K, mode)
        setpoints, _ = iface.decode_sites(a[: 2 * K].reshape(K, 2))
        share, rebalance, _ = iface.decode_dispatch(a[2 * K :])
        if share_mode == "one_hot":
            share = np.eye(K)[rng.integers(K)]
        elif share_mode == "zeros":
            share = np.zeros(K)
        elif share_mode == "it_kw":
            share = fs.it_kw
        rebalance = {"zero": 0.0, "one": 1.0}.get(rebalance_mode, rebalance)
        site_before = fs.site.copy()
        f = fs.step(setpoints, share, rebalance)
        assert_step_invariants(fs, f)
        moved = (site_before >= 0) & (fs.site != site_before)
        assert f[:, FLEET_INDEX["migrations_in"]].sum() == moved.sum()
        if rebalance == 0.0:
            assert not moved.any()
    assert fs.t == fs.n_steps
    kpis = fs.kpis()
    assert all(math.isfinite(v) for v in kpis.values())


# ---------------------------------------------------------------------------------- outages
def test_scheduled_outage_islands_the_site() -> None:
    fs = fleet_sim(
        **{
            "outages.rate_per_site_day": 0.0,
            "outages.scheduled": [{"site": 0, "start_h": 1, "duration_h": 2}],
        }
    )
    iface = FleetInterface(fs)
    trace = fs.reset(seed=0)
    steps_per_h = 12
    window = np.arange(1 * steps_per_h, 3 * steps_per_h)
    expected = np.zeros(fs.n_steps, dtype=bool)
    expected[window] = True
    np.testing.assert_array_equal(trace.outage[0], expected)
    assert not trace.outage[1:].any()
    n_meas = len(L.MEAS_FIELDS)
    sp = full_compute(fs)
    sp[:, 1] = -1e6  # ask every battery to charge hard (from the grid: impossible in an outage)
    share = np.array([1.0, 0.0, 0.0])
    while not fs.done:
        t = fs.t
        in_outage = bool(expected[t])
        assert iface.site_obs()[0, n_meas] == float(in_outage)
        at_site0 = (fs.status == J.ACTIVE) & (fs.site == 0)
        done_before = fs.done_kwh.copy()
        # rebalance 0 keeps the jobs at site 0 through the outage
        f = fs.step(sp, share, rebalance=0.0)
        out = fs.sim.out
        assert_step_invariants(fs, f)
        if in_outage:
            assert at_site0.any()  # there is work at the islanded site ...
            assert abs(out[0, L.O_GRID_IMPORT_KW]) < 1e-9  # kW (float round-off only)
            assert abs(out[0, L.O_GRID_EXPORT_KW]) < 1e-9
            assert out[0, L.O_COMPUTE_KW] == 0.0
            assert out[0, L.O_TRAINING_WORK_KWH] == 0.0
            assert f[0, FLEET_INDEX["work_done_kwh"]] == 0.0
            assert f[0, FLEET_INDEX["outage"]] == 1.0
            assert f[0, FLEET_INDEX["share_target_kwh"]] == 0.0
            # ... but none of it is done
            np.testing.assert_array_equal(fs.done_kwh[at_site0], done_before[at_site0])
        else:
            assert f[0, FLEET_INDEX["outage"]] == 0.0
            assert out[0, L.O_COMPUTE_KW] > 0.0
            assert out[0, L.O_GRID_IMPORT_KW] > 0.0
    # the limits are restored after the outage
    np.testing.assert_array_equal(fs.sim.params.scalars[:, L.P_IMPORT_LIMIT_KW], fs._limits[:, 0])
    np.testing.assert_array_equal(fs.sim.params.scalars[:, L.P_STANDBY_FRAC], fs._limits[:, 2])
    np.testing.assert_array_equal(fs.sim.params.scalars[:, L.P_BATTERY_AUX_KW], fs._limits[:, 3])


def test_islanded_site_with_an_empty_battery_imports_nothing() -> None:
    """Regression: the battery's aux load used to be imported during an outage whenever the
    battery could not cover it (empty battery, or soft EV priority)."""
    empty = {"battery.initial_soc": 0.05, "battery.soc_min": 0.05}
    fleet = load_fleet(
        {
            "name": "islanded-empty",
            "episode": {"days": 0.25, "step_min": 5},
            "sites": [
                {"scenario": "caiso-rt-spring", "overrides": empty},
                {"scenario": "caiso-rt-spring", "overrides": {**empty, "ev_priority": "soft"}},
            ],
            "outages": {
                "scheduled": [
                    {"site": 0, "start_h": 0, "duration_h": 6},
                    {"site": 1, "start_h": 0, "duration_h": 6},
                ]
            },
        }
    )
    fs = FleetSimulator(fleet)
    fs.reset(seed=0)
    assert fs.trace.outage.all()
    assert (fs.sim.params.scalars[:, L.P_BATTERY_AUX_KW] > 0.0).all()
    rng = np.random.default_rng(0)
    while not fs.done:
        sp = full_compute(fs)
        sp[:, 1] = rng.uniform(-2000.0, 2000.0, fs.n_sites)
        f = fs.step(sp, [1.0, 1.0], rebalance=1.0)
        assert_step_invariants(fs, f)
        out = fs.sim.out
        assert np.abs(out[:, L.O_GRID_IMPORT_KW]).max() < 1e-9
        assert np.abs(out[:, L.O_GRID_EXPORT_KW]).max() < 1e-9
        assert (out[:, L.O_COMPUTE_KW] == 0.0).all()


# -------------------------------------------------------------------------------- migration
def test_migration_moves_jobs_and_they_do_no_work_in_transit() -> None:
    bandwidth_gbps = 1.0  # slow link: a few hundred GB take several 5-minute steps
    fs = fleet_sim(**{"outages.rate_per_site_day": 0.0, "network.bandwidth_gbps": bandwidth_gbps})
    step_s = fs.dt_h * 3600.0
    energy_per_gb = fs.fleet.network.energy_kwh_per_gb
    trace = fs.reset(seed=0)
    gb = trace.jobs.checkpoint_gb
    sp = full_compute(fs)
    # step 0: everything to site 0 (placement is free, nothing migrates)
    f = fs.step(sp, [1.0, 0.0, 0.0], rebalance=1.0)
    placed0 = (fs.status == J.ACTIVE) & (fs.site == 0)
    assert placed0.sum() >= 2
    assert f[:, FLEET_INDEX["migrations_in"]].sum() == 0.0
    assert (fs.transit == 0).all()
    # step 1: the share moves to site 1 and everything may rebalance
    site_before = fs.site.copy()
    done_before_move = fs.done_kwh.copy()
    f = fs.step(sp, [0.0, 1.0, 0.0], rebalance=1.0)
    moved = (site_before == 0) & (fs.site == 1)
    np.testing.assert_array_equal(moved, placed0 & (fs.status == J.ACTIVE))
    assert moved.sum() >= 2
    np.testing.assert_array_equal(f[:, FLEET_INDEX["migrations_in"]], [0.0, moved.sum(), 0.0])
    mig_kwh = gb[moved].sum() * energy_per_gb
    np.testing.assert_allclose(
        f[:, FLEET_INDEX["migration_energy_kwh"]], [0.0, mig_kwh, 0.0], rtol=1e-12
    )
    price = max(fs.sim.series[1, L.S_PRICE_USD_PER_KWH, 1], 0.0)  # never a credit
    carbon = fs.sim.series[1, L.S_CARBON_G_PER_KWH, 1] * fs._carbon_price[1]
    assert f[1, FLEET_INDEX["migration_usd"]] == pytest.approx(mig_kwh * (price + carbon))
    assert fs.totals["migrations"] == moved.sum()
    assert fs.totals["migration_energy_kwh"] == pytest.approx(mig_kwh)
    # transfer time: ceil(GB x 8 / Gbps / step seconds) steps, starting with the dispatch step
    n_transit = np.ceil(gb * 8.0 / bandwidth_gbps / step_s).astype(np.int64)
    assert n_transit[moved].max() >= 2
    np.testing.assert_array_equal(fs.transit[moved], n_transit[moved] - 1)
    done_at_move = fs.done_kwh.copy()
    np.testing.assert_array_equal(done_at_move[moved], done_before_move[moved])
    # done work and transit counters of the moved jobs after steps 1 (the dispatch step), 2, ...
    done_hist, transit_hist = [done_at_move[moved]], [fs.transit[moved].copy()]
    for _ in range(int(n_transit[moved].max()) + 12):
        before = fs.site.copy()
        f = fs.step(sp, [0.0, 1.0, 0.0], rebalance=0.0)
        assert_step_invariants(fs, f)
        assert (fs.site[moved] == 1).all()
        np.testing.assert_array_equal(fs.site[before >= 0], before[before >= 0])  # no moves
        assert f[:, FLEET_INDEX["migrations_in"]].sum() == 0.0
        done_hist.append(fs.done_kwh[moved].copy())
        transit_hist.append(fs.transit[moved].copy())
    done_hist, transit_hist = np.array(done_hist), np.array(transit_hist)  # [step - 1, job]
    steps = np.arange(done_hist.shape[0])[:, None]
    np.testing.assert_array_equal(transit_hist, np.maximum(n_transit[moved] - 1 - steps, 0))
    for j, n in enumerate(n_transit[moved]):
        # steps 1 .. n (the dispatch step and n - 1 more) do no work on the job
        assert (done_hist[:n, j] == done_at_move[moved][j]).all()
    assert (done_hist[-1] > done_at_move[moved]).any()  # they run once they have arrived


def test_rebalance_zero_never_migrates() -> None:
    fs = fleet_sim(**{"outages.rate_per_site_day": 6.0})
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        fs.reset(seed=seed)
        first_site = np.full(fs.trace.jobs.n_jobs, -1)
        while not fs.done:
            share = np.eye(fs.n_sites)[rng.integers(fs.n_sites)] * rng.uniform(0.1, 1.0)
            f = fs.step(full_compute(fs, rng.uniform()), share, rebalance=0.0)
            assert f[:, FLEET_INDEX["migrations_in"]].sum() == 0.0
            assert f[:, FLEET_INDEX["migration_energy_kwh"]].sum() == 0.0
            placed = fs.site >= 0
            new = placed & (first_site < 0)
            first_site[new] = fs.site[new]
            np.testing.assert_array_equal(fs.site[placed], first_site[placed])
            assert (fs.transit == 0).all()
        assert fs.totals["migrations"] == 0.0
        assert (first_site >= 0).sum() >= 2  # jobs were placed (and then never moved)


# -------------------------------------------------------------------------------- deadlines
def test_job_past_its_deadline_is_lost_and_its_work_value_taken_back() -> None:
    """Hand-made jobs: A (huge, deadline step 10) runs at site 0 and is lost at the end of step 9
    with the value of the work done on it; B (small) completes; C expires unplaced in the pool."""
    fs = fleet_sim(**{"outages.rate_per_site_day": 0.0})
    value = fs.job_value_usd_per_kwh
    base = fs.sampler.sample(0)
    jobs = JobTrace(
        arrival_step=np.array([0, 12, 20], dtype=np.int64),
        size_kwh=np.array([1e5, 10.0, 300.0]),
        deadline_step=np.array([10, 40, 25], dtype=np.int64),
        checkpoint_gb=np.array([100.0, 50.0, 80.0]),
    )
    trace = dataclasses.replace(base, jobs=jobs, outage=np.zeros_like(base.outage))
    fs.reset(trace=trace)
    sp = full_compute(fs)
    work_a = 0.0
    for t in range(10):  # job A alone at site 0
        f = fs.step(sp, [1.0, 0.0, 0.0], rebalance=0.0)
        assert_step_invariants(fs, f)
        assert fs.site[0] == 0
        work_a += f[0, FLEET_INDEX["work_done_kwh"]]
        assert f[1:, FLEET_INDEX["work_done_kwh"]].sum() == 0.0
        if t < 9:
            assert fs.status[0] == J.ACTIVE
            assert f[0, FLEET_INDEX["deadline_loss_usd"]] == 0.0
    assert work_a > 0.0
    assert fs.status[0] == J.LOST
    assert fs.done_kwh[0] == pytest.approx(work_a, rel=1e-12)
    assert f[0, FLEET_INDEX["jobs_lost"]] == 1.0
    assert f[0, FLEET_INDEX["deadline_loss_usd"]] == pytest.approx(work_a * value, rel=1e-12)
    assert f[0, FLEET_INDEX["work_lost_kwh"]] == pytest.approx(1e5 - work_a, rel=1e-12)
    assert f[0, FLEET_INDEX["net_usd"]] == pytest.approx(
        f[0, FLEET_INDEX["site_total_usd"]] - work_a * value, rel=1e-12
    )
    assert fs.pool_loss_usd == 0.0
    assert fs.fleet_total_usd == pytest.approx(f[:, FLEET_INDEX["net_usd"]].sum(), rel=1e-12)
    assert fs.totals["deadline_loss_usd"] == pytest.approx(work_a * value, rel=1e-12)
    bal = fs.work_balance()
    assert bal == pytest.approx(
        {"arrived_kwh": 1e5, "done_kwh": work_a, "left_kwh": 0.0, "lost_kwh": 1e5 - work_a}
    )
    # job B arrives at step 12 and is finished within that step (10 kWh)
    while fs.t < 12:
        fs.step(sp, [1.0, 0.0, 0.0], rebalance=0.0)
    f = fs.step(sp, [1.0, 0.0, 0.0], rebalance=0.0)
    assert fs.status[1] == J.DONE and f[0, FLEET_INDEX["jobs_completed"]] == 1.0
    assert fs.done_kwh[1] == pytest.approx(10.0)
    # job C arrives at step 20 while no site has a share: it stays unplaced and is lost at the
    # end of step 24 from the pool (no work was done, so no value is taken back)
    while fs.t < 24:
        f = fs.step(sp, np.zeros(3), rebalance=0.0)
        assert fs.pool_lost_kwh == 0.0
    assert fs.status[2] == J.ACTIVE and fs.site[2] == -1
    f = fs.step(sp, np.zeros(3), rebalance=0.0)
    assert fs.status[2] == J.LOST
    assert f[:, FLEET_INDEX["jobs_lost"]].sum() == 0.0  # not at any site
    assert fs.pool_lost_kwh == pytest.approx(300.0)
    assert fs.pool_loss_usd == 0.0
    assert fs.totals["jobs_lost"] == 2.0 and fs.totals["jobs_completed"] == 1.0
    assert fs.totals["work_lost_kwh"] == pytest.approx(1e5 - work_a + 300.0)
    bal = fs.work_balance()
    assert bal["arrived_kwh"] == pytest.approx(bal["done_kwh"] + bal["left_kwh"] + bal["lost_kwh"])
