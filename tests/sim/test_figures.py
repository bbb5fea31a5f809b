"""Derived site figures are defined once and every consumer agrees on them, for every shipped
scenario: the env's action decoder and observation encoder, the rules, MPC, the export sidecar
(which the controller runtime reads)."""

from __future__ import annotations

import math

import pytest

from agents.optim.mpc import MPCPolicy
from agents.policies.base import PolicyContext
from agents.policies.rules import CarsFirstGreedy
from megapod_gym.config import load_scenario
from megapod_gym.config.loading import scenario_names
from megapod_gym.envs.site_env import make_decoder, make_encoder
from megapod_gym.scenario.trace import TraceSampler
from megapod_gym.sim.figures import site_figures

SITES = [s for s in scenario_names() if not s.startswith("fleet")]


@pytest.mark.parametrize("name", SITES)
def test_every_consumer_reads_the_same_figures(name: str) -> None:
    config = load_scenario(name, {"episode.days": 0.25})
    fig = site_figures(config)
    ch = config.chargers
    # the chargers' AC capacity is limited by stalls and by cabinets
    expected = (
        min(
            ch.n_stalls * ch.stall_kw,
            math.ceil(ch.n_stalls / ch.stalls_per_cabinet) * ch.cabinet_kw,
        )
        / ch.efficiency
    )
    assert fig.ev_capacity_kw == pytest.approx(expected)
    decoder = make_decoder(config)
    assert decoder.ev_capacity_kw == fig.ev_capacity_kw
    assert make_encoder(config).site["battery_power_kw"] == fig.battery_power_kw
    context = PolicyContext.for_trace(config, TraceSampler(config).sample([1_000_000]))
    rule = CarsFirstGreedy()
    rule.reset(context)
    assert rule.ev_capacity_kw == fig.ev_capacity_kw
    mpc = MPCPolicy()
    mpc.reset(context)
    assert mpc.ev_capacity_kw == pytest.approx(fig.ev_capacity_kw)
    onnx = pytest.importorskip("agents.export.onnx")
    sidecar = onnx.site_figures(config)
    assert sidecar["ev_capacity_kw"] == fig.ev_capacity_kw
    assert sidecar["battery_charge_kw"] == fig.battery_charge_kw
    assert sidecar["battery_discharge_kw"] == fig.battery_discharge_kw


def test_highway_capacity_is_cabinet_limited() -> None:
    fig = site_figures(load_scenario("highway-64stall"))
    assert fig.n_cabinets == 8
    assert fig.ev_capacity_kw == pytest.approx(8 * 1000.0 / 0.96, rel=0.05)
