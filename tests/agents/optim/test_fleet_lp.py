"""Fleet hindsight LP (agents.optim.fleet_lp): the upper-bound property against simulator policies on
the same trace, the job-pool coupling, outages, the empty pool and input handling."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from agents.evaluation.fleet import run_fleet_policy
from agents.optim.fleet_lp import FleetHindsightSolution, solve_fleet_hindsight
from agents.policies.fleet_rules import FLEET_BASELINES
from megapod_gym.config.fleet import FleetConfig, load_fleet
from megapod_gym.fleet.simulator import FleetSimulator
from megapod_gym.fleet.trace import FleetTrace

FLEET = "tri-tz-3site"
SHORT = {"episode.days": 0.25}  # 72 five-minute steps
QUIET = {**SHORT, "outages.rate_per_site_day": 0.0}  # no sampled outages
OUTAGE = {**QUIET, "outages.scheduled": [{"site": 0, "start_h": 1, "duration_h": 2}]}
# more work than the fleet can do, short deadlines: jobs are lost under every policy
TIGHT = {**QUIET, "jobs.load_factor": 1.5, "jobs.deadline_h": [1.0, 3.0]}
SCARCE = {**QUIET, "jobs.load_factor": 0.3, "jobs.initial_load_h": 0.5}  # less work than IT
REL_TOL = 1e-6
KWH_TOL = 1e-6


def _key(overrides: dict) -> str:
    return json.dumps(overrides, sort_keys=True)


@functools.cache
def _fleet(key: str) -> tuple[FleetConfig, FleetSimulator]:
    cfg = load_fleet(FLEET, json.loads(key))
    return cfg, FleetSimulator(cfg)


@functools.cache
def _solved(key: str, seed: int) -> tuple[FleetTrace, FleetHindsightSolution]:
    trace = _fleet(key)[1].sampler.sample(seed)
    return trace, solve_fleet_hindsight(_fleet(key)[1], trace)


def fleet(overrides: dict) -> tuple[FleetConfig, FleetSimulator]:
    """A cached small fleet: tri-tz-3site with ``overrides``."""
    return _fleet(_key(overrides))


def solved(overrides: dict, seed: int) -> tuple[FleetSimulator, FleetTrace, FleetHindsightSolution]:
    """The fleet, its trace of ``seed`` and the LP solution (cached across tests)."""
    trace, sol = _solved(_key(overrides), seed)
    return fleet(overrides)[1], trace, sol


def run_constant(
    fs: FleetSimulator,
    trace: FleetTrace,
    compute_frac: float,
    battery_kw: float = 0.0,
    rebalance: float = 0.0,
) -> float:
    """Fleet profit of constant setpoints on every site, shares = IT kW."""
    fs.reset(trace=trace)
    sp = np.tile([compute_frac, battery_kw, np.inf], (fs.n_sites, 1))
    while not fs.done:
        fs.step(sp, share=fs.it_kw, rebalance=rebalance)
    return fs.totals["fleet_total_usd"]


def _bound(value: float) -> float:
    return value + REL_TOL * abs(value)


# --------------------------------------------------------------------------- upper bound
POLICIES = [
    (1.0, 0.0, 0.0),  # full compute, battery idle, no migration
    (0.5, 0.0, 0.0),
    (1.0, 0.0, 1.0),  # full compute with free rebalancing
    (0.3, -1e9, 0.0),  # cap floor region, battery charging flat out
    (1.0, 1e9, 0.0),  # battery discharging flat out
]


@pytest.mark.parametrize(
    "overrides",
    [QUIET, TIGHT, SCARCE, OUTAGE],
    ids=["quiet", "tight-deadlines", "scarce-work", "outage"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_lp_bounds_simple_policies(overrides: dict, seed: int) -> None:
    fs, trace, sol = solved(overrides, seed)
    # cars cut by an outage recover their energy later in the simulator, which the LP prices as
    # lost revenue (module docstring): that is the only slack allowed (0 here: the batteries
    # carry the cars through the outage)
    slack = sum(t["shortfall_penalty_usd"] for t in sol.site_terms_usd)
    for p in POLICIES:
        profit = run_constant(fs, trace, *p)
        assert profit <= _bound(sol.objective_usd + slack), (p, profit, sol.objective_usd)
    if overrides is TIGHT:
        run_constant(fs, trace, 0.5)
        assert fs.totals["jobs_lost"] > 0  # the deadline rows matter on this day


def test_lp_bounds_fleet_baselines() -> None:
    cfg, _ = fleet(QUIET)
    _, _, sol = solved(QUIET, 0)
    for name, cls in FLEET_BASELINES.items():
        (row,) = run_fleet_policy(cls(), cfg, [0])
        assert row["profit_usd"] <= _bound(sol.objective_usd), (name, row["profit_usd"])


# ------------------------------------------------------------------------------ job pool
@pytest.mark.parametrize("overrides", [QUIET, TIGHT], ids=["quiet", "tight-deadlines"])
def test_work_coupling(overrides: dict) -> None:
    _, trace, sol = solved(overrides, 0)
    jobs = trace.jobs
    T = trace.n_steps
    t = np.arange(T)
    arrived = np.array([jobs.size_kwh[jobs.arrival_step <= s].sum() for s in t])
    due = np.array([jobs.size_kwh[jobs.deadline_step <= s + 1].sum() for s in t])
    np.testing.assert_allclose(sol.work_arrived_kwh, arrived, rtol=1e-12)
    np.testing.assert_allclose(sol.work_due_kwh, due, rtol=1e-12)
    w = sol.training_kwh
    assert w.shape == (trace.n_sites, T)
    assert (w >= -KWH_TOL).all()
    cum = np.cumsum(w.sum(axis=0))
    tol = KWH_TOL * max(arrived[-1], 1.0)
    assert (cum <= arrived + tol).all()  # work only on jobs that have arrived
    np.testing.assert_allclose(sol.work_done_cum_kwh, cum, atol=tol)
    lost = sol.work_lost_cum_kwh
    assert (np.diff(lost) >= -tol).all() and lost[0] >= -tol
    assert (cum + lost >= due - tol).all()  # due work is done or lost by its deadline
    assert (cum + lost <= arrived + tol).all()
    # per-site objectives add up to the fleet value
    assert sol.site_objective_usd.sum() == pytest.approx(sol.objective_usd, rel=1e-9)
    for k, terms in enumerate(sol.site_terms_usd):
        assert terms["total_usd"] == pytest.approx(sol.site_objective_usd[k])


def test_deadlines_force_losses() -> None:
    """With more work than capacity and short deadlines, the LP must lose work."""
    _, trace, sol = solved(TIGHT, 0)
    assert sol.work_lost_kwh > 0.0
    assert sol.work_due_kwh[-1] > 0.0


# ------------------------------------------------------------------------------- outages
def test_outage_forces_compute_and_grid_off() -> None:
    fs, trace, sol = solved(OUTAGE, 0)
    out = trace.outage
    dt_h = fs.dt_h
    expected = np.zeros(trace.n_steps, dtype=bool)
    expected[int(round(1.0 / dt_h)) : int(round(3.0 / dt_h))] = True
    np.testing.assert_array_equal(out[0], expected)
    assert not out[1:].any()
    o = out[0]
    zero = 1e-9
    assert np.all(np.abs(sol.training_kwh[0, o]) <= zero)
    assert np.all(np.abs(sol.grid_import_kw[0, o]) <= zero)
    assert np.all(np.abs(sol.grid_export_kw[0, o]) <= zero)
    assert np.all(sol.it_frac[0, o] == 0.0)
    assert np.all(np.abs(sol.inference_served_frac[0, o]) <= zero)
    # the battery carries the cars (only the unserved part may be short)
    ev = sol.ev_ac_kw[0, o]
    net = sol.battery_kw[0, o] + sol.ev_shortfall_kw[0, o]
    np.testing.assert_allclose(net, ev, atol=1e-6 * max(ev.max(), 1.0))
    assert np.all(np.abs(sol.ev_shortfall_kw[:, ~o]) <= zero)
    assert np.all(np.abs(sol.ev_shortfall_kw[1:]) <= zero)
    # the site does work outside its outage, the others during it
    assert sol.training_kwh[0, ~o].sum() > 0.0
    assert sol.training_kwh[1:, o].sum() > 0.0


def test_outage_lowers_the_bound() -> None:
    _, _, quiet = solved(QUIET, 0)
    _, _, outage = solved(OUTAGE, 0)
    assert outage.objective_usd < quiet.objective_usd


def test_unservable_cars_pay_the_shortfall() -> None:
    """A battery-less site islanded while cars charge: the unserved load is priced as lost
    revenue (retail price x charger efficiency per AC kWh)."""
    over = {
        **OUTAGE,
        "sites": [
            {
                "scenario": "caiso-rt-spring",
                "utc_offset_h": -8,
                "overrides": {"battery.energy_kwh": 0},
            },
            {"scenario": "ercot-rt-summer", "utc_offset_h": -6},
        ],
        "outages.scheduled": [{"site": 0, "start_h": 0, "duration_h": 6}],
    }
    fs, trace, sol = solved(over, 0)
    o = trace.outage[0]
    assert o.all()
    np.testing.assert_allclose(sol.ev_shortfall_kw[0], sol.ev_ac_kw[0], atol=1e-6)
    price = trace.sites.ev_price_usd_per_kwh[0, : trace.n_steps]
    eff = fs.site_configs[0].chargers.efficiency
    lost = float(np.sum(sol.ev_ac_kw[0] * fs.dt_h * price * eff))
    assert sol.site_terms_usd[0]["shortfall_penalty_usd"] == pytest.approx(lost, rel=1e-9)
    free = solve_fleet_hindsight(fs, trace, ev_shortfall_usd_per_kwh=0.0)
    assert free.objective_usd == pytest.approx(sol.objective_usd + lost, rel=1e-6)


# ----------------------------------------------------------------------------- no jobs
def test_no_jobs_no_work() -> None:
    over = {**QUIET, "jobs.load_factor": 0.0, "jobs.initial_load_h": 0.0}
    fs, trace, sol = solved(over, 0)
    assert trace.jobs.n_jobs == 0
    assert np.all(np.abs(sol.training_kwh) <= KWH_TOL)
    assert sol.work_done_kwh == pytest.approx(0.0, abs=KWH_TOL)
    for p in POLICIES[:2]:
        assert run_constant(fs, trace, *p) <= _bound(sol.objective_usd)


# ------------------------------------------------------------------------------- inputs
def test_config_input() -> None:
    cfg, fs = fleet(QUIET)
    trace = fs.sampler.sample(0)
    sol = solve_fleet_hindsight(cfg, trace)  # a FleetConfig instead of the simulator
    assert sol.objective_usd == pytest.approx(solved(QUIET, 0)[2].objective_usd, rel=1e-9)
    assert sol.site_names == [c.name for c in fs.site_configs]


def test_refinement_only_tightens() -> None:
    """Refinement adds valid cuts: the value can only go down (here from a coarse envelope of 4
    tangents per step, a subset of the default 16), to near the default's. Scarce work makes the
    sites run at IT fractions between the tangent points."""
    cfg, fs = fleet(SCARCE)
    trace = fs.sampler.sample(0)
    default = solve_fleet_hindsight(cfg, trace)
    coarse = solve_fleet_hindsight(cfg, trace, n_lines=4, lazy=False)
    refined = solve_fleet_hindsight(cfg, trace, n_lines=4, gap_tol_rel=0.0)
    assert coarse.refine_rounds == 0 and refined.refine_rounds > 0
    assert refined.n_rows > coarse.n_rows
    assert refined.objective_usd < coarse.objective_usd
    assert default.objective_usd <= coarse.objective_usd
    assert refined.objective_usd == pytest.approx(default.objective_usd, rel=1e-4)


def test_trace_of_another_fleet_is_rejected() -> None:
    _, fs = fleet(QUIET)
    other = FleetSimulator(load_fleet(FLEET, {"episode.days": 0.5})).sampler.sample(0)
    with pytest.raises(ValueError):
        solve_fleet_hindsight(fs, other)
    with pytest.raises(TypeError):
        solve_fleet_hindsight(3, fs.sampler.sample(0))  # type: ignore[arg-type]
