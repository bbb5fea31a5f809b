"""The islanded-site rules (megapod_gym.fleet.outage) are one definition read by both the fleet
simulator and the fleet hindsight LP: changing it shows up in both, and an islanded step
exchanges nothing with the grid in either."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pytest

import agents.optim.fleet_lp_blocks as fleet_lp_blocks
import megapod_gym.fleet.simulator as fleet_simulator
from agents.optim.fleet_lp import solve_fleet_hindsight
from agents.optim.site_lp import SiteLPParams
from megapod_gym.config.fleet import load_fleet
from megapod_gym.fleet import outage
from megapod_gym.fleet.simulator import FleetSimulator
from megapod_gym.fleet.trace import FleetTrace
from megapod_gym.sim import layout as L

# tri-tz-3site for 6 h (72 five-minute steps), site 0 islanded from 1 h to 3 h, no other outages
OUTAGE = {
    "episode.days": 0.25,
    "outages.rate_per_site_day": 0.0,
    "outages.scheduled": [{"site": 0, "start_h": 1, "duration_h": 2}],
}
ZERO_KW = 1e-9  # float round-off only


def _fleet() -> tuple[FleetSimulator, FleetTrace]:
    fs = FleetSimulator(load_fleet("tri-tz-3site", OUTAGE))
    return fs, fs.reset(seed=0)


def _run_islanded_site_kw(fs: FleetSimulator, battery_kw: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid import and export kW of site 0 at its islanded steps, all sites asking for full
    compute and ``battery_kw`` (+ = discharge) every step."""
    assert fs.trace is not None
    fs.reset(trace=fs.trace)
    imp, exp = [], []
    while not fs.done:
        t = fs.t
        sp = np.zeros((fs.n_sites, 3))
        sp[:, 0], sp[:, 1], sp[:, 2] = 1.0, battery_kw, np.inf
        fs.step(sp, np.ones(fs.n_sites), rebalance=0.0)
        if fs.trace.outage[0, t]:
            imp.append(fs.sim.out[0, L.O_GRID_IMPORT_KW])
            exp.append(fs.sim.out[0, L.O_GRID_EXPORT_KW])
    return np.array(imp), np.array(exp)


def _lp_block(fs: FleetSimulator, trace: FleetTrace, k: int) -> fleet_lp_blocks._SiteBlock:
    """Site ``k``'s block of the fleet LP, built as solve_fleet_hindsight builds it."""
    cfg = fs.site_configs[k]
    row = fleet_lp_blocks._site_row(trace, k, SiteLPParams.from_config(cfg))
    return fleet_lp_blocks._site_block(cfg.name, cfg, row, trace.outage[k], 16, 256, None)


def test_simulator_and_lp_read_the_one_definition() -> None:
    assert fleet_simulator.islanded is outage.islanded
    assert fleet_lp_blocks.islanded_step_figures is outage.islanded_step_figures
    # the simulator's restore values are the columns the rules name, in their order
    fs, _ = _fleet()
    par = fs.sim.params.scalars
    for i, name in enumerate(outage.ISLANDED_SITE_FIGURES):
        np.testing.assert_array_equal(fs._limits[:, i], par[:, getattr(L, f"P_{name.upper()}")])


def test_changing_the_rules_changes_simulator_and_lp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Allow an islanded site 40 kW of import: the simulator's islanded site then imports up to
    40 kW to charge its battery and the LP bounds its import by 40 kW at the same steps."""
    allowed_kw = 40.0
    rules = {**outage.ISLANDED_SITE_FIGURES, "import_limit_kw": allowed_kw}
    monkeypatch.setattr(outage, "ISLANDED_SITE_FIGURES", MappingProxyType(rules))
    fs, trace = _fleet()
    o = trace.outage[0]
    assert o.any()
    imp, _ = _run_islanded_site_kw(fs, battery_kw=-1e6)
    assert imp.max() == pytest.approx(allowed_kw, rel=1e-9)
    assert (imp <= allowed_kw * (1.0 + 1e-9)).all()
    # restored after the outage
    par = fs.sim.params.scalars
    np.testing.assert_array_equal(par[:, L.P_IMPORT_LIMIT_KW], fs._limits[:, 0])

    block = _lp_block(fs, trace, 0)
    imp_upper = block.lp.col_upper[block.lay.imp : block.lay.imp + block.lay.n]
    np.testing.assert_array_equal(imp_upper[o], allowed_kw)
    np.testing.assert_array_equal(imp_upper[~o], block.params.import_limit_kw)
    sol = solve_fleet_hindsight(fs, trace)
    assert (sol.grid_import_kw[0, o] <= allowed_kw * (1.0 + 1e-9)).all()


def test_islanded_step_imports_and_exports_nothing() -> None:
    """Simulator (battery asked to charge hard, then to discharge hard) and LP solution."""
    fs, trace = _fleet()
    o = trace.outage[0]
    assert o.any() and not trace.outage[1:].any()
    for battery_kw in (-1e6, 1e6):
        imp, exp = _run_islanded_site_kw(fs, battery_kw)
        assert imp.shape == (int(o.sum()),)
        assert np.abs(imp).max() < ZERO_KW
        assert np.abs(exp).max() < ZERO_KW
    # the LP: bounds exactly 0 at the islanded steps, and so the solution
    block = _lp_block(fs, trace, 0)
    lay = block.lay
    np.testing.assert_array_equal(block.lp.col_upper[lay.imp : lay.imp + lay.n][o], 0.0)
    np.testing.assert_array_equal(block.lp.col_upper[lay.exp : lay.exp + lay.n][o], 0.0)
    sol = solve_fleet_hindsight(fs, trace)
    assert np.abs(sol.grid_import_kw[0, o]).max() < ZERO_KW
    assert np.abs(sol.grid_export_kw[0, o]).max() < ZERO_KW
    assert sol.grid_import_kw[0, ~o].max() > 0.0  # the site does import when connected
