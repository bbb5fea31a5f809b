"""Load scenarios by name, path, mapping or object; compose YAML pieces; apply overrides.

A scenario YAML file may start with ``extends: [piece, ...]``. Each piece is a preset name
relative to the preset folder (``sites/urban-12stall``, ``tariffs/pge-bev-2-s``) or a path relative
to the file; pieces are deep-merged in order, then the file's own keys on top, then the caller's
``overrides`` (nested mappings or dotted keys such as ``{"battery.energy_kwh": 0}``). Mappings merge
key by key; lists and scalars replace. YAML is read by :func:`~megapod_gym.config.yaml_reader.read_config_yaml` (safe
loading; no aliases, duplicate keys or deep nesting).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from megapod_gym.config.schema import ScenarioConfig
from megapod_gym.config.yaml_reader import YamlConfigError, read_config_yaml
from megapod_gym.short_repr import short_repr

DEFAULT_SCENARIO = "urban-12stall-bev"
_PRESET_PACKAGE = "megapod_gym.presets"


class ConfigError(ValueError):
    """A scenario configuration is invalid; the message names every bad field path."""


def preset_root() -> Path:
    """Folder holding the embedded YAML presets (inside the installed package)."""
    return Path(str(resources.files(_PRESET_PACKAGE)))


def scenario_names() -> list[str]:
    """Names of the embedded scenarios, e.g. ``urban-12stall-bev``."""
    return sorted(p.stem for p in (preset_root() / "scenarios").glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = read_config_yaml(path)
    except YamlConfigError as exc:
        raise ConfigError(str(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: top level must be a mapping of config keys (got {type(data).__name__})"
        )
    return data


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``top``: mappings merge recursively, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def expand_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``{"a.b": 1}`` into ``{"a": {"b": 1}}`` (nested mappings pass through)."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise ConfigError(f"override keys must be strings (got {key!r})")
        node = {key.split(".")[-1]: expand_dotted(value) if isinstance(value, Mapping) else value}
        for part in reversed(key.split(".")[:-1]):
            node = {part: node}
        out = deep_merge(out, node)
    return out


def _resolve_piece(ref: str, here: Path) -> Path:
    name = ref if ref.endswith((".yaml", ".yml")) else ref + ".yaml"
    local = here / name
    if local.is_file():
        return local
    preset = preset_root() / name
    if preset.is_file():
        return preset
    raise ConfigError(f"{here}: extends: piece {ref!r} not found (looked at {local} and {preset})")


def _load_file(
    path: Path, seen: tuple[Path, ...] = (), read: list[Path] | None = None
) -> dict[str, Any]:
    """The merged mapping of ``path`` and its ``extends`` chain (every file read is appended to
    ``read`` when given)."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular 'extends'")
    if read is not None:
        read.append(path)
    data = _read_yaml(path)
    pieces = data.pop("extends", [])
    if isinstance(pieces, str):
        pieces = [pieces]
    if not isinstance(pieces, list) or not all(isinstance(p, str) for p in pieces):
        raise ConfigError(f"{path}: extends must be a list of preset names or paths")
    merged: dict[str, Any] = {}
    for ref in pieces:
        piece = _resolve_piece(ref, path.parent)
        merged = deep_merge(merged, _load_file(piece, seen + (path,), read))
    merged = deep_merge(merged, data)
    replay = merged.get("replay")
    if isinstance(replay, dict):  # CSV paths are relative to the file that names them
        for key, value in replay.items():
            if (
                isinstance(value, str)
                and key.endswith("_csv")  # not e.g. replay.timezone
                and key in data.get("replay", {})
                and not Path(value).is_absolute()
            ):
                replay[key] = str((path.parent / value).resolve())
    return merged


def display_path(path: Path) -> str:
    """An embedded preset as ``preset NAME``, any other file as given."""
    try:
        rel = path.resolve().relative_to(preset_root().resolve())
    except ValueError:
        return str(path)
    return f"preset {rel.with_suffix('').as_posix()}"


def preset_path(name_or_path: str, kind: str = "scenarios") -> Path:
    """A YAML path, or the embedded preset ``kind/NAME.yaml`` (``kind``: scenarios, fleets);
    an unknown name is a :class:`ConfigError` listing the valid names."""
    noun = kind.rstrip("s")
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise ConfigError(f"{noun} file {name_or_path!r} does not exist")
        return candidate
    preset = preset_root() / kind / f"{name_or_path}.yaml"
    if not preset.is_file():
        names = sorted(p.stem for p in (preset_root() / kind).glob("*.yaml"))
        other = "fleets" if kind == "scenarios" else "scenarios"
        others = sorted(p.stem for p in (preset_root() / other).glob("*.yaml"))
        hint = (
            f"; {name_or_path!r} is a {other.rstrip('s')}, use it where a {other.rstrip('s')} "
            "is expected"
            if name_or_path in others
            else f"; {other}: {', '.join(others)}"
        )
        raise ConfigError(
            f"unknown {noun} {name_or_path!r}; valid names: {', '.join(names)} "
            f"(or give a path to a .yaml file){hint}"
        )
    return preset


