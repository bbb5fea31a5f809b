"""Validation rules of the typed scenario schema (megapod_gym.config.schema).

Every malformed config must raise ``ConfigError`` (through ``load_scenario``) with a message that
names the bad field path and the rule it broke. Defaults are checked against the figures of
``docs/sources.md`` they cite.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pydantic
import pytest

from megapod_gym.config import ConfigError, ScenarioConfig, load_scenario
from megapod_gym.config.schema import (
    IONIQ5_CURVE,
    TESLA_400V_CURVE,
    URBAN_PROFILE,
    AcceptanceCurve,
    BetaSpec,
)


def names_path(message: str, path: str) -> bool:
    """True if ``message`` names ``path`` on an error line, either dotted (``battery.soc_min: ...``)
    or split at the model whose validator raised (``battery: soc_min must be ...``)."""
    parts = path.split(".")
    forms = [path] + [
        ".".join(parts[:i]) + ": " + ".".join(parts[i:]) for i in range(1, len(parts))
    ]
    return any(f in message for f in forms)


def test_names_path_helper_is_not_vacuous() -> None:
    assert names_path("  battery.soc_min: bad", "battery.soc_min")
    assert names_path("  battery: soc_min must be < soc_max", "battery.soc_min")
    assert not names_path("  battery.soc_max: bad", "battery.soc_min")
    assert not names_path("  grid.import_limit_kw: bad", "battery.soc_min")


VALID_CURVE = {"soc": [0.0, 0.5, 1.0], "kw": [100.0, 80.0, 10.0]}

# (id, overrides on the default scenario, field path that must be named, rule text (regex))
MALFORMED: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown-key", {"battery": {"bogus_kw": 1}}, "battery.bogus_kw", r"unknown key"),
    ("unknown-section", {"chargerz": {"n_stalls": 4}}, "chargerz", r"unknown key"),
    ("unknown-nested-key", {"grid.import_limit": 1500}, "grid.import_limit", r"unknown key"),
    ("wrong-type-int", {"chargers.n_stalls": "twelve"}, "chargers.n_stalls", r"must be a number, not a string"),
    ("wrong-type-float", {"grid.import_limit_kw": [1500]}, "grid.import_limit_kw", r"valid number"),
    ("wrong-type-literal", {"ev_priority": "lenient"}, "ev_priority", r"'strict' or 'soft'"),
    ("negative-battery-capacity", {"battery.energy_kwh": -1.0}, "battery.energy_kwh",
     r"greater than or equal to 0"),
    ("negative-stall-kw", {"chargers.stall_kw": -50.0}, "chargers.stall_kw", r"greater than 0"),
    ("zero-cabinet-kw", {"chargers.cabinet_kw": 0.0}, "chargers.cabinet_kw", r"greater than 0"),
    ("zero-efficiency", {"battery.charge_efficiency": 0.0}, "battery.charge_efficiency",
     r"greater than 0"),
    ("efficiency-above-1", {"chargers.efficiency": 1.2}, "chargers.efficiency",
     r"less than or equal to 1"),
    ("soc-min-above-1", {"battery.soc_min": 1.5}, "battery.soc_min", r"less than or equal to 1"),
    ("soc-max-below-0", {"battery.soc_max": -0.1}, "battery.soc_max",
     r"greater than or equal to 0"),
    ("soc-min-ge-soc-max", {"battery.soc_min": 0.9, "battery.soc_max": 0.8}, "battery.soc_min",
     r"soc_min must be < soc_max"),
    ("soc-min-eq-soc-max", {"battery.soc_min": 0.5, "battery.soc_max": 0.5}, "battery.soc_min",
     r"soc_min must be < soc_max"),
    ("initial-soc-outside-window", {"battery.initial_soc": 0.99}, "battery.initial_soc",
     r"initial_soc must lie in \[soc_min, soc_max\]"),
    ("curve-lengths-differ",
     {"ev.curves": {"tesla_400v": {"soc": [0.0, 0.5, 1.0], "kw": [100.0, 50.0]},
                    "ioniq5": VALID_CURVE}},
     "ev.curves.tesla_400v", r"equal length \(got 3 and 2\)"),
    ("curve-not-increasing",
     {"ev.curves": {"tesla_400v": {"soc": [0.0, 0.6, 0.5, 1.0], "kw": [100.0, 50.0, 40.0, 10.0]},
                    "ioniq5": VALID_CURVE}},
     "ev.curves.tesla_400v", r"strictly increasing"),
    ("curve-not-starting-at-0",
     {"ev.curves": {"tesla_400v": {"soc": [0.1, 0.5, 1.0], "kw": [100.0, 50.0, 10.0]},
                    "ioniq5": VALID_CURVE}},
     "ev.curves.tesla_400v", r"start at 0\.0"),
    ("curve-all-zero-kw",
     {"ev.curves": {"tesla_400v": {"soc": [0.0, 1.0], "kw": [0.0, 0.0]}, "ioniq5": VALID_CURVE}},
     "ev.curves.tesla_400v", r"at least one positive"),
    ("hourly-profile-23-values", {"ev.hourly_profile": [1.0] * 23}, "ev.hourly_profile",
     r"24 values.*\(got 23\)"),
    ("hourly-profile-all-zero", {"ev.hourly_profile": [0.0] * 24}, "ev.hourly_profile",
     r"positive sum"),
    ("weekday-factors-6-values", {"ev.weekday_factors": [1.0] * 6}, "ev.weekday_factors",
     r"7 values"),
    ("carbon-profile-wrong-length", {"tariff.carbon_g_per_kwh": [400.0] * 12},
     "tariff.carbon_g_per_kwh", r"24 values"),
    ("beta-sd-too-large",
     {"ev.arrival_soc": {"mean": 0.35, "sd": 0.6, "lo": 0.03, "hi": 0.70}}, "ev.arrival_soc.sd",
     r"sd\^2 < mean\*\(1-mean\) = 0\.2275"),
    ("beta-lo-ge-hi", {"ev.target_soc": {"mean": 0.78, "sd": 0.07, "lo": 0.9, "hi": 0.6}},
     "ev.target_soc.lo", r"lo must be < hi"),
    ("unknown-curve-in-fleet",
     {"ev.fleet": [{"name": "x", "share": 1.0, "battery_kwh": 70.0, "curve": "warp_drive"}]},
     "ev.fleet.0.curve", r"unknown curve 'warp_drive'"),
    ("empty-fleet", {"ev.fleet": []}, "ev.fleet", r"at least one vehicle"),
    ("step-min-does-not-divide-day", {"episode.step_min": 7}, "episode.step_min",
     r"must divide 1440"),
    ("step-min-above-60", {"episode.step_min": 120}, "episode.step_min",
     r"less than or equal to 60"),
    ("days-not-whole-steps", {"episode.days": 0.3}, "episode.days", r"whole number of steps"),
    ("start-day-range-reversed", {"episode.start_day_of_year": [200, 100]},
     "episode.start_day_of_year", r"1 <= lo <= hi <= 365"),
    ("demand-window-not-multiple-of-step",
     {"episode.step_min": 10, "grid.demand_window_min": 15}, "grid.demand_window_min",
     r"multiple of episode\.step_min \(10\)"),
    ("import-limit-below-standby", {"grid.import_limit_kw": 300.0}, "grid.import_limit_kw",
     r"must exceed the site's irreducible load .*391\.5 kW"),
    ("standby-above-cap-floor", {"compute.standby_frac": 0.5}, "compute.standby_frac",
     r"standby_frac must be <= cap_floor_frac"),
    ("pue-below-1", {"compute.pue.pue": [0.9, 1.2, 1.3]}, "compute.pue.pue.0",
     r"greater than or equal to 1"),
    ("empty-time-window", {"ev.retail_peak_window": {"start_hour": 5, "end_hour": 5}},
     "ev.retail_peak_window", r"start_hour must differ from end_hour"),
    ("tou-empty", {"tariff.tou": []}, "tariff.tou", r"at least one period"),
    ("negative-price-range-reversed",
     {"tariff.realtime.negative_usd_per_mwh": [-5.0, -30.0]},
     "tariff.realtime.negative_usd_per_mwh", r"low <= high"),
    ("hour-out-of-range", {"compute.inference_peak_hour": 24.0}, "compute.inference_peak_hour",
     r"less than 24"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "path", "rule"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_config_names_field_and_rule(overrides: dict, path: str, rule: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_scenario(None, overrides)
    message = str(excinfo.value)
    assert names_path(message, path), f"field path {path!r} not named in:\n{message}"
    assert re.search(rule, message), f"rule {rule!r} not in:\n{message}"


def test_malformed_table_is_large_enough() -> None:
    assert len(MALFORMED) >= 12
    assert len({c[0] for c in MALFORMED}) == len(MALFORMED)


def test_error_names_every_bad_field_and_the_value_given() -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_scenario(None, {"chargers.n_stalls": 0, "battery.energy_kwh": -3.5, "grid.nope": 1})
    message = str(excinfo.value)
    lines = message.splitlines()
    assert lines[0].startswith("invalid scenario config")
    assert any(
        line.strip().startswith("chargers.n_stalls:") and "(got 0)" in line for line in lines
    )
    assert any(
        line.strip().startswith("battery.energy_kwh:") and "(got -3.5)" in line for line in lines
    )
    assert any(line.strip().startswith("grid.nope: unknown key") for line in lines)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# ------------------------------------------------------------------------- model behaviour
def test_models_are_frozen() -> None:
    cfg = ScenarioConfig()
    with pytest.raises(pydantic.ValidationError):
        cfg.battery.soc_min = 0.2  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        cfg.name = "x"  # type: ignore[misc]


def test_schema_defaults_are_the_default_scenario() -> None:
    """The schema's defaults describe the default preset (only the description text differs)."""
    a = ScenarioConfig().model_dump()
    b = load_scenario().model_dump()
    a.pop("description")
    b.pop("description")
    assert a == b


