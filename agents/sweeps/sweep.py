"""Experiment sweeps on Ray Tune: every trial is one ``train()`` run, on one machine or a cluster.

A sweep file (``configs/sweeps/NAME.yaml``, safe-loaded)::

    name: paper                      # default: the file name
    sweep_seed: 0                    # derives every trial's seed and the random search draws
    base:                            # training keys for every trial: a YAML path and/or inline keys
      config: configs/train/ppo.yaml
      eval: {n_episodes: 5}
    algos:                           # optional grid over algorithms: algo -> its base YAML
      ppo: configs/train/ppo.yaml    #   (a path, {config: PATH, inline keys...}, or null for
      sac: {config: configs/train/sac.yaml, n_timesteps: 1e6}   #  configs/train/ALGO.yaml)
    scenarios: [urban-12stall-bev, ercot-rt-summer]             # grid; "all" = every named preset
    seeds: 3                         # replicates per configuration (or a list of explicit seeds)
    space:                           # hyperparameters: constants or one of
      learning_rate: {loguniform: [1e-5, 1e-3]}   # grid, choice, uniform, quniform, loguniform,
      n_epochs: {grid: [5, 10]}                   # randint, lograndint; nested mappings work too
    num_samples: 1                   # draws of the random dimensions (the grid is crossed with them)
    resources_per_trial: {cpu: 1}    # optional gpu
    max_concurrent_trials: null
    max_failures: 0                  # retries of a failed trial (from its last checkpoint)
    scheduler: none                  # or {type: asha, max_t: 2e6, grace_period: 2e5, reduction_factor: 3}
    metric: eval/normalized_score    # or eval/profit_usd, eval/pct_of_optimum
    mode: max
    final_benchmark: true            # each trial's eval/ comparison against every baseline

Training keys merge in this order (mappings merge key by key): the algorithm's YAML, ``base``'s
inline keys, the algorithm entry's inline keys, the sampled ``space`` values.

Seeds: unless ``seeds`` lists them or ``space`` sets ``seed``, trial ``k`` (Tune's trial counter,
kept across resumes) gets :func:`derive_seed` ``(sweep_seed, k)``: distinct for every trial, below
:data:`~agents.evaluation.TRAIN_SEED_LIMIT`, and spaced so that the env workers' seeds
``[seed, seed + n_envs)`` of different trials do not overlap (for the first 625 trials with up to
16 envs). A seed in ``base`` is overridden.

Each trial trains into a temporary run folder (the ``megapod train`` layout) and reports every
held-out evaluation to Tune; a run folder snapshot (with the latest SB3 checkpoint only) goes to
Tune's storage whenever a new SB3 checkpoint or a new best model appeared, and at the end. An
interrupted or failed trial resumes from it; finished trials are never rerun. When the sweep ends
each trial's final folder is copied to ``OUT/runs/TRIAL`` and the aggregated tables are written.

Ray is optional: nothing here imports it at module level.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agents.evaluation.rollout import TRAIN_SEED_LIMIT
from agents.evaluation.score import mean_ci, pct_of_optimum
from megapod_gym.config.loading import deep_merge
from megapod_gym.config.yaml_reader import YamlConfigError, read_config_yaml

INSTALL_HINT = 'pip install "megapod-gym[ray]"'
PROJECT_ROOT = Path(__file__).resolve().parent.parent
METRICS = ("eval/normalized_score", "eval/profit_usd", "eval/pct_of_optimum")
ORACLE_METRICS = ("eval/normalized_score", "eval/pct_of_optimum")
DOMAINS: dict[str, str] = {
    "grid": "a non-empty list of values",
    "choice": "a non-empty list of values",
    "uniform": "[low, high] with low < high",
    "quniform": "[low, high, q] with low < high and q > 0",
    "loguniform": "[low, high] with 0 < low < high",
    "randint": "[low, high] integers with low < high (high excluded)",
    "lograndint": "[low, high] integers with 0 < low < high (high excluded)",
}
TOP_KEYS = (
    "name",
    "sweep_seed",
    "base",
    "algos",
    "scenarios",
    "seeds",
    "space",
    "num_samples",
    "resources_per_trial",
    "max_concurrent_trials",
    "max_failures",
    "scheduler",
    "metric",
    "mode",
    "final_benchmark",
)
# Training keys whose values are mappings (a one-key mapping there is not a search-space typo).
MAPPING_KEYS = {"policy_kwargs", "eval", "normalize", "config_overrides"}
# Seeds: trial k's env workers use [seed, seed + n_envs); blocks of SEED_STRIDE keep them apart.
SEED_STRIDE = 16
SEED_BLOCKS = TRAIN_SEED_LIMIT // SEED_STRIDE  # 625
_SCI = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")  # 1e-5: a string to PyYAML's YAML 1.1


class SweepError(ValueError):
    """A sweep cannot run; the message says why (and names the key for a bad sweep file)."""


def require_ray() -> None:
    """Fail with one line naming the install command when Ray Tune is missing."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError as exc:
        raise SweepError(
            f"Ray Tune is not installed ({exc}); install it with: {INSTALL_HINT}"
        ) from None


# ------------------------------------------------------------------------------- sweep files
@dataclasses.dataclass(frozen=True)
class Dim:
    """One search-space dimension written in YAML as ``{op: args}``."""

    op: str
    args: tuple[Any, ...]

    def to_yaml(self) -> dict[str, list[Any]]:
        return {self.op: list(self.args)}

    def values(self) -> list[Any]:
        """Values used to validate the dimension before the sweep starts."""
        if self.op in ("grid", "choice"):
            return list(self.args)
        low, high = self.args[0], self.args[1]
        if self.op in ("randint", "lograndint"):
            return [int(low), int(high) - 1]
        return [low, high]


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