MAX_ERROR_LINES = 12


def format_validation_error(
    exc: ValidationError, source: str, what: str = "scenario config"
) -> str:
    """One line per bad field, ``path.to.field: message (got value)``, values abbreviated, at most
    :data:`MAX_ERROR_LINES` lines (then how many more), under ``invalid WHAT (SOURCE):``."""
    lines = [f"invalid {what} ({source}):"]
    errors = exc.errors()
    for err in errors[:MAX_ERROR_LINES]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {short_repr(got)})"
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {loc}: {msg}{shown}")
    if len(errors) > MAX_ERROR_LINES:
        lines.append(f"  ... and {len(errors) - MAX_ERROR_LINES} more")
    return "\n".join(lines)


def load_scenario(
    scenario: str | Path | Mapping[str, Any] | ScenarioConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ScenarioConfig:
    """Build a validated :class:`ScenarioConfig`.

    Parameters
    ----------
    scenario
        A preset name (see :func:`scenario_names`), a path to a YAML file, a mapping of config keys
        (may use ``extends``), an existing config, or ``None`` for the default scenario.
    overrides
        Keys merged on top, nested or dotted (``{"battery.energy_kwh": 0}``).

    Raises
    ------
    ConfigError
        Naming the field path, the rule it broke and the value given.
    """
    if scenario is None:
        scenario = DEFAULT_SCENARIO
    if isinstance(scenario, ScenarioConfig):
        data: dict[str, Any] = scenario.model_dump(mode="python")
        source = f"config object {scenario.name!r}"
    elif isinstance(scenario, Mapping):
        data = dict(scenario)
        pieces = data.pop("extends", [])
        merged: dict[str, Any] = {}
        for ref in [pieces] if isinstance(pieces, str) else pieces:
            merged = deep_merge(merged, _load_file(_resolve_piece(ref, preset_root())))
        data = deep_merge(merged, data)
        source = "mapping"
    elif isinstance(scenario, (str, Path)):
        # keyed by what was asked (a relative path depends on the working directory)
        key = (os.getcwd(), str(scenario), _overrides_key(overrides))
        hit = _SCENARIO_CACHE.get(key)
        if hit is not None and hit[0] == _stamps(hit[1]):
            return hit[2]
        path = preset_path(str(scenario))
        read: list[Path] = []
        data = _load_file(path, read=read)
        source = display_path(path)
    else:
        raise ConfigError(
            f"scenario must be a name, path, mapping or ScenarioConfig (got {type(scenario).__name__})"
        )
    if overrides:
        # Overrides apply on top of the scenario as its file defines it: the file's data are
        # validated first, so a partly given nested section is completed by its model's defaults
        # exactly as without overrides (merging onto the top-level defaults instead would fill
        # it from the default scenario's values: e.g. ERCOT's negative-price window took
        # CAISO's months). The full dump keeps an overridden field's siblings.
        try:
            base = ScenarioConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, source)) from None
        data = deep_merge(base.model_dump(mode="python"), expand_dotted(overrides))
        source += " + overrides"
    try:
        config = ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    if isinstance(scenario, (str, Path)) and key[2] is not None:
        if len(_SCENARIO_CACHE) >= _MAX_CACHED_SCENARIOS:
            _SCENARIO_CACHE.clear()
        _SCENARIO_CACHE[key] = (_stamps(read), tuple(read), config)
    return config


# Validated scenarios loaded from files, by (working directory, name or path as given, overrides):
# configs are frozen, so one object serves every env made from the same files (vector envs, sweeps
# and tests make thousands). An entry is used only while every file of its ``extends`` chain
# keeps its size and mtime.
_SCENARIO_CACHE: dict[
    tuple[str, str, str | None], tuple[tuple, tuple[Path, ...], ScenarioConfig]
] = {}
_MAX_CACHED_SCENARIOS = 256


def _stamps(paths: Sequence[Path]) -> tuple[tuple[int, int], ...] | None:
    try:
        return tuple((st.st_mtime_ns, st.st_size) for st in (os.stat(p) for p in paths))
    except OSError:
        return None


def _overrides_key(overrides: Mapping[str, Any] | None) -> str | None:
    """A stable text key of ``overrides`` ("" for none), or None when they are not plain data
    (such a load is not cached)."""
    if not overrides:
        return ""
    try:
        return json.dumps(overrides, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return None