def test_episode_derived_quantities() -> None:
    ep = ScenarioConfig().episode
    assert ep.step_min == 5 and ep.dt_h == pytest.approx(5 / 60)
    assert ep.n_steps == 288
    cfg = load_scenario(None, {"episode": {"step_min": 15, "days": 7}})
    assert cfg.episode.n_steps == 7 * 96
    cfg = load_scenario(None, {"episode.days": 0.25})
    assert cfg.episode.n_steps == 72


@pytest.mark.parametrize("step_min", [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60])
def test_every_divisor_of_a_day_is_a_valid_step(step_min: int) -> None:
    cfg = load_scenario(None, {"episode.step_min": step_min, "grid.demand_window_min": 60})
    assert cfg.episode.n_steps * step_min == 1440


def test_acceptance_curve_rejects_a_single_point() -> None:
    with pytest.raises(pydantic.ValidationError, match="at least 2 points"):
        AcceptanceCurve(soc=(0.0,), kw=(100.0,))


def test_beta_spec_sd_bound_is_strict() -> None:
    BetaSpec(mean=0.5, sd=0.49)  # sd^2 = 0.2401 < 0.25
    with pytest.raises(pydantic.ValidationError, match="sd must satisfy"):
        BetaSpec(mean=0.5, sd=0.5)  # sd^2 == mean (1 - mean): degenerate