def _coerce_numbers(node: Any) -> Any:
    if isinstance(node, str) and _SCI.match(node.strip()):
        return float(node)
    if isinstance(node, dict):
        return {k: _coerce_numbers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_coerce_numbers(v) for v in node]
    return node


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


def _read_yaml(path: Path, key: str, source: str) -> dict[str, Any]:
    try:
        data = read_config_yaml(path) or {}
    except YamlConfigError as exc:
        raise SweepError(f"{source}: {key}: cannot read {exc}") from None
    if not isinstance(data, dict):
        raise SweepError(f"{source}: {key}: {path} must hold a mapping")
    return data


def _train_mapping(entry: Any, key: str, source: str, base_dir: Path | None) -> dict[str, Any]:
    """``PATH`` or ``{config: PATH, inline keys...}`` or inline keys -> flat training mapping."""
    if entry is None:
        return {}
    if isinstance(entry, str):
        return _read_yaml(_resolve_path(entry, key, source, base_dir), key, source)
    if not isinstance(entry, dict):
        raise SweepError(
            f"{source}: {key}: expected a training YAML path or a mapping of training keys "
            f"(got {type(entry).__name__})"
        )
    inline = dict(entry)
    ref = inline.pop("config", None)
    if ref is None:
        return inline
    if not isinstance(ref, str):
        raise SweepError(f"{source}: {key}.config: expected a path (got {ref!r})")
    return deep_merge(
        _read_yaml(_resolve_path(ref, f"{key}.config", source, base_dir), key, source), inline
    )


def _dim(op: str, args: Any, key: str, source: str) -> Dim:
    where = f"{source}: {key}.{op}: expected {DOMAINS[op]}"
    if not isinstance(args, list) or not args:
        raise SweepError(f"{where} (got {args!r})")
    if op in ("grid", "choice"):
        return Dim(op, tuple(args))
    n = 3 if op == "quniform" else 2
    if len(args) != n or not all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in args
    ):
        raise SweepError(f"{where} (got {args!r})")
    low, high = args[0], args[1]
    bad = (
        low >= high
        or (op in ("loguniform", "lograndint") and low <= 0)
        or (op == "quniform" and args[2] <= 0)
        or (op in ("randint", "lograndint") and not all(float(a).is_integer() for a in args))
    )
    if bad:
        raise SweepError(f"{where} (got {args!r})")
    return Dim(op, tuple(int(a) if op in ("randint", "lograndint") else a for a in args))


def _parse_space(node: Any, key: str, source: str, top: bool = False) -> Any:
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((op, args),) = node.items()
        if op in DOMAINS:
            return _dim(op, args, key, source)
        name = key.split(".")[-1] if top else ""
        if top and name not in MAPPING_KEYS and not name.endswith("_kwargs"):
            raise SweepError(
                f"{source}: {key}: unknown search-space type {op!r}; use one of {sorted(DOMAINS)} "
                f"(or a plain value)"
            )
    return {k: _parse_space(v, f"{key}.{k}", source, top=False) for k, v in node.items()}


def _first_values(node: Any) -> Any:
    if isinstance(node, Dim):
        return node.values()[0]
    if isinstance(node, dict):
        return {k: _first_values(v) for k, v in node.items()}
    return node


