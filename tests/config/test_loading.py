"""Loading scenarios by name, path, mapping or object; ``extends``; overrides; YAML safety
(megapod_gym.config.loading)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

import megapod_gym
from megapod_gym.config import (
    DEFAULT_SCENARIO,
    ConfigError,
    ScenarioConfig,
    load_scenario,
    preset_root,
    scenario_names,
)
from megapod_gym.config.loading import deep_merge, expand_dotted

EXPECTED_SCENARIOS = {
    "caiso-rt-spring",
    "demand-charge-heavy",
    "ercot-rt-summer",
    "highway-64stall",
    "internal-training-lowvalue",
    "urban-12stall-bev",
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ presets
def test_scenario_names_lists_the_embedded_presets() -> None:
    names = scenario_names()
    assert names == sorted(names)
    assert EXPECTED_SCENARIOS <= set(names)
    assert DEFAULT_SCENARIO in names
    assert megapod_gym.scenario_names() == names


@pytest.mark.parametrize("name", scenario_names())
def test_every_named_scenario_loads(name: str) -> None:
    cfg = load_scenario(name)
    assert isinstance(cfg, ScenarioConfig)
    assert cfg.name == name
    assert cfg.description.strip()
    # loading the file by path gives the same config
    assert load_scenario(preset_root() / "scenarios" / f"{name}.yaml") == cfg
    assert load_scenario(str(preset_root() / "scenarios" / f"{name}.yaml")) == cfg


def test_default_is_urban_and_none_means_default() -> None:
    assert load_scenario() == load_scenario(DEFAULT_SCENARIO)
    assert load_scenario(None).name == "urban-12stall-bev"


def test_presets_compose_via_extends() -> None:
    """caiso-rt-spring = sites/urban-12stall + tariffs/caiso-rt + its own keys."""
    cfg = load_scenario("caiso-rt-spring")
    site = yaml.safe_load((preset_root() / "sites" / "urban-12stall.yaml").read_text())
    tariff = yaml.safe_load((preset_root() / "tariffs" / "caiso-rt.yaml").read_text())
    assert cfg.grid.import_limit_kw == site["grid"]["import_limit_kw"]
    assert cfg.chargers.n_stalls == site["chargers"]["n_stalls"]
    assert cfg.battery.energy_kwh == site["battery"]["energy_kwh"]
    # the tariff piece sets both tariff keys and a grid key merged into the site's grid mapping
    assert cfg.grid.export_limit_kw == tariff["grid"]["export_limit_kw"] == 500.0
    assert cfg.tariff.energy_price == "realtime"
    assert cfg.tariff.realtime.negative_prob == tariff["tariff"]["realtime"]["negative_prob"]
    assert [d.name for d in cfg.tariff.demand_charges] == ["facility"]
    # the scenario's own key on top
    assert cfg.episode.start_day_of_year == (60, 151)


def test_highway_preset_composes_site_and_its_own_override() -> None:
    cfg = load_scenario("highway-64stall")
    assert cfg.chargers.n_stalls == 64 and cfg.chargers.stalls_per_cabinet == 8
    assert cfg.grid.import_limit_kw == 6000.0
    assert cfg.tariff.demand_charges[0].threshold_kw == 4000.0  # scenario replaces the list
    assert len(cfg.ev.fleet) == 6


def test_extends_in_user_file_mixes_presets_local_pieces_and_order(tmp_path: Path) -> None:
    write(
        tmp_path / "pieces" / "small-battery.yaml",
        """
        battery:
          energy_kwh: 500.0
          charge_kw: 250.0
        """,
    )
    write(
        tmp_path / "pieces" / "bigger-battery.yaml",
        """
        battery:
          energy_kwh: 900.0
        """,
    )
    path = write(
        tmp_path / "my.yaml",
        """
        extends: [sites/urban-12stall, tariffs/b19-demand, pieces/small-battery, pieces/bigger-battery.yaml]
        name: mine
        chargers:
          n_stalls: 8
        """,
    )
    cfg = load_scenario(path)
    assert cfg.name == "mine"
    assert cfg.chargers.n_stalls == 8  # own key on top
    assert cfg.chargers.stall_kw == 250.0  # from the site preset
    assert cfg.battery.energy_kwh == 900.0  # later piece wins
    assert cfg.battery.charge_kw == 250.0  # earlier piece's other keys survive (deep merge)
    assert [d.name for d in cfg.tariff.demand_charges] == ["facility", "on_peak"]


def test_extends_as_a_single_string(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "extends: tariffs/ercot-rt\nname: s\n")
    cfg = load_scenario(path)
    assert cfg.tariff.realtime.mean_usd_per_mwh == 32.0


def test_extends_a_yml_piece(tmp_path: Path) -> None:
    write(tmp_path / "piece.yml", "battery:\n  energy_kwh: 100.0\n")
    path = write(tmp_path / "s.yml", "extends: [piece.yml]\nname: t\n")
    assert load_scenario(path).battery.energy_kwh == 100.0


def test_yml_scenario_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yml", "extends: [sites/urban-12stall]\nname: t\n")
    assert load_scenario(path).name == "t"


def test_mapping_scenario_with_extends() -> None:
    cfg = load_scenario(
        {
            "extends": ["sites/highway-64stall", "tariffs/caiso-rt"],
            "name": "hw-caiso",
            "battery": {"energy_kwh": 0.0},
        }
    )
    assert cfg.name == "hw-caiso"
    assert cfg.chargers.n_stalls == 64
    assert cfg.tariff.energy_price == "realtime"
    assert cfg.battery.energy_kwh == 0.0


def test_config_object_round_trips_and_takes_overrides() -> None:
    base = load_scenario("ercot-rt-summer")
    assert load_scenario(base) == base
    changed = load_scenario(base, {"battery.energy_kwh": 0.0})
    assert changed.battery.energy_kwh == 0.0
    assert changed.tariff == base.tariff
    assert base.battery.energy_kwh == 3854.0  # the original is untouched


# ---------------------------------------------------------------------------- overrides
def test_dotted_and_nested_overrides_are_equivalent() -> None:
    dotted = load_scenario(
        "urban-12stall-bev",
        {"battery.energy_kwh": 1000.0, "grid.import_limit_kw": 2000.0, "ev_priority": "soft"},
    )
    nested = load_scenario(
        "urban-12stall-bev",
        {
            "battery": {"energy_kwh": 1000.0},
            "grid": {"import_limit_kw": 2000.0},
            "ev_priority": "soft",
        },
    )
    assert dotted == nested
    assert dotted.battery.energy_kwh == 1000.0
    assert dotted.battery.charge_kw == 1927.0  # siblings kept
    assert dotted.grid.import_limit_kw == 2000.0
    assert dotted.ev_priority == "soft"


def test_mixed_dotted_inside_nested_override() -> None:
    cfg = load_scenario(None, {"tariff": {"realtime.mean_usd_per_mwh": 80.0}, "episode.days": 2})
    assert cfg.tariff.realtime.mean_usd_per_mwh == 80.0
    assert cfg.episode.n_steps == 576


def test_override_replaces_lists_and_merges_mappings() -> None:
    cfg = load_scenario(
        "demand-charge-heavy",
        {"tariff.demand_charges": [{"name": "only", "usd_per_kw_month": 7.0}]},
    )
    assert [d.name for d in cfg.tariff.demand_charges] == ["only"]
    assert cfg.tariff.tou[0].price_usd_per_kwh == 0.30  # sibling key kept


def test_override_of_field_present_in_preset_merges() -> None:
    """highway's YAML spells out ev.arrival_soc, so a dotted override changes only ``sd``."""
    cfg = load_scenario("highway-64stall", {"ev.arrival_soc.sd": 0.1})
    assert cfg.ev.arrival_soc.sd == 0.1
    assert cfg.ev.arrival_soc.mean == 0.25 and cfg.ev.arrival_soc.lo == 0.03


