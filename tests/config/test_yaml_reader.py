"""The defensive YAML reader behind every config file (scenario, fleet, training, sweep)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.training.config import TrainConfigError, load_train_config
from megapod_gym.config import ConfigError, load_scenario
from megapod_gym.config.yaml_reader import MAX_DEPTH, read_config_yaml

BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b"extends: [sites/urban-12stall]\nbattery: {energy_kwh: 1}\nbattery: {aux_kw: 1}\n",
            r"line 3: key 'battery' is given twice in one mapping \(first on line 2\)",
        ),
        (b"grid: {import_limit_kw: 1, import_limit_kw: 2}\n", r"'import_limit_kw' is given twice"),
        (BOMB.encode(), r"line 2: YAML aliases \(\*a\) are not allowed"),
        (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", rf"nested deeper than {MAX_DEPTH} levels"),
        (b"name: caf\xe9\n", r"not UTF-8 text \(byte 0xe9 at position 9\)"),
        (b"grid: {import_limit_kw: [1500\n", r"not valid YAML"),
        (b"x: !!python/object/apply:os.getcwd []\n", r"not valid YAML"),
    ],
    ids=["duplicate-block", "duplicate-flow", "alias-bomb", "deep", "latin-1", "broken", "tag"],
)
def test_bad_files_are_refused_in_one_short_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and len(str(err.value)) < 400
    train = tmp_path / "train.yaml"
    train.write_bytes(content)
    with pytest.raises(TrainConfigError, match=message):
        load_train_config(train)


def test_plain_files_still_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("a: {b: [1, 2.5, x]}\nc: null\n")
    assert read_config_yaml(path) == {"a": {"b": [1, 2.5, "x"]}, "c": None}
    assert load_scenario("urban-12stall-bev").name == "urban-12stall-bev"


def test_overrides_error_names_the_preset_not_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        load_scenario("urban-12stall-bev", {"battery.energy_kwh": 10**400})
    msg = str(err.value)
    assert "(preset scenarios/urban-12stall-bev + overrides)" in msg
    assert "an integer of about 401 digits" in msg and len(msg) < 300


def test_long_error_lists_are_capped() -> None:
    bad = {"ev.hourly_profile": [float("nan")] * 24}
    with pytest.raises(ConfigError) as err:
        load_scenario("urban-12stall-bev", bad)
    assert len(str(err.value).splitlines()) <= 14


def test_parsed_files_are_cached_but_never_shared_or_stale(tmp_path: Path) -> None:
    import os

    path = tmp_path / "c.yaml"
    path.write_text("a: {b: 1}\n")
    first = read_config_yaml(path)
    first["a"]["b"] = 99  # a caller mutating its copy
    assert read_config_yaml(path) == {"a": {"b": 1}}
    path.write_text("a: {b: 2, c: 3}\n")  # edited (size changes)
    os.utime(path, ns=(1, 2))
    assert read_config_yaml(path) == {"a": {"b": 2, "c": 3}}