def _variants(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, value) of every value a dimension can take, for validation."""
    if isinstance(node, Dim):
        return [(path, v) for v in node.values()]
    if isinstance(node, dict):
        return [item for k, v in node.items() for item in _variants(v, (*path, k))]
    return []


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    cur = out
    for k in path[:-1]:
        cur = cur.setdefault(k, {})
    cur[path[-1]] = value
    return out


def parse_sweep(
    data: Mapping[str, Any], source: str = "mapping", base_dir: Path | None = None
) -> SweepSpec:
    """Validate a sweep mapping; errors name the file and the key."""
    from agents.training.config import ALGOS, TrainConfigError, parse_train_config
    from megapod_gym.config import DEFAULT_SCENARIO, ConfigError, load_scenario, scenario_names

    if not isinstance(data, Mapping):
        raise SweepError(f"{source}: top level must be a mapping")
    data = _coerce_numbers(dict(data))
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise SweepError(f"{source}: unknown key(s) {unknown}; allowed: {list(TOP_KEYS)}")

    def integer(key: str, default: Any, low: int, allow_none: bool = False) -> Any:
        v = data.get(key, default)
        if v is None and allow_none:
            return None
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise SweepError(f"{source}: {key}: expected an integer >= {low} (got {v!r})")
        return v

    name = data.get("name") or Path(source).stem
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise SweepError(f"{source}: name: use letters, digits, '.', '_' and '-' (got {name!r})")
    sweep_seed = integer("sweep_seed", 0, 0)
    num_samples = integer("num_samples", 1, 1)
    max_failures = integer("max_failures", 0, 0)
    max_concurrent = integer("max_concurrent_trials", None, 1, allow_none=True)

    # training bases, one per algorithm
    base = _train_mapping(data.get("base"), "base", source, base_dir)
    algos = data.get("algos")
    bases: dict[str, dict[str, Any]] = {}
    if algos is None:
        algo = base.get("algo")
        if algo not in ALGOS:
            raise SweepError(
                f"{source}: base: needs algo (one of {sorted(ALGOS)}), e.g. base: "
                f"configs/train/ppo.yaml, or list algorithms under algos (got {algo!r})"
            )
        bases[algo] = base
    else:
        if isinstance(data.get("base"), dict) and "config" in data["base"]:
            raise SweepError(
                f"{source}: base.config: with algos, each algorithm's YAML goes under algos "
                "(base keeps inline keys for every algorithm)"
            )
        if not isinstance(algos, dict) or not algos:
            raise SweepError(
                f"{source}: algos: expected a mapping algo -> base YAML (got {algos!r})"
            )
        for algo, entry in algos.items():
            if algo not in ALGOS:
                raise SweepError(
                    f"{source}: algos: unknown algorithm {algo!r}; one of {sorted(ALGOS)}"
                )
            key = f"algos.{algo}"
            if entry is None:
                entry = f"configs/train/{algo}.yaml"
            if isinstance(entry, str):
                yaml_part, inline = _train_mapping(entry, key, source, base_dir), {}
            elif isinstance(entry, dict):
                inline = {k: v for k, v in entry.items() if k != "config"}
                yaml_part = (
                    _train_mapping({"config": entry["config"]}, key, source, base_dir)
                    if "config" in entry
                    else {}
                )
            else:
                raise SweepError(
                    f"{source}: {key}: expected a training YAML path, a mapping of training keys "
                    f"or null (got {type(entry).__name__})"
                )
            merged = deep_merge(deep_merge(yaml_part, base), inline)
            if merged.get("algo", algo) != algo:
                raise SweepError(f"{source}: {key}: the config is for algo {merged['algo']!r}")
            merged["algo"] = algo
            bases[algo] = merged

    # scenarios
    scenarios = data.get("scenarios")
    if scenarios is None:
        first = next(iter(bases.values()))
        scenarios = [first.get("scenario") or DEFAULT_SCENARIO]
    elif scenarios == "all":
        scenarios = scenario_names()
    elif isinstance(scenarios, str):
        scenarios = [scenarios]
    if not isinstance(scenarios, list) or not scenarios:
        raise SweepError(f"{source}: scenarios: expected a list of names or paths, or 'all'")
    resolved = []
    for s in scenarios:
        if not isinstance(s, str):
            raise SweepError(f"{source}: scenarios: expected names or paths (got {s!r})")
        path = Path(s)
        if s.endswith((".yaml", ".yml")) and not path.is_absolute():
            for root in (Path.cwd(), base_dir):
                if root is not None and (root / s).is_file():
                    s = str((root / s).resolve())  # trials chdir into their own folders
                    break
        try:
            load_scenario(s)
        except (ConfigError, FileNotFoundError, ValueError) as exc:
            raise SweepError(f"{source}: scenarios: {exc}") from None
        resolved.append(s)
    if len(set(resolved)) != len(resolved):
        raise SweepError(f"{source}: scenarios: listed twice: {resolved}")

    # search space and seeds
    raw_space = data.get("space") or {}
    if not isinstance(raw_space, dict):
        raise SweepError(f"{source}: space: expected a mapping of training keys")
    for forbidden, instead in (
        ("algo", "algos"),
        ("scenario", "scenarios"),
        ("replicate", "seeds"),
    ):
        if forbidden in raw_space:
            raise SweepError(f"{source}: space.{forbidden}: use the top-level {instead!r} key")
    space = {k: _parse_space(v, f"space.{k}", source, top=True) for k, v in raw_space.items()}
    seeds_value = data.get("seeds")
    seeds: list[int] | None = None
    replicates = 1
    if "seed" in space and seeds_value is not None:
        raise SweepError(
            f"{source}: seeds: set seeds either with 'seeds' or with space.seed, not both"
        )
    if isinstance(seeds_value, list):
        if not seeds_value or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < TRAIN_SEED_LIMIT
            for s in seeds_value
        ):
            raise SweepError(
                f"{source}: seeds: expected integers in [0, {TRAIN_SEED_LIMIT}) (got {seeds_value!r})"
            )
        if len(set(seeds_value)) != len(seeds_value):
            raise SweepError(f"{source}: seeds: listed twice: {seeds_value}")
        seeds = list(seeds_value)
    elif seeds_value is not None:
        replicates = integer("seeds", None, 1)
    if "seed" in space:
        for _, value in _variants(space["seed"]) or [((), space["seed"])]:
            if not isinstance(value, int) or not 0 <= value < TRAIN_SEED_LIMIT:
                raise SweepError(
                    f"{source}: space.seed: seeds must be integers in [0, {TRAIN_SEED_LIMIT}) (got {value!r})"
                )

    # every algorithm accepts every key, and every value validates
    first = _first_values(space)
    for algo, flat in bases.items():
        trial = deep_merge(flat, first)
        trial.update(scenario=resolved[0], seed=0)
        checks = [("space", trial)]
        for path, value in _variants(space):
            checks.append((f"space.{'.'.join(path)}={value!r}", _set_path(trial, path, value)))
        for what, mapping in checks:
            try:
                parse_train_config(mapping, f"{source} ({algo}, {what})")
            except TrainConfigError as exc:
                raise SweepError(str(exc)) from None

    # resources, scheduler, metric
    res = data.get("resources_per_trial", {"cpu": 1})
    if not isinstance(res, dict) or set(res) - {"cpu", "gpu"}:
        raise SweepError(
            f"{source}: resources_per_trial: expected {{cpu: N, gpu: N}} (got {res!r})"
        )
    resources: dict[str, float] = {}
    for k in ("cpu", "gpu"):
        v = res.get(k, 1 if k == "cpu" else 0)
        if (
            not isinstance(v, (int, float))
            or isinstance(v, bool)
            or v < 0
            or (k == "cpu" and v <= 0)
        ):
            raise SweepError(
                f"{source}: resources_per_trial.{k}: expected a number > 0 (got {v!r})"
            )
        if v:
            resources[k] = float(v)
    scheduler = data.get("scheduler", "none")
    if scheduler in (None, "none", "fifo"):
        scheduler = None
    elif isinstance(scheduler, dict):
        scheduler = dict(scheduler)
        if scheduler.get("type") != "asha":
            raise SweepError(
                f"{source}: scheduler.type: only 'asha' (or scheduler: none) is supported"
            )
        extra = set(scheduler) - {"type", "max_t", "grace_period", "reduction_factor"}
        if extra:
            raise SweepError(f"{source}: scheduler: unknown key(s) {sorted(extra)}")
        for k, default in (("max_t", None), ("grace_period", None), ("reduction_factor", 3)):
            v = scheduler.get(k, default)
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if (
                not isinstance(v, int)
                or isinstance(v, bool)
                or v < (2 if k == "reduction_factor" else 1)
            ):
                raise SweepError(
                    f"{source}: scheduler.{k}: expected an integer number of env steps (got {v!r})"
                )
            scheduler[k] = v
        if scheduler["grace_period"] > scheduler["max_t"]:
            raise SweepError(f"{source}: scheduler.grace_period: must not exceed max_t")
    else:
        raise SweepError(
            f"{source}: scheduler: expected none or {{type: asha, max_t, grace_period}}"
        )
    metric = data.get("metric", "eval/normalized_score")
    if metric not in METRICS:
        raise SweepError(f"{source}: metric: one of {list(METRICS)} (got {metric!r})")
    mode = data.get("mode", "max")
    if mode not in ("max", "min"):
        raise SweepError(f"{source}: mode: 'max' or 'min' (got {mode!r})")
    if metric in ORACLE_METRICS:
        for algo, flat in bases.items():
            oracle = deep_merge(flat, first).get("eval", {}).get("with_oracle", True)
            if not oracle:
                raise SweepError(
                    f"{source}: metric: {metric} needs the hindsight optimum, but {algo} trials set "
                    "eval.with_oracle: false; use metric: eval/profit_usd or turn the oracle on"
                )
    final_benchmark = data.get("final_benchmark", True)
    if not isinstance(final_benchmark, bool):
        raise SweepError(f"{source}: final_benchmark: true or false (got {final_benchmark!r})")
    return SweepSpec(
        name=name,
        sweep_seed=sweep_seed,
        bases=bases,
        scenarios=resolved,
        replicates=replicates,
        seeds=seeds,
        space=space,
        num_samples=num_samples,
        resources=resources,
        max_concurrent_trials=max_concurrent,
        max_failures=max_failures,
        scheduler=scheduler,
        metric=metric,
        mode=mode,
        final_benchmark=final_benchmark,
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


# ----------------------------------------------------------------------------------- trials
def derive_seed(sweep_seed: int, trial_index: int) -> int:
    """Seed of trial ``trial_index``: distinct for every index below ``TRAIN_SEED_LIMIT``.

    A ``SeedSequence(sweep_seed)`` picks an affine permutation of the 625 seed blocks of width
    16; trial ``k`` takes block ``perm(k mod 625)`` at offset ``k // 625``. So the env workers of
    the first 625 trials (seeds ``[seed, seed + n_envs)``, n_envs <= 16) never share a seed. The
    mapping depends only on SeedSequence's hashing, which NumPy keeps stable.
    """
    a, b = (int(x) for x in np.random.SeedSequence(sweep_seed).generate_state(2, np.uint64))
    a = a % SEED_BLOCKS
    while math.gcd(a, SEED_BLOCKS) != 1:
        a += 1
    k = trial_index % TRAIN_SEED_LIMIT
    block = (a * (k % SEED_BLOCKS) + b) % SEED_BLOCKS
    return block * SEED_STRIDE + k // SEED_BLOCKS


def trial_index(trial_id: str) -> int:
    """Tune's trial counter from a trial id like ``"a1b2c_00007"`` (kept across resumes)."""
    tail = trial_id.rsplit("_", 1)[-1]
    if tail.isdigit():
        return int(tail)
    return int(np.random.SeedSequence([ord(c) for c in trial_id]).generate_state(1)[0]) % 10**6