def test_battery_of_zero_size_is_valid_and_drops_aux_from_the_floor() -> None:
    # compute standby 1200 x 0.25 x 1.30 = 390 kW; with a battery the floor adds 1.5 kW aux.
    load_scenario(None, {"battery.energy_kwh": 0.0, "grid.import_limit_kw": 391.0})
    with pytest.raises(ConfigError, match="391.5 kW"):
        load_scenario(None, {"grid.import_limit_kw": 391.0})


# --------------------------------------------------------------- defaults vs domain facts
def _minutes_to_charge(
    curve: AcceptanceCurve, battery_kwh: float, soc0: float, soc1: float, stall_kw: float
) -> float:
    """Exact time (min) to go soc0 -> soc1 on a piecewise-linear curve (fine quadrature)."""
    soc = np.linspace(soc0, soc1, 200_001)
    kw = np.minimum(np.interp(soc, curve.soc, curve.kw), stall_kw)
    dt_h = battery_kwh * np.diff(soc) / (0.5 * (kw[1:] + kw[:-1]))
    return float(dt_h.sum() * 60.0)


def test_tesla_curve_matches_sources() -> None:
    """sources §2b: integrating the default 400 V curve gives 10->80 % in 21.8 min and 0->80 %
    in 23.8 min."""
    assert _minutes_to_charge(TESLA_400V_CURVE, 75.0, 0.10, 0.80, 250.0) == pytest.approx(
        21.8, abs=0.3
    )
    assert _minutes_to_charge(TESLA_400V_CURVE, 75.0, 0.0, 0.80, 250.0) == pytest.approx(
        23.8, abs=0.3
    )
    assert max(TESLA_400V_CURVE.kw) == 250.0  # sources §1: V3 per-stall peak


def test_ioniq5_curve_matches_sources() -> None:
    """sources §2b: Ioniq 5 58 kWh averages ~144 kW over 20->80 %."""
    minutes = _minutes_to_charge(IONIQ5_CURVE, 58.0, 0.20, 0.80, 350.0)
    avg_kw = 58.0 * 0.6 / (minutes / 60.0)
    assert 125.0 <= avg_kw <= 165.0


def test_default_ev_figures_match_sources() -> None:
    ev = ScenarioConfig().ev
    assert ev.arrivals_per_day == 70.0  # sources §7
    assert len(URBAN_PROFILE) == 24 and sum(URBAN_PROFILE) == pytest.approx(1.0, abs=0.01)
    shares = np.array([v.share for v in ev.fleet])
    assert shares.sum() == pytest.approx(1.0)
    assert ev.arrival_soc.mean == 0.35 and ev.target_soc.mean == 0.78  # sources §2c urban
    for v in ev.fleet:
        assert v.curve in ev.curves


def test_default_site_sizing_matches_design() -> None:
    """Sizing (sources §7): IT x PUE close to the import limit so that cars force compute to throttle."""
    cfg = ScenarioConfig()
    it_site_kw = cfg.compute.it_kw * min(cfg.compute.pue.pue)
    assert 0.75 * cfg.grid.import_limit_kw <= it_site_kw <= cfg.grid.import_limit_kw
    assert cfg.chargers.n_stalls == 12 and cfg.chargers.stall_kw == 250.0  # sources §7
