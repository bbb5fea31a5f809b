"""Baselines behave as their rule says on crafted observations."""

from __future__ import annotations

import numpy as np
import pytest

from agents.policies.base import Policy, PolicyContext
from agents.policies.rules import (
    BASELINES,
    CarsFirstGreedy,
    PeakShaving,
    PriceThreshold,
    RandomPolicy,
    TouArbitrage,
)
from megapod_gym.config import load_scenario
from megapod_gym.scenario.trace import TraceSampler

CFG = load_scenario()


@pytest.fixture(scope="module")
def ctx() -> PolicyContext:
    return PolicyContext.for_trace(CFG, TraceSampler(CFG).sample([1_000_000]))


def observe(ctx: PolicyContext, **raw: float) -> np.ndarray:
    base = dict.fromkeys(ctx.encoder.names, 0.0)
    base.update(
        pue=1.1,
        battery_soc_frac=0.5,
        ambient_c=20.0,
        price_usd_per_kwh=0.2,
        price_next_24h_mean_usd_per_kwh=0.2,
        hours_left_h=12.0,
    )
    base.update(raw)
    return ctx.encoder.encode(ctx.encoder.from_mapping(base))[None]


def setpoints(policy: Policy, ctx: PolicyContext, obs: np.ndarray) -> np.ndarray:
    out = np.zeros((obs.shape[0], 3))
    ctx.decoder.decode(policy.act(obs), out)
    return out[0]


def make(cls: type, ctx: PolicyContext, **kw: float) -> Policy:
    p = cls(**kw)
    p.reset(ctx)
    return p


def test_every_baseline_is_a_policy_with_a_documented_rule(ctx: PolicyContext) -> None:
    for name, cls in BASELINES.items():
        p = cls()
        assert isinstance(p, Policy) and p.name == name
        assert cls.__doc__ and len(cls.__doc__) > 60
        p.reset(ctx)
        a = p.act(observe(ctx))
        assert a.shape == (1, ctx.decoder.size) and np.all(np.abs(a) <= 1.0)


def test_greedy_fills_headroom_after_cars_and_leaves_battery_idle(ctx: PolicyContext) -> None:
    s = setpoints(make(CarsFirstGreedy, ctx), ctx, observe(ctx, ev_requested_kw=500.0))
    expected = (CFG.grid.import_limit_kw - 500.0 - CFG.battery.aux_kw) / (CFG.compute.it_kw * 1.1)
    assert s[0] == pytest.approx(expected, abs=1e-5)
    assert s[1] == pytest.approx(0.0, abs=1e-3)
    s = setpoints(make(CarsFirstGreedy, ctx), ctx, observe(ctx, ev_requested_kw=0.0))
    assert s[0] == pytest.approx(1.0)


def test_tou_arbitrage_charges_cheap_and_discharges_dear(ctx: PolicyContext) -> None:
    p = make(TouArbitrage, ctx)
    cheap = setpoints(
        p, ctx, observe(ctx, price_usd_per_kwh=0.17, price_next_24h_mean_usd_per_kwh=0.25)
    )
    assert cheap[1] < 0.0  # charging from the headroom compute leaves (180 kW at night)
    dear = setpoints(
        p, ctx, observe(ctx, price_usd_per_kwh=0.41, price_next_24h_mean_usd_per_kwh=0.25)
    )
    assert dear[1] == pytest.approx(CFG.battery.discharge_kw, rel=1e-4)
    flat = setpoints(
        p, ctx, observe(ctx, price_usd_per_kwh=0.25, price_next_24h_mean_usd_per_kwh=0.25)
    )
    assert flat[1] == pytest.approx(0.0, abs=1e-3)


def test_price_threshold_pauses_above_compute_value_and_runs_below(ctx: PolicyContext) -> None:
    p = make(PriceThreshold, ctx)
    spike = setpoints(
        p, ctx, observe(ctx, price_usd_per_kwh=5.0, price_next_24h_mean_usd_per_kwh=0.3)
    )
    assert spike[0] < CFG.compute.cap_floor_frac  # paused
    assert spike[1] > 0.0  # battery discharges above high x mean
    normal = setpoints(p, ctx, observe(ctx, price_usd_per_kwh=0.2))
    assert normal[0] == pytest.approx(1.0)


def test_peak_shaving_discharges_above_target_and_recharges_below(ctx: PolicyContext) -> None:
    p = make(PeakShaving, ctx, target_kw=1000.0)
    rush = setpoints(p, ctx, observe(ctx, ev_requested_kw=1200.0))
    assert rush[0] <= CFG.compute.cap_floor_frac  # no room for compute under the target
    assert rush[1] > 0.0
    quiet = setpoints(p, ctx, observe(ctx, ev_requested_kw=0.0))
    load = CFG.battery.aux_kw + quiet[0] * CFG.compute.it_kw * 1.1
    assert load == pytest.approx(1000.0, rel=1e-4)  # compute fills to the target exactly


def test_random_policy_is_reproducible(ctx: PolicyContext) -> None:
    a, b = RandomPolicy(seed=3), RandomPolicy(seed=3)
    a.reset(ctx)
    b.reset(ctx)
    obs = np.zeros((4, ctx.encoder.size), dtype=np.float32)
    assert np.array_equal(a.act(obs), b.act(obs))
    assert not np.array_equal(a.act(obs), RandomPolicy(seed=4).act(obs))