@dataclasses.dataclass(frozen=True)
class TrialSetup:
    """What every trial needs besides its sampled config (shipped to the workers by Tune)."""

    bases: dict[str, dict[str, Any]]
    sweep_seed: int
    final_benchmark: bool
    name: str = "sweep"
    cpus_per_trial: int = 1


RESERVED = ("algo", "scenario", "replicate", "seed")


def sampled_hyperparams(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in RESERVED}


def trial_seed(config: Mapping[str, Any], sweep_seed: int, index: int) -> int:
    return int(config["seed"]) if "seed" in config else derive_seed(sweep_seed, index)


def trial_mapping(setup: TrialSetup, config: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The flat training mapping of one trial (base of its algorithm + sampled values + seed)."""
    algo = config["algo"]
    data = deep_merge(setup.bases[algo], sampled_hyperparams(config))
    data.update(
        algo=algo, scenario=config["scenario"], seed=trial_seed(config, setup.sweep_seed, index)
    )
    return data


def trial_name(config: Mapping[str, Any], sweep_seed: int, index: int) -> str:
    scenario = Path(str(config["scenario"])).stem
    return f"{index:04d}_{config['algo']}_{scenario}_seed{trial_seed(config, sweep_seed, index)}"


class TrialNamer:
    """Tune's trial_name_creator / trial_dirname_creator (picklable)."""

    def __init__(self, sweep_seed: int) -> None:
        self.sweep_seed = sweep_seed

    def __call__(self, trial: Any) -> str:
        return trial_name(trial.config, self.sweep_seed, trial_index(trial.trial_id))


def _latest_step(run_dir: Path) -> int | None:
    from agents.training.run_folder import latest_checkpoint

    latest = latest_checkpoint(run_dir / "checkpoints")
    return latest[0] if latest else None


def snapshot(run_dir: Path, dest: Path) -> None:
    """``run_dir`` into ``dest`` with only the latest SB3 checkpoint (hard links where possible)."""
    step = _latest_step(run_dir)
    keep = f"_{step}_steps." if step is not None else None

    def ignore(folder: str, names: list[str]) -> list[str]:
        if Path(folder) != run_dir / "checkpoints":
            return []
        return [n for n in names if keep is None or keep not in n]

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(run_dir, dest, ignore=ignore, copy_function=link, dirs_exist_ok=True)


class TuneReporter:
    """``train(report=...)``: forwards each held-out evaluation to ``ray.tune.report``, with the
    baselines' and the optimum's values on the same traces (read once from the run's TensorBoard
    events) and a run folder checkpoint whenever a new SB3 checkpoint or best model appeared."""

    def __init__(self, run_dir: Path, info: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.info = info
        self.refs: dict[str, float] = {}
        self.last: dict[str, Any] = {}
        self.saved_state: tuple[Any, ...] | None = None
        best = run_dir / "best" / "eval.json"
        self.best: dict[str, Any] = json.loads(best.read_text()) if best.is_file() else {}

    def _state(self) -> tuple[Any, ...]:
        best = self.run_dir / "best" / "eval.json"
        return (_latest_step(self.run_dir), best.read_text() if best.is_file() else None)

    def _read_refs(self) -> None:
        from agents.evaluation.compare import read_scalars

        try:
            scalars = read_scalars(self.run_dir)
        except Exception:  # noqa: BLE001 - references are a nicety; the metric is reported anyway
            return
        self.refs = {
            tag: float(values[-1])
            for tag, (_, values) in scalars.items()
            if tag.startswith(("baseline/", "optimum/")) and "/kpi/" not in tag
        }

    def metrics(self, m: Mapping[str, Any]) -> dict[str, Any]:
        key = "normalized_score" if "normalized_score" in m else "profit_usd"
        if not self.best or m.get(key, -math.inf) > self.best.get(key, -math.inf):
            self.best = dict(m)
        out: dict[str, Any] = {**self.info, "step": int(m["step"])}
        for k, v in m.items():
            if k != "step":
                out[
                    f"eval/{k}"
                    if k in ("profit_usd", "normalized_score", "pct_of_optimum")
                    else f"eval/kpi/{k}"
                ] = v
        for k in ("normalized_score", "profit_usd", "pct_of_optimum", "step"):
            if k in self.best:
                out[f"best/{k}"] = self.best[k]
        if not self.refs:
            self._read_refs()
        out.update(self.refs)
        return out

    def __call__(self, m: Mapping[str, Any]) -> None:
        self.last = self.metrics(m)
        state = self._state()
        self.report(self.last, checkpoint=state != self.saved_state)
        self.saved_state = state

    def report(self, metrics: dict[str, Any], checkpoint: bool) -> None:
        from ray import tune

        if not checkpoint:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="megapod-ckpt-") as tmp:
            snapshot(self.run_dir, Path(tmp))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def sweep_trainable(config: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune function trainable: one ``train()`` run, resumed from Tune's checkpoint if any."""
    from ray import tune

    import megapod_gym  # noqa: F401 - registers the env ids in this worker
    from agents.training.config import parse_train_config
    from agents.training.train import train

    trial_id = tune.get_context().get_trial_id()
    index = trial_index(trial_id)
    mapping = trial_mapping(setup, config, index)
    work = Path(tempfile.mkdtemp(prefix=f"megapod-{trial_id}-"))
    run_dir = work / "run"
    argv = sys.argv  # what meta.json records as the command (not Ray's worker command line)
    sys.argv = ["megapod", "sweep", setup.name, trial_name(config, setup.sweep_seed, index)]
    try:
        resume = False
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            checkpoint.to_directory(str(run_dir))
            if _latest_step(run_dir) is not None and (run_dir / "config.yaml").is_file():
                started = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
                mapping["seed"] = started.get("seed", mapping["seed"])  # the seed it started with
                resume = True
            else:  # a snapshot taken before the first SB3 checkpoint: start over
                shutil.rmtree(run_dir)
        cfg = parse_train_config(mapping, f"trial {trial_id}")
        info = {"algo": cfg.algo, "scenario": cfg.scenario, "seed": cfg.seed, "trial_index": index}
        reporter = TuneReporter(run_dir, info)
        done = run_dir / "metrics.json"
        if resume and done.is_file():  # finished, but stopped before Tune heard the last report
            final = json.loads(done.read_text())
        else:
            final = train(
                cfg,
                run_dir,
                resume=resume,
                progress=False,
                final_benchmark=setup.final_benchmark,
                report=reporter,
                benchmark_jobs=setup.cpus_per_trial,
            )
        if not reporter.last and reporter.best:
            reporter.last = reporter.metrics(reporter.best)
        metrics = dict(reporter.last)
        metrics.update(
            {
                k: final[k]
                for k in ("timesteps", "train_seconds", "env_steps_per_second", "wall_seconds")
                if k in final
            }
        )
        for k in ("normalized_score", "profit_usd", "pct_of_optimum", "step"):
            if k in final:
                metrics[f"best/{k}"] = final[k]
        if not reporter.refs:
            reporter._read_refs()
        metrics.update(reporter.refs, final=1)
        reporter.report(metrics, checkpoint=True)
    finally:
        sys.argv = argv
        shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------------- running
def _tune_space(node: Any) -> Any:
    from ray import tune

    if isinstance(node, Dim):
        a = node.args
        return {
            "grid": lambda: tune.grid_search(list(a)),
            "choice": lambda: tune.choice(list(a)),
            "uniform": lambda: tune.uniform(a[0], a[1]),
            "quniform": lambda: tune.quniform(a[0], a[1], a[2]),
            "loguniform": lambda: tune.loguniform(a[0], a[1]),
            "randint": lambda: tune.randint(a[0], a[1]),
            "lograndint": lambda: tune.lograndint(a[0], a[1]),
        }[node.op]()
    if isinstance(node, dict):
        return {k: _tune_space(v) for k, v in node.items()}
    return node


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune's param_space: algorithm x scenario x seeds x hyperparameters."""
    from ray import tune

    def grid(values: Sequence[Any]) -> Any:
        return tune.grid_search(list(values)) if len(values) > 1 else values[0]

    space: dict[str, Any] = {"algo": grid(list(spec.bases)), "scenario": grid(spec.scenarios)}
    if spec.seeds is not None:
        space["seed"] = grid(spec.seeds)
    if spec.replicates > 1:
        space["replicate"] = tune.grid_search(list(range(spec.replicates)))
    space.update(_tune_space(spec.space))
    return space


def _is_uri(path: str) -> bool:
    return "://" in path


def _check_shared_storage(storage: str) -> None:
    """On a multi-node cluster, a storage path must be visible from every node."""
    import uuid

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) <= 1 or _is_uri(storage):
        return
    marker = str(Path(storage) / f".megapod-storage-check-{uuid.uuid4().hex}")

    def on(node: dict[str, Any]) -> Any:
        return NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)

    @ray.remote(num_cpus=0)
    def write(path: str) -> str:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("megapod")
        import socket

        return socket.gethostname()

    @ray.remote(num_cpus=0)
    def seen(path: str) -> bool:
        return os.path.exists(path)

    try:
        ray.get(write.options(scheduling_strategy=on(nodes[0])).remote(marker), timeout=120)
        found = ray.get(
            [seen.options(scheduling_strategy=on(n)).remote(marker) for n in nodes], timeout=120
        )
    except Exception as exc:  # noqa: BLE001
        raise SweepError(
            f"the cluster has {len(nodes)} nodes and storage {storage} is a local path that could "
            f"not be checked from every node ({exc}); pass --storage a path shared by every node "
            "(NFS, ...) or a URI such as s3://bucket/sweeps"
        ) from None
    missing = [n.get("NodeManagerAddress", n["NodeID"]) for n, ok in zip(nodes, found) if not ok]

    @ray.remote(num_cpus=0)
    def remove(path: str) -> None:
        Path(path).unlink(missing_ok=True)

    try:
        ray.get(remove.options(scheduling_strategy=on(nodes[0])).remote(marker), timeout=60)
    except Exception:  # noqa: BLE001 - a leftover marker file is harmless
        pass
    if missing:
        raise SweepError(
            f"the cluster has {len(nodes)} nodes but storage {storage} is a local path: nodes "
            f"{', '.join(missing)} cannot see it; pass --storage a path shared by every node "
            "(NFS, ...) mounted at the same place, or a URI such as s3://bucket/sweeps"
        )


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` (or $RAY_ADDRESS), else start a local Ray. Returns True
    when this call started Ray (and so should shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    warnings.filterwarnings("ignore", "Tip: In future versions of Ray", FutureWarning)
    try:
        if address:
            ray.init(address=address)
        else:
            # The minimal ray[tune] install has no metrics agent: don't log failing to reach it.
            os.environ.setdefault("RAY_enable_metrics_collection", "0")
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False)
    except Exception as exc:  # noqa: BLE001 - Ray raises bare Exceptions on startup failures
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        hint = (
            "is the head node up (ray start --head --port=6379)?"
            if address
            else "on a slow or busy machine, start Ray first with 'ray start --head' and pass --address auto"
        )
        raise SweepError(f"could not start or join {where}: {exc}; {hint}") from None
    return True


@dataclasses.dataclass
class SweepOutcome:
    trials: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    markdown: str
    paths: dict[str, Path]
    unfinished: int
    errors: int
    experiment_path: str

    @property
    def exit_code(self) -> int:
        return 130 if self.unfinished else (1 if self.errors else 0)


STATE_FILE = "sweep_state.json"
SPEC_FILE = "sweep.yaml"


def experiment_location(out: Path, storage: str | None, name: str) -> tuple[str, str]:
    """(storage_path, experiment path) — default storage is ``OUT/tune``."""
    storage = storage or str(out / "tune")
    if not _is_uri(storage):
        storage = str(Path(storage).expanduser().resolve())
    return storage, storage.rstrip("/") + "/" + name


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    storage: str | None = None,
    address: str | None = None,
    resume: bool = False,
    callbacks: Sequence[Any] | None = None,
    verbose: int = 1,
) -> SweepOutcome:
    """Run (or resume) ``spec`` on Ray Tune, then write ``OUT/runs/*`` and the aggregated tables.

    ``callbacks`` are extra ``ray.tune.Callback`` objects (they are saved with the experiment).
    """
    require_ray()
    # Each run folder snapshot forces an experiment state save; that is intended, not a warning.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    out = Path(out)
    state_path = out / STATE_FILE
    if resume:
        if not state_path.is_file():
            raise SweepError(
                f"cannot resume: {state_path} not found (was the sweep started with --out {out}?)"
            )
        state = json.loads(state_path.read_text())
        storage = storage or state["storage"]
    elif out.exists() and any(out.iterdir()):
        raise SweepError(
            f"sweep folder {out} already exists; pass --resume to continue it or choose another --out"
        )
    storage_path, exp_path = experiment_location(out, storage, spec.name)
    started = connect(address)
    try:
        if address or os.environ.get("RAY_ADDRESS"):
            _check_shared_storage(storage_path)
        setup = TrialSetup(
            spec.bases,
            spec.sweep_seed,
            spec.final_benchmark,
            spec.name,
            max(1, int(spec.resources.get("cpu", 1))),
        )
        trainable = tune.with_resources(
            tune.with_parameters(sweep_trainable, setup=setup), dict(spec.resources)
        )
        if resume:
            if not tune.Tuner.can_restore(exp_path):
                raise SweepError(f"cannot resume: no Ray Tune experiment at {exp_path}")
            tuner = tune.Tuner.restore(
                exp_path, trainable, resume_unfinished=True, resume_errored=True
            )
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / SPEC_FILE).write_text(spec.to_yaml())
            state_path.write_text(
                json.dumps(
                    {"storage": storage_path, "experiment_path": exp_path, "name": spec.name},
                    indent=2,
                )
            )
            scheduler = None
            if spec.scheduler:
                scheduler = ASHAScheduler(
                    time_attr="step",
                    max_t=spec.scheduler["max_t"],
                    grace_period=spec.scheduler["grace_period"],
                    reduction_factor=spec.scheduler["reduction_factor"],
                )
            namer = TrialNamer(spec.sweep_seed)
            tuner = tune.Tuner(
                trainable,
                param_space=param_space(spec),
                tune_config=tune.TuneConfig(
                    metric=spec.metric,
                    mode=spec.mode,
                    num_samples=spec.num_samples,
                    scheduler=scheduler,
                    search_alg=BasicVariantGenerator(
                        random_state=spec.sweep_seed, max_concurrent=spec.max_concurrent_trials or 0
                    ),
                    reuse_actors=True,
                    trial_name_creator=namer,
                    trial_dirname_creator=namer,
                ),
                run_config=tune.RunConfig(
                    name=spec.name,
                    storage_path=storage_path,
                    callbacks=list(callbacks or []),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                    verbose=verbose,
                ),
            )
        t0 = time.time()
        grid = tuner.fit()
        wall = time.time() - t0
        return finish(spec, out, grid, exp_path, wall)
    finally:
        if started:
            import ray

            ray.shutdown()


def _saved_statuses(exp_path: str) -> dict[str, str]:
    """Trial folder name -> status in the experiment state Tune saved last (what ``--resume``
    will see; in memory, Tune marks interrupted trials TERMINATED while cleaning up)."""
    from ray import tune

    try:
        return {
            Path(str(t.path)).name: str(t.status) for t in tune.ExperimentAnalysis(exp_path).trials
        }
    except Exception:  # noqa: BLE001 - no saved state yet
        return {}


def _index_of(result: Any, metrics: Mapping[str, Any]) -> int:
    if "trial_index" in metrics:
        return int(metrics["trial_index"])
    head = Path(str(result.path)).name.split("_", 1)[0]  # our trial folders start with the index
    return int(head) if head.isdigit() else trial_index(str(metrics.get("trial_id", head)))


def finish(
    spec: SweepSpec, out: Path, grid: Any, exp_path: str, wall: float = float("nan")
) -> SweepOutcome:
    """Copy every trial's run folder to ``OUT/runs`` and write the aggregated tables.

    Trial status: ``finished`` (trained to the end), ``error``, ``stopped`` (ended early by the
    scheduler) or ``unfinished`` (interrupted or never started; ``--resume`` runs it)."""
    saved = _saved_statuses(exp_path)
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    trials = []
    for result in grid:
        m = dict(result.metrics or {})
        config = dict(result.config or {})
        index = _index_of(result, m)
        name = trial_name(config, spec.sweep_seed, index) if config else Path(result.path).name
        tune_status = saved.get(Path(str(result.path)).name, "")
        if result.error is not None or tune_status == "ERROR":
            status = "error"
        elif tune_status in ("PENDING", "RUNNING", "PAUSED"):
            status = "unfinished"
        elif m.get("final"):
            status = "finished"
        elif tune_status == "TERMINATED":
            status = "stopped"
        else:
            status = "unfinished"
        row: dict[str, Any] = {
            "trial": name,
            "trial_id": m.get("trial_id", ""),
            "status": status,
            "algo": config.get("algo", m.get("algo")),
            "scenario": config.get("scenario", m.get("scenario")),
            "seed": m.get("seed", trial_seed(config, spec.sweep_seed, index) if config else None),
            "hyperparams": json.dumps(sampled_hyperparams(config), sort_keys=True, default=str),
            "best_normalized_score": m.get("best/normalized_score", float("nan")),
            "best_profit_usd": m.get("best/profit_usd", float("nan")),
            "best_pct_of_optimum": m.get("best/pct_of_optimum", float("nan")),
            "best_step": m.get("best/step"),
            "timesteps": m.get("timesteps", m.get("step")),
            "error": str(result.error).strip().splitlines()[-1] if result.error is not None else "",
            "tune_dir": str(result.path),
            "run_dir": "",
        }
        row.update({k: v for k, v in m.items() if k.startswith(("baseline/", "optimum/"))})
        if result.checkpoint is not None:
            dest = runs / name
            try:
                if dest.exists():
                    shutil.rmtree(dest)
                result.checkpoint.to_directory(str(dest))
                row["run_dir"] = str(dest)
            except Exception as exc:  # noqa: BLE001 - e.g. a driver that cannot read the storage
                row["error"] = row["error"] or f"run folder not copied: {exc}"
        trials.append(row)
    trials.sort(key=lambda r: r["trial"])
    # with a concurrency limit Tune creates trials lazily: count the ones not created yet too
    unfinished = sum(r["status"] == "unfinished" for r in trials)
    unfinished += max(spec.n_trials - len(trials), 0)
    errors = sum(r["status"] == "error" for r in trials)
    summary = aggregate(trials)
    md = sweep_markdown(spec, summary, trials, wall)
    from agents.evaluation.benchmark import write_csv

    paths = {
        "table": out / "results.md",
        "summary": out / "results.csv",
        "trials": out / "trials.csv",
    }
    paths["table"].write_text(md + "\n")
    write_csv(summary or [{"scenario": "", "policy": ""}], paths["summary"])
    write_csv(trials or [{"trial": ""}], paths["trials"])
    return SweepOutcome(trials, summary, md, paths, unfinished, errors, exp_path)


def _has_result(row: Mapping[str, Any]) -> bool:
    return isinstance(row.get("best_profit_usd"), (int, float)) and math.isfinite(
        row["best_profit_usd"]
    )


# ------------------------------------------------------------------------------- aggregation
BASELINE_RE = re.compile(r"^baseline/([^/]+)/(profit_usd|normalized_score)$")


def _label(row: Mapping[str, Any]) -> str:
    hp = json.loads(row["hyperparams"]) if row.get("hyperparams") else {}
    return row["algo"] + (
        f" ({', '.join(f'{k}={v}' for k, v in sorted(hp.items()))})" if hp else ""
    )


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def aggregate(trials: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario: each trained configuration (mean ± 95 % CI over its seeds of the best held-out
    normalized score and profit), then the baselines and the hindsight optimum on the same traces."""
    rows: list[dict[str, Any]] = []
    usable = [t for t in trials if t["status"] != "error" and _has_result(t)]
    for scenario in dict.fromkeys(t["scenario"] for t in usable):
        here = [t for t in usable if t["scenario"] == scenario]
        for label in dict.fromkeys(_label(t) for t in here):
            group = [t for t in here if _label(t) == label]
            score = np.array([t["best_normalized_score"] for t in group], dtype=float)
            profit = np.array([t["best_profit_usd"] for t in group], dtype=float)
            pct = np.array([t["best_pct_of_optimum"] for t in group], dtype=float)
            s_mean, s_ci = (
                mean_ci(score) if np.isfinite(score).all() else (float("nan"), float("nan"))
            )
            p_mean, p_ci = mean_ci(profit)
            rows.append(
                {
                    "scenario": scenario,
                    "policy": label,
                    "kind": "trained",
                    "algo": group[0]["algo"],
                    "hyperparams": group[0]["hyperparams"],
                    "trials": len(group),
                    "seeds": " ".join(str(t["seed"]) for t in group),
                    "normalized_score": s_mean,
                    "normalized_score_ci": s_ci,
                    "profit_usd": p_mean,
                    "profit_usd_ci": p_ci,
                    "pct_of_optimum": _mean(list(pct)),
                    "best_step": _mean(
                        [t["best_step"] for t in group if t["best_step"] is not None]
                    ),
                }
            )
        names = dict.fromkeys(m.group(1) for t in here for k in t if (m := BASELINE_RE.match(k)))
        optimum = _mean([t.get("optimum/profit_usd", float("nan")) for t in here])
        for name in names:
            profit_b = _mean([t.get(f"baseline/{name}/profit_usd", float("nan")) for t in here])
            rows.append(
                {
                    "scenario": scenario,
                    "policy": name,
                    "kind": "baseline",
                    "normalized_score": _mean(
                        [t.get(f"baseline/{name}/normalized_score", float("nan")) for t in here]
                    ),
                    "profit_usd": profit_b,
                    "pct_of_optimum": pct_of_optimum(profit_b, optimum),
                }
            )
        if math.isfinite(optimum):
            rows.append(
                {
                    "scenario": scenario,
                    "policy": "hindsight-optimum",
                    "kind": "optimum",
                    "normalized_score": 100.0,
                    "profit_usd": optimum,
                    "pct_of_optimum": 100.0,
                }
            )
    return rows


def sweep_markdown(
    spec: SweepSpec,
    summary: Sequence[Mapping[str, Any]],
    trials: Sequence[Mapping[str, Any]],
    wall: float = float("nan"),
) -> str:
    from agents.evaluation.benchmark import _fmt

    def pm(row: Mapping[str, Any], key: str, spec_: str) -> str:
        value = _fmt(row.get(key, float("nan")), spec_)
        ci = row.get(f"{key}_ci")
        if ci is None:
            return value
        return f"{value} ± {_fmt(ci, spec_)}" if math.isfinite(ci) else value

    counts: dict[str, int] = {}
    for t in trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    if spec.n_trials > len(trials):
        counts["not started"] = spec.n_trials - len(trials)
    lines = [
        f"## Sweep {spec.name}",
        "",
        f"{max(spec.n_trials, len(trials))} trials "
        f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})"
        + (f" in {wall / 60:.1f} min" if math.isfinite(wall) else "")
        + f"; metric {spec.metric} ({spec.mode}).",
        "",
    ]
    for scenario in dict.fromkeys(r["scenario"] for r in summary):
        lines += [
            f"### {Path(scenario).stem}",
            "",
            "| policy | trials | normalized score (mean ± 95 % CI) | profit $/episode (mean ± 95 % CI) | % of optimum |",
            "|---|---|---|---|---|",
        ]
        for r in (r for r in summary if r["scenario"] == scenario):
            name = r["policy"] if r["kind"] == "trained" else f"{r['policy']} ({r['kind']})"
            lines.append(
                f"| {name} | {r.get('trials', '')} | {pm(r, 'normalized_score', '.1f')} | "
                f"{pm(r, 'profit_usd', ',.0f')} | {_fmt(r.get('pct_of_optimum', float('nan')), '.2f')} |"
            )
        lines.append("")
    lines.append(
        "Trained rows: each trial's best held-out evaluation during training (best/eval.json), "
        "mean ± 95 % Student-t CI over seeds. Baselines and the hindsight optimum ran on the same "
        "held-out traces. Normalized score: 0 = cars-first greedy, 100 = hindsight optimum."
    )
    return "\n".join(lines)


__all__ = [
    "INSTALL_HINT",
    "SweepError",
    "SweepSpec",
    "derive_seed",
    "load_sweep",
    "parse_sweep",
    "require_ray",
    "run_sweep",
    "sweep_trainable",
]