def test_dotted_override_of_field_left_at_schema_default_merges() -> None:
    cfg = load_scenario("urban-12stall-bev", {"ev.arrival_soc.sd": 0.1})
    assert cfg.ev.arrival_soc.sd == 0.1
    assert cfg.ev.arrival_soc.mean == 0.35


def test_nested_partial_override_keeps_schema_default_siblings() -> None:
    cfg = load_scenario(None, {"ev": {"arrival_soc": {"mean": 0.3, "sd": 0.1}}})
    assert (cfg.ev.arrival_soc.lo, cfg.ev.arrival_soc.hi) == (0.03, 0.70)


def test_override_of_one_curve_keeps_the_other_default_curves() -> None:
    cfg = load_scenario(None, {"ev.curves.tesla_400v": {"soc": [0.0, 1.0], "kw": [200.0, 50.0]}})
    assert set(cfg.ev.curves) == {"tesla_400v", "ioniq5"}


def test_override_keys_must_be_strings() -> None:
    with pytest.raises(ConfigError, match="override keys must be strings"):
        load_scenario(None, {1: 2})


def test_expand_dotted_and_deep_merge_helpers() -> None:
    assert expand_dotted({"a.b.c": 1, "a.d": 2, "e": {"f.g": 3}}) == {
        "a": {"b": {"c": 1}, "d": 2},
        "e": {"f": {"g": 3}},
    }
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged = deep_merge(base, {"a": {"c": [3]}, "e": 2})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # inputs are not mutated


