"""Acceptance-curve tables and one car's charging (megapod_gym.sim.curves): the one rule the
kernel, the session replay and MPC share."""

from __future__ import annotations

import numpy as np
import pytest

from megapod_gym.config import load_scenario
from megapod_gym.sim.curves import charge_for_minutes, curve_tables, interp, table

FLAT_60 = table([0.0, 1.0], [60.0, 60.0], 4)
TAPER = table([0.0, 0.5, 1.0], [100.0, 100.0, 20.0], 3)


def test_table_pads_beyond_the_last_point_and_interp_is_flat_outside() -> None:
    t = table([0.1, 0.5], [50.0, 10.0], 4)
    assert t.shape == (2, 4) and (np.diff(t[0]) > 0).all()
    assert interp(0.0, t) == 50.0 and interp(0.3, t) == pytest.approx(30.0)
    assert interp(0.9, t) == 10.0 and interp(7.0, t) == 10.0


def test_charging_for_whole_and_fractional_minutes() -> None:
    # 60 kW for 2.5 min = 2.5 kWh into a 10 kWh battery
    energy, soc = charge_for_minutes(0.0, 1.0, 10.0, FLAT_60, 1.0, 250.0, 2.5)
    assert energy == pytest.approx(2.5) and soc == pytest.approx(0.25)
    # the cap binds: 60 kW x 10 power scale, capped at 250 kW, one minute
    energy, _ = charge_for_minutes(0.0, 1.0, 100.0, FLAT_60, 10.0, 250.0, 1.0)
    assert energy == pytest.approx(250.0 / 60.0)


def test_charging_stops_exactly_at_the_target_and_follows_the_taper() -> None:
    energy, soc = charge_for_minutes(0.4, 0.6, 50.0, TAPER, 1.0, 500.0, 600.0)
    assert soc == 0.6 and energy == pytest.approx(0.2 * 50.0)
    # above half charge the curve tapers: the same minutes deliver less
    low, _ = charge_for_minutes(0.2, 1.0, 500.0, TAPER, 1.0, 500.0, 10.0)
    high, _ = charge_for_minutes(0.7, 1.0, 500.0, TAPER, 1.0, 500.0, 10.0)
    assert high < low
    assert charge_for_minutes(0.8, 0.8, 50.0, TAPER, 1.0, 500.0, 5.0) == (0.0, 0.8)


def test_kernel_replay_and_mpc_use_this_one_definition() -> None:
    import agents.optim.mpc as mpc
    import megapod_gym.scenario.replay as replay
    import megapod_gym.sim.kernel as kernel

    for module in (kernel, replay, mpc):
        assert module.charge_for_minutes is charge_for_minutes, module.__name__
    ev = load_scenario().ev
    tabs = curve_tables(ev)
    assert tabs.shape[0] == len(ev.curves)
    for tab, name in zip(tabs, sorted(ev.curves)):
        curve = ev.curves[name]
        np.testing.assert_array_equal(tab[0, : len(curve.soc)], curve.soc)
        np.testing.assert_array_equal(tab[1, : len(curve.kw)], curve.kw)
