"""A sweep file resolved to a :class:`SweepSpec`: training YAMLs read and merged, scenarios checked,
and every algorithm's training config validated with every value of the search space (so a bad
sweep fails before any trial starts). The file's own keys are :mod:`agents.sweeps.config`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agents.sweeps.config import ORACLE_METRICS, Dim, SweepError, SweepFile, TrainRef
from agents.training.config import ALGOS, TrainConfigError, parse_train_config
from megapod_gym.config import DEFAULT_SCENARIO, ConfigError, load_scenario
from megapod_gym.config.loading import deep_merge, format_validation_error
from megapod_gym.config.yaml_reader import YamlConfigError, read_config_yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the repository (configs/train/*.yaml)


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A validated sweep (training bases resolved, so it runs on nodes without the YAML files)."""

    name: str
    sweep_seed: int
    bases: dict[str, dict[str, Any]]  # algo -> flat training mapping
    scenarios: list[str]
    replicates: int  # derived-seed replicates (1 when seeds are explicit)
    seeds: list[int] | None  # explicit seeds (grid), or None
    space: dict[str, Any]  # hyperparameters: constants, Dim, nested mappings
    num_samples: int = 1
    resources: dict[str, float] = dataclasses.field(default_factory=lambda: {"cpu": 1.0})
    max_concurrent_trials: int | None = None
    max_failures: int = 0
    scheduler: dict[str, Any] | None = None
    metric: str = "eval/normalized_score"
    mode: str = "max"
    final_benchmark: bool = True
    source: str = "mapping"

    def to_dict(self) -> dict[str, Any]:
        """The resolved sweep as a sweep file (every training key inline)."""

        def plain(node: Any) -> Any:
            if isinstance(node, Dim):
                return node.to_yaml()
            if isinstance(node, dict):
                return {k: plain(v) for k, v in node.items()}
            return node

        return {
            "name": self.name,
            "sweep_seed": self.sweep_seed,
            "algos": copy.deepcopy(self.bases),
            "scenarios": list(self.scenarios),
            "seeds": list(self.seeds) if self.seeds is not None else self.replicates,
            "space": plain(self.space),
            "num_samples": self.num_samples,
            "resources_per_trial": dict(self.resources),
            "max_concurrent_trials": self.max_concurrent_trials,
            "max_failures": self.max_failures,
            "scheduler": dict(self.scheduler) if self.scheduler else "none",
            "metric": self.metric,
            "mode": self.mode,
            "final_benchmark": self.final_benchmark,
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @property
    def n_trials(self) -> int:
        """Trials the sweep will run (grid size x samples)."""
        n = len(self.bases) * len(self.scenarios) * self.replicates * self.num_samples
        n *= len(self.seeds) if self.seeds is not None else 1

        def grid_size(node: Any) -> int:
            if isinstance(node, Dim):
                return len(node.args) if node.op == "grid" else 1
            if isinstance(node, dict):
                return math.prod(grid_size(v) for v in node.values())
            return 1

        return n * grid_size(self.space)


def _variants(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, value) of every value a dimension can take, for validation."""
    if isinstance(node, Dim):
        return [(path, v) for v in node.values()]
    if isinstance(node, dict):
        return [item for k, v in node.items() for item in _variants(v, (*path, k))]
    return []


def _first_values(node: Any) -> Any:
    if isinstance(node, Dim):
        return node.values()[0]
    if isinstance(node, dict):
        return {k: _first_values(v) for k, v in node.items()}
    return node


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    cur = out
    for k in path[:-1]:
        cur = cur.setdefault(k, {})
    cur[path[-1]] = value
    return out


def _resolve_path(ref: str, key: str, source: str, base_dir: Path | None) -> Path:
    tried = []
    for root in (Path.cwd(), base_dir, PROJECT_ROOT):
        if root is None:
            continue
        path = Path(ref) if Path(ref).is_absolute() else root / ref
        tried.append(str(path))
        if path.is_file():
            return path.resolve()
    raise SweepError(
        f"{source}: {key}: training config {ref!r} not found (tried {', '.join(tried)})"
    )


def _train_yaml(ref: str, key: str, source: str, base_dir: Path | None) -> dict[str, Any]:
    path = _resolve_path(ref, key, source, base_dir)
    try:
        data = read_config_yaml(path) or {}
    except YamlConfigError as exc:
        raise SweepError(f"{source}: {key}: cannot read {exc}") from None
    if not isinstance(data, dict):
        raise SweepError(f"{source}: {key}: {path} must hold a mapping")
    return data


def _train_mapping(
    ref: TrainRef | None, key: str, source: str, base_dir: Path | None
) -> dict[str, Any]:
    """The YAML ``ref.config`` names (if any) with the inline keys merged on top."""
    if ref is None:
        return {}
    if ref.config is None:
        return ref.inline
    return deep_merge(_train_yaml(ref.config, key, source, base_dir), ref.inline)


def _bases(sweep: SweepFile, source: str, base_dir: Path | None) -> dict[str, dict[str, Any]]:
    """algo -> flat training mapping (its YAML, base's inline keys, its own inline keys)."""
    base = _train_mapping(sweep.base, "base", source, base_dir)
    if sweep.algos is None:
        algo = base.get("algo")
        if algo not in ALGOS:
            raise SweepError(
                f"{source}: base: needs algo (one of {sorted(ALGOS)}), e.g. base: "
                f"configs/train/ppo.yaml, or list algorithms under algos (got {algo!r})"
            )
        return {algo: base}
    bases = {}
    for algo, entry in sweep.algos.items():
        key = f"algos.{algo}"
        if entry is None:
            entry = TrainRef(config=f"configs/train/{algo}.yaml")
        yaml_part = (
            _train_yaml(entry.config, key, source, base_dir) if entry.config is not None else {}
        )
        merged = deep_merge(deep_merge(yaml_part, base), entry.inline)
        if merged.get("algo", algo) != algo:
            raise SweepError(f"{source}: {key}: the config is for algo {merged['algo']!r}")
        merged["algo"] = algo
        bases[algo] = merged
    return bases


def _scenarios(
    names: list[str] | None, bases: dict[str, dict[str, Any]], source: str, base_dir: Path | None
) -> list[str]:
    """Scenario names or paths (relative paths made absolute: trials chdir into their folders),
    each loaded once to check it."""
    if names is None:
        names = [next(iter(bases.values())).get("scenario") or DEFAULT_SCENARIO]
    resolved = []
    for s in names:
        if s.endswith((".yaml", ".yml")) and not Path(s).is_absolute():
            for root in (Path.cwd(), base_dir):
                if root is not None and (root / s).is_file():
                    s = str((root / s).resolve())
                    break
        try:
            load_scenario(s)
        except (ConfigError, FileNotFoundError, ValueError) as exc:
            raise SweepError(f"{source}: scenarios: {exc}") from None
        resolved.append(s)
    if len(set(resolved)) != len(resolved):
        raise SweepError(f"{source}: scenarios: listed twice: {resolved}")
    return resolved


def _check_training(
    sweep: SweepFile, bases: dict[str, dict[str, Any]], scenario: str, source: str
) -> None:
    """Every algorithm accepts every key and every value of the space; the metric's oracle is on."""
    first = _first_values(sweep.space)
    for algo, flat in bases.items():
        trial = deep_merge(flat, first)
        trial.update(scenario=scenario, seed=0)
        checks = [("space", trial)]
        for path, value in _variants(sweep.space):
            checks.append((f"space.{'.'.join(path)}={value!r}", _set_path(trial, path, value)))
        for what, mapping in checks:
            try:
                parse_train_config(mapping, f"{source} ({algo}, {what})")
            except TrainConfigError as exc:
                raise SweepError(str(exc)) from None
        if sweep.metric in ORACLE_METRICS and not trial.get("eval", {}).get("with_oracle", True):
            raise SweepError(
                f"{source}: metric: {sweep.metric} needs the hindsight optimum, but {algo} trials "
                "set eval.with_oracle: false; use metric: eval/profit_usd or turn the oracle on"
            )


def parse_sweep(
    data: Mapping[str, Any], source: str = "mapping", base_dir: Path | None = None
) -> SweepSpec:
    """Validate a sweep mapping and resolve it; errors name the file and the key."""
    if not isinstance(data, Mapping):
        raise SweepError(f"{source}: top level must be a mapping")
    data = dict(data)
    data["name"] = data.get("name") or Path(source).stem
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as exc:
        raise SweepError(format_validation_error(exc, source, what="sweep config")) from None
    bases = _bases(sweep, source, base_dir)
    scenarios = _scenarios(sweep.scenarios, bases, source, base_dir)
    _check_training(sweep, bases, scenarios[0], source)
    res = sweep.resources_per_trial
    return SweepSpec(
        name=sweep.name,
        sweep_seed=sweep.sweep_seed,
        bases=bases,
        scenarios=scenarios,
        replicates=sweep.seeds if isinstance(sweep.seeds, int) else 1,
        seeds=list(sweep.seeds) if isinstance(sweep.seeds, list) else None,
        space=dict(sweep.space),
        num_samples=sweep.num_samples,
        resources={"cpu": res.cpu, **({"gpu": res.gpu} if res.gpu else {})},
        max_concurrent_trials=sweep.max_concurrent_trials,
        max_failures=sweep.max_failures,
        scheduler=sweep.scheduler.model_dump() if sweep.scheduler else None,
        metric=sweep.metric,
        mode=sweep.mode,
        final_benchmark=sweep.final_benchmark,
        source=source,
    )


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate ``configs/sweeps/NAME.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file {str(path)!r} does not exist")
    try:
        data = read_config_yaml(path) or {}
    except YamlConfigError as exc:
        raise SweepError(str(exc)) from None
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    return parse_sweep(data, str(path), path.resolve().parent)