# ---------------------------------------------------------------- malformed files / names
def _loading_cases(tmp: Path) -> dict[str, tuple[object, str, str]]:
    """id -> (scenario argument, text that must be named, rule regex)."""
    write(tmp / "list-top.yaml", "- a\n- b\n")
    write(tmp / "scalar-top.yaml", "just a string\n")
    write(tmp / "bad-extends.yaml", "extends: [sites/no-such-site]\nname: x\n")
    write(tmp / "extends-number.yaml", "extends: [3]\n")
    write(tmp / "broken.yaml", "grid: {import_limit_kw: [1500\n")
    write(tmp / "python-tag.yaml", "name: !!python/object/apply:os.getcwd []\n")
    write(tmp / "loop-a.yaml", "extends: [loop-b]\nname: a\n")
    write(tmp / "loop-b.yaml", "extends: [loop-a]\n")
    write(tmp / "bad-field.yaml", "extends: [sites/urban-12stall]\nbattery:\n  soc_min: 2.0\n")
    return {
        "unknown-scenario-name": ("no-such-scenario", "no-such-scenario",
                                  r"unknown scenario.*valid names: .*urban-12stall-bev"),
        "missing-yaml-path": (str(tmp / "nope.yaml"), "nope.yaml", r"does not exist"),
        "list-top-level": (tmp / "list-top.yaml", "list-top.yaml",
                           r"top level must be a mapping.*\(got list\)"),
        "scalar-top-level": (tmp / "scalar-top.yaml", "scalar-top.yaml",
                             r"top level must be a mapping.*\(got str\)"),
        "unknown-extends-piece": (tmp / "bad-extends.yaml", "sites/no-such-site", r"not found"),
        "unknown-extends-in-mapping": ({"extends": ["tariffs/nope"]}, "tariffs/nope", r"not found"),
        "extends-not-strings": (tmp / "extends-number.yaml", "extends",
                                r"must be a list of preset names or paths"),
        "invalid-yaml": (tmp / "broken.yaml", "broken.yaml", r"not valid YAML"),
        "python-object-tag": (tmp / "python-tag.yaml", "python-tag.yaml", r"not valid YAML"),
        "circular-extends": (tmp / "loop-a.yaml", "loop-", r"circular 'extends'"),
        "bad-field-in-file": (tmp / "bad-field.yaml", "battery.soc_min",
                              r"less than or equal to 1"),
        "wrong-argument-type": (42, "scenario", r"must be a name, path, mapping or ScenarioConfig"),
    }  # fmt: skip


LOADING_IDS = [
    "unknown-scenario-name",
    "missing-yaml-path",
    "list-top-level",
    "scalar-top-level",
    "unknown-extends-piece",
    "unknown-extends-in-mapping",
    "extends-not-strings",
    "invalid-yaml",
    "python-object-tag",
    "circular-extends",
    "bad-field-in-file",
    "wrong-argument-type",
]


@pytest.mark.parametrize("case", LOADING_IDS)
def test_malformed_source_raises_config_error(case: str, tmp_path: Path) -> None:
    scenario, named, rule = _loading_cases(tmp_path)[case]
    with pytest.raises(ConfigError) as excinfo:
        load_scenario(scenario)  # type: ignore[arg-type]
    message = str(excinfo.value)
    assert named in message, f"{named!r} not in: {message}"
    assert re.search(rule, message, flags=re.S), f"{rule!r} not in: {message}"


def test_yaml_is_read_with_safe_load(tmp_path: Path) -> None:
    """A ``!!python/object`` tag must not construct anything (no code runs)."""
    marker = tmp_path / "pwned"
    path = write(
        tmp_path / "evil.yaml",
        f"""
        name: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ["{marker}"]]
        """,
    )
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scenario(path)
    assert not marker.exists()
    path = write(
        tmp_path / "evil2.yaml", "battery: !!python/object:megapod_gym.config.ScenarioConfig {}\n"
    )
    with pytest.raises(ConfigError):
        load_scenario(path)


def test_empty_yaml_file_is_the_schema_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.yaml", "")
    assert load_scenario(path) == ScenarioConfig()


def test_replay_paths_are_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    write(tmp_path / "data" / "piece.yaml", "replay:\n  prices_csv: prices.csv\n")
    path = write(
        tmp_path / "scen.yaml",
        "extends: [data/piece]\nreplay:\n  temperature_csv: temps/t.csv\n"
        "  carbon_csv: c.csv\n  timezone: Europe/Berlin\n",
    )
    cfg = load_scenario(path)
    assert Path(cfg.replay.prices_csv) == (tmp_path / "data" / "prices.csv").resolve()
    assert Path(cfg.replay.temperature_csv) == (tmp_path / "temps" / "t.csv").resolve()
    assert Path(cfg.replay.carbon_csv) == (tmp_path / "c.csv").resolve()
    assert cfg.replay.timezone == "Europe/Berlin"  # a zone name, not a path


# ------------------------------------------------------------------------- embedded data
def test_default_scenario_is_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_scenario()
    assert cfg.name == DEFAULT_SCENARIO
    for name in scenario_names():
        load_scenario(name)
    assert preset_root().is_dir()
    assert (preset_root() / "scenarios" / f"{DEFAULT_SCENARIO}.yaml").is_file()


@pytest.mark.slow  # the first env of a process loads the compiled kernels
def test_env_builds_from_an_unrelated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gymnasium as gym

    monkeypatch.chdir(tmp_path)
    env = gym.make(megapod_gym.ENV_ID)
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.config.name == DEFAULT_SCENARIO and obs.shape[0] > 0


def test_unknown_name_lists_the_other_kind_too() -> None:
    from megapod_gym.config.fleet import load_fleet

    with pytest.raises(ConfigError, match=r"fleets: fleet-20site, tri-tz-3site"):
        load_scenario("no-such-site")
    with pytest.raises(ConfigError, match=r"'tri-tz-3site' is a fleet"):
        load_scenario("tri-tz-3site")
    with pytest.raises(ConfigError, match=r"'urban-12stall-bev' is a scenario"):
        load_fleet("urban-12stall-bev")


def test_configs_scenarios_holds_the_scenario_presets_directly() -> None:
    root = Path(__file__).resolve().parents[2]
    names = sorted(p.stem for p in (root / "configs" / "scenarios").glob("*.yaml"))
    assert (
        "urban-12stall-bev" in names and not (root / "configs" / "scenarios" / "scenarios").exists()
    )


def test_scenarios_from_files_are_cached_until_a_file_of_the_chain_changes(tmp_path) -> None:
    """Loading the same file (and overrides) twice returns the same frozen config; editing any
    file of its extends chain is seen on the next load."""
    import os

    base = tmp_path / "base.yaml"
    top = tmp_path / "top.yaml"
    base.write_text("extends: [scenarios/urban-12stall-bev]\nbattery: {energy_kwh: 1000.0}\n")
    top.write_text("extends: [base.yaml]\nname: cached\n")
    a = load_scenario(top)
    assert load_scenario(top) is a
    assert load_scenario(top, {"battery.energy_kwh": 500.0}) is not a
    assert load_scenario(top, {"battery.energy_kwh": 500.0}).battery.energy_kwh == 500.0
    base.write_text("extends: [scenarios/urban-12stall-bev]\nbattery: {energy_kwh: 2000.0}\n")
    st = os.stat(base)
    os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later mtime, whatever the clock
    b = load_scenario(top)
    assert b is not a and b.battery.energy_kwh == 2000.0


@pytest.mark.parametrize("name", scenario_names())
def test_an_override_changes_only_the_overridden_field(name: str) -> None:
    """Overrides apply on top of the scenario as its files define it: a partly given nested
    section (ERCOT's negative-price window gives hours, not months) is completed the same way
    with or without overrides. Before, overrides merged onto the default scenario's values and
    ERCOT's window took CAISO's months, so benchmarks and validation ran another price process."""
    plain = load_scenario(name).model_dump(mode="json")
    overridden = load_scenario(name, {"episode.days": 2.0}).model_dump(mode="json")
    assert overridden["episode"].pop("days") == 2.0
    plain["episode"].pop("days")
    assert overridden == plain


def test_ercot_negative_window_is_in_every_month_with_or_without_overrides() -> None:
    for overrides in (None, {"episode.days": 1.0}):
        window = load_scenario("ercot-rt-summer", overrides).tariff.realtime.negative_window
        assert tuple(window.months) == tuple(range(1, 13))
